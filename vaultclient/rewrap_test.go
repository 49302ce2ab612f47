package vaultclient

import (
	"context"
	"errors"
	"testing"
	"time"
)

// rewrapCase is a key backend that can rotate, for the rewrap tests.
type rewrapCase struct {
	name string
	// setup returns the Keyer before rotation and a function that rotates
	// and returns a Keyer that uses the new primary.
	setup func(t *testing.T) (Keyer, func(t *testing.T) Keyer)
}

var rewrapCases = []rewrapCase{
	{"local", func(t *testing.T) (Keyer, func(t *testing.T) Keyer) {
		k, path := newTestKeyring(t)
		return k, func(t *testing.T) Keyer {
			if _, err := RotateLocalKeyring(path); err != nil {
				t.Fatal(err)
			}
			k2, err := OpenLocalKeyring(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { k2.Close() })
			return k2
		}
	}},
	{"pkcs11", func(t *testing.T) (Keyer, func(t *testing.T) Keyer) {
		if !PKCS11Available {
			t.Skip("built without cgo: no PKCS#11")
		}
		p, _ := newTestPKCS11(t)
		return p, func(t *testing.T) Keyer {
			if _, err := p.Rotate(context.Background()); err != nil {
				t.Fatal(err)
			}
			return p
		}
	}},
	{"transit", func(t *testing.T) (Keyer, func(t *testing.T) Keyer) {
		gw, admin, _ := newTestTransit(t)
		return gw, func(t *testing.T) Keyer {
			if _, err := admin.Rotate(context.Background()); err != nil {
				t.Fatal(err)
			}
			return gw
		}
	}},
}

func TestRewrap(t *testing.T) {
	ctx := context.Background()
	for _, rc := range rewrapCases {
		for _, sk := range storeKinds {
			t.Run(rc.name+"/"+sk.name, func(t *testing.T) {
				k1, rotate := rc.setup(t)
				s := sk.new(t)
				v1 := newTestVault(t, s, k1, Options{Now: time.Now})
				var tokens []string
				for i := range 7 {
					in := testCards[i].input()
					in.ExpYear = time.Now().Year() + 2
					info, err := v1.Tokenize(ctx, in)
					if err != nil {
						t.Fatal(err)
					}
					tokens = append(tokens, info.Token)
				}
				k2 := rotate(t)
				v2 := newTestVault(t, s, k2, Options{Now: time.Now})
				primary := mustPrimary(t, k2)

				// Stop after the first batch that moved something, as an
				// interrupted run would. (Redis SCAN pages may be empty.)
				cctx, cancel := context.WithCancel(ctx)
				p, err := v2.Rewrap(cctx, RewrapOptions{BatchSize: 3, Progress: func(p RewrapProgress) {
					if p.Rewrapped > 0 {
						cancel()
					}
				}})
				cancel()
				first := p.Rewrapped
				switch {
				case err == nil && p.Cursor == "" && first == len(tokens):
					// One page held every record: nothing to resume.
				case err == nil || p.Cursor == "" || first == 0:
					t.Fatalf("interrupted Rewrap = %+v, %v; want an error, some progress and a cursor", p, err)
				default:
					p, err = v2.Rewrap(ctx, RewrapOptions{Cursor: p.Cursor, BatchSize: 3})
					if err != nil {
						t.Fatalf("resumed Rewrap: %v", err)
					}
					if first+p.Rewrapped < len(tokens) || p.Cursor != "" {
						t.Errorf("Rewrap moved %d then %d records (cursor %q), want all %d", first, p.Rewrapped, p.Cursor, len(tokens))
					}
				}
				// Once more from the start: nothing left to move.
				p, err = v2.Rewrap(ctx, RewrapOptions{})
				if err != nil || p.Rewrapped != 0 || p.Current != len(tokens) {
					t.Errorf("third Rewrap = %+v, %v; want all %d current", p, err, len(tokens))
				}
				census, err := v2.KeyCensus(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(census) != 1 || census[primary] != 2*len(tokens) {
					t.Errorf("KeyCensus = %v, want %d records and CVCs all under %+v", census, 2*len(tokens), primary)
				}
				for _, tok := range tokens {
					card, err := v2.DetokenizeConsumingCVC(ctx, tok)
					if err != nil {
						t.Fatalf("DetokenizeConsumingCVC(%s) after rewrap: %v", tok, err)
					}
					if card.CVC.IsZero() {
						t.Errorf("DetokenizeConsumingCVC(%s) after rewrap lost the CVC", tok)
					}
				}
			})
		}
	}
}

// TestRewrapCountsRetired: records whose version is gone are counted and
// left alone; the rest still move.
func TestRewrapCountsRetired(t *testing.T) {
	ctx := context.Background()
	k, path := newTestKeyring(t)
	s := newTestBolt(t)
	v := newTestVault(t, s, k, Options{})
	old, _ := v.Tokenize(ctx, testCards[0].input())
	if _, err := RotateLocalKeyring(path); err != nil {
		t.Fatal(err)
	}
	k2, _ := OpenLocalKeyring(path)
	defer k2.Close()
	v2 := newTestVault(t, s, k2, Options{})
	mid, _ := v2.Tokenize(ctx, testCards[1].input())
	if _, err := RotateLocalKeyring(path); err != nil {
		t.Fatal(err)
	}
	if retired, err := RetireLocalKeyring(path, 2); err != nil || len(retired) != 1 || retired[0] != 1 {
		t.Fatalf("RetireLocalKeyring(2) = %v, %v; want [1]", retired, err)
	}
	k3, _ := OpenLocalKeyring(path)
	defer k3.Close()
	v3 := newTestVault(t, s, k3, Options{})
	p, err := v3.Rewrap(ctx, RewrapOptions{})
	if err != nil {
		t.Fatalf("Rewrap: %v", err)
	}
	if p.Retired != 1 || p.Rewrapped != 1 || p.Scanned != 2 {
		t.Errorf("Rewrap = %+v, want 1 retired and 1 rewrapped of 2", p)
	}
	if _, err := v3.Detokenize(ctx, old.Token); code(err) != CodeKeyRetired {
		t.Errorf("Detokenize(v1 record) = %v, want %s", err, CodeKeyRetired)
	}
	if _, err := v3.Detokenize(ctx, mid.Token); err != nil {
		t.Errorf("Detokenize(rewrapped record) = %v", err)
	}
	if _, err := RetireLocalKeyring(path, 4); err == nil {
		t.Error("RetireLocalKeyring above the primary = nil, want a refusal")
	}
}

// TestRewrapKeyBackendDown stops at the outage and writes nothing.
func TestRewrapKeyBackendDown(t *testing.T) {
	ctx := context.Background()
	k, path := newTestKeyring(t)
	s := newTestBolt(t)
	v := newTestVault(t, s, k, Options{})
	info, _ := v.Tokenize(ctx, testCards[0].input())
	before, _ := s.Get(ctx, info.Token)
	RotateLocalKeyring(path)
	k2, _ := OpenLocalKeyring(path)
	defer k2.Close()
	v2 := newTestVault(t, s, rewrapFaulty{faultyKeyer{Keyer: k2}, errors.New("hsm on fire")}, Options{})
	p, err := v2.Rewrap(ctx, RewrapOptions{})
	if code(err) != CodeKeyBackendUnavailable || p.Rewrapped != 0 {
		t.Errorf("Rewrap with the key backend down = %+v, %v; want %s and nothing moved", p, err, CodeKeyBackendUnavailable)
	}
	after, _ := s.Get(ctx, info.Token)
	if string(after.Record) != string(before.Record) {
		t.Error("Rewrap with the key backend down changed the record")
	}
}

type rewrapFaulty struct {
	faultyKeyer
	err error
}

func (k rewrapFaulty) Rewrap(context.Context, []DecryptItem) ([]Sealed, error) { return nil, k.err }

package vaultclient

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestLifecycleStores: the LifecycleStore contract on both stores, below
// the Vault: not-found writes nothing, Replace is a compare-and-swap, and
// PutCVC replaces a CVC and leaves the record.
func TestLifecycleStores(t *testing.T) {
	ctx := context.Background()
	for _, sk := range lifecycleStores {
		t.Run(sk.name, func(t *testing.T) {
			clk := newTestClock(testNow)
			s := sk.new(t, clk)
			missing := newToken()
			for name, call := range map[string]func() error{
				"Meta":    func() error { _, err := s.Meta(ctx, missing); return err },
				"Replace": func() error { return s.Replace(ctx, missing, []byte("a"), []byte("b"), clk.Now()) },
				"PutCVC":  func() error { return s.PutCVC(ctx, missing, []byte("c"), time.Hour, clk.Now()) },
				"Touch":   func() error { return s.Touch(ctx, missing, clk.Now()) },
				"Delete":  func() error { return s.Delete(ctx, missing) },
			} {
				if err := call(); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s(missing) = %v, want ErrNotFound", name, err)
				}
			}
			assertNoTrace(t, s, missing)

			tok := newToken()
			if err := s.Put(ctx, tok, Entry{Record: []byte("r1"), CVC: []byte("c1")}, time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := s.Replace(ctx, tok, []byte("not r1"), []byte("r2"), clk.Now()); !errors.Is(err, ErrConflict) {
				t.Errorf("Replace(stale old) = %v, want ErrConflict", err)
			}
			clk.Add(time.Minute)
			if err := s.Replace(ctx, tok, []byte("r1"), []byte("r2"), clk.Now()); err != nil {
				t.Fatalf("Replace: %v", err)
			}
			m, err := s.Meta(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.Record, []byte("r2")) || !m.CVCHeld || !m.LastUsed.Equal(clk.Now()) {
				t.Errorf("Meta after Replace = {%q, held %v, used %v}, want {r2, true, %v}", m.Record, m.CVCHeld, m.LastUsed, clk.Now())
			}
			if err := s.PutCVC(ctx, tok, []byte("c2"), time.Hour, clk.Now()); err != nil {
				t.Fatalf("PutCVC: %v", err)
			}
			e, err := s.GetAndDeleteCVC(ctx, tok)
			if err != nil || !bytes.Equal(e.CVC, []byte("c2")) || !bytes.Equal(e.Record, []byte("r2")) {
				t.Errorf("GetAndDeleteCVC after PutCVC = {%q, %q}, %v; want {r2, c2}", e.Record, e.CVC, err)
			}
			if m, err := s.Meta(ctx, tok); err != nil || m.CVCHeld {
				t.Errorf("Meta after the CVC was taken = held %v, %v; want not held", m.CVCHeld, err)
			}
		})
	}
}

// TestBoltMetaExpiredCVC: bolt has no TTL; Meta reads a CVC past its
// expiry as not held.
func TestBoltMetaExpiredCVC(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock(testNow)
	s := newTestBolt(t)
	s.now = clk.Now
	tok := newToken()
	if err := s.Put(ctx, tok, Entry{Record: []byte("r"), CVC: []byte("c")}, time.Hour); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	if m, err := s.Meta(ctx, tok); err != nil || m.CVCHeld {
		t.Errorf("Meta an hour on = held %v, %v; want not held", m.CVCHeld, err)
	}
}

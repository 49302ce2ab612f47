package vaultclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

// TestTokenizeAsRefusesDeleted: a card stored by TokenizeAs and then
// deleted (the API's DELETE) or expired by retention is never stored
// again under its token: TokenizeAs writes nothing and says ErrDeleted.
// The store then holds the tombstone alone, with no card data, and every
// public read answers the token exactly like a derived token never used.
func TestTokenizeAsRefusesDeleted(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{3}, MinTokenKeyLen)
	tests := []struct {
		name string
		// open returns a vault on a fresh store, a function that removes
		// the card as the named path does, and one that returns every
		// key and value the store holds.
		open func(t *testing.T) (v *Vault, remove func(token string), dump func() map[string]string)
	}{
		{"bolt/delete", func(t *testing.T) (*Vault, func(string), func() map[string]string) {
			s := newTestBolt(t)
			v := newTestVault(t, s, mustKeyring(t), Options{})
			return v, func(tok string) { mustDelete(t, v, tok) }, func() map[string]string { return boltDump(t, s) }
		}},
		{"bolt/retention", func(t *testing.T) (*Vault, func(string), func() map[string]string) {
			s := newTestBolt(t)
			v := newTestVault(t, s, mustKeyring(t), Options{})
			return v, func(string) {
				if n, _, err := s.SweepRetention(ctx, time.Now().Add(24*time.Hour), 10); err != nil || n != 1 {
					t.Fatalf("SweepRetention = %d, %v; want 1 deleted", n, err)
				}
			}, func() map[string]string { return boltDump(t, s) }
		}},
		{"redis/delete", func(t *testing.T) (*Vault, func(string), func() map[string]string) {
			s, srv := newTestRedis(t)
			v := newTestVault(t, s, mustKeyring(t), Options{})
			return v, func(tok string) { mustDelete(t, v, tok) }, func() map[string]string { return redisDump(srv.Dump()) }
		}},
		{"redis/retention", func(t *testing.T) (*Vault, func(string), func() map[string]string) {
			s, srv := newTestRedis(t)
			s.SetRetention(time.Second) // Redis's own clock expires the record
			// The CVC keeps its own TTL; make it expire with the record.
			v := newTestVault(t, s, mustKeyring(t), Options{CVCTTL: time.Second})
			return v, func(tok string) {
				deadline := time.Now().Add(5 * time.Second)
				for {
					if n, err := srv.Client().Exists(ctx, s.cardKey(tok), s.cvcKey(tok), s.usedKey(tok)).Result(); err == nil && n == 0 {
						return
					}
					if time.Now().After(deadline) {
						t.Fatal("record still there after its retention")
					}
					time.Sleep(50 * time.Millisecond)
				}
			}, func() map[string]string { return redisDump(srv.Dump()) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, remove, dump := tt.open(t)
			token, _ := DeriveToken(key, []byte("line 1"))
			never, _ := DeriveToken(key, []byte("line 2"))
			if _, err := v.TokenizeAs(ctx, token, testCards[0].input()); err != nil {
				t.Fatalf("TokenizeAs: %v", err)
			}
			remove(token)

			_, err := v.TokenizeAs(ctx, token, testCards[0].input())
			if !errors.Is(err, ErrDeleted) || code(err) != CodeInternal {
				t.Fatalf("TokenizeAs after removal = %v, want internal_error wrapping ErrDeleted", err)
			}
			want := map[string]string{tombName(tt.name, token): "1"}
			if diff := cmp.Diff(want, dump()); diff != "" {
				t.Errorf("store after a refused TokenizeAs (-want +got):\n%s", diff)
			}
			for _, op := range publicReads {
				gotErr, neverErr := op.call(ctx, v, token), op.call(ctx, v, never)
				if code(gotErr) != CodeTokenNotFound || publicText(gotErr) != publicText(neverErr) {
					t.Errorf("%s(deleted) = %q, %q; want %q, %q as for a token never used", op.name,
						code(gotErr), publicText(gotErr), code(neverErr), publicText(neverErr))
				}
			}
			// A random token is unaffected, and a new derived one is stored.
			mustTokenize(t, v, testCards[1].input())
			if _, err := v.TokenizeAs(ctx, never, testCards[1].input()); err != nil {
				t.Errorf("TokenizeAs(another token) = %v", err)
			}
		})
	}
}

// publicReads are the Vault calls behind the API's card endpoints.
var publicReads = []struct {
	name string
	call func(ctx context.Context, v *Vault, tok string) error
}{
	{"Metadata", func(ctx context.Context, v *Vault, tok string) error { _, err := v.Metadata(ctx, tok); return err }},
	{"Detokenize", func(ctx context.Context, v *Vault, tok string) error { _, err := v.Detokenize(ctx, tok); return err }},
	{"Delete", func(ctx context.Context, v *Vault, tok string) error { return v.Delete(ctx, tok) }},
	{"Update", func(ctx context.Context, v *Vault, tok string) error {
		_, err := v.Update(ctx, tok, CardUpdate{ExpMonth: intp(1), ExpYear: intp(2032)})
		return err
	}},
}

func publicText(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.PublicMessage()
	}
	return fmt.Sprint(err)
}

func mustKeyring(t *testing.T) Keyer {
	k, _ := newTestKeyring(t)
	return k
}

func mustDelete(t *testing.T, v *Vault, tok string) {
	t.Helper()
	if err := v.Delete(context.Background(), tok); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

// tombName is the name dump gives the tombstone of tok.
func tombName(test, tok string) string {
	if strings.HasPrefix(test, "redis") {
		return "cardgate:{" + tok + "}:tomb"
	}
	return bucketTombstones + "/" + tok
}

// boltDump returns every key and value in every bucket but meta, as
// "bucket/key".
func boltDump(t *testing.T, s *BoltStore) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if string(name) == bucketMeta {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				m[string(name)+"/"+string(k)] = string(v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// redisDump reads redistest's Dump of string keys into key → value.
func redisDump(d []byte) map[string]string {
	lines := bytes.Split(bytes.TrimSuffix(d, []byte("\n")), []byte("\n"))
	m := map[string]string{}
	for i := 0; i+1 < len(lines); i += 2 {
		m[string(lines[i])] = string(lines[i+1])
	}
	return m
}

// TestTokenizeAsNeedsTombstones: over a store that keeps no tombstones,
// TokenizeAs stores nothing (it could re-create a deleted card); Tokenize
// is unaffected.
func TestTokenizeAsNeedsTombstones(t *testing.T) {
	ctx := context.Background()
	s := newTestBolt(t)
	v := newTestVault(t, struct{ Store }{s}, mustKeyring(t), Options{})
	token, _ := DeriveToken(bytes.Repeat([]byte{5}, MinTokenKeyLen), []byte("line 1"))
	if _, err := v.TokenizeAs(ctx, token, testCards[0].input()); code(err) != CodeInternal || errors.Is(err, ErrDeleted) {
		t.Errorf("TokenizeAs = %v, want internal_error, not ErrDeleted", err)
	}
	if _, err := s.GetRecord(ctx, token); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRecord after a refused TokenizeAs = %v, want ErrNotFound", err)
	}
	mustTokenize(t, v, testCards[0].input())
}

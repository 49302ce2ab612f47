package vaultclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

func TestTokenizeDetokenize(t *testing.T) {
	ctx := context.Background()
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			keys, _ := newTestKeyring(t)
			v := newTestVault(t, sk.new(t), keys, Options{})
			for _, tc := range testCards {
				t.Run(tc.name, func(t *testing.T) {
					info, err := v.Tokenize(ctx, tc.input())
					if err != nil {
						t.Fatalf("Tokenize: %v", err)
					}
					if !ValidToken(info.Token) {
						t.Errorf("token %q is not well formed", info.Token)
					}
					fp, err := base64.RawURLEncoding.DecodeString(info.Fingerprint)
					if err != nil || len(fp) != 32 {
						t.Errorf("fingerprint %q is not 32 bytes of base64url", info.Fingerprint)
					}
					wantInfo := TokenInfo{Token: info.Token, Last4: tc.digits[len(tc.digits)-4:], Brand: tc.brand,
						ExpMonth: 12, ExpYear: 2030, Fingerprint: info.Fingerprint}
					if diff := cmp.Diff(wantInfo, *info); diff != "" {
						t.Errorf("Tokenize info mismatch (-want +got):\n%s", diff)
					}

					fields := func(c *Card) map[string]any {
						return map[string]any{"token": c.Token, "number": c.Number.Reveal(), "cvc": c.CVC.Reveal(),
							"name": c.Name.Reveal(), "month": c.ExpMonth, "year": c.ExpYear, "brand": c.Brand, "last4": c.Last4}
					}
					want := map[string]any{"token": info.Token, "number": tc.digits, "cvc": "",
						"name": "Jane Q. Cardholder", "month": 12, "year": 2030, "brand": tc.brand, "last4": info.Last4}
					card, err := v.Detokenize(ctx, info.Token)
					if err != nil {
						t.Fatalf("Detokenize: %v", err)
					}
					if diff := cmp.Diff(want, fields(card)); diff != "" {
						t.Errorf("Detokenize mismatch (-want +got):\n%s", diff)
					}
					// The CVC comes back only from the consuming read.
					want["cvc"] = tc.cvc
					card, err = v.DetokenizeConsumingCVC(ctx, info.Token)
					if err != nil {
						t.Fatalf("DetokenizeConsumingCVC: %v", err)
					}
					if diff := cmp.Diff(want, fields(card)); diff != "" {
						t.Errorf("DetokenizeConsumingCVC mismatch (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

func TestFingerprintIsKeyedAndStable(t *testing.T) {
	ctx := context.Background()
	keys, _ := newTestKeyring(t)
	other, _ := newTestKeyring(t)
	v := newTestVault(t, newTestBolt(t), keys, Options{})
	w := newTestVault(t, newTestBolt(t), other, Options{})
	a, _ := v.Tokenize(ctx, CardInput{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2030})
	b, _ := v.Tokenize(ctx, CardInput{Number: "4242 4242 4242 4242", ExpMonth: 2, ExpYear: 2031, CVC: "111"})
	c, _ := v.Tokenize(ctx, CardInput{Number: "4111111111111111", ExpMonth: 1, ExpYear: 2030})
	d, _ := w.Tokenize(ctx, CardInput{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2030})
	if a.Token == b.Token {
		t.Error("one card tokenized twice got one token; tokens must be fresh")
	}
	if a.Fingerprint != b.Fingerprint {
		t.Error("one number got two fingerprints from one key")
	}
	if a.Fingerprint == c.Fingerprint {
		t.Error("two numbers got one fingerprint")
	}
	if a.Fingerprint == d.Fingerprint {
		t.Error("two fingerprint keys gave one fingerprint")
	}
}

func TestDetokenizeNotFound(t *testing.T) {
	ctx := context.Background()
	keys, _ := newTestKeyring(t)
	s := newTestBolt(t)
	v := newTestVault(t, s, keys, Options{})
	for _, token := range []string{
		newToken(), // well formed, unknown
		"", "tok_", "tok_../../etc/passwd", "tok_*", "tok_{x}:card", strings.Repeat("tok_a", 10000),
		"4242424242424242", "TOK_" + newToken()[4:],
	} {
		_, err := v.Detokenize(ctx, token)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeTokenNotFound {
			t.Fatalf("Detokenize(%.40q) = %v, want %s", token, err, CodeTokenNotFound)
		}
		// Unknown and malformed look the same to a caller.
		if e.PublicMessage() != "token not found" {
			t.Errorf("Detokenize(%.40q) message = %q, want %q", token, e.PublicMessage(), "token not found")
		}
		if !ValidToken(token) && strings.Contains(err.Error(), token) && token != "" {
			t.Errorf("error %q repeats a malformed token", err)
		}
	}
}

// tamperCase changes a stored entry and says which code
// DetokenizeConsumingCVC must return. Detokenize must return the same
// code when the case changes the card record, and succeed, without a CVC,
// when it changes only the CVC record: it never reads that.
type tamperCase struct {
	name    string
	mutate  func(t *testing.T, e *Entry)
	code    string
	cvcOnly bool // the card record is left as it was
}

func editRecord(f func(r map[string]any)) func(t *testing.T, e *Entry) {
	return func(t *testing.T, e *Entry) {
		var r map[string]any
		if err := json.Unmarshal(e.Record, &r); err != nil {
			t.Fatal(err)
		}
		f(r)
		e.Record, _ = json.Marshal(r)
	}
}

func editCVC(f func(r map[string]any)) func(t *testing.T, e *Entry) {
	return func(t *testing.T, e *Entry) {
		var r map[string]any
		if err := json.Unmarshal(e.CVC, &r); err != nil {
			t.Fatal(err)
		}
		f(r)
		e.CVC, _ = json.Marshal(r)
	}
}

// flipBlob flips one bit of a base64 blob field at index i (negative counts
// from the end).
func flipBlob(field string, i int) func(r map[string]any) {
	return func(r map[string]any) {
		b, _ := base64.StdEncoding.DecodeString(r[field].(string))
		if i < 0 {
			i += len(b)
		}
		b[i] ^= 0x80
		r[field] = base64.StdEncoding.EncodeToString(b)
	}
}

func TestDetokenizeTampered(t *testing.T) {
	ctx := context.Background()
	tests := []tamperCase{
		{name: "nonce bit flipped", mutate: editRecord(flipBlob("card", 0)), code: CodeRecordCorrupt},
		{name: "ciphertext bit flipped", mutate: editRecord(flipBlob("card", gcmNonceSize+3)), code: CodeRecordCorrupt},
		{name: "tag bit flipped", mutate: editRecord(flipBlob("card", -1)), code: CodeRecordCorrupt},
		{name: "cvc ciphertext bit flipped", mutate: editCVC(flipBlob("cvc", gcmNonceSize+1)), code: CodeRecordCorrupt, cvcOnly: true},
		{name: "cvc blob swapped into card", mutate: func(t *testing.T, e *Entry) {
			var c map[string]any
			json.Unmarshal(e.CVC, &c)
			editRecord(func(r map[string]any) { r["card"] = c["cvc"] })(t, e)
		}, code: CodeRecordCorrupt},
		{name: "card blob swapped into cvc", mutate: func(t *testing.T, e *Entry) {
			var r map[string]any
			json.Unmarshal(e.Record, &r)
			editCVC(func(c map[string]any) { c["cvc"] = r["card"] })(t, e)
		}, code: CodeRecordCorrupt, cvcOnly: true},
		{name: "last4 changed", mutate: editRecord(func(r map[string]any) { r["last4"] = "1111" }), code: CodeRecordCorrupt},
		{name: "brand changed", mutate: editRecord(func(r map[string]any) { r["brand"] = "amex" }), code: CodeRecordCorrupt},
		{name: "format changed", mutate: editRecord(func(r map[string]any) { r["format"] = 2 }), code: CodeRecordCorrupt},
		{name: "unknown field", mutate: editRecord(func(r map[string]any) { r["extra"] = 1 }), code: CodeRecordCorrupt},
		{name: "card missing", mutate: editRecord(func(r map[string]any) { delete(r, "card") }), code: CodeRecordCorrupt},
		{name: "not json", mutate: func(t *testing.T, e *Entry) { e.Record = []byte("garbage") }, code: CodeRecordCorrupt},
		{name: "cvc not json", mutate: func(t *testing.T, e *Entry) { e.CVC = []byte("{") }, code: CodeRecordCorrupt, cvcOnly: true},
		{name: "key version not held", mutate: editRecord(func(r map[string]any) { r["key"].(map[string]any)["version"] = 7 }), code: CodeKeyRetired},
		{name: "key backend not held", mutate: editRecord(func(r map[string]any) { r["key"].(map[string]any)["backend"] = "transit" }), code: CodeKeyRetired},
	}
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			keys, _ := newTestKeyring(t)
			real := sk.new(t)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					// A card per case: the consuming read deletes its CVC.
					info, err := newTestVault(t, real, keys, Options{}).Tokenize(ctx, testCards[0].input())
					if err != nil {
						t.Fatalf("Tokenize: %v", err)
					}
					var logs bytes.Buffer
					ts := tamperStore{Store: real, mutate: func(e *Entry) { tt.mutate(t, e) }}
					v := newTestVault(t, ts, keys, Options{Logger: testLogger(&logs)})
					reads := []struct {
						name string
						read func(context.Context, string) (*Card, error)
						code string
					}{
						{"Detokenize", v.Detokenize, tt.code},
						{"DetokenizeConsumingCVC", v.DetokenizeConsumingCVC, tt.code},
					}
					if tt.cvcOnly {
						reads[0].code = "" // the CVC record is never read
					}
					for _, r := range reads {
						logs.Reset()
						card, err := r.read(ctx, info.Token)
						if got := code(err); got != r.code {
							t.Fatalf("%s(%s) = %v, %v; want code %q", r.name, tt.name, card, err, r.code)
						}
						if err == nil {
							if card.CVC.Reveal() != "" {
								t.Errorf("%s(%s) returned a CVC", r.name, tt.name)
							}
							continue
						}
						if card != nil {
							t.Errorf("%s(%s) returned a card with an error", r.name, tt.name)
						}
						if r.code == CodeRecordCorrupt && !strings.Contains(logs.String(), "integrity") {
							t.Errorf("%s(%s): tampering not logged; logs: %s", r.name, tt.name, logs.String())
						}
						assertNoCardData(t, "logs", logs.Bytes(), testCards[:1])
						assertNoCardData(t, "error", []byte(err.Error()), testCards[:1])
					}
				})
			}
		})
	}
}

// TestRecordMovedToAnotherToken copies a real record, as stored, to another
// token in the real store: the binding must make it fail.
func TestRecordMovedToAnotherToken(t *testing.T) {
	ctx := context.Background()
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			keys, _ := newTestKeyring(t)
			s := sk.new(t)
			v := newTestVault(t, s, keys, Options{})
			a, _ := v.Tokenize(ctx, testCards[0].input())
			b, _ := v.Tokenize(ctx, testCards[2].input())
			ea, err := s.Get(ctx, a.Token)
			if err != nil {
				t.Fatal(err)
			}

			moved := newToken()
			if err := s.Put(ctx, moved, ea, time.Hour); err != nil {
				t.Fatal(err)
			}
			if _, err := v.Detokenize(ctx, moved); code(err) != CodeRecordCorrupt {
				t.Errorf("Detokenize(record moved to a new token) = %v, want %s", err, CodeRecordCorrupt)
			}

			// A's CVC next to B's card: each half is genuine, the pair is not.
			ts := tamperStore{Store: s, mutate: func(e *Entry) { e.CVC = ea.CVC }}
			if _, err := newTestVault(t, ts, keys, Options{}).DetokenizeConsumingCVC(ctx, b.Token); code(err) != CodeRecordCorrupt {
				t.Errorf("DetokenizeConsumingCVC(B with A's CVC) = %v, want %s", err, CodeRecordCorrupt)
			}
		})
	}
}

func writeKeyring(t *testing.T, path string, primary uint32, keys map[string][]byte, hmacKey []byte) {
	t.Helper()
	data, _ := json.Marshal(keyringFile{Format: localKeyringFormat, Primary: primary, Keys: keys, HMACKey: hmacKey})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestKeyVersions seals under v1, adds v2 as primary, seals under v2, and
// then retires v1.
func TestKeyVersions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	k1, k2, h := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	open := func(name string, primary uint32, keys map[string][]byte) *LocalKeyring {
		path := filepath.Join(dir, name)
		writeKeyring(t, path, primary, keys, h)
		k, err := OpenLocalKeyring(path)
		if err != nil {
			t.Fatalf("OpenLocalKeyring(%s): %v", name, err)
		}
		t.Cleanup(func() { k.Close() })
		return k
	}
	s := newTestBolt(t)
	v1 := newTestVault(t, s, open("v1.json", 1, map[string][]byte{"1": k1}), Options{})
	old, err := v1.Tokenize(ctx, testCards[0].input())
	if err != nil {
		t.Fatal(err)
	}

	both := open("v12.json", 2, map[string][]byte{"1": k1, "2": k2})
	v12 := newTestVault(t, s, both, Options{})
	fresh, err := v12.Tokenize(ctx, testCards[0].input())
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{old.Token, fresh.Token} {
		if _, err := v12.Detokenize(ctx, tok); err != nil {
			t.Errorf("Detokenize(%s) with v1+v2 = %v, want nil", tok, err)
		}
	}
	e, _ := s.Get(ctx, fresh.Token)
	rec, _ := decodeCardRecord(e.Record)
	if rec.Key.Version != 2 {
		t.Errorf("new record sealed under version %d, want the primary 2", rec.Key.Version)
	}
	if old.Fingerprint != fresh.Fingerprint {
		t.Error("the fingerprint of one card changed with the encryption key version")
	}

	v2 := newTestVault(t, s, open("v2.json", 2, map[string][]byte{"2": k2}), Options{})
	if _, err := v2.Detokenize(ctx, old.Token); code(err) != CodeKeyRetired {
		t.Errorf("Detokenize(v1 record) after retiring v1 = %v, want %s", err, CodeKeyRetired)
	}
	if _, err := v2.Detokenize(ctx, fresh.Token); err != nil {
		t.Errorf("Detokenize(v2 record) after retiring v1 = %v, want nil", err)
	}

	// Same version number, different key bytes: the seal fails to
	// authenticate, it does not decrypt to garbage.
	wrong := newTestVault(t, s, open("wrong.json", 1, map[string][]byte{"1": k2}), Options{})
	if _, err := wrong.Detokenize(ctx, old.Token); code(err) != CodeRecordCorrupt {
		t.Errorf("Detokenize under a different key with the same version = %v, want %s", err, CodeRecordCorrupt)
	}
}

func TestCVCLifecycle(t *testing.T) {
	ctx := context.Background()
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			keys, _ := newTestKeyring(t)
			s := sk.new(t)
			now := testNow
			clock := func() time.Time { return now }
			v := newTestVault(t, s, keys, Options{Now: clock, CVCTTL: 10 * time.Minute})
			tokenize := func(in CardInput) string {
				t.Helper()
				info, err := v.Tokenize(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				return info.Token
			}
			// Every card is tokenized at testNow; each consuming read
			// takes its CVC, so each check below has its own card.
			noCVC := tokenize(CardInput{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2030})
			held, beforeTTL, atTTL, consumed := tokenize(testCards[0].input()), tokenize(testCards[0].input()),
				tokenize(testCards[0].input()), tokenize(testCards[0].input())
			cvcOf := func(tok string) string {
				t.Helper()
				c, err := v.DetokenizeConsumingCVC(ctx, tok)
				if err != nil {
					t.Fatalf("DetokenizeConsumingCVC: %v", err)
				}
				return c.CVC.Reveal()
			}
			if got := cvcOf(noCVC); got != "" {
				t.Errorf("CVC of a card tokenized without one = %q, want empty", got)
			}
			if got := cvcOf(held); got != testCards[0].cvc {
				t.Fatalf("CVC = %q, want %q", got, testCards[0].cvc)
			}
			if got := cvcOf(held); got != "" {
				t.Errorf("CVC read a second time = %q, want empty (consumed)", got)
			}
			// The sealed expiry holds even where the store's TTL has not
			// fired (its clock is real time; ours moved on).
			now = testNow.Add(10*time.Minute - time.Millisecond)
			if got := cvcOf(beforeTTL); got != testCards[0].cvc {
				t.Errorf("CVC just before TTL = %q, want it held", got)
			}
			now = testNow.Add(10 * time.Minute)
			if got := cvcOf(atTTL); got != "" {
				t.Errorf("CVC after TTL = %q, want empty", got)
			}
			now = testNow

			if err := v.ConsumeCVC(ctx, consumed); err != nil {
				t.Fatalf("ConsumeCVC: %v", err)
			}
			if e, _ := s.Get(ctx, consumed); e.CVC != nil {
				t.Error("store still holds the CVC after ConsumeCVC")
			}
			if got := cvcOf(consumed); got != "" {
				t.Errorf("CVC after ConsumeCVC = %q, want empty", got)
			}
			if err := v.ConsumeCVC(ctx, consumed); err != nil {
				t.Errorf("second ConsumeCVC = %v, want nil (idempotent)", err)
			}
			if err := v.ConsumeCVC(ctx, "tok_bad"); code(err) != CodeTokenNotFound {
				t.Errorf("ConsumeCVC(malformed) = %v, want %s", err, CodeTokenNotFound)
			}
		})
	}
}

// TestDetokenizeConsumingCVC: the CVC comes back once, even to concurrent
// callers, and the card itself stays readable.
func TestDetokenizeConsumingCVC(t *testing.T) {
	ctx := context.Background()
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			keys, _ := newTestKeyring(t)
			v := newTestVault(t, sk.new(t), keys, Options{Now: func() time.Time { return testNow }, CVCTTL: 10 * time.Minute})
			info, err := v.Tokenize(ctx, testCards[0].input())
			if err != nil {
				t.Fatal(err)
			}
			const n = 8
			var wg sync.WaitGroup
			var mu sync.Mutex
			var cvcs []string
			for range n {
				wg.Go(func() {
					c, err := v.DetokenizeConsumingCVC(ctx, info.Token)
					if err != nil {
						t.Errorf("DetokenizeConsumingCVC: %v", err)
						return
					}
					if c.Number.Reveal() != testCards[0].input().Number {
						t.Errorf("DetokenizeConsumingCVC returned another card")
					}
					if cvc := c.CVC.Reveal(); cvc != "" {
						mu.Lock()
						cvcs = append(cvcs, cvc)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if len(cvcs) != 1 || cvcs[0] != testCards[0].cvc {
				t.Errorf("%d concurrent reads got CVCs %q, want exactly one %q", n, cvcs, testCards[0].cvc)
			}
			if c, err := v.Detokenize(ctx, info.Token); err != nil || c.CVC.Reveal() != "" {
				t.Errorf("Detokenize after consumption = CVC %q, %v; want none", c.CVC.Reveal(), err)
			}
			if _, err := v.DetokenizeConsumingCVC(ctx, "tok_bad"); code(err) != CodeTokenNotFound {
				t.Errorf("DetokenizeConsumingCVC(malformed) = %v, want %s", err, CodeTokenNotFound)
			}
		})
	}
}

// TestDetokenizeLeavesCVC: Detokenize reads the card record alone, asks
// the key backend to open the card and nothing else, and returns no CVC;
// the CVC it left is still there for DetokenizeConsumingCVC. This is what
// keeps a CVC out of memory on forwards that do not send it.
func TestDetokenizeLeavesCVC(t *testing.T) {
	ctx := context.Background()
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			keys, _ := newTestKeyring(t)
			fk := &fieldKeyer{Keyer: keys}
			rs := &readLog{Store: sk.new(t)}
			v := newTestVault(t, rs, fk, Options{})
			info, err := v.Tokenize(ctx, testCards[0].input())
			if err != nil {
				t.Fatalf("Tokenize: %v", err)
			}
			const n = 3
			for range n {
				card, err := v.Detokenize(ctx, info.Token)
				if err != nil {
					t.Fatalf("Detokenize: %v", err)
				}
				if card.Number.Reveal() != testCards[0].digits {
					t.Errorf("Detokenize returned another card")
				}
				if !card.CVC.IsZero() {
					t.Errorf("Detokenize returned a CVC (%d digits), want none", len(card.CVC.Reveal()))
				}
			}
			wantFields, wantReads := make([][]string, n), make([]string, n)
			for i := range n {
				wantFields[i], wantReads[i] = []string{FieldCard}, "GetRecord"
			}
			if diff := cmp.Diff(wantFields, fk.take()); diff != "" {
				t.Errorf("Detokenize decrypted, per call (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantReads, rs.take()); diff != "" {
				t.Errorf("Detokenize store calls (-want +got):\n%s", diff)
			}

			card, err := v.DetokenizeConsumingCVC(ctx, info.Token)
			if err != nil {
				t.Fatalf("DetokenizeConsumingCVC: %v", err)
			}
			if got := card.CVC.Reveal(); got != testCards[0].cvc {
				t.Errorf("DetokenizeConsumingCVC after %d Detokenize calls: CVC = %q, want %q (not consumed)", n, got, testCards[0].cvc)
			}
			if diff := cmp.Diff([][]string{{FieldCard, FieldCVC}}, fk.take()); diff != "" {
				t.Errorf("DetokenizeConsumingCVC decrypted (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"GetAndDeleteCVC"}, rs.take()); diff != "" {
				t.Errorf("DetokenizeConsumingCVC store calls (-want +got):\n%s", diff)
			}
		})
	}
}

// fieldKeyer wraps a Keyer and records the fields of each Decrypt call.
type fieldKeyer struct {
	Keyer
	mu      sync.Mutex
	decrypt [][]string
}

func (k *fieldKeyer) Decrypt(ctx context.Context, items []DecryptItem) ([][]byte, error) {
	fields := make([]string, len(items))
	for i, it := range items {
		fields[i] = it.Binding.Field
	}
	k.mu.Lock()
	k.decrypt = append(k.decrypt, fields)
	k.mu.Unlock()
	return k.Keyer.Decrypt(ctx, items)
}

// take returns the calls recorded so far and forgets them.
func (k *fieldKeyer) take() [][]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	d := k.decrypt
	k.decrypt = nil
	return d
}

// readLog wraps a Store and records which of its read and delete methods
// are called.
type readLog struct {
	Store
	mu    sync.Mutex
	calls []string
}

func (s *readLog) log(m string) {
	s.mu.Lock()
	s.calls = append(s.calls, m)
	s.mu.Unlock()
}

func (s *readLog) GetRecord(ctx context.Context, token string) ([]byte, error) {
	s.log("GetRecord")
	return s.Store.GetRecord(ctx, token)
}

func (s *readLog) Get(ctx context.Context, token string) (Entry, error) {
	s.log("Get")
	return s.Store.Get(ctx, token)
}

func (s *readLog) GetAndDeleteCVC(ctx context.Context, token string) (Entry, error) {
	s.log("GetAndDeleteCVC")
	return s.Store.GetAndDeleteCVC(ctx, token)
}

func (s *readLog) DeleteCVC(ctx context.Context, token string) error {
	s.log("DeleteCVC")
	return s.Store.DeleteCVC(ctx, token)
}

// take returns the calls recorded so far and forgets them.
func (s *readLog) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

func TestCVCStoreTTL(t *testing.T) {
	ctx := context.Background()
	s, srv := newTestRedis(t)
	keys, _ := newTestKeyring(t)
	v := newTestVault(t, s, keys, Options{CVCTTL: 90 * time.Second})
	info, err := v.Tokenize(ctx, testCards[0].input())
	if err != nil {
		t.Fatal(err)
	}
	ttl := srv.Client().PTTL(ctx, "cardgate:{"+info.Token+"}:cvc").Val()
	if ttl <= 80*time.Second || ttl > 90*time.Second {
		t.Errorf("CVC key TTL = %v, want Options.CVCTTL (90s)", ttl)
	}
}

func TestDetokenizeExpiredCard(t *testing.T) {
	ctx := context.Background()
	keys, _ := newTestKeyring(t)
	s := newTestBolt(t)
	now := testNow
	v := newTestVault(t, s, keys, Options{Now: func() time.Time { return now }})
	info, err := v.Tokenize(ctx, CardInput{Number: "4242424242424242", ExpMonth: 3, ExpYear: 2026, CVC: "123"})
	if err != nil {
		t.Fatal(err)
	}
	now = time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC)
	if _, err := v.Detokenize(ctx, info.Token); err != nil {
		t.Errorf("Detokenize on the last day of the expiry month = %v, want nil", err)
	}
	now = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	card, err := v.Detokenize(ctx, info.Token)
	if code(err) != CodeCardExpired || card != nil {
		t.Errorf("Detokenize after expiry = %v, %v; want %s", card, err, CodeCardExpired)
	}
}

// countingStore records whether Put was called.
type countingStore struct {
	Store
	puts int
}

func (s *countingStore) Put(ctx context.Context, token string, e Entry, ttl time.Duration) error {
	s.puts++
	return s.Store.Put(ctx, token, e, ttl)
}

func assertBoltEmpty(t *testing.T, s *BoltStore) {
	t.Helper()
	s.db.View(func(tx *bolt.Tx) error {
		for _, b := range []string{bucketCards, bucketCVCs, bucketCVCExpiry} {
			if n := tx.Bucket([]byte(b)).Stats().KeyN; n != 0 {
				t.Errorf("bucket %s holds %d keys, want 0", b, n)
			}
		}
		return nil
	})
}

// TestTokenizeAtomic: when any step fails, nothing is stored.
func TestTokenizeAtomic(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("backend down")
	tests := []struct {
		name  string
		keyer func(Keyer) Keyer
		code  string
	}{
		{"fingerprint fails", func(k Keyer) Keyer { return faultyKeyer{Keyer: k, fingerprintErr: boom} }, CodeKeyBackendUnavailable},
		{"seal fails", func(k Keyer) Keyer { return faultyKeyer{Keyer: k, encryptErr: boom} }, CodeKeyBackendUnavailable},
		{"seal returns too few blobs", func(k Keyer) Keyer { return shortKeyer{k} }, CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, _ := newTestKeyring(t)
			bs := newTestBolt(t)
			cs := &countingStore{Store: bs}
			v := newTestVault(t, cs, tt.keyer(keys), Options{})
			_, err := v.Tokenize(ctx, testCards[0].input())
			if code(err) != tt.code {
				t.Fatalf("Tokenize = %v, want %s", err, tt.code)
			}
			if cs.puts != 0 {
				t.Errorf("store Put called %d times after a key failure, want 0", cs.puts)
			}
			assertBoltEmpty(t, bs)
		})
	}

	t.Run("redis down", func(t *testing.T) {
		keys, _ := newTestKeyring(t)
		s, srv := newTestRedis(t)
		v := newTestVault(t, s, keys, Options{StoreTimeout: time.Second})
		srv.Stop()
		if _, err := v.Tokenize(ctx, testCards[0].input()); code(err) != CodeStoreUnavailable {
			t.Fatalf("Tokenize with Redis down = %v, want %s", err, CodeStoreUnavailable)
		}
		if _, err := v.Detokenize(ctx, newToken()); code(err) != CodeStoreUnavailable {
			t.Errorf("Detokenize with Redis down = %v, want %s", err, CodeStoreUnavailable)
		}
		if err := v.ConsumeCVC(ctx, newToken()); code(err) != CodeStoreUnavailable {
			t.Errorf("ConsumeCVC with Redis down = %v, want %s", err, CodeStoreUnavailable)
		}
		if err := v.Ping(ctx); code(err) != CodeStoreUnavailable {
			t.Errorf("Ping with Redis down = %v, want %s", err, CodeStoreUnavailable)
		}
	})
}

// shortKeyer returns one blob fewer than asked: a broken backend must not
// make Tokenize index past the end or store half a card.
type shortKeyer struct{ Keyer }

func (k shortKeyer) Encrypt(ctx context.Context, items []EncryptItem) ([]Sealed, error) {
	s, err := k.Keyer.Encrypt(ctx, items)
	return s[:len(s)-1], err
}

// TestTimeouts: a store or key backend that never answers costs at most
// its timeout, and the caller gets a typed 503-class error.
func TestTimeouts(t *testing.T) {
	ctx := context.Background()
	keys, _ := newTestKeyring(t)
	const limit = 50 * time.Millisecond
	tests := []struct {
		name string
		s    Store
		k    Keyer
		call func(v *Vault) error
		code string
	}{
		{"store put", blockingStore{}, keys, func(v *Vault) error { _, err := v.Tokenize(ctx, testCards[0].input()); return err }, CodeStoreUnavailable},
		{"store get", blockingStore{}, keys, func(v *Vault) error { _, err := v.Detokenize(ctx, newToken()); return err }, CodeStoreUnavailable},
		{"store delete", blockingStore{}, keys, func(v *Vault) error { return v.ConsumeCVC(ctx, newToken()) }, CodeStoreUnavailable},
		{"store ping", blockingStore{}, keys, func(v *Vault) error { return v.Ping(ctx) }, CodeStoreUnavailable},
		{"key fingerprint", newTestBolt(t), faultyKeyer{Keyer: keys, block: true}, func(v *Vault) error { _, err := v.Tokenize(ctx, testCards[0].input()); return err }, CodeKeyBackendUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVault(t, tt.s, tt.k, Options{StoreTimeout: limit, KeyTimeout: limit})
			start := time.Now()
			err := tt.call(v)
			if code(err) != tt.code || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error = %v, want %s wrapping context.DeadlineExceeded", err, tt.code)
			}
			// Generous bound: this checks that the timeout exists, not
			// how fast anything is.
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("call took %v with a %v timeout", d, limit)
			}
		})
	}

	t.Run("key decrypt", func(t *testing.T) {
		s := newTestBolt(t)
		info, err := newTestVault(t, s, keys, Options{}).Tokenize(ctx, testCards[0].input())
		if err != nil {
			t.Fatal(err)
		}
		v := newTestVault(t, s, faultyKeyer{Keyer: keys, block: true}, Options{KeyTimeout: limit})
		if _, err := v.Detokenize(ctx, info.Token); code(err) != CodeKeyBackendUnavailable || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Detokenize with a stuck key backend = %v, want %s", err, CodeKeyBackendUnavailable)
		}
	})

	t.Run("caller deadline wins", func(t *testing.T) {
		v := newTestVault(t, blockingStore{}, keys, Options{StoreTimeout: time.Hour})
		cctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		if _, err := v.Detokenize(cctx, newToken()); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Detokenize = %v, want the caller's deadline to apply", err)
		}
	})
}

func TestPing(t *testing.T) {
	ctx := context.Background()
	keys, _ := newTestKeyring(t)
	v := newTestVault(t, newTestBolt(t), keys, Options{})
	if err := v.Ping(ctx); err != nil {
		t.Fatalf("Ping = %v, want nil", err)
	}
	keys.Close()
	if err := v.Ping(ctx); code(err) != CodeKeyBackendUnavailable {
		t.Errorf("Ping with the keyring closed = %v, want %s", err, CodeKeyBackendUnavailable)
	}
}

func TestNewOptions(t *testing.T) {
	keys, _ := newTestKeyring(t)
	s := newTestBolt(t)
	v, err := New(s, keys, Options{})
	if err != nil {
		t.Fatalf("New(zero Options) = %v", err)
	}
	if v.cvcTTL != DefaultCVCTTL || v.storeTimeout != DefaultStoreTimeout || v.keyTimeout != DefaultKeyTimeout || v.now == nil || v.log == nil || v.tracer == nil {
		t.Errorf("zero Options did not get the defaults: %+v", v)
	}
	for name, o := range map[string]Options{
		"negative ttl":           {CVCTTL: -time.Second},
		"ttl too long":           {CVCTTL: MaxCVCTTL + time.Second},
		"ttl below a second":     {CVCTTL: time.Millisecond},
		"negative store timeout": {StoreTimeout: -1},
		"negative key timeout":   {KeyTimeout: -1},
	} {
		if _, err := New(s, keys, o); err == nil {
			t.Errorf("New(%s) = nil error", name)
		}
	}
	if _, err := New(nil, keys, Options{}); err == nil {
		t.Error("New(nil store) = nil error")
	}
	if _, err := New(s, nil, Options{}); err == nil {
		t.Error("New(nil keys) = nil error")
	}
}

// assertNoCardData fails if out holds any test card's number (whole, or
// all but the last four digits), CVC or name, as ASCII.
func assertNoCardData(t *testing.T, what string, out []byte, cards []testCard) {
	t.Helper()
	for _, c := range cards {
		for _, s := range []string{c.digits, c.number, c.digits[:len(c.digits)-4], c.cvc, "Jane Q. Cardholder"} {
			if bytes.Contains(out, []byte(s)) {
				t.Errorf("%s contains card data %q", what, s)
			}
		}
	}
}

// TestNoCleartextAtRest tokenizes every test card into both stores and
// reads back everything they hold: the Redis keyspace, an RDB snapshot,
// and the raw bolt file. None may contain a number, CVC or name.
//
// crypto/rand is made deterministic, so tokens, nonces and ciphertexts are
// the same on every run: a CVC's three digits cannot turn up in base64 by
// chance on one run and not the next.
func TestNoCleartextAtRest(t *testing.T) {
	ctx := context.Background()
	cryptotest.SetGlobalRandom(t, 1)
	keys, _ := newTestKeyring(t)

	redisStore, srv := newTestRedis(t)
	boltPath := filepath.Join(t.TempDir(), "cards.db")
	boltStore, err := OpenBoltStore(boltPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Store{redisStore, boltStore} {
		v := newTestVault(t, s, keys, Options{})
		for _, c := range testCards {
			info, err := v.Tokenize(ctx, c.input())
			if err != nil {
				t.Fatalf("Tokenize(%s): %v", c.name, err)
			}
			if _, err := v.Detokenize(ctx, info.Token); err != nil {
				t.Fatalf("Detokenize(%s): %v", c.name, err)
			}
		}
	}
	if err := boltStore.Close(); err != nil {
		t.Fatal(err)
	}
	boltFile, err := os.ReadFile(boltPath)
	if err != nil {
		t.Fatal(err)
	}
	dump := srv.Dump()
	if !bytes.Contains(dump, []byte(`"last4":"4242"`)) {
		t.Fatalf("Redis dump does not hold the records; dump:\n%s", dump)
	}
	assertNoCardData(t, "Redis keyspace dump", dump, testCards)
	assertNoCardData(t, "Redis RDB", srv.RDB(), testCards)
	assertNoCardData(t, "bolt file", boltFile, testCards)
}

// TestLogsHoldNoCardData runs every path that logs, at debug level, and
// checks the output.
func TestLogsHoldNoCardData(t *testing.T) {
	ctx := context.Background()
	// Deterministic tokens, and no timestamps: a three-digit CVC could
	// otherwise turn up in either by chance.
	cryptotest.SetGlobalRandom(t, 2)
	var logs bytes.Buffer
	log := testLogger(&logs)
	keys, _ := newTestKeyring(t)
	s := newTestBolt(t)
	v := newTestVault(t, s, keys, Options{Logger: log})
	for _, c := range testCards {
		info, err := v.Tokenize(ctx, c.input())
		if err != nil {
			t.Fatal(err)
		}
		card, err := v.Detokenize(ctx, info.Token)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("detokenized", "card", card) // what a careless caller might do
		ts := tamperStore{Store: s, mutate: editRecordFn(t, flipBlob("card", 20))}
		newTestVault(t, ts, keys, Options{Logger: log}).Detokenize(ctx, info.Token)
	}
	if !strings.Contains(logs.String(), "card tokenized") {
		t.Fatalf("debug logs missing; got: %s", logs.String())
	}
	assertNoCardData(t, "logs", logs.Bytes(), testCards)
}

// testLogger logs JSON at debug level without timestamps, whose digits
// could hold a three-digit CVC by chance and make a leak test flaky.
func testLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
}

func editRecordFn(t *testing.T, f func(map[string]any)) func(*Entry) {
	return func(e *Entry) { editRecord(f)(t, e) }
}

// recordingTP is a TracerProvider that records span names.
type recordingTP struct {
	noop.TracerProvider
	names *[]string
}

func (p recordingTP) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return recordingTracer{names: p.names}
}

type recordingTracer struct {
	noop.Tracer
	names *[]string
}

func (r recordingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	*r.names = append(*r.names, name)
	return noop.Tracer{}.Start(ctx, name, opts...)
}

func TestSpans(t *testing.T) {
	ctx := context.Background()
	var names []string
	keys, _ := newTestKeyring(t)
	v := newTestVault(t, newTestBolt(t), keys, Options{TracerProvider: recordingTP{names: &names}})
	info, err := v.Tokenize(ctx, testCards[0].input())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Detokenize(ctx, info.Token); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"vaultclient.Tokenize", "vaultclient.keys.Fingerprint", "vaultclient.keys.Encrypt", "vaultclient.store.Put",
		"vaultclient.Detokenize", "vaultclient.store.GetRecord", "vaultclient.keys.Decrypt",
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}
}

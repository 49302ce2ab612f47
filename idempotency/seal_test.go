package idempotency

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/redistest"
	"github.com/cardgate/cardgate/vaultclient"
)

// testKeyring opens a new development keyring in a temporary directory:
// a real key backend, as the gateway's dev mode uses.
func testKeyring(t *testing.T) (*vaultclient.LocalKeyring, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyring.json")
	if err := vaultclient.CreateLocalKeyring(path); err != nil {
		t.Fatal(err)
	}
	k, err := vaultclient.OpenLocalKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k, path
}

func dataKeys(t *testing.T, k vaultclient.Keyer) *vaultclient.DataKeys {
	t.Helper()
	dk, err := vaultclient.NewDataKeys(k, "idempotency-answers", 0)
	if err != nil {
		t.Fatal(err)
	}
	return dk
}

func testKeys(t *testing.T) KeyWrapper {
	k, _ := testKeyring(t)
	return dataKeys(t, k)
}

// flakyKeys fails Unwrap while down is set, as an unreachable backend.
type flakyKeys struct {
	KeyWrapper
	mu   sync.Mutex
	down bool
}

func (f *flakyKeys) Unwrap(ctx context.Context, w []byte) ([]byte, error) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return nil, errors.New("dial tcp 10.0.0.1:8200: connection refused")
	}
	return f.KeyWrapper.Unwrap(ctx, w)
}

const (
	sealPAN = "4242424242424242"
	sealCVC = "737"
	marker  = "processor-says-zq7-hello"
)

// answerWithSecrets is an answer as the forwarder stores it, made to
// hold, against the rules, a card, a CVC and a processor's words in
// several encodings: the test checks that none of them rests in Redis.
func answerWithSecrets() []byte {
	body := `{"number":"` + sealPAN + `","cvc":"` + sealCVC + `","note":"` + marker + `"}`
	return []byte(`{"response":{"status":200,"body":` + quote(body) + `,"headers":{"X-Echo":["` +
		base64.StdEncoding.EncodeToString([]byte(body)) + `"],"X-Hex":["` + hex.EncodeToString([]byte(sealPAN)) + `"]}}}`)
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// plainForms are what must not appear anywhere in Redis.
func plainForms() map[string]string {
	forms := map[string]string{
		"card": sealPAN, "card hex": hex.EncodeToString([]byte(sealPAN)),
		"cvc": `"` + sealCVC + `"`, "marker": marker, "marker hex": hex.EncodeToString([]byte(marker)),
	}
	for a := range 3 {
		for name, v := range map[string]string{"card": sealPAN, "marker": marker} {
			enc := base64.StdEncoding.EncodeToString(append(make([]byte, a), v...))
			forms[name+" base64"+string(rune('0'+a))] = enc[(8*a+5)/6 : 8*(a+len(v))/6]
		}
	}
	return forms
}

// TestSealedAtRest: after an answer is stored, nothing in Redis (every
// key's value by type, and the RDB file a backup would hold) holds the
// card, the CVC or the processor's words, in clear or encoded; and the
// answer comes back whole on replay.
func TestSealedAtRest(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s := newStore(t, srv, RedisOptions{})
	answer := answerWithSecrets()
	if _, err := s.Claim(ctx, "caller-a", "k1", "fp", "o1"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSending(ctx, "caller-a", "k1", "o1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, "caller-a", "k1", "o1", answer); err != nil {
		t.Fatal(err)
	}
	for where, data := range map[string][]byte{"dump": srv.Dump(), "rdb": srv.RDB()} {
		if !bytes.Contains(data, []byte("test:idem:")) {
			t.Fatalf("%s holds no idempotency key; the scan would prove nothing", where)
		}
		for name, f := range plainForms() {
			if bytes.Contains(data, []byte(f)) {
				t.Errorf("Redis %s holds the %s (%q)", where, name, f)
			}
		}
	}
	got, err := s.Claim(ctx, "caller-a", "k1", "fp", "o2")
	if err != nil || !bytes.Equal(got, answer) {
		t.Fatalf("replay = %q, %v; want the answer", got, err)
	}
}

// storedAnswer returns the Redis key and the sealed answer of (scope,
// key) after one complete forward.
func storedAnswer(t *testing.T, srv *redistest.Server, s *RedisStore, scope, key string) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Claim(ctx, scope, key, "fp", "o1"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSending(ctx, scope, key, "o1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, scope, key, "o1", []byte(`{"response":{"status":200,"body":"`+marker+`"}}`)); err != nil {
		t.Fatal(err)
	}
	rk := s.key(scope, key)
	blob, err := srv.Client().HGet(ctx, rk, "answer").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return rk, blob
}

// TestSealTamper: a stored answer altered anywhere is refused as
// idempotency_outcome_unknown with ErrSealBroken, never replayed and
// never taken as a free key.
func TestSealTamper(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s := newStore(t, srv, RedisOptions{})
	rk, blob := storedAnswer(t, srv, s, "caller-a", "k1")
	n := int(blob[1])<<8 | int(blob[2])
	flip := func(i int) func([]byte) []byte {
		return func(b []byte) []byte { b = bytes.Clone(b); b[i] ^= 1; return b }
	}
	tests := []struct {
		name string
		edit func([]byte) []byte
	}{
		{"format", flip(0)},
		{"wrapped key length", flip(2)},
		{"wrapped key", flip(3 + n/2)},
		{"nonce", flip(3 + n + 1)},
		{"ciphertext", flip(3 + n + nonceSize + 1)},
		{"tag", flip(len(blob) - 1)},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"empty wrapped key", func(b []byte) []byte { return append([]byte{sealFormat, 0, 0}, b[3+n:]...) }},
		{"plaintext", func([]byte) []byte { return []byte(`{"response":{"status":200,"body":"forged"}}`) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := srv.Client().HSet(ctx, rk, "answer", tt.edit(blob)).Err(); err != nil {
				t.Fatal(err)
			}
			got, err := s.Claim(ctx, "caller-a", "k1", "fp", "o2")
			if code(err) != CodeOutcomeUnknown || !errors.Is(err, ErrSealBroken) || got != nil {
				t.Errorf("Claim of a tampered answer = %q, %v; want %s with ErrSealBroken", got, err, CodeOutcomeUnknown)
			}
		})
	}
}

// TestSealBinding: an answer sealed for caller A and key k1, copied in
// Redis to where caller B's k1 (or A's k2) lives, does not open there.
func TestSealBinding(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s := newStore(t, srv, RedisOptions{})
	rk, _ := storedAnswer(t, srv, s, "caller-a", "k1")
	rec, err := srv.Client().HGetAll(ctx, rk).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []struct{ scope, key string }{{"caller-b", "k1"}, {"caller-a", "k2"}} {
		if err := srv.Client().HSet(ctx, s.key(to.scope, to.key), rec).Err(); err != nil {
			t.Fatal(err)
		}
		got, err := s.Claim(ctx, to.scope, to.key, "fp", "o2")
		if code(err) != CodeOutcomeUnknown || !errors.Is(err, ErrSealBroken) || got != nil {
			t.Errorf("Claim(%s, %s) of A's answer = %q, %v; want %s with ErrSealBroken", to.scope, to.key, got, err, CodeOutcomeUnknown)
		}
	}
	if got, err := s.Claim(ctx, "caller-a", "k1", "fp", "o3"); err != nil || !bytes.Contains(got, []byte(marker)) {
		t.Errorf("Claim(caller-a, k1) = %q, %v; want the answer", got, err)
	}
}

// TestSealKeyBackend: a replica that has not seen a data key unwraps it
// once and caches it; while the backend is down it answers
// idempotency_unavailable (nothing sent, retry), and the answer is there
// again when the backend is back.
func TestSealKeyBackend(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	k, _ := testKeyring(t)
	a := newStore(t, srv, RedisOptions{Keys: dataKeys(t, k)})
	storedAnswer(t, srv, a, "caller-a", "k1")
	fk := &flakyKeys{KeyWrapper: dataKeys(t, k), down: true}
	b := newStore(t, srv, RedisOptions{Keys: fk})
	if got, err := b.Claim(ctx, "caller-a", "k1", "fp", "o2"); code(err) != CodeUnavailable || got != nil {
		t.Fatalf("Claim with the key backend down = %q, %v; want %s", got, err, CodeUnavailable)
	}
	fk.mu.Lock()
	fk.down = false
	fk.mu.Unlock()
	for i := range 3 {
		if got, err := b.Claim(ctx, "caller-a", "k1", "fp", "o2"); err != nil || !bytes.Contains(got, []byte(marker)) {
			t.Fatalf("Claim %d = %q, %v; want the answer", i, got, err)
		}
	}
	if b.seal.unwraps != 2 { // the failed attempt and one success
		t.Errorf("replica unwrapped %d times, want 2 (then cached)", b.seal.unwraps)
	}
	if a.seal.unwraps != 0 || a.seal.wraps != 1 {
		t.Errorf("sealing replica: %d wraps, %d unwraps; want 1, 0", a.seal.wraps, a.seal.unwraps)
	}
}

// TestSealRotation: a data key seals for its lifetime, then a new one is
// made; answers under the old key still open. After the key-encryption
// key that wrapped a data key is retired, its answers are lost for good:
// idempotency_outcome_unknown, never a second send.
func TestSealRotation(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	k, path := testKeyring(t)
	s := newStore(t, srv, RedisOptions{Keys: dataKeys(t, k)})
	now := time.Now()
	s.seal.now = func() time.Time { return now }
	storedAnswer(t, srv, s, "caller", "old")
	storedAnswer(t, srv, s, "caller", "same-key")
	if s.seal.wraps != 1 {
		t.Fatalf("%d wraps within one lifetime, want 1", s.seal.wraps)
	}
	now = now.Add(DefaultDataKeyLifetime + time.Second)
	storedAnswer(t, srv, s, "caller", "new")
	if s.seal.wraps != 2 {
		t.Fatalf("%d wraps after the lifetime, want 2", s.seal.wraps)
	}
	if got, err := s.Claim(ctx, "caller", "old", "fp", "o2"); err != nil || !bytes.Contains(got, []byte(marker)) {
		t.Fatalf("Claim(old) = %q, %v; want the answer", got, err)
	}

	// Rotate and retire the keyring's version 1; a fresh replica (no cache)
	// meets the answers wrapped under it.
	if _, err := vaultclient.RotateLocalKeyring(path); err != nil {
		t.Fatal(err)
	}
	if _, err := vaultclient.RetireLocalKeyring(path, 2); err != nil {
		t.Fatal(err)
	}
	k2, err := vaultclient.OpenLocalKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	defer k2.Close()
	fresh := newStore(t, srv, RedisOptions{Keys: dataKeys(t, k2)})
	if got, err := fresh.Claim(ctx, "caller", "old", "fp", "o3"); code(err) != CodeOutcomeUnknown || !errors.Is(err, ErrSealBroken) || got != nil {
		t.Errorf("Claim under a retired key = %q, %v; want %s with ErrSealBroken", got, err, CodeOutcomeUnknown)
	}
}

// TestNoKeysRefused: a store without a key wrapper would keep answers in
// the clear, so it is not built.
func TestNoKeysRefused(t *testing.T) {
	srv := redistest.Start(t)
	if _, err := NewRedisStore(RedisOptions{Client: srv.Client()}); err == nil {
		t.Fatal("NewRedisStore without Keys succeeded")
	}
}

// TestErrorTextHasNoCause: the text of an Error, which reaches logs,
// names the code, the message and the class of the cause, never the
// cause's own text.
func TestErrorTextHasNoCause(t *testing.T) {
	secret := "4242424242424242 cvc=737 exp=11/2031"
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"store error", unavailable("claim", errors.New(secret)), "idempotency: idempotency_unavailable: the idempotency store is unavailable; nothing was sent (claim: store error)"},
		{"seal broken", &Error{Code: CodeOutcomeUnknown, Message: outcomeUnknownMessage, Err: errors.Join(ErrSealBroken, errors.New(secret)), op: "open answer"},
			"idempotency: idempotency_outcome_unknown: " + outcomeUnknownMessage + " (open answer: stored answer does not open)"},
		{"key backend", unavailable("seal answer", errors.Join(errKeyBackend, errors.New(secret))), "idempotency: idempotency_unavailable: the idempotency store is unavailable; nothing was sent (seal answer: key backend unavailable)"},
		{"timeout", unavailable("complete", context.DeadlineExceeded), "idempotency: idempotency_unavailable: the idempotency store is unavailable; nothing was sent (complete: timeout)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	// A real failure: Redis down.
	srv := redistest.Start(t)
	s := newStore(t, srv, RedisOptions{Timeout: 300 * time.Millisecond})
	srv.Stop()
	_, err := s.Claim(context.Background(), "caller", "k", "fp", "a")
	if msg := err.Error(); strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "dial") {
		t.Errorf("Error() = %q quotes its cause", msg)
	}
}

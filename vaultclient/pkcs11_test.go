//go:build cgo

package vaultclient

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"
)

// softhsmLibraries are where distributions install SoftHSM2's module.
var softhsmLibraries = []string{
	"/usr/lib/softhsm/libsofthsm2.so",                   // Debian, Ubuntu
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",  // older Ubuntu
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", // arm64
	"/usr/lib64/pkcs11/libsofthsm2.so",                  // Fedora
	"/usr/local/lib/softhsm/libsofthsm2.so",             // source builds
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",          // macOS
}

const (
	testTokenLabel = "cardgate-test"
	testTokenPIN   = "1234"
)

// newSoftHSM initialises a fresh SoftHSM2 token labelled
// testTokenLabel in t.TempDir() and points this test process at it with
// SOFTHSM2_CONF. SoftHSM2 reads that variable when the module is
// initialised, and crypto11 shares one initialised module per library path
// until the last context closes, so tests that use it must close every
// backend before they end (the helpers do, in t.Cleanup) and must not run
// in parallel (t.Setenv enforces that). A missing SoftHSM2 fails the test:
// a green run always means the HSM paths ran.
func newSoftHSM(t testing.TB) PKCS11Config {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	lib := ""
	for _, l := range softhsmLibraries {
		if _, err := os.Stat(l); err == nil {
			lib = l
			break
		}
	}
	if err != nil || lib == "" {
		t.Fatalf("SoftHSM2 is not installed; the PKCS#11 backend is tested against a real SoftHSM2 token. " +
			"Install it (Debian/Ubuntu: apt-get install softhsm2; Fedora: dnf install softhsm; macOS: brew install softhsm), " +
			"or run ./scripts/test, which installs it")
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command(util, "--init-token", "--free", "--label", testTokenLabel,
		"--so-pin", "87654321", "--pin", testTokenPIN).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return PKCS11Config{Library: lib, TokenLabel: testTokenLabel, PIN: testTokenPIN}
}

// newTestPKCS11 initialises a token, creates the keys and opens the
// backend.
func newTestPKCS11(t testing.TB) (*PKCS11, PKCS11Config) {
	t.Helper()
	cfg := newSoftHSM(t)
	ctx := context.Background()
	if _, err := InitPKCS11(ctx, cfg); err != nil {
		t.Fatalf("InitPKCS11: %v", err)
	}
	return openTestPKCS11(t, cfg), cfg
}

func openTestPKCS11(t testing.TB, cfg PKCS11Config) *PKCS11 {
	t.Helper()
	p, err := OpenPKCS11(context.Background(), cfg)
	if err != nil {
		t.Fatalf("OpenPKCS11: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPKCS11Contract(t *testing.T) {
	p, _ := newTestPKCS11(t)
	testKeyer(t, p, func(t *testing.T) Keyer {
		if _, err := p.Rotate(context.Background()); err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		return p
	})
}

func TestPKCS11Vault(t *testing.T) {
	ctx := context.Background()
	p, _ := newTestPKCS11(t)
	v := newTestVault(t, newTestBolt(t), p, Options{})
	for _, tc := range testCards[:3] {
		info, err := v.Tokenize(ctx, tc.input())
		if err != nil {
			t.Fatalf("Tokenize: %v", err)
		}
		card, err := v.DetokenizeConsumingCVC(ctx, info.Token)
		if err != nil {
			t.Fatalf("DetokenizeConsumingCVC: %v", err)
		}
		if card.Number.Reveal() != tc.digits || card.CVC.Reveal() != tc.cvc {
			t.Errorf("DetokenizeConsumingCVC(%s) gave another card", tc.name)
		}
	}
}

func TestInitPKCS11Idempotent(t *testing.T) {
	ctx := context.Background()
	cfg := newSoftHSM(t)
	created, err := InitPKCS11(ctx, cfg)
	if err != nil {
		t.Fatalf("InitPKCS11: %v", err)
	}
	want := []string{"cardgate-fingerprint-v1", "cardgate-card-v1"}
	if strings.Join(created, ",") != strings.Join(want, ",") {
		t.Errorf("InitPKCS11 created %q, want %q", created, want)
	}
	created, err = InitPKCS11(ctx, cfg)
	if err != nil || len(created) != 0 {
		t.Errorf("InitPKCS11 again = %q, %v; want nothing created", created, err)
	}
}

// TestPKCS11KeysStayInTheHSM reads the keys' attributes back from the
// token and tries to read their values.
func TestPKCS11KeysStayInTheHSM(t *testing.T) {
	p, _ := newTestPKCS11(t)
	for _, label := range []string{"cardgate-card-v1", "cardgate-fingerprint-v1"} {
		keys, err := p.hsm.FindKeys(nil, []byte(label))
		if err != nil || len(keys) != 1 {
			t.Fatalf("FindKeys(%s) = %d keys, %v", label, len(keys), err)
		}
		attrs, err := p.hsm.GetAttributes(keys[0], []crypto11.AttributeType{
			crypto11.CkaSensitive, crypto11.CkaExtractable, crypto11.CkaAlwaysSensitive,
			crypto11.CkaNeverExtractable, crypto11.CkaToken, crypto11.CkaPrivate, crypto11.CkaWrap,
		})
		if err != nil {
			t.Fatalf("GetAttributes(%s): %v", label, err)
		}
		want := map[crypto11.AttributeType]byte{
			crypto11.CkaSensitive: 1, crypto11.CkaExtractable: 0, crypto11.CkaAlwaysSensitive: 1,
			crypto11.CkaNeverExtractable: 1, crypto11.CkaToken: 1, crypto11.CkaPrivate: 1, crypto11.CkaWrap: 0,
		}
		for a, w := range want {
			if got := attrs[a]; got == nil || len(got.Value) != 1 || got.Value[0] != w {
				t.Errorf("%s attribute %#x = %v, want %d", label, a, got, w)
			}
		}
		if _, err := p.hsm.GetAttribute(keys[0], crypto11.CkaValue); err == nil {
			t.Errorf("reading CKA_VALUE of %s succeeded; the key must not leave the HSM", label)
		}
	}
}

func TestPKCS11RefusesExtractableKey(t *testing.T) {
	ctx := context.Background()
	p, cfg := newTestPKCS11(t)
	// A key made by another tool with weaker defaults, under the next
	// version's label.
	attrs, _ := crypto11.NewAttributeSetWithIDAndLabel([]byte("x"), []byte("cardgate-card-v2"))
	attrs.Set(crypto11.CkaExtractable, true)
	attrs.Set(crypto11.CkaSensitive, false)
	if _, err := p.hsm.GenerateSecretKeyWithAttributes(attrs, 256, crypto11.CipherAES); err != nil {
		t.Fatalf("generate an extractable key: %v", err)
	}
	_, err := OpenPKCS11(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "cannot leave the HSM") {
		t.Errorf("OpenPKCS11 with an extractable primary = %v, want a refusal", err)
	}
	cfg.PrimaryVersion = 1
	q := openTestPKCS11(t, cfg)
	_, err = q.Decrypt(ctx, []DecryptItem{{Binding: Binding{Token: "tok_x", Field: FieldCard},
		Sealed: Sealed{Key: KeyID{Backend: PKCS11Backend, Name: DefaultPKCS11KeyLabel, Version: 2}, Blob: make([]byte, 40)}}})
	if err == nil || !strings.Contains(err.Error(), "cannot leave the HSM") {
		t.Errorf("Decrypt under an extractable version = %v, want a refusal", err)
	}
}

func TestOpenPKCS11Errors(t *testing.T) {
	ctx := context.Background()
	cfg := newSoftHSM(t)
	tests := []struct {
		name   string
		mutate func(*PKCS11Config)
		want   string
	}{
		{"no keys yet", func(*PKCS11Config) {}, "keys init"},
		{"unknown token label", func(c *PKCS11Config) { c.TokenLabel = "no-such-token" }, "no-such-token"},
		{"wrong pin", func(c *PKCS11Config) { c.PIN = "0000" }, "CKR_PIN_INCORRECT"},
		{"no library", func(c *PKCS11Config) { c.Library = "/nonexistent/libpkcs11.so" }, "pkcs11"},
		{"no token label", func(c *PKCS11Config) { c.TokenLabel = "" }, "token label is required"},
		{"same labels", func(c *PKCS11Config) { c.FingerprintLabel = DefaultPKCS11KeyLabel }, "must differ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			tt.mutate(&c)
			p, err := OpenPKCS11(ctx, c)
			if err == nil {
				p.Close()
				t.Fatalf("OpenPKCS11 = nil, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenPKCS11 = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), c.PIN) && c.PIN != "" {
				t.Errorf("OpenPKCS11 error %q holds the PIN", err)
			}
		})
	}
}

// TestPKCS11Retire covers both ways to retire a version: MinVersion in
// the configuration, and destroying the key object.
func TestPKCS11Retire(t *testing.T) {
	ctx := context.Background()
	p, cfg := newTestPKCS11(t)
	s := newTestBolt(t)
	v := newTestVault(t, s, p, Options{})
	old, err := v.Tokenize(ctx, testCards[0].input())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	fresh, err := v.Tokenize(ctx, testCards[1].input())
	if err != nil {
		t.Fatal(err)
	}

	cfg.MinVersion = 2
	q := openTestPKCS11(t, cfg)
	if got := mustPrimary(t, q); got.Version != 2 {
		t.Errorf("primary with min version 2 = %d, want 2", got.Version)
	}
	vq := newTestVault(t, s, q, Options{})
	if _, err := vq.Detokenize(ctx, old.Token); code(err) != CodeKeyRetired {
		t.Errorf("Detokenize(v1 record) with min_version 2 = %v, want %s", err, CodeKeyRetired)
	}
	if _, err := vq.Detokenize(ctx, fresh.Token); err != nil {
		t.Errorf("Detokenize(v2 record) with min_version 2 = %v", err)
	}

	if _, err := p.DestroyBelow(ctx, 3); err == nil {
		t.Error("DestroyBelow(3) with primary 2 = nil, want a refusal")
	}
	destroyed, err := p.DestroyBelow(ctx, 2)
	if err != nil || len(destroyed) != 1 || destroyed[0] != 1 {
		t.Fatalf("DestroyBelow(2) = %v, %v; want [1]", destroyed, err)
	}
	if _, err := v.Detokenize(ctx, old.Token); code(err) != CodeKeyRetired {
		t.Errorf("Detokenize(v1 record) after destroying v1 = %v, want %s", err, CodeKeyRetired)
	}
	if vs, _ := p.Versions(ctx); len(vs) != 1 || vs[0] != 2 {
		t.Errorf("Versions after destroying v1 = %v, want [2]", vs)
	}
}

// TestPKCS11PinnedPrimary: with PrimaryVersion set, a new version on the
// token opens but does not seal until the pin moves.
func TestPKCS11PinnedPrimary(t *testing.T) {
	ctx := context.Background()
	p, cfg := newTestPKCS11(t)
	if _, err := p.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.PrimaryVersion = 1
	q := openTestPKCS11(t, cfg)
	if got := mustPrimary(t, q); got.Version != 1 {
		t.Errorf("pinned primary = %d, want 1", got.Version)
	}
	cfg.PrimaryVersion = 7
	if _, err := OpenPKCS11(ctx, cfg); !errors.Is(err, ErrKeyRetired) {
		t.Errorf("OpenPKCS11 pinned to a missing version = %v, want ErrKeyRetired", err)
	}
}

// TestPKCS11Timeout holds every session slot, as a hung HSM would, and
// checks that calls fail within the timeout with a typed 503.
func TestPKCS11Timeout(t *testing.T) {
	ctx := context.Background()
	cfg := newSoftHSM(t)
	if _, err := InitPKCS11(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 50 * time.Millisecond
	cfg.MaxSessions = 2
	p := openTestPKCS11(t, cfg)
	v := newTestVault(t, newTestBolt(t), p, Options{})
	info, err := v.Tokenize(ctx, testCards[0].input())
	if err != nil {
		t.Fatal(err)
	}
	for range cap(p.sem) {
		p.sem <- struct{}{}
	}
	start := time.Now()
	_, err = v.Tokenize(ctx, testCards[0].input())
	if code(err) != CodeKeyBackendUnavailable || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Tokenize with a hung HSM = %v, want %s", err, CodeKeyBackendUnavailable)
	}
	if _, err := v.Detokenize(ctx, info.Token); code(err) != CodeKeyBackendUnavailable {
		t.Errorf("Detokenize with a hung HSM = %v, want %s", err, CodeKeyBackendUnavailable)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("two calls against a hung HSM took %v; the timeout is %v", d, cfg.Timeout)
	}
	for range cap(p.sem) {
		<-p.sem
	}
	if _, err := v.Detokenize(ctx, info.Token); err != nil {
		t.Errorf("Detokenize after the HSM recovered = %v", err)
	}
}

// TestPKCS11PanicBecomesError closes crypto11's context under the
// backend: crypto11 then panics in Seal and in the HMAC's Sum.
func TestPKCS11PanicBecomesError(t *testing.T) {
	ctx := context.Background()
	p, _ := newTestPKCS11(t)
	v := newTestVault(t, newTestBolt(t), p, Options{})
	if err := p.hsm.Close(); err != nil {
		t.Fatal(err)
	}
	// The backend's own Close would close crypto11's context again.
	defer func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
	}()
	item := []EncryptItem{{Binding: Binding{Token: "tok_x", Field: FieldCard}, Plaintext: []byte("x")}}
	if _, err := p.Encrypt(ctx, item); err == nil || !strings.Contains(err.Error(), "hsm call failed") {
		t.Errorf("Encrypt on a closed crypto11 context = %v, want a recovered panic", err)
	}
	if _, err := v.Tokenize(ctx, testCards[0].input()); code(err) != CodeKeyBackendUnavailable {
		t.Errorf("Tokenize on a closed crypto11 context = %v, want %s", err, CodeKeyBackendUnavailable)
	}
}

func TestPKCS11Closed(t *testing.T) {
	ctx := context.Background()
	p, _ := newTestPKCS11(t)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := p.Encrypt(ctx, nil); err == nil {
		t.Error("Encrypt after Close = nil")
	}
	if _, _, err := p.Fingerprint(ctx, []byte("4242424242424242")); err == nil {
		t.Error("Fingerprint after Close = nil")
	}
	if err := p.Ping(ctx); err == nil {
		t.Error("Ping after Close = nil")
	}
}

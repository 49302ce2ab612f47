package vaultclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/testpki"
)

// newTestTransit starts a stand-in, creates the keys as an operator
// would (root token, InitKeys) and opens the gateway's backend with
// AppRole.
func newTestTransit(t testing.TB) (*Transit, *Transit, *vaultStandIn) {
	t.Helper()
	sv := newVaultStandIn(t)
	admin := openTestTransit(t, sv.adminConfig(t))
	if _, err := admin.InitKeys(context.Background()); err != nil {
		t.Fatalf("InitKeys: %v", err)
	}
	return openTestTransit(t, sv.config(t)), admin, sv
}

func (v *vaultStandIn) adminConfig(t testing.TB) TransitConfig {
	c := v.config(t)
	c.Auth = TransitAuth{Method: TransitAuthToken, Token: v.rootToken()}
	return c
}

func openTestTransit(t testing.TB, cfg TransitConfig) *Transit {
	t.Helper()
	tr, err := OpenTransit(context.Background(), cfg)
	if err != nil {
		t.Fatalf("OpenTransit: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func TestTransitContract(t *testing.T) {
	gw, admin, _ := newTestTransit(t)
	testKeyer(t, gw, func(t *testing.T) Keyer {
		if _, err := admin.Rotate(context.Background()); err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		return gw
	})
}

// TestTransitOneRoundTripPerForward: a detokenize with a CVC is one
// transit/decrypt request, and the records hold Vault's ciphertext
// verbatim.
func TestTransitOneRoundTripPerForward(t *testing.T) {
	ctx := context.Background()
	gw, _, sv := newTestTransit(t)
	s := newTestBolt(t)
	v := newTestVault(t, s, gw, Options{})
	info, err := v.Tokenize(ctx, testCards[0].input())
	if err != nil {
		t.Fatalf("Tokenize: %v", err)
	}
	if n := sv.count("transit/encrypt/cardgate-card"); n != 1 {
		t.Errorf("Tokenize made %d encrypt requests, want 1 batch for card and CVC", n)
	}
	before := sv.count("transit/decrypt/cardgate-card")
	card, err := v.DetokenizeConsumingCVC(ctx, info.Token)
	if err != nil || card.CVC.Reveal() != testCards[0].cvc {
		t.Fatalf("DetokenizeConsumingCVC = %v, or the CVC is missing", err)
	}
	if n := sv.count("transit/decrypt/cardgate-card") - before; n != 1 {
		t.Errorf("DetokenizeConsumingCVC made %d decrypt requests, want 1 batch for card and CVC", n)
	}
	e, _ := s.Get(ctx, info.Token)
	rec, _ := decodeCardRecord(e.Record)
	if !bytes.HasPrefix(rec.Card, []byte("vault:v1:")) || rec.Key != (KeyID{Backend: TransitBackend, Name: "cardgate-card", Version: 1}) {
		t.Errorf("record key %+v, blob prefix %.9q; want Vault's ciphertext verbatim under transit/cardgate-card v1", rec.Key, rec.Card)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(string(rec.Card), "vault:v1:"))
	if len(raw) != 12+len(encodeCardPayload(&validCard{number: []byte(testCards[0].digits), name: "Jane Q. Cardholder", expMonth: 12, expYear: 2030}))+16 {
		t.Errorf("ciphertext body is %d bytes, want nonce ‖ ciphertext ‖ tag", len(raw))
	}
}

// TestTransitRequestShape checks what goes over the wire: batch_input,
// the binding as the derivation context, and never associated_data.
func TestTransitRequestShape(t *testing.T) {
	gw, _, sv := newTestTransit(t)
	b := Binding{Token: "tok_abcdefghijklmnopqrstuvwxyz234567", Field: FieldCard}
	if _, err := gw.Encrypt(context.Background(), []EncryptItem{{Binding: b, Plaintext: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	sv.mu.Lock()
	body := sv.lastBody["transit/encrypt/cardgate-card"]
	sv.mu.Unlock()
	var req struct {
		BatchInput []map[string]any `json:"batch_input"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.BatchInput) != 1 {
		t.Fatalf("encrypt body is not one batch_input item: %v", err)
	}
	item := req.BatchInput[0]
	if item["context"] != base64.StdEncoding.EncodeToString(b.Bytes()) {
		t.Errorf("context = %v, want base64 of the binding", item["context"])
	}
	if _, ok := item["associated_data"]; ok {
		t.Error("encrypt sends associated_data; rewrap would ignore it")
	}
}

func TestTransitFailures(t *testing.T) {
	ctx := context.Background()
	gw, admin, sv := newTestTransit(t)
	v := newTestVault(t, newTestBolt(t), gw, Options{})
	info, err := v.Tokenize(ctx, testCards[0].input())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("one 5xx is retried", func(t *testing.T) {
		sv.set(func(v *vaultStandIn) { v.fail5xx, v.failPath = 1, "transit/decrypt/cardgate-card" })
		before := sv.count("transit/decrypt/cardgate-card")
		if _, err := v.Detokenize(ctx, info.Token); err != nil {
			t.Errorf("Detokenize after one 500 = %v, want a retried success", err)
		}
		if n := sv.count("transit/decrypt/cardgate-card") - before; n != 2 {
			t.Errorf("decrypt requests = %d, want 2 (one retry)", n)
		}
	})
	t.Run("5xx beyond the retries", func(t *testing.T) {
		sv.set(func(v *vaultStandIn) { v.fail5xx, v.failPath = 10, "transit/decrypt/cardgate-card" })
		defer sv.set(func(v *vaultStandIn) { v.fail5xx = 0 })
		_, err := v.Detokenize(ctx, info.Token)
		if code(err) != CodeKeyBackendUnavailable || !strings.Contains(err.Error(), "status 500") {
			t.Errorf("Detokenize against a failing Vault = %v, want %s naming status 500", err, CodeKeyBackendUnavailable)
		}
	})
	t.Run("sealed", func(t *testing.T) {
		sv.set(func(v *vaultStandIn) { v.sealed = true })
		defer sv.set(func(v *vaultStandIn) { v.sealed = false })
		_, err := v.Tokenize(ctx, testCards[1].input())
		if code(err) != CodeKeyBackendUnavailable || !strings.Contains(err.Error(), "sealed") {
			t.Errorf("Tokenize against a sealed Vault = %v, want %s", err, CodeKeyBackendUnavailable)
		}
		if err := v.Ping(ctx); code(err) != CodeKeyBackendUnavailable {
			t.Errorf("Ping against a sealed Vault = %v, want %s", err, CodeKeyBackendUnavailable)
		}
	})
	t.Run("slow", func(t *testing.T) {
		sv.set(func(v *vaultStandIn) { v.delay = time.Second })
		defer sv.set(func(v *vaultStandIn) { v.delay = 0 })
		fast := newTestVault(t, newTestBolt(t), gw, Options{KeyTimeout: 100 * time.Millisecond})
		start := time.Now()
		_, err := fast.Tokenize(ctx, testCards[1].input())
		if code(err) != CodeKeyBackendUnavailable || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Tokenize against a slow Vault = %v, want %s from the deadline", err, CodeKeyBackendUnavailable)
		}
		if d := time.Since(start); d > 800*time.Millisecond {
			t.Errorf("Tokenize against a slow Vault took %v; the key timeout is 100ms", d)
		}
	})
	t.Run("permission denied", func(t *testing.T) {
		sv.set(func(v *vaultStandIn) { v.readOnly = true })
		defer sv.set(func(v *vaultStandIn) { v.readOnly = false })
		_, err := gw.Primary(ctx)
		if err == nil || !strings.Contains(err.Error(), "status 403 (permission denied") {
			t.Errorf("Primary without read on the key = %v, want a 403 naming the policy", err)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		cfg := sv.config(t)
		cfg.Key = "no-such-key"
		other := openTestTransit(t, cfg)
		_, err := other.Encrypt(ctx, []EncryptItem{{Binding: Binding{Token: "tok_a", Field: FieldCard}, Plaintext: []byte("x")}})
		if err == nil || errors.Is(err, ErrIntegrity) {
			t.Errorf("Encrypt under a missing key = %v, want an unavailable error", err)
		}
	})
	t.Run("record names another version", func(t *testing.T) {
		tv := newTestVault(t, tamperStore{Store: v.store, mutate: editRecordFn(t, func(r map[string]any) {
			r["key"].(map[string]any)["version"] = 2
		})}, gw, Options{})
		if _, err := tv.Detokenize(ctx, info.Token); code(err) != CodeRecordCorrupt {
			t.Errorf("Detokenize with the record's version edited = %v, want %s", err, CodeRecordCorrupt)
		}
	})
	t.Run("retired", func(t *testing.T) {
		if _, err := admin.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := admin.SetMinDecryptionVersion(ctx, 2); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Detokenize(ctx, info.Token); code(err) != CodeKeyRetired {
			t.Errorf("Detokenize(v1 record) after min_decryption_version 2 = %v, want %s", err, CodeKeyRetired)
		}
		fresh, err := v.Tokenize(ctx, testCards[2].input())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Detokenize(ctx, fresh.Token); err != nil {
			t.Errorf("Detokenize(v2 record) = %v", err)
		}
	})
}

// TestTransitRotateIsNotRetried: a rotate whose answer is a 500 may have
// happened; retrying it could add a second version.
func TestTransitRotateIsNotRetried(t *testing.T) {
	_, admin, sv := newTestTransit(t)
	sv.set(func(v *vaultStandIn) { v.fail5xx, v.failPath = 1, "transit/keys/cardgate-card/rotate" })
	if _, err := admin.Rotate(context.Background()); err == nil {
		t.Error("Rotate answered 500 = nil, want the error")
	}
	if n := sv.count("transit/keys/cardgate-card/rotate"); n != 1 {
		t.Errorf("rotate requests = %d, want 1", n)
	}
}

func TestTransitBatchWithoutReferenceEcho(t *testing.T) {
	gw, _, sv := newTestTransit(t)
	sv.set(func(v *vaultStandIn) { v.noRefEcho = true })
	v := newTestVault(t, newTestBolt(t), gw, Options{})
	info, err := v.Tokenize(context.Background(), testCards[0].input())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Detokenize(context.Background(), info.Token); err != nil {
		t.Errorf("Detokenize against a Vault that does not echo references = %v", err)
	}
}

func TestTransitAuth(t *testing.T) {
	ctx := context.Background()
	sv := newVaultStandIn(t)
	admin := openTestTransit(t, sv.adminConfig(t))
	if _, err := admin.InitKeys(ctx); err != nil {
		t.Fatal(err)
	}
	client, err := sv.ca.Issue(testpki.Leaf{DNSNames: []string{"gateway"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(certFile, client.CertPEM, 0o600)
	os.WriteFile(keyFile, client.KeyPEM, 0o600)
	wrapped := filepath.Join(dir, "wrapped")

	works := func(t *testing.T, tr *Transit) {
		t.Helper()
		if err := tr.Ping(ctx); err != nil {
			t.Errorf("Ping = %v", err)
		}
		if _, err := tr.Encrypt(ctx, []EncryptItem{{Binding: Binding{Token: "tok_a", Field: FieldCard}, Plaintext: []byte("x")}}); err != nil {
			t.Errorf("Encrypt = %v", err)
		}
	}
	tests := []struct {
		name   string
		mutate func(c *TransitConfig)
		want   string // "" means it works
	}{
		{"approle", func(c *TransitConfig) {}, ""},
		{"approle wrong secret id", func(c *TransitConfig) { os.WriteFile(c.Auth.SecretIDFile, []byte("wrong"), 0o600) }, "invalid role or secret ID"},
		{"approle wrapped secret id", func(c *TransitConfig) {
			os.WriteFile(wrapped, []byte(sv.wrapSecretID()), 0o600)
			c.Auth.SecretIDFile, c.Auth.SecretIDWrapped = wrapped, true
		}, ""},
		{"approle wrapped secret id used twice", func(c *TransitConfig) {
			c.Auth.SecretIDFile, c.Auth.SecretIDWrapped = wrapped, true
		}, "wrapping token is not valid"},
		{"cert", func(c *TransitConfig) {
			c.ClientCertFile, c.ClientKeyFile = certFile, keyFile
			c.Auth = TransitAuth{Method: TransitAuthCert, CertRole: "gateway"}
		}, ""},
		{"cert with another role", func(c *TransitConfig) {
			c.ClientCertFile, c.ClientKeyFile = certFile, keyFile
			c.Auth = TransitAuth{Method: TransitAuthCert, CertRole: "admin"}
		}, "invalid certificate"},
		{"cert without a certificate", func(c *TransitConfig) { c.Auth = TransitAuth{Method: TransitAuthCert} }, "needs a client certificate"},
		{"token", func(c *TransitConfig) { c.Auth = TransitAuth{Method: TransitAuthToken, Token: sv.rootToken()} }, ""},
		{"bad token", func(c *TransitConfig) { c.Auth = TransitAuth{Method: TransitAuthToken, Token: "hvs.nope"} }, "status 403"},
		{"unknown method", func(c *TransitConfig) { c.Auth.Method = "userpass" }, "is not"},
		{"plain http", func(c *TransitConfig) { c.Address = strings.Replace(c.Address, "https", "http", 1) }, "https"},
		{"wrong ca", func(c *TransitConfig) { c.CACertFile = "" }, "certificate"},
		{"wrong server name", func(c *TransitConfig) { c.TLSServerName = "other.test" }, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sv.config(t)
			tt.mutate(&cfg)
			tr, err := OpenTransit(ctx, cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("OpenTransit = %v", err)
				}
				defer tr.Close()
				works(t, tr)
				return
			}
			if err == nil {
				tr.Close()
				t.Fatalf("OpenTransit = nil, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenTransit = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), sv.secretID) {
				t.Errorf("OpenTransit error %q holds the secret id", err)
			}
		})
	}
}

// TestTransitIgnoresVaultEnv: the api client reads VAULT_* variables;
// none of them may change whom the backend trusts or as whom it acts.
func TestTransitIgnoresVaultEnv(t *testing.T) {
	sv := newVaultStandIn(t)
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	t.Setenv("VAULT_TOKEN", sv.rootToken())
	t.Setenv("VAULT_ADDR", "https://127.0.0.1:1")
	cfg := sv.config(t)
	cfg.CACertFile = ""
	if _, err := OpenTransit(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("OpenTransit with VAULT_SKIP_VERIFY=true and an unknown CA = %v, want a certificate error", err)
	}
}

// TestTransitRenewsAndLogsInAgain: with a 2s token TTL and a 3s maximum,
// the LifetimeWatcher renews the token, then a new login replaces it,
// and calls keep working throughout.
func TestTransitRenewsAndLogsInAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for token renewal; -short skips it")
	}
	ctx := context.Background()
	sv := newVaultStandIn(t)
	admin := openTestTransit(t, sv.adminConfig(t))
	if _, err := admin.InitKeys(ctx); err != nil {
		t.Fatal(err)
	}
	sv.set(func(v *vaultStandIn) { v.tokenTTL, v.tokenMax = 2*time.Second, 3*time.Second })
	gw := openTestTransit(t, sv.config(t))
	deadline := time.Now().Add(15 * time.Second)
	for {
		sv.mu.Lock()
		logins, renewals := sv.logins, sv.renewals
		sv.mu.Unlock()
		if logins >= 2 && renewals >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15s: %d logins and %d renewals, want a renewal and a second login", logins, renewals)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := gw.Ping(ctx); err != nil {
		t.Errorf("Ping after re-login = %v", err)
	}
}

func TestTransitInitKeys(t *testing.T) {
	ctx := context.Background()
	sv := newVaultStandIn(t)
	admin := openTestTransit(t, sv.adminConfig(t))
	created, err := admin.InitKeys(ctx)
	if err != nil || strings.Join(created, ",") != "cardgate-card,cardgate-fingerprint" {
		t.Fatalf("InitKeys = %q, %v", created, err)
	}
	if created, err := admin.InitKeys(ctx); err != nil || len(created) != 0 {
		t.Errorf("InitKeys again = %q, %v; want nothing created", created, err)
	}
	info, err := admin.KeyInfo(ctx)
	if err != nil || !info.Derived || info.Type != "aes256-gcm96" || info.LatestVersion != 1 {
		t.Errorf("KeyInfo = %+v, %v; want a derived aes256-gcm96 key at version 1", info, err)
	}
	// A card key someone made without derivation is refused.
	sv.set(func(v *vaultStandIn) {
		v.keys["plain"] = &standInKey{typ: "aes256-gcm96", minDecrypt: 1}
		v.keys["plain"].rotate()
	})
	cfg := sv.adminConfig(t)
	cfg.Key = "plain"
	other := openTestTransit(t, cfg)
	if _, err := other.InitKeys(ctx); err == nil || !strings.Contains(err.Error(), "derived=true") {
		t.Errorf("InitKeys over a non-derived key = %v, want a refusal", err)
	}
}

func TestTransitClosed(t *testing.T) {
	gw, _, _ := newTestTransit(t)
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := gw.Ping(context.Background()); !errors.Is(err, errTransitClosed) {
		t.Errorf("Ping after Close = %v", err)
	}
}

// TestTransitRealVault runs the Keyer contract against a real Vault or
// OpenBao when VAULT_ADDR is set (with VAULT_TOKEN able to manage a
// transit mount at "transit", and VAULT_CACERT if its CA is private). It
// creates keys with a unique name and leaves them behind.
func TestTransitRealVault(t *testing.T) {
	addr := os.Getenv("VAULT_ADDR")
	if addr == "" {
		t.Skip("VAULT_ADDR is not set; the stand-in tests cover Transit. Set VAULT_ADDR, VAULT_TOKEN (and VAULT_CACERT) to run against a real Vault")
	}
	suffix := strings.ToLower(newToken()[4:12])
	cfg := TransitConfig{
		Address: addr, CACertFile: os.Getenv("VAULT_CACERT"),
		Key: "cardgate-test-" + suffix, FingerprintKey: "cardgate-test-fp-" + suffix,
		Auth: TransitAuth{Method: TransitAuthToken, Token: os.Getenv("VAULT_TOKEN")},
	}
	tr := openTestTransit(t, cfg)
	if _, err := tr.InitKeys(context.Background()); err != nil {
		t.Fatalf("InitKeys: %v", err)
	}
	testKeyer(t, tr, func(t *testing.T) Keyer {
		if _, err := tr.Rotate(context.Background()); err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		return tr
	})
}

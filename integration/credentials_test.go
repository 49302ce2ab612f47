package integration

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cardgate/cardgate/forwarder/signing"
	"github.com/cardgate/cardgate/internal/testpki"
	"github.com/cardgate/cardgate/internal/vaultstandin"
)

// Credentials the gateway holds; the caller never has them. The Stripe
// style key is Basic auth's user with an empty password ("key:").
const (
	stripeKeyV1 = "sk_test_51HcgIntegrationKeyOne:"
	stripeKeyV2 = "sk_test_51HcgIntegrationKeyTwo:"
	cybsSecret1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	cybsSecret2 = "ZZECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	cybsKeyID   = "08c94330-f618-42a3-b09d-e1e43be5efda"
)

func cybsSigningSpec() signing.Spec {
	return signing.Spec{
		Scheme: signing.SchemeCavage, Credential: "cybs-secret", SecretEncoding: "base64",
		Cavage: &signing.CavageSpec{
			KeyID: cybsKeyID, Algorithm: "HmacSHA256",
			Headers: []string{"host", "date", "request-target", "digest", "v-c-merchant-id"},
		},
	}
}

// credProcessor checks authentication as the processors it stands in for
// document it: Stripe-style Basic auth with the secret key as the user,
// and a Cybersource-style cavage HMAC signature. It answers 401 to a
// wrong credential, and otherwise echoes the Authorization header and
// the key, as a careless processor might.
type credProcessor struct {
	addr     string
	mu       sync.Mutex
	basic    string            // the Authorization value Stripe-style requests must carry
	verifier *signing.Verifier // for Cybersource-style requests
	refusals map[string]int    // path -> 401s
}

func startCredProcessor(t *testing.T, ca *testpki.CA) *credProcessor {
	t.Helper()
	leaf, err := ca.Issue(testpki.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	p := &credProcessor{addr: ln.Addr().String(), refusals: map[string]int{}}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return p
}

func (p *credProcessor) expect(stripeKey, cybs string) {
	v, err := signing.NewVerifier(cybsSigningSpec(), signing.SecretKey([]byte(cybs)))
	if err != nil {
		panic(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(stripeKey))
	p.verifier = v
}

func (p *credProcessor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	p.mu.Lock()
	basic, verifier := p.basic, p.verifier
	p.mu.Unlock()
	refuse := func(why string) {
		p.mu.Lock()
		p.refusals[r.URL.Path]++
		p.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":%q}`, why)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/v1/charges":
		if r.Header.Get("Authorization") != basic {
			refuse("invalid api key")
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("card[number]") == "" {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.Header.Get("Authorization"), "Basic "))
		w.Header().Set("X-Echo-Authorization", r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, `{"id":"ch_1","object":"charge","api_key_used":%q,"status":"succeeded"}`, key)
	case "/pts/v2/payments":
		if err := verifier.Verify(r, body, time.Now()); err != nil {
			refuse(err.Error())
			return
		}
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":"6461731521426399003473","status":"AUTHORIZED"}`)
	default:
		http.NotFound(w, r)
	}
}

func (p *credProcessor) refused(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refusals[path]
}

// credAllowlist grants stripe-key to the Stripe-style entry, in its
// Authorization header, and signs the Cybersource-style entry with
// cybs-secret. extra is appended as a third entry.
func (e *env) credAllowlist(version int, procAddr, extra string) string {
	now := time.Now().UTC()
	return fmt.Sprintf(`format: cardgate.allowlist/v1
namespace: %s
environment: integration
version: %d
issued_at: %s
expires: %s
prev_sha256: ""
destinations:
  - id: stripe-charges
    purpose: Stripe-style charges, Basic auth with the gateway's secret key
    owner: payments@cardgate.test
    url: https://%[5]s/v1/charges
    methods: [POST]
    callers: ["%[6]s"]
    fields: [number, exp_month, exp_year, cvc]
    unsafe_allow_ranges: [127.0.0.1/32]
    credentials: [stripe-key]
    credential_headers: [Authorization]
  - id: cybs-payments
    purpose: Cybersource-style payments, signed by the gateway
    owner: payments@cardgate.test
    url: https://%[5]s/pts/v2/payments
    methods: [POST]
    callers: ["%[6]s"]
    fields: [number, exp_month, exp_year]
    unsafe_allow_ranges: [127.0.0.1/32]
    credentials: [cybs-secret]
    signing:
      scheme: cavage
      credential: cybs-secret
      secret_encoding: base64
      cavage:
        key_id: %[7]s
        algorithm: HmacSHA256
        headers: [host, date, request-target, digest, v-c-merchant-id]
%[8]s`, namespace, version, now.Add(-time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339),
		procAddr, billing, cybsKeyID, extra)
}

// checks returns /readyz's check details.
func (e *env) checks(t *testing.T) map[string]string {
	t.Helper()
	resp, err := e.client(billing).Get("https://" + e.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep struct {
		Checks map[string]struct {
			Detail string `json:"detail"`
		} `json:"checks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range rep.Checks {
		out[k] = v.Detail
	}
	return out
}

// countLog counts the gateway's log lines whose msg is msg.
func (e *env) countLog(msg string) int {
	return strings.Count(e.gw.log(), `"msg":"`+msg+`"`)
}

// TestCredentials runs the gateway with credentials from files. The
// caller holds a token and non-secret fields only; the processor checks
// Basic auth and a cavage HMAC signature. Then the files change, SIGHUP
// reloads them, and the next forwards use the new values. Credentials the
// processor echoes come back masked, and no credential is in the log,
// the audit file or any answer.
func TestCredentials(t *testing.T) {
	e := newEnv(t)
	proc := startCredProcessor(t, e.procCA)
	proc.expect(stripeKeyV1, cybsSecret1)
	stripePath := e.write("creds/stripe-key", []byte(stripeKeyV1+"\n"))
	cybsPath := e.write("creds/cybs-secret", []byte(cybsSecret1+"\n"))
	e.writeConfig(fmt.Sprintf(`credentials:
  stripe-key:
    file: %s
  cybs-secret:
    file: %s
    kind: hmac-key
`, stripePath, cybsPath))
	v1 := e.credAllowlist(1, proc.addr, "")
	e.signAllowlist(v1)
	e.start()
	c := e.client(billing)

	if d := e.checks(t)["credentials"]; !strings.Contains(d, "cybs-secret (file)") || !strings.Contains(d, "stripe-key (file)") {
		t.Errorf("readyz credentials detail = %q, want both credentials named", d)
	}

	var answers []string
	stripe := func(extraHeaders map[string]string, dryRun bool) (int, map[string]any) {
		t.Helper()
		headers := map[string][]string{
			"Content-Type":  {"application/x-www-form-urlencoded"},
			"Authorization": {"Basic {{secret.stripe-key | base64}}"},
		}
		for k, v := range extraHeaders {
			headers[k] = []string{v}
		}
		status, out := e.post(c, "/v1/forward", map[string]any{
			"destination": "stripe-charges",
			"url":         "https://" + proc.addr + "/v1/charges",
			"method":      "POST",
			"card":        e.tokenize(c, visa),
			"headers":     headers,
			"body":        "amount=2000&currency=usd&card[number]={{card.number}}&card[exp_month]={{card.exp_month}}&card[exp_year]={{card.exp_year}}&card[cvc]={{card.cvc}}",
			"dry_run":     dryRun,
		})
		raw, _ := json.Marshal(out)
		answers = append(answers, string(raw))
		return status, out
	}
	cybs := func() (int, map[string]any) {
		t.Helper()
		status, out := e.post(c, "/v1/forward", map[string]any{
			"destination": "cybs-payments",
			"url":         "https://" + proc.addr + "/pts/v2/payments",
			"method":      "POST",
			"card":        e.tokenize(c, mastercard),
			"headers":     map[string][]string{"Content-Type": {"application/json"}, "V-C-Merchant-Id": {"testrest"}},
			"body":        `{"paymentInformation":{"card":{"number":"{{card.number}}","expirationMonth":"{{card.exp_month}}","expirationYear":"{{card.exp_year}}"}},"orderInformation":{"amountDetails":{"totalAmount":"102.21","currency":"USD"}}}`,
		})
		raw, _ := json.Marshal(out)
		answers = append(answers, string(raw))
		return status, out
	}
	wantStatus := func(what string, status int, out map[string]any, want float64) {
		t.Helper()
		if status != http.StatusOK || out["status"] != want {
			t.Fatalf("%s = %d %v, want 200 with processor status %v\nlog:\n%s", what, status, out, want, e.gw.log())
		}
	}

	status, out := stripe(nil, false)
	wantStatus("stripe-style forward", status, out, 200)
	body, _ := out["body"].(string)
	if !strings.Contains(body, `"api_key_used":"[secret.stripe-key]"`) {
		t.Errorf("echoed key in the answer body = %s, want it masked", body)
	}
	hdrs, _ := out["headers"].(map[string]any)
	if got := fmt.Sprint(hdrs["X-Echo-Authorization"]); got != "[Basic [secret.stripe-key]]" {
		t.Errorf("echoed Authorization header = %s, want it masked", got)
	}
	status, out = cybs()
	wantStatus("cybersource-style forward", status, out, 201)

	// A dry run shows the mask; an ungranted credential is refused.
	status, out = stripe(nil, true)
	dry, _ := out["dry_run"].(map[string]any)
	dh, _ := dry["headers"].(map[string]any)
	if status != http.StatusOK || fmt.Sprint(dh["Authorization"]) != "[Basic [secret.stripe-key]]" {
		t.Errorf("dry run = %d %v, want the Authorization shown as Basic [secret.stripe-key]", status, out)
	}
	status, out = stripe(map[string]string{"X-Extra": "{{secret.cybs-secret}}"}, false)
	if status != http.StatusForbidden || errCode(out) != "credential_not_allowed" || out["error"].(map[string]any)["outcome"] != "not_sent" {
		t.Errorf("ungranted credential = %d %v, want 403 credential_not_allowed, not_sent", status, out)
	}

	// SIGHUP reloads the credentials even when no file changed (the file
	// watcher would not): this proves the signal is wired.
	waitLoaded := func(after int) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for e.countLog("credentials: loaded") <= after {
			if time.Now().After(deadline) {
				t.Fatalf("no credentials reload after SIGHUP\nlog:\n%s", e.gw.log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	loaded := e.countLog("credentials: loaded")
	if err := e.gw.signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLoaded(loaded)

	// Rotate both credentials: the processor now wants the new values.
	loaded = e.countLog("credentials: loaded")
	proc.expect(stripeKeyV2, cybsSecret2)
	os.WriteFile(stripePath, []byte(stripeKeyV2+"\n"), 0o600)
	os.WriteFile(cybsPath, []byte(cybsSecret2+"\n"), 0o600)
	if err := e.gw.signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLoaded(loaded)
	refusedBefore := proc.refused("/v1/charges") + proc.refused("/pts/v2/payments")
	status, out = stripe(nil, false)
	wantStatus("stripe-style forward after the rotation", status, out, 200)
	status, out = cybs()
	wantStatus("cybersource-style forward after the rotation", status, out, 201)
	if n := proc.refused("/v1/charges") + proc.refused("/pts/v2/payments"); n != refusedBefore {
		t.Errorf("the processor refused %d requests after the rotation", n-refusedBefore)
	}

	// An allowlist naming a credential this gateway does not hold is
	// refused when it loads; version 1 keeps serving.
	e.signAllowlist(withPrev(e.credAllowlist(2, proc.addr, fmt.Sprintf(`  - id: acme-unknown
    purpose: names a credential the gateway does not configure
    owner: payments@cardgate.test
    url: https://%s/v1/unknown
    methods: [POST]
    callers: ["%s"]
    fields: [number]
    unsafe_allow_ranges: [127.0.0.1/32]
    credentials: [acme-not-configured]
`, proc.addr, billing)), v1))
	e.gw.signal(syscall.SIGHUP)
	detail := e.waitReady(t, "last reload failed")
	if !strings.Contains(detail, "unsupported_by_gateway") || !strings.Contains(detail, "acme-not-configured") || !strings.Contains(detail, "version 1") {
		t.Errorf("readyz allowlist detail = %q, want version 1 live and the unsupported credential named", detail)
	}

	// The auditors' diff flags a credential newly granted to an entry.
	oldPath := e.write("review/v1.yaml", []byte(v1))
	newPath := e.write("review/v2.yaml", []byte(withPrev(strings.Replace(e.credAllowlist(2, proc.addr, ""),
		"credentials: [stripe-key]", "credentials: [stripe-key, cybs-secret]", 1), v1)))
	diff, err := exec.Command(binary, "allowlist", "diff", "--fail-on-widen", oldPath, newPath).CombinedOutput()
	if err == nil || !strings.Contains(string(diff), "WIDENS ~ stripe-charges: + credential cybs-secret") {
		t.Errorf("allowlist diff --fail-on-widen = %v\n%s", err, diff)
	}

	// No credential, old or new, raw or in base64, anywhere.
	audit, err := os.ReadFile(filepath.Join(e.dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"gateway log": e.gw.log(), "audit log": string(audit), "answers": strings.Join(answers, "\n")} {
		for _, secret := range []string{stripeKeyV1, stripeKeyV2, cybsSecret1, cybsSecret2, strings.TrimSuffix(stripeKeyV1, ":"), strings.TrimSuffix(stripeKeyV2, ":")} {
			for _, spelling := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret))} {
				if strings.Contains(text, spelling) {
					t.Errorf("%s holds a credential (%d bytes of it)", what, len(spelling))
				}
			}
		}
		e.assertNoCardsIn(what, []byte(text))
	}
}

// TestCredentialsRefuseToStart: a credential that cannot be read stops
// the gateway at start, and every failing credential is reported at once.
func TestCredentialsRefuseToStart(t *testing.T) {
	e := newEnv(t)
	e.writeConfig(fmt.Sprintf(`credentials:
  missing-file:
    file: %s
  empty-env:
    env: CG_TEST_UNSET_CREDENTIAL_VAR
  bad-base64:
    file: %s
    encoding: base64
`, filepath.Join(e.dir, "no-such-file"), e.write("creds/bad", []byte("not base64 !!\n"))))
	e.signAllowlist(e.allowlistYAML(1))
	p, err := startProcess(t, binary, "serve", "-config", filepath.Join(e.dir, "cardgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	code, err := p.wait(15 * time.Second)
	if err != nil || code == 0 {
		t.Fatalf("gateway with unreadable credentials: exit %d, %v; want it to refuse to start\nlog:\n%s", code, err, p.log())
	}
	for _, name := range []string{"missing-file", "empty-env", "bad-base64"} {
		if !strings.Contains(p.log(), name) {
			t.Errorf("the refusal does not name credential %s:\n%s", name, p.log())
		}
	}

	// An allowlist that grants a credential this gateway does not hold
	// stops the start too.
	e.writeConfig("")
	e.signAllowlist(e.credAllowlist(1, "127.0.0.1:9", ""))
	p, err = startProcess(t, binary, "serve", "-config", filepath.Join(e.dir, "cardgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	code, err = p.wait(15 * time.Second)
	if err != nil || code == 0 {
		t.Fatalf("gateway with an allowlist naming unconfigured credentials: exit %d, %v; want it to refuse to start\nlog:\n%s", code, err, p.log())
	}
	if !strings.Contains(p.log(), "unsupported_by_gateway") || !strings.Contains(p.log(), `credential \"stripe-key\"`) {
		t.Errorf("the refusal does not say unsupported_by_gateway and name the credential:\n%s", p.log())
	}
}

// TestCredentialsFromVault reads a credential from Vault KV version 2 (a
// stand-in that answers as Vault's API documents) while the key backend
// is the local keyring, so the gateway logs in to Vault for credentials
// alone, with the keys.vault settings. A new version of the secret is
// followed on SIGHUP.
func TestCredentialsFromVault(t *testing.T) {
	vault := vaultstandin.New(t)
	vault.EnableKV2("secret")
	vault.Put("secret", "processors/stripe", map[string]any{"secret_key": stripeKeyV1})
	e := newEnv(t)
	proc := startCredProcessor(t, e.procCA)
	proc.expect(stripeKeyV1, cybsSecret1)
	cybsPath := e.write("creds/cybs-secret", []byte(cybsSecret1+"\n"))
	e.writeConfig(fmt.Sprintf(`credentials:
  stripe-key:
    vault: {mount: secret, path: processors/stripe, key: secret_key}
  cybs-secret:
    file: %s
    kind: hmac-key
`, cybsPath))
	// keys.backend stays local (writeConfig's); keys.vault is added for
	// the credentials' login.
	cfg, err := os.ReadFile(filepath.Join(e.dir, "cardgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("    unsafe_allow_outside_dev: true\n"), fmt.Appendf(nil, `    unsafe_allow_outside_dev: true
  vault:
    address: %s
    ca_file: %s
    tls_server_name: %s
    auth:
      method: approle
      role_id: %s
      secret_id_file: %s
`, vault.URL, vault.CAFile, vaultstandin.ServerName, vault.RoleID, vault.SecretIDFile(t)), 1)
	e.write("cardgate.yaml", cfg)
	e.signAllowlist(e.credAllowlist(1, proc.addr, ""))
	e.start()
	c := e.client(billing)
	forward := func() (int, map[string]any) {
		return e.post(c, "/v1/forward", map[string]any{
			"destination": "stripe-charges",
			"url":         "https://" + proc.addr + "/v1/charges",
			"method":      "POST",
			"card":        e.tokenize(c, visa),
			"headers": map[string][]string{
				"Content-Type":  {"application/x-www-form-urlencoded"},
				"Authorization": {"Basic {{secret.stripe-key | base64}}"},
			},
			"body": "card[number]={{card.number}}&card[exp_month]={{card.exp_month}}&card[exp_year]={{card.exp_year}}",
		})
	}
	if d := e.checks(t)["credentials"]; !strings.Contains(d, "stripe-key (vault v1)") {
		t.Errorf("readyz credentials detail = %q, want stripe-key from vault, version 1", d)
	}
	if status, out := forward(); status != http.StatusOK || out["status"] != float64(200) {
		t.Fatalf("forward with a Vault credential = %d %v, want the processor's 200\nlog:\n%s", status, out, e.gw.log())
	}

	vault.Put("secret", "processors/stripe", map[string]any{"secret_key": stripeKeyV2})
	proc.expect(stripeKeyV2, cybsSecret1)
	e.gw.signal(syscall.SIGHUP)
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(e.checks(t)["credentials"], "stripe-key (vault v2)") {
		if time.Now().After(deadline) {
			t.Fatalf("readyz credentials detail = %q, want version 2 after SIGHUP\nlog:\n%s", e.checks(t)["credentials"], e.gw.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status, out := forward(); status != http.StatusOK || out["status"] != float64(200) {
		t.Fatalf("forward after the new Vault version = %d %v, want the processor's 200", status, out)
	}
	for _, secret := range []string{stripeKeyV1, stripeKeyV2} {
		if strings.Contains(e.gw.log(), secret) || strings.Contains(e.gw.log(), base64.StdEncoding.EncodeToString([]byte(secret))) {
			t.Error("the gateway log holds a Vault credential")
		}
	}
}

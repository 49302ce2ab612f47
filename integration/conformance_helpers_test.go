package integration

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/testprocessor"
)

// The conformance tests run the examples of docs/processors.md: each
// reads the blocks marked <!-- conformance: NAME --> there, points the
// entry and the request at a test processor (internal/testprocessor)
// modelled on the processor's public documentation, and checks what the
// processor received and what the caller got back. The caller holds a
// token, the destination id and non-secret fields only; the credentials
// are files the gateway's configuration names.

// confDocPath is the page whose examples the tests run.
const confDocPath = "../docs/processors.md"

// The values docs/processors.md uses that the test processors must
// agree with. They are not secrets.
const (
	confCaller          = "spiffe://example.com/billing"
	confCybsMerchantID  = "cardgate_example"
	confCybsKeyID       = "08c94330-f618-42a3-b09d-e1e43be5efda"
	confAdyenMerchant   = "ExampleECOM"
	confWorldpayCode    = "EXAMPLEMERCHANT"
	confSigpayKeyID     = "cardgate-ed25519-2026"
	confCredentialsPath = "/run/secrets/cardgate/"
)

// The credentials' test values. Every one of them, and every form it
// travels in, must stay out of the gateway's log, its audit file and the
// caller's answers.
const (
	confStripeKey      = "sk_test_51CardgateConformanceKey7Qx"
	confAdyenKey       = "AQEyhmfxConformanceTestApiKey0001-Zm9vYmFy"
	confCybsRawSecret  = "cardgate-conformance-cybs-key!!!" // 32 bytes; the credential holds its base64
	confWorldpayPass   = "wp-xml-password-Conformance-01"
	confSigpayHMACText = "sigpay-conformance-hmac-secret-0123456789"
)

var confCybsSecret = base64.StdEncoding.EncodeToString([]byte(confCybsRawSecret))

// confBlocksOnce parses docs/processors.md once per run.
var (
	confBlocksOnce sync.Once
	confBlocksMap  map[string]string
	confBlocksErr  error
)

var confMarker = regexp.MustCompile(`^<!-- conformance: ([a-z0-9-]+) -->$`)

// confBlock returns the fenced block marked name in docs/processors.md,
// without its fences.
func confBlock(t *testing.T, name string) string {
	t.Helper()
	confBlocksOnce.Do(func() {
		f, err := os.Open(confDocPath)
		if err != nil {
			confBlocksErr = err
			return
		}
		defer f.Close()
		confBlocksMap = map[string]string{}
		sc := bufio.NewScanner(f)
		pending, in := "", false
		var b strings.Builder
		for sc.Scan() {
			line := sc.Text()
			switch {
			case in && line == "```":
				if _, dup := confBlocksMap[pending]; dup {
					confBlocksErr = fmt.Errorf("block %q is marked twice", pending)
					return
				}
				confBlocksMap[pending] = b.String()
				pending, in = "", false
				b.Reset()
			case in:
				b.WriteString(line + "\n")
			case pending != "" && strings.HasPrefix(line, "```"):
				in = true
			case confMarker.MatchString(line):
				pending = confMarker.FindStringSubmatch(line)[1]
			case pending != "" && strings.TrimSpace(line) != "":
				confBlocksErr = fmt.Errorf("marker %q is not followed by a fenced block", pending)
				return
			}
		}
		if confBlocksErr == nil {
			confBlocksErr = sc.Err()
		}
	})
	if confBlocksErr != nil {
		t.Fatalf("reading %s: %v", confDocPath, confBlocksErr)
	}
	b, ok := confBlocksMap[name]
	if !ok {
		t.Fatalf("%s has no block marked <!-- conformance: %s -->", confDocPath, name)
	}
	return b
}

// confEnv is a gateway holding the documented credentials, with the
// entries and test processors one test needs.
type confEnv struct {
	*env
	secrets []string // credential values and their encodings
	entries []string
	extra   string // more gateway configuration, after the credentials section
	answers [][]byte
	// sigpayPublic verifies what the documented sigpay-signing-key signs.
	sigpayPublic ed25519.PublicKey
}

func newConfEnv(t *testing.T) *confEnv {
	t.Helper()
	c := &confEnv{env: newEnv(t)}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	files := map[string][]byte{
		"stripe-secret-key":      []byte(confStripeKey + ":\n"),
		"adyen-api-key":          []byte(confAdyenKey + "\n"),
		"cybs-shared-secret":     []byte(confCybsSecret + "\n"),
		"worldpay-xml-login":     []byte(confWorldpayCode + ":" + confWorldpayPass + "\n"),
		"sigpay-signing-key.pem": keyPEM,
	}
	for name, b := range files {
		c.write(filepath.Join("creds", name), b)
	}
	c.secrets = []string{
		confStripeKey, base64.StdEncoding.EncodeToString([]byte(confStripeKey + ":")),
		confAdyenKey,
		confCybsSecret, confCybsRawSecret,
		confWorldpayPass, base64.StdEncoding.EncodeToString([]byte(confWorldpayCode + ":" + confWorldpayPass)),
		confSigpayHMACText,
		base64.StdEncoding.EncodeToString(priv.Seed()), string(priv.Seed()),
	}
	// Each line of the PEM body is as telling as the whole key.
	for _, line := range strings.Split(string(keyPEM), "\n") {
		if len(line) > 20 && !strings.HasPrefix(line, "-----") {
			c.secrets = append(c.secrets, line)
		}
	}
	c.sigpayPublic = priv.Public().(ed25519.PublicKey)
	t.Cleanup(c.scan)
	return c
}

// processorURL replaces the scheme and host of documented with the test
// processor's base URL, keeping the path.
func processorURL(t *testing.T, documented, base string) string {
	t.Helper()
	u, err := url.Parse(documented)
	if err != nil || u.Scheme != "https" || u.Path == "" {
		t.Fatalf("documented URL %q is not an https URL with a path", documented)
	}
	return base + u.Path
}

var confURLLine = regexp.MustCompile(`(?m)^    url: (\S+)$`)

// addEntry adds the documented entry named block (e.g. "stripe-entry"),
// pointed at base, the test's caller allowed, loopback allowed for the
// test processor. edit, when set, changes the entry's text further.
func (c *confEnv) addEntry(block, base string, edit func(string) string) {
	c.t.Helper()
	entry := confBlock(c.t, block)
	m := confURLLine.FindStringSubmatch(entry)
	if m == nil {
		c.t.Fatalf("block %s has no url line", block)
	}
	entry = strings.Replace(entry, m[0], "    url: "+processorURL(c.t, m[1], base), 1)
	if strings.Count(entry, `"`+confCaller+`"`) != 1 {
		c.t.Fatalf("block %s does not list the caller %s once", block, confCaller)
	}
	entry = strings.Replace(entry, `"`+confCaller+`"`, `"`+billing+`"`, 1)
	if edit != nil {
		entry = edit(entry)
	}
	entry += "    unsafe_allow_ranges: [127.0.0.1/32]\n"
	c.entries = append(c.entries, entry)
}

// allowlist is the signed document with the entries added so far.
func (c *confEnv) allowlist(version int) string {
	now := time.Now().UTC()
	return fmt.Sprintf(`format: cardgate.allowlist/v1
namespace: %s
environment: integration
version: %d
issued_at: %s
expires: %s
prev_sha256: ""
destinations:
%s`, namespace, version, now.Add(-time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339),
		strings.Join(c.entries, ""))
}

// startGateway writes the configuration with the documented credentials
// section (files under DIR/creds), signs the allowlist and starts the
// gateway.
func (c *confEnv) startGateway() {
	c.t.Helper()
	creds := strings.ReplaceAll(confBlock(c.t, "credentials"), confCredentialsPath, filepath.Join(c.dir, "creds")+"/")
	c.writeConfig(creds + c.extra)
	c.signAllowlist(c.allowlist(1))
	c.start()
}

// confCard is the card a conformance test tokenizes: its month needs
// zero-padding and its name escaping in every body format.
func confCard(number string) testprocessor.Card {
	return testprocessor.Card{Number: number, ExpMonth: 3, ExpYear: time.Now().Year() + 5, CVC: testCVC, Name: `Jane "JJ" Doe & Co`}
}

// tokenizeCard stores card and returns its token.
func (c *confEnv) tokenizeCard(card testprocessor.Card) string {
	c.t.Helper()
	in := map[string]any{"number": card.Number, "exp_month": card.ExpMonth, "exp_year": card.ExpYear}
	if card.CVC != "" {
		in["cvc"] = card.CVC
	}
	if card.Name != "" {
		in["name"] = card.Name
	}
	status, out := c.post(c.client(billing), "/v1/cards", in)
	if status != http.StatusCreated {
		c.t.Fatalf("POST /v1/cards = %d %v, want 201", status, out)
	}
	tok, _ := out["token"].(string)
	return tok
}

// request is the documented caller's request named block, for token and
// the test processor at base.
func (c *confEnv) request(block, token, base string) map[string]any {
	c.t.Helper()
	var req map[string]any
	if err := json.Unmarshal([]byte(confBlock(c.t, block)), &req); err != nil {
		c.t.Fatalf("block %s is not JSON: %v", block, err)
	}
	if req["card"] != "tok_…" {
		c.t.Fatalf("block %s: card = %v, want the placeholder tok_…", block, req["card"])
	}
	req["card"] = token
	documented, _ := req["url"].(string)
	req["url"] = processorURL(c.t, documented, base)
	return req
}

// forward sends req as the billing caller and keeps the answer for the
// final scan.
func (c *confEnv) forward(req map[string]any) (int, map[string]any) {
	c.t.Helper()
	status, out := c.post(c.client(billing), "/v1/forward", req)
	raw, _ := json.Marshal(out)
	c.answers = append(c.answers, raw)
	c.assertNoSecretsIn("the caller's answer", raw)
	return status, out
}

// answered checks that a forward was answered by the processor with
// status and returns the answer's body.
func (c *confEnv) answered(what string, status int, out map[string]any, want int) string {
	c.t.Helper()
	if status != http.StatusOK || out["outcome"] != "answered" || out["status"] != float64(want) {
		c.t.Fatalf("%s = %d %v, want 200 answered with processor status %d\nlog:\n%s", what, status, out, want, c.gw.log())
	}
	body, _ := out["body"].(string)
	return body
}

// accepted checks that the processor judged its latest request
// acceptable: authenticated as it documents and carrying the expected
// card.
func accepted(t *testing.T, what string, p *testprocessor.Server) testprocessor.Exchange {
	t.Helper()
	x, ok := p.Last()
	if !ok {
		t.Fatalf("%s: the processor received nothing", what)
	}
	if x.Verdict != testprocessor.Accepted {
		t.Fatalf("%s: the processor refused the request: %s (%s)", what, x.Verdict, x.Reason)
	}
	return x
}

// assertNoCVCIn fails when b holds the test CVC as a body format would
// write it (assertNoCardsIn covers the JSON and form spellings).
func assertNoCVCIn(t *testing.T, what string, b []byte) {
	t.Helper()
	for _, f := range []string{">" + testCVC + "<", "%5D=" + testCVC, "]=" + testCVC, `\"` + testCVC + `\"`} {
		if strings.Contains(string(b), f) {
			t.Errorf("%s holds the test CVC (as %s)", what, f)
		}
	}
}

// assertNoSecretsIn fails when b holds a credential value in any form
// the test knows.
func (c *confEnv) assertNoSecretsIn(what string, b []byte) {
	c.t.Helper()
	for _, s := range c.secrets {
		if strings.Contains(string(b), s) {
			n := min(len(s), 6)
			c.t.Errorf("%s holds a credential (%s…)", what, s[:n])
		}
	}
}

// scan runs when the test ends: no card number, CVC or credential in the
// gateway's log, its audit file or any answer, and the audit file
// verifies.
func (c *confEnv) scan() {
	c.t.Helper()
	if c.gw == nil {
		return
	}
	log := []byte(c.gw.log())
	c.assertNoSecretsIn("the gateway's log", log)
	assertNoCVCIn(c.t, "the gateway's log", log)
	audit, err := os.ReadFile(filepath.Join(c.dir, "audit.log"))
	if err != nil {
		c.t.Errorf("reading the audit file: %v", err)
	}
	c.assertNoCardsIn("the audit file", audit)
	c.assertNoSecretsIn("the audit file", audit)
	assertNoCVCIn(c.t, "the audit file", audit)
	for _, a := range c.answers {
		c.assertNoCardsIn("a caller's answer", a)
		assertNoCVCIn(c.t, "a caller's answer", a)
	}
	if len(audit) > 0 {
		run(c.t, binary, "audit", "verify", filepath.Join(c.dir, "audit.log"))
	}
}

// confJSON decodes an answer's body and walks it by keys; nil when a key
// is missing.
func confJSON(t *testing.T, body string, keys ...string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("the answer's body is not JSON: %v\n%s", err, body)
	}
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// masked checks that the answer's value at keys is there but is not
// plain, the identifier an entry did not declare.
func masked(t *testing.T, body, plain string, keys ...string) {
	t.Helper()
	got, _ := confJSON(t, body, keys...).(string)
	if got == "" || got == plain || strings.Contains(body, plain) {
		t.Errorf("answer field %s = %q, want %s masked (the entry does not declare it)", strings.Join(keys, "."), got, plain)
	}
}

// kept checks that the answer's value at keys is want, unmasked.
func kept(t *testing.T, body, want string, keys ...string) {
	t.Helper()
	if got := confJSON(t, body, keys...); got != want {
		t.Errorf("answer field %s = %v, want %s kept (the entry declares it)", strings.Join(keys, "."), got, want)
	}
}

// returnedCard checks that token, found in the answer's body where the
// new card was, is a token and is listed in the answer's returned_cards,
// and returns that listing.
func returnedCard(t *testing.T, out map[string]any, token string) map[string]any {
	t.Helper()
	if !strings.HasPrefix(token, "tok_") {
		t.Fatalf("the returned card's field holds %q, want a token", token)
	}
	list, _ := out["returned_cards"].([]any)
	for _, r := range list {
		m, _ := r.(map[string]any)
		if m["token"] == token {
			return m
		}
	}
	t.Fatalf("returned_cards %v does not list %s", out["returned_cards"], token)
	return nil
}

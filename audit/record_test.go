package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/allowlist"
)

// TestAppendRefuses checks that records that could carry card data, or
// that are malformed, are refused before anything is written.
func TestAppendRefuses(t *testing.T) {
	const card = "4242424242424242"
	tests := []struct {
		name  string
		edit  func(*Record)
		field string // named in the error
	}{
		{"card as token", func(r *Record) { r.Token = card }, "token"},
		{"token with card digits", func(r *Record) { r.Token = "tok_" + card }, "token"},
		{"token wrong prefix", func(r *Record) { r.Token = "card_abc" }, "token"},
		{"token with spaces", func(r *Record) { r.Token = "tok_abc def" }, "token"},
		{"card in caller", func(r *Record) { r.Caller = "billing-" + card }, "caller"},
		{"card with dashes in request id", func(r *Record) { r.RequestID = "4242-4242-4242-4242" }, "request_id"},
		{"card with underscores in request id", func(r *Record) { r.RequestID = "4242_4242_4242_4242" }, "request_id"},
		{"card with double dashes in forward id", func(r *Record) { r.ForwardID = "fwd_4242--4242--4242--4242" }, "forward_id"},
		{"card with dots in caller", func(r *Record) { r.Caller = "billing.4242.4242.4242.4242" }, "caller"},
		{"card glued to a digit in caller", func(r *Record) { r.Caller = "billing-74242424242424242" }, "caller"},
		{"card in forward id", func(r *Record) { r.ForwardID = "fwd_" + card }, "forward_id"},
		{"card in destination", func(r *Record) { r.Destination = "acme" + card }, "destination"},
		{"card in reason", func(r *Record) { r.Reason = "x" + card }, "reason"},
		{"free text in reason", func(r *Record) { r.Reason = "Card 4242 declined" }, "reason"},
		{"13-digit card in request id", func(r *Record) { r.RequestID = "4222222222222" }, "request_id"},
		{"13-digit card spread over caller", func(r *Record) { r.Caller = "billing/4/2/2/2/2/2/2/2/2/2/2/2/2" }, "caller"},
		{"ip not canonical", func(r *Record) { r.ResolvedIP = "203.000.113.7" }, "resolved_ip"},
		{"ipv6 not canonical", func(r *Record) { r.ResolvedIP = "2001:DB8::1" }, "resolved_ip"},
		{"ipv6 zeros not compressed", func(r *Record) { r.ResolvedIP = "2001:db8:0:0::1" }, "resolved_ip"},
		{"ipv4-mapped not canonical", func(r *Record) { r.ResolvedIP = "::FFFF:203.0.113.7" }, "resolved_ip"},
		{"ip with port", func(r *Record) { r.ResolvedIP = "203.0.113.7:443" }, "resolved_ip"},
		{"ip with spaces", func(r *Record) { r.ResolvedIP = " 203.0.113.7" }, "resolved_ip"},
		{"ipv6 with a zone", func(r *Record) { r.ResolvedIP = "fe80::1%eth0" }, "resolved_ip"},
		{"ipv6 zone holding digits", func(r *Record) { r.ResolvedIP = "fe80::1%" + "4242424242424242" }, "resolved_ip"},
		{"unknown tls version", func(r *Record) { r.TLSVersion = "SSL 3.0" }, "tls_version"},
		{"tls version lowercase", func(r *Record) { r.TLSVersion = "tls 1.3" }, "tls_version"},
		{"tls version 1.4", func(r *Record) { r.TLSVersion = "TLS 1.4" }, "tls_version"},
		{"fingerprint uppercase", func(r *Record) { r.PeerCertSHA256 = strings.ToUpper(testSHA) }, "peer_cert_sha256"},
		{"allowlist sha short", func(r *Record) { r.AllowlistSHA256 = testSHA[:63] }, "allowlist_sha256"},
		{"allowlist version beyond 2^53", func(r *Record) { r.AllowlistVersion = 1 << 53 }, "allowlist_version"},
		{"no kind", func(r *Record) { r.Kind = "" }, "kind"},
		{"no request id", func(r *Record) { r.RequestID = "" }, "request_id"},
		{"no caller", func(r *Record) { r.Caller = "" }, "caller"},
		{"intent without token", func(r *Record) { r.Token = "" }, "token"},
		{"intent denied", func(r *Record) { r.Decision = DecisionDeny }, "decision"},
		{"intent with outcome", func(r *Record) { r.Outcome = OutcomeAnswered }, "outcome"},
		{"zero decision is not allow", func(r *Record) { r.Decision = "" }, "decision"},
		{"result without outcome", func(r *Record) { r.Kind = KindResult }, "outcome"},
		{"status without answer", func(r *Record) {
			r.Kind, r.Outcome, r.UpstreamStatus = KindResult, OutcomeSentNoResponse, 200
		}, "upstream_status"},
		{"denied without reason", func(r *Record) { r.Kind, r.Decision = KindDenied, DecisionDeny }, "reason"},
		{"denied that sent", func(r *Record) {
			r.Kind, r.Decision, r.Reason, r.Outcome = KindDenied, DecisionDeny, "x", OutcomeAnswered
		}, "outcome"},
		{"negative duration", func(r *Record) { r.DurationMS = -1 }, "duration_ms"},
		{"status out of range", func(r *Record) { r.Kind, r.Outcome, r.UpstreamStatus = KindResult, OutcomeAnswered, 600 }, "upstream_status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &memSink{}
			l := newTestLog(t, sink)
			r := intent(1)
			tt.edit(&r)
			_, err := l.Append(context.Background(), r)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Append = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), "field "+tt.field+":") {
				t.Errorf("Append error %q does not name field %s", err, tt.field)
			}
			if strings.Contains(err.Error(), "4242") {
				t.Errorf("Append error %q repeats the value", err)
			}
			if len(sink.lines) != 0 {
				t.Errorf("a refused record was written: %d lines", len(sink.lines))
			}
		})
	}
}

func TestAppendRefusesChainFields(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Record)
	}{
		{"chain", func(r *Record) { r.Chain = "000000000000000000000000" }},
		{"seq", func(r *Record) { r.Seq = 9 }},
		{"prev", func(r *Record) { r.Prev = zeroHash }},
		{"hash", func(r *Record) { r.Hash = testSHA }},
		{"time", func(r *Record) { r.Time = fixedClock()() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLog(t, &memSink{})
			r := intent(1)
			tt.edit(&r)
			if _, err := l.Append(context.Background(), r); !errors.Is(err, ErrInvalid) {
				t.Errorf("Append with %s set = %v, want ErrInvalid", tt.name, err)
			}
		})
	}
}

// TestAcceptedKinds checks one valid record of each kind, so that the
// rules between fields do not refuse what the forwarder must write.
func TestAcceptedKinds(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
	}{
		{"intent", intent(1)},
		{"result answered", result(1)},
		{"result sent no response", Record{Kind: KindResult, RequestID: "req_1", ForwardID: "fwd_1", Caller: "billing",
			Outcome: OutcomeSentNoResponse, DurationMS: 30000}},
		{"denied with malformed token left empty", Record{Kind: KindDenied, RequestID: "req_1", Caller: "spiffe://corp/billing",
			Decision: DecisionDeny, Reason: "destination_not_allowed", Outcome: OutcomeNotSent}},
		{"canary", Record{Kind: KindCanary, RequestID: "req_1", Caller: "billing", Token: testToken,
			Decision: DecisionDeny, Reason: "canary_token"}},
		{"ipv6", func() Record { r := intent(1); r.ResolvedIP = "2001:db8::1"; return r }()},
		{"ipv4-mapped ipv6", func() Record { r := intent(1); r.ResolvedIP = "::ffff:203.0.113.7"; return r }()},
		{"long ipv6", func() Record { r := intent(1); r.ResolvedIP = "2001:db8:1:2:3:4:5:6"; return r }()},
		{"every tls version", func() Record { r := intent(1); r.TLSVersion = "TLS 1.0"; return r }()},
		{"12 digits in request id", func() Record { r := intent(1); r.RequestID = "422222222222"; return r }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLog(t, &memSink{})
			if _, err := l.Append(context.Background(), tt.rec); err != nil {
				t.Errorf("Append = %v, want nil", err)
			}
		})
	}
}

// TestCanonicalForm pins the stored form: field order, every field
// present, hash last, no spaces, and the hash over the bytes before it.
func TestCanonicalForm(t *testing.T) {
	sink := &memSink{}
	l := newTestLog(t, sink)
	rec := mustAppend(t, l, intent(1))
	line := sink.lines[0]

	dec := json.NewDecoder(strings.NewReader(line))
	var keys []string
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"chain", "seq", "prev", "time", "kind", "request_id", "forward_id", "caller", "token",
		"destination", "resolved_ip", "tls_version", "peer_cert_sha256", "allowlist_version", "allowlist_sha256",
		"decision", "reason", "outcome", "upstream_status", "duration_ms", "hash"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("stored field order (-want +got):\n%s", diff)
	}
	if strings.ContainsAny(line, "\n\\") || strings.Contains(line, `": `) || strings.Contains(line, `, "`) {
		t.Errorf("stored form is not compact, or has escapes: %s", line)
	}
	prefix, _, ok := strings.Cut(line, `,"hash":"`)
	if !ok {
		t.Fatalf("no hash member in %s", line)
	}
	if got := sha256Hex([]byte(prefix + "}")); got != rec.Hash {
		t.Errorf("hash = %s, want sha256 of the bytes before it = %s", rec.Hash, got)
	}
	if !strings.Contains(line, `"time":"2025-06-01T10:00:00.001000007Z"`) {
		t.Errorf("time not in UTC RFC 3339 nano: %s", line)
	}
	if rec.Seq != 1 || rec.Prev != zeroHash {
		t.Errorf("first record seq, prev = %d, %s; want 1 and 64 zeros", rec.Seq, rec.Prev)
	}
}

// TestJQRecipe runs the documented stock-tools recipe against a real log,
// and checks that the package documentation shows that very script.
func TestJQRecipe(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("testdata", "verify-with-jq.sh"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(script)), "\n") {
		if !bytes.Contains(doc, []byte("//\t"+l+"\n")) {
			t.Errorf("doc.go does not show the recipe line %q", l)
		}
	}
	for _, tool := range []string{"jq", "sha256sum", "awk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (./scripts/test installs it): %v", tool, err)
		}
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	fs, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	a, b := newTestLog(t, fs), newTestLog(t, fs)
	for i := range 3 {
		mustAppend(t, a, intent(i))
		mustAppend(t, b, result(i))
	}
	run := func(p string) (string, error) {
		out, err := exec.Command("sh", filepath.Join("testdata", "verify-with-jq.sh"), p).CombinedOutput()
		return string(out), err
	}
	if out, err := run(path); err != nil {
		t.Fatalf("recipe on an untouched log: %v\n%s", err, out)
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(dir, "tampered.log")
	if err := os.WriteFile(tampered, bytes.Replace(raw, []byte(`"caller":"billing"`), []byte(`"caller":"payouts"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(tampered)
	if err == nil || !strings.Contains(out, "line 1: hash does not match contents") {
		t.Errorf("recipe on a modified log = %v, output:\n%s\nwant a failure naming line 1", err, out)
	}
}

// TestShapesAgreeWithTheirRules checks each hand-written shape against the
// regular expression it documents, on edge cases and random strings.
func TestShapesAgreeWithTheirRules(t *testing.T) {
	shapes := map[string]shape{"id": reID, "token": reToken, "caller": reCaller, "destination": reDestination,
		"reason": reReason, "sha256": reSHA256, "chain": reChain}
	const alphabet = "tok_Aa9z0-.:/@f_ \x00é"
	rng := rand.New(rand.NewPCG(1, 2))
	for name, sh := range shapes {
		re := regexp.MustCompile(sh.rule)
		inputs := []string{"", "tok_", "tok_a", "a", "-", ".", strings.Repeat("a", 63), strings.Repeat("a", 64),
			strings.Repeat("a", 65), strings.Repeat("f", 24), strings.Repeat("f", 64), strings.Repeat("1", 128), strings.Repeat("1", 129),
			"tok_" + strings.Repeat("A", 124), "tok_" + strings.Repeat("A", 125)}
		for range 20000 {
			b := make([]byte, rng.IntN(70))
			for i := range b {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
			inputs = append(inputs, string(b))
		}
		for _, in := range inputs {
			if got, want := sh.MatchString(in), re.MatchString(in); got != want {
				t.Errorf("%s.MatchString(%q) = %v, regexp %s says %v", name, in, got, sh.rule, want)
			}
		}
	}
}

// TestDestinationShapeAgreesWithAllowlist: a record's destination is an
// allowlist entry id. audit keeps its own shape rather than import
// allowlist (which would bring YAML, SSH signatures and OpenTelemetry into
// the audit package and its verifier); this test keeps the two equal.
func TestDestinationShapeAgreesWithAllowlist(t *testing.T) {
	ids := []string{"", "a", "0", "acme-charges", "acme.v2_eu", "-a", ".a", "_a", "A", "acme charges", "acme/x",
		"*", "é", strings.Repeat("a", 63), strings.Repeat("a", 64), "a\n", "a:b", "a@b"}
	r := rand.New(rand.NewPCG(5, 6))
	const alphabet = "az09._-A/ *:"
	for range 2000 {
		b := make([]byte, r.IntN(66))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		ids = append(ids, string(b))
	}
	for _, id := range ids {
		if got, want := reDestination.MatchString(id), allowlist.ValidID(id); got != want {
			t.Errorf("reDestination.MatchString(%q) = %v, allowlist.ValidID = %v", id, got, want)
		}
	}
}

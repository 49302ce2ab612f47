package forwarder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/canary"
	"github.com/cardgate/cardgate/idempotency"
	"github.com/cardgate/cardgate/internal/redistest"
	"github.com/cardgate/cardgate/killswitch"
	"github.com/cardgate/cardgate/ratelimit"
)

const cardBody = `{"number":"{{card.number}}","exp":"{{card.exp_month}}/{{card.exp_year}}"}`

func TestAuditIntentAndResult(t *testing.T) {
	e := newEnv(t, echo)
	resp, err := e.f.Forward(context.Background(), e.jsonRequest(cardBody))
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	recs := e.auditRecords()
	if len(recs) != 2 {
		t.Fatalf("audit records = %v, want intent and result", e.auditKinds())
	}
	leaf := sha256.Sum256(e.p.srv.Certificate().Raw)
	common := audit.Record{
		RequestID: "req_test", ForwardID: resp.ForwardID, Caller: caller, Token: testToken, Destination: "acme",
		AllowlistVersion: 7, AllowlistSHA256: "0000000000000000000000000000000000000000000000000000000000000007",
		Decision: audit.DecisionAllow,
	}
	wantIntent := common
	wantIntent.Kind = audit.KindIntent
	wantResult := common
	wantResult.Kind = audit.KindResult
	wantResult.Outcome = audit.OutcomeAnswered
	wantResult.UpstreamStatus = http.StatusCreated
	wantResult.ResolvedIP = "127.0.0.1"
	wantResult.TLSVersion = "TLS 1.3"
	wantResult.PeerCertSHA256 = hex.EncodeToString(leaf[:])
	// Chain fields and the clock are the audit package's; compare content.
	ignore := func(r audit.Record) audit.Record {
		r.Chain, r.Seq, r.Prev, r.Hash, r.Time, r.DurationMS = "", 0, "", "", time.Time{}, 0
		return r
	}
	if diff := cmp.Diff(wantIntent, ignore(recs[0])); diff != "" {
		t.Errorf("intent record (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantResult, ignore(recs[1])); diff != "" {
		t.Errorf("result record (-want +got):\n%s", diff)
	}
	raw, _ := json.Marshal(recs)
	if bytes.Contains(raw, []byte(testPAN)) || bytes.Contains(raw, []byte("4242 4242")) {
		t.Errorf("audit records hold the card number")
	}
}

// TestAuditUnavailableRefuses: with the audit sink down, the forward is
// refused as not_sent and the processor receives nothing.
func TestAuditUnavailableRefuses(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T) Auditor
	}{
		{"file sink failed", func(t *testing.T) Auditor {
			log, sink, _ := newAuditLog(t)
			sink.Close() // a closed sink refuses every write, as after a failed fsync
			return log
		}},
		{"redis stream down", func(t *testing.T) Auditor {
			srv := redistest.Start(t)
			sink, err := audit.NewRedisStreamSink(audit.RedisStreamOptions{Client: srv.Client(), Key: "audit", Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			log, err := audit.New(audit.Options{Sinks: []audit.Sink{sink}})
			if err != nil {
				t.Fatal(err)
			}
			srv.Stop()
			return log
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.break_(t)
			e := newEnv(t, echo, func(o *Options, _ *allowlist.Destination) { o.Auditor = a })
			fe := forwardErr(t, e.f, e.jsonRequest(cardBody))
			if fe.Code != CodeAuditUnavailable || fe.Outcome != NotSent {
				t.Errorf("Forward = %q/%q (%v), want %s/not_sent", fe.Code, fe.Outcome, fe, CodeAuditUnavailable)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests without an audit record, want 0", n)
			}
		})
	}
}

func TestAuditDenied(t *testing.T) {
	tests := []struct {
		name      string
		mod       func(*Request)
		wantCode  string
		wantToken string
	}{
		{"caller not allowed", func(r *Request) { r.Caller = "spiffe://cardgate.test/payouts" }, "caller_not_allowed", testToken},
		{"unknown destination", func(r *Request) { r.Destination = "exfil" }, "destination_not_allowed", testToken},
		{"literal card as the token", func(r *Request) { r.Card = testPAN }, CodeLiteralCard, ""},
		{"literal card in the body", func(r *Request) { r.Body = `{"n":"4242 4242 4242 4242"}` }, CodeLiteralCard, testToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, echo)
			r := e.jsonRequest(cardBody)
			tt.mod(r)
			fe := forwardErr(t, e.f, r)
			if fe.Code != tt.wantCode {
				t.Fatalf("Forward = %q, want %q", fe.Code, tt.wantCode)
			}
			recs := e.auditRecords()
			if len(recs) != 1 || recs[0].Kind != audit.KindDenied || recs[0].Reason != tt.wantCode || recs[0].Decision != audit.DecisionDeny || recs[0].Outcome != audit.OutcomeNotSent {
				t.Fatalf("audit records = %+v, want one denied record with reason %s", recs, tt.wantCode)
			}
			if recs[0].Token != tt.wantToken {
				t.Errorf("denied record token = %q, want %q", recs[0].Token, tt.wantToken)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	closedPort := func(t *testing.T) int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		return port
	}
	resetAfterBody := func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(interface{ NetConn() net.Conn }); ok {
			if tcp, ok := tc.NetConn().(*net.TCPConn); ok {
				tcp.SetLinger(0) // RST, not FIN
			}
		}
		conn.Close()
	}
	tests := []struct {
		name         string
		handler      http.HandlerFunc
		refused      bool
		wantCode     string
		wantOutcome  Outcome
		wantAttempts int // sends, as the forward log line counts them
		wantReceived int
	}{
		{"connection refused is retried up to the bound", echo, true, CodeUpstreamConnectFailed, NotSent, 3, 0},
		{"reset after the body is never retried", resetAfterBody, false, CodeUpstreamError, SentNoResponse, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := 0
			e := newEnv(t, tt.handler, func(o *Options, d *allowlist.Destination) {
				o.MaxAttempts = 3
				o.RetryBackoff = time.Millisecond
				if tt.refused {
					port = closedPort(t)
					d.Port = port
				}
			})
			r := e.jsonRequest(cardBody)
			if port != 0 {
				r.URL = "https://pay.example.com:" + strconv.Itoa(port) + "/v1/charges"
			}
			fe := forwardErr(t, e.f, r)
			if fe.Code != tt.wantCode || fe.Outcome != tt.wantOutcome {
				t.Errorf("Forward = %q/%q (%v), want %s/%s", fe.Code, fe.Outcome, fe, tt.wantCode, tt.wantOutcome)
			}
			if n := logAttempts(t, e.logText()); n != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", n, tt.wantAttempts)
			}
			// Every attempt dials the addresses checked before the card
			// was read: one lookup, whatever the attempts.
			if n := e.res.count("pay.example.com"); n != 1 {
				t.Errorf("lookups = %d, want 1", n)
			}
			if n := len(e.p.requests()); n != tt.wantReceived {
				t.Errorf("processor received %d requests, want %d", n, tt.wantReceived)
			}
			// One intent, one result, whatever the attempts.
			if got := e.auditKinds(); !cmp.Equal(got, []audit.Kind{audit.KindIntent, audit.KindResult}) {
				t.Errorf("audit kinds = %v, want [intent result]", got)
			}
		})
	}
}

func TestRateLimited(t *testing.T) {
	lim, err := ratelimit.NewMemory(ratelimit.Limits{PerCallerDestination: ratelimit.Limit{Rate: 1, Per: time.Minute, Burst: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, echo, func(o *Options, _ *allowlist.Destination) { o.Limiter = lim })
	if _, err := e.f.Forward(context.Background(), e.jsonRequest(cardBody)); err != nil {
		t.Fatalf("first Forward: %v", err)
	}
	fe := forwardErr(t, e.f, e.jsonRequest(cardBody))
	if fe.Code != CodeRateLimited || fe.Outcome != NotSent {
		t.Errorf("second Forward = %q/%q, want rate_limited/not_sent", fe.Code, fe.Outcome)
	}
	if fe.RetryAfter <= 0 || fe.RetryAfter > time.Minute {
		t.Errorf("RetryAfter = %v, want within (0, 1m]", fe.RetryAfter)
	}
	if n := len(e.p.requests()); n != 1 {
		t.Errorf("processor got %d requests, want 1", n)
	}

	t.Run("redis down fails closed", func(t *testing.T) {
		srv := redistest.Start(t)
		rl, err := ratelimit.NewRedis(ratelimit.RedisOptions{Client: srv.Client(), Limits: ratelimit.Limits{PerCaller: ratelimit.Limit{Rate: 100, Per: time.Second, Burst: 10}}, Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		srv.Stop()
		e := newEnv(t, echo, func(o *Options, _ *allowlist.Destination) { o.Limiter = rl })
		fe := forwardErr(t, e.f, e.jsonRequest(cardBody))
		if fe.Code != CodeRateLimitUnavailable || fe.Outcome != NotSent {
			t.Errorf("Forward = %q/%q, want %s/not_sent", fe.Code, fe.Outcome, CodeRateLimitUnavailable)
		}
		if n := len(e.p.requests()); n != 0 {
			t.Errorf("processor got %d requests, want 0", n)
		}
	})
}

func TestKillSwitch(t *testing.T) {
	ctx := context.Background()
	store := killswitch.NewFileStore(filepath.Join(t.TempDir(), "ks.json"))
	w, err := killswitch.NewWatcher(killswitch.WatcherOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, echo, func(o *Options, _ *allowlist.Destination) { o.Switch = w })

	steps := []struct {
		name     string
		change   func() error
		wantCode string
	}{
		{"never read: fail closed", func() error { return nil }, CodeKillSwitchUnavailable},
		{"read, nothing disabled", func() error { return w.Refresh(ctx) }, ""},
		{"destination disabled", func() error { store.Disable(ctx, "acme", killswitch.Switch{Reason: "INC-7"}); return w.Refresh(ctx) }, CodeDestinationDisabled},
		{"enabled again", func() error { store.Enable(ctx, "acme"); return w.Refresh(ctx) }, ""},
		{"global switch", func() error { store.Disable(ctx, killswitch.All, killswitch.Switch{}); return w.Refresh(ctx) }, CodeDestinationDisabled},
	}
	sent := 0
	for _, s := range steps {
		if err := s.change(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		_, err := e.f.Forward(ctx, e.jsonRequest(cardBody))
		got := ""
		if err != nil {
			got = err.(*Error).Code
		} else {
			sent++
		}
		if got != s.wantCode {
			t.Errorf("%s: Forward = %q (%v), want %q", s.name, got, err, s.wantCode)
		}
	}
	if n := len(e.p.requests()); n != sent {
		t.Errorf("processor got %d requests, want %d", n, sent)
	}
	var denied []string
	for _, r := range e.auditRecords() {
		if r.Kind == audit.KindDenied {
			denied = append(denied, r.Reason)
		}
	}
	want := []string{CodeKillSwitchUnavailable, CodeDestinationDisabled, CodeDestinationDisabled}
	if !cmp.Equal(denied, want) {
		t.Errorf("denied records = %v, want %v", denied, want)
	}
}

func TestCanaryToken(t *testing.T) {
	srv := redistest.Start(t)
	set, err := canary.NewSet(srv.Client(), "canaries", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Add(context.Background(), testToken); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, echo, func(o *Options, _ *allowlist.Destination) { o.Canaries = set })

	fe := forwardErr(t, e.f, e.jsonRequest(cardBody))
	// The holder must not learn it is a canary: the answer is that of a
	// token that does not exist.
	unknown := e.jsonRequest(cardBody)
	unknown.Card = "tok_unknownaaaaaaaaaaaaaaaaaaaaaaaaa"
	ue := forwardErr(t, e.f, unknown)
	if fe.Code != ue.Code || fe.Message != ue.Message || fe.Outcome != ue.Outcome {
		t.Errorf("canary answer %q/%q/%q differs from an unknown token's %q/%q/%q", fe.Code, fe.Message, fe.Outcome, ue.Code, ue.Message, ue.Outcome)
	}
	if fe.Code != "token_not_found" {
		t.Errorf("canary answer = %q, want token_not_found", fe.Code)
	}
	if detok, _ := e.cards.counts(); detok != 1 {
		t.Errorf("Detokenize calls = %d, want 1 (the unknown token only; never the canary)", detok)
	}
	if n := len(e.p.requests()); n != 0 {
		t.Errorf("processor got %d requests, want 0", n)
	}
	if logs := e.logText(); !strings.Contains(logs, `"level":"ERROR","msg":"ALERT: canary token used"`) || !strings.Contains(logs, testToken) {
		t.Errorf("no canary alert in the log:\n%s", logs)
	}
	var canaries []audit.Record
	for _, r := range e.auditRecords() {
		if r.Kind == audit.KindCanary {
			canaries = append(canaries, r)
		}
	}
	if len(canaries) != 1 || canaries[0].Token != testToken || canaries[0].Caller != caller {
		t.Errorf("canary audit records = %+v, want one for %s", canaries, testToken)
	}

	t.Run("canary set unreadable fails closed", func(t *testing.T) {
		srv.Stop()
		fe := forwardErr(t, e.f, e.jsonRequest(cardBody))
		if fe.Code != CodeStoreUnavailable || fe.Outcome != NotSent {
			t.Errorf("Forward = %q/%q, want store_unavailable/not_sent", fe.Code, fe.Outcome)
		}
	})
}

func TestDryRun(t *testing.T) {
	e := newEnv(t, echo)
	r := e.jsonRequest(`{"number":"{{card.number}}","name":"{{card.name}}","month":{{card.exp_month}}}`)
	r.Headers["X-Card-Number"] = []string{"{{card.number}}"}
	r.Headers["Authorization"] = []string{"Bearer sk_test_1"}
	r.Headers["X-Forwarded-For"] = []string{"10.0.0.1"}
	r.DryRun = true
	resp, err := e.f.Forward(context.Background(), r)
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	want := &Preview{
		Method: "POST",
		URL:    e.url("/v1/charges"),
		Headers: http.Header{
			"Content-Type":    {"application/json"},
			"X-Card-Number":   {"[card.number]"},
			"Authorization":   {"Bearer sk_test_1"},
			"User-Agent":      {UserAgent},
			"Accept-Encoding": {"identity"},
		},
		Body: `{"number":"[card.number]","name":"[card.name]","month":[card.exp_month]}`,
	}
	if diff := cmp.Diff(want, resp.DryRun); diff != "" {
		t.Errorf("preview (-want +got):\n%s", diff)
	}
	if resp.Outcome != NotSent || resp.AllowlistVersion != 7 {
		t.Errorf("Outcome, AllowlistVersion = %q, %d; want not_sent, 7", resp.Outcome, resp.AllowlistVersion)
	}
	if detok, _ := e.cards.counts(); detok != 0 {
		t.Errorf("a dry run detokenized %d times", detok)
	}
	if n := len(e.p.requests()); n != 0 {
		t.Errorf("a dry run sent %d requests", n)
	}
	if kinds := e.auditKinds(); len(kinds) != 0 {
		t.Errorf("an allowed dry run wrote audit records %v; nothing was sent", kinds)
	}

	t.Run("policy still applies", func(t *testing.T) {
		r := e.jsonRequest(cardBody)
		r.DryRun = true
		r.Method = "DELETE"
		fe := forwardErr(t, e.f, r)
		if fe.Code != "method_not_allowed" {
			t.Errorf("dry run of a refused method = %q, want method_not_allowed", fe.Code)
		}
	})
}

// idemEnv is two gateways (two Forwarders) sharing one Redis idempotency
// store and one processor.
func idemEnv(t *testing.T, h http.HandlerFunc, opts ...envOpt) (*redistest.Server, []*env) {
	t.Helper()
	srv := redistest.Start(t)
	p := newProcessor(t, h, false)
	var envs []*env
	keys := testIdempotencyKeys(t) // one key backend for both gateways
	for range 2 {
		store, err := idempotency.NewRedisStore(idempotency.RedisOptions{Client: srv.Client(), Keys: keys, Prefix: "test:idem:", Wait: 10 * time.Second, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		all := append([]envOpt{func(o *Options, _ *allowlist.Destination) { o.Idempotency = store }}, opts...)
		envs = append(envs, newEnvOn(t, p, all...))
	}
	return srv, envs
}

func TestIdempotencyReplay(t *testing.T) {
	srv, envs := idemEnv(t, echo)
	a, b := envs[0], envs[1]
	ctx := context.Background()
	req := func(e *env) *Request {
		r := e.jsonRequest(cardBody)
		r.IdempotencyKey = "order-1234:attempt-1"
		return r
	}
	first, err := a.f.Forward(ctx, req(a))
	if err != nil {
		t.Fatalf("first Forward: %v", err)
	}
	// The replay goes to the other gateway.
	again, err := b.f.Forward(ctx, req(b))
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if !again.Replayed || first.Replayed {
		t.Errorf("Replayed = %v then %v, want false then true", first.Replayed, again.Replayed)
	}
	j1, _ := json.Marshal(first)
	j2, _ := json.Marshal(again)
	if !bytes.Equal(j1, j2) {
		t.Errorf("replayed answer differs:\n first %s\nreplay %s", j1, j2)
	}
	if bytes.Contains(j1, []byte(testPAN)) {
		t.Fatalf("the answer holds the card number")
	}
	if n := len(a.p.requests()); n != 1 {
		t.Errorf("processor got %d requests, want 1", n)
	}
	if bytes.Contains(srv.Dump(), []byte(testPAN)) {
		t.Errorf("Redis holds the card number")
	}

	t.Run("same key, different request", func(t *testing.T) {
		r := req(b)
		r.Body = `{"number":"{{card.number}}","amount":2}`
		fe := forwardErr(t, b.f, r)
		if fe.Code != CodeIdempotencyKeyReused || fe.Outcome != NotSent {
			t.Errorf("Forward = %q/%q, want %s/not_sent", fe.Code, fe.Outcome, CodeIdempotencyKeyReused)
		}
	})
	t.Run("same key, another caller", func(t *testing.T) {
		d := entry(a.p.port)
		d.Callers = append(d.Callers, "spiffe://cardgate.test/payouts")
		a.al.mu.Lock()
		a.al.al = newAllowlist(d)
		a.al.mu.Unlock()
		r := req(a)
		r.Caller = "spiffe://cardgate.test/payouts"
		resp, err := a.f.Forward(ctx, r)
		if err != nil || resp.Replayed {
			t.Errorf("Forward = %+v, %v; want a fresh forward (keys are scoped to the caller)", resp, err)
		}
	})
	t.Run("malformed key", func(t *testing.T) {
		r := req(a)
		r.IdempotencyKey = "has space"
		if fe := forwardErr(t, a.f, r); fe.Code != CodeInvalidIdempotencyKey {
			t.Errorf("Forward = %q, want %s", fe.Code, CodeInvalidIdempotencyKey)
		}
	})
	t.Run("no store", func(t *testing.T) {
		e := newEnvOn(t, a.p)
		r := req(e)
		if fe := forwardErr(t, e.f, r); fe.Code != CodeIdempotencyNotSupported || fe.Outcome != NotSent {
			t.Errorf("Forward = %q/%q, want %s/not_sent", fe.Code, fe.Outcome, CodeIdempotencyNotSupported)
		}
	})
}

// TestIdempotencyConcurrentDuplicates: 20 duplicates at once, across two
// gateways on one Redis: the processor sees exactly one request, and every
// duplicate gets its answer.
func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	_, envs := idemEnv(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond) // long enough for every duplicate to arrive
		echo(w, r)
	})
	var wg sync.WaitGroup
	answers := make([][]byte, 20)
	errs := make([]error, 20)
	for i := range 20 {
		wg.Go(func() {
			e := envs[i%2]
			r := e.jsonRequest(cardBody)
			r.IdempotencyKey = "dup-key"
			resp, err := e.f.Forward(context.Background(), r)
			errs[i] = err
			if err == nil {
				answers[i], _ = json.Marshal(resp)
			}
		})
	}
	wg.Wait()
	if n := len(envs[0].p.requests()); n != 1 {
		t.Errorf("processor got %d requests for one key, want exactly 1", n)
	}
	for i := range 20 {
		if errs[i] != nil {
			t.Errorf("duplicate %d: %v", i, errs[i])
			continue
		}
		if !bytes.Equal(answers[i], answers[0]) {
			t.Errorf("duplicate %d got %s, want %s", i, answers[i], answers[0])
		}
	}
}

// TestIdempotencyNeverResends: a first request that may have reached the
// processor (sent_no_response) is answered from the store, never resent;
// one that certainly did not (not_sent) leaves the key free.
func TestIdempotencyNeverResends(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hang := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			// The gateway gave up: answer nothing, or a 200 written in the
			// race with its hang-up could reach it.
			panic(http.ErrAbortHandler)
		}
	}
	_, envs := idemEnv(t, hang, func(o *Options, d *allowlist.Destination) { d.Timeout = 200 * time.Millisecond })
	a, b := envs[0], envs[1]
	r := a.jsonRequest(cardBody)
	r.IdempotencyKey = "k-sent-no-response"
	fe := forwardErr(t, a.f, r)
	if fe.Outcome != SentNoResponse {
		t.Fatalf("first Forward = %q/%q, want sent_no_response", fe.Code, fe.Outcome)
	}
	r2 := b.jsonRequest(cardBody)
	r2.IdempotencyKey = "k-sent-no-response"
	again := forwardErr(t, b.f, r2)
	if !again.Replayed || again.Code != fe.Code || again.Outcome != SentNoResponse {
		t.Errorf("replay = %q/%q replayed=%v, want the stored %q/sent_no_response", again.Code, again.Outcome, again.Replayed, fe.Code)
	}
	if n := len(a.p.requests()); n != 1 {
		t.Errorf("processor got %d requests, want 1: a possibly-sent request is never resent", n)
	}

	t.Run("not_sent releases the key", func(t *testing.T) {
		ctx := context.Background()
		store := killswitch.NewFileStore(filepath.Join(t.TempDir(), "ks.json"))
		w, _ := killswitch.NewWatcher(killswitch.WatcherOptions{Store: store})
		store.Disable(ctx, "acme", killswitch.Switch{Reason: "test"})
		w.Refresh(ctx)
		srv := redistest.Start(t)
		is, _ := idempotency.NewRedisStore(idempotency.RedisOptions{Client: srv.Client(), Keys: testIdempotencyKeys(t)})
		e := newEnv(t, echo, func(o *Options, _ *allowlist.Destination) { o.Switch = w; o.Idempotency = is })
		r := e.jsonRequest(cardBody)
		r.IdempotencyKey = "k-not-sent"
		if fe := forwardErr(t, e.f, r); fe.Code != CodeDestinationDisabled {
			t.Fatalf("Forward = %q, want destination_disabled", fe.Code)
		}
		store.Enable(ctx, "acme")
		w.Refresh(ctx)
		resp, err := e.f.Forward(ctx, r)
		if err != nil || resp.Replayed || len(e.p.requests()) != 1 {
			t.Errorf("retry with the same key = %+v, %v, %d sent; want a fresh forward", resp, err, len(e.p.requests()))
		}
	})
}

// logAttempts returns the attempts attribute of the one forward log line.
func logAttempts(t *testing.T, logs string) int {
	t.Helper()
	n := -1
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m struct {
			Msg      string `json:"msg"`
			Attempts int    `json:"attempts"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "forward" {
			if n != -1 {
				t.Fatalf("more than one forward log line")
			}
			n = m.Attempts
		}
	}
	return n
}

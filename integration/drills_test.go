package integration

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/redistest"
)

// Fault drills: the built gateway under a fault it must survive. Each
// drill checks the promise that matters when things break: the caller
// gets a typed answer within a bound, the card is never sent without
// being accounted for, and the gateway recovers by itself. Waits are
// bounded and generous (a loaded 2-core CI machine under -race is slow);
// no drill asserts a latency tighter than several seconds.

// drillBound is the longest any one request may take in a drill: far
// above the gateway's own deadlines, far below the client's timeout, so a
// hang shows as a failure rather than a timeout of the whole test.
const drillBound = 12 * time.Second

// outageCodes are the typed answers a forward may get while Redis is down:
// each a 503 with outcome not_sent. The card store is read first, so
// store_unavailable is the usual one; the others come from the parts that
// keep state in the same Redis.
var outageCodes = map[string]bool{
	"store_unavailable":       true,
	"audit_unavailable":       true,
	"rate_limit_unavailable":  true,
	"idempotency_unavailable": true,
	"killswitch_unavailable":  true,
}

// checkOutageResults fails for any answer other than 200 answered or a
// typed 503 not_sent, and for any request slower than drillBound.
func checkOutageResults(t *testing.T, res []result) (ok int, unavailable map[string]int) {
	t.Helper()
	unavailable = map[string]int{}
	for _, r := range res {
		switch {
		case r.err != nil:
			t.Errorf("a forward got no answer: %v", r)
		case r.took > drillBound:
			t.Errorf("a forward took %v, want under %v: %v", r.took, drillBound, r)
		case r.status == http.StatusOK && r.outcome == "answered":
			ok++
		case r.status == http.StatusServiceUnavailable && outageCodes[r.code] && r.outcome == "not_sent":
			unavailable[r.code]++
		default:
			t.Errorf("a forward got %v; want 200 answered or a typed 503 not_sent", r)
		}
	}
	return ok, unavailable
}

func TestDrillRedisKilledUnderLoad(t *testing.T) {
	e := newEnv(t)
	// Both audit sinks: the fsynced file, which outlives Redis and is read
	// below, and a stream on the Redis that dies.
	auditFile := filepath.Join(e.dir, "audit.log")
	e.writeConfig("audit:\n  file: " + auditFile + "\n  redis_stream: cardgate:audit\n")
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)
	tok := e.tokenize(c, visa)
	// Save what is in Redis now (the card, the allowlist mark): SIGKILL
	// keeps only what was saved, as a crash would.
	e.redis.RDB()

	l := e.startLoad(c, 8, drillBody(tok, "acme-charges", e.procURL))
	l.waitFor(t, "answered", 20, drillBound, func(r result) bool { return r.status == http.StatusOK })
	e.redis.Stop()
	l.waitFor(t, "typed 503s", 20, drillBound, func(r result) bool { return r.status == http.StatusServiceUnavailable })
	waitUntil(t, "/readyz reports the store down", drillBound, func() bool { return e.ready(c) == http.StatusServiceUnavailable })
	res := l.results()
	ok, unavailable := checkOutageResults(t, res)
	t.Logf("with Redis killed under load: %d answered, typed 503s %v, of %d forwards", ok, unavailable, len(res))
	if sent := len(e.processor.received()); sent > ok {
		// A request that reached the processor but was not answered 200
		// would be a card sent that the caller was told was not.
		t.Errorf("the processor received %d requests, the callers were told %d were answered", sent, ok)
	}
	// No card left without its intent record: every answered forward has
	// one in the file, and the processor received no more requests than
	// there are intents.
	intents := auditIntents(t, auditFile)
	for _, r := range res {
		if r.status == http.StatusOK && (r.forwardID == "" || !intents[r.forwardID]) {
			t.Errorf("forward %s was sent, but the audit file has no intent record for it", r.forwardID)
		}
	}
	if sent := len(e.processor.received()); sent > len(intents) {
		t.Errorf("the processor received %d requests, the audit file holds %d intent records", sent, len(intents))
	}
	run(t, binary, "audit", "verify", auditFile)

	e.redis.Restart()
	waitUntil(t, "a forward succeeds after Redis restarts", 2*drillBound, func() bool {
		r := e.forward(context.Background(), c, drillBody(tok, "acme-charges", e.procURL))
		return r.status == http.StatusOK
	})
	if e.ready(c) != http.StatusOK {
		t.Errorf("/readyz after Redis restarted is not 200")
	}
	// A card tokenized after the restart forwards too.
	tok2 := e.tokenize(c, mastercard)
	if r := e.forward(context.Background(), c, drillBody(tok2, "acme-charges", e.procURL)); r.status != http.StatusOK {
		t.Errorf("forward of a card tokenized after the restart: %v, want 200", r)
	}
}

func TestDrillUpstreamFaults(t *testing.T) {
	e := newEnv(t)
	hang := startUpstream(t, e.procCA) // never released: it hangs
	resetAddr, resetReceived := startResetter(t, e.procCA)
	refused := closedAddr(t)
	e.signAllowlist(e.allowlistYAML(1) + drillEntry("drill-hang", hang.addr) + drillEntry("drill-reset", resetAddr) + drillEntry("drill-refused", refused))
	// A short upstream timeout, so the hang drill is quick; the bound
	// checked below is still generous.
	e.setConfig("  timeout: 5s\n", "  timeout: 1s\n")
	e.start()
	c := e.client(billing)
	tok := e.tokenize(c, visa)

	tests := []struct {
		name, dest, addr string
		status           int
		code, outcome    string
		received         func() int // requests the upstream read, want 1
	}{
		{"hangs", "drill-hang", hang.addr, http.StatusGatewayTimeout, "upstream_timeout", "sent_no_response",
			func() int { n, _, _ := hang.counts(); return n }},
		{"resets after reading", "drill-reset", resetAddr, http.StatusBadGateway, "upstream_error", "sent_no_response", resetReceived},
		{"refuses connections", "drill-refused", refused, http.StatusBadGateway, "upstream_connect_failed", "not_sent", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.forward(context.Background(), c, drillBody(tok, tt.dest, "https://"+tt.addr+"/v1/charges"))
			if r.err != nil || r.status != tt.status || r.code != tt.code || r.outcome != tt.outcome {
				t.Errorf("forward = %v, want %d %s outcome=%s", r, tt.status, tt.code, tt.outcome)
			}
			if r.took > drillBound {
				t.Errorf("forward took %v, want under %v", r.took, drillBound)
			}
			if tt.received != nil {
				// Sent without an answer: never retried, or the card
				// could be charged twice.
				if n := tt.received(); n != 1 {
					t.Errorf("the upstream read %d requests, want exactly 1", n)
				}
			}
		})
	}
	if e.ready(c) != http.StatusOK {
		t.Errorf("/readyz after the upstream faults is not 200")
	}
}

func TestDrillCallerDisconnects(t *testing.T) {
	e := newEnv(t)
	held := startUpstream(t, e.procCA)
	e.signAllowlist(e.allowlistYAML(1) + drillEntry("drill-held", held.addr))
	e.setConfig("  timeout: 5s\n", "  timeout: 3s\n")
	e.start()
	c := e.client(billing)
	tok := e.tokenize(c, visa)
	body := drillBody(tok, "drill-held", "https://"+held.addr+"/v1/charges")

	// Several callers, each gone while its forward waits on the processor.
	const n = 5
	for i := range n {
		conn := e.rawForward(billing, body)
		waitUntil(t, "the processor holds the forward", drillBound, func() bool { got, _, _ := held.counts(); return got == i+1 })
		conn.Close()
	}
	// The gateway logs each one, and lets go of the processor's
	// connection (at once, or when the upstream timeout ends it): no
	// request is left running.
	waitUntil(t, "every abandoned forward is logged", drillBound, func() bool {
		return len(e.gw.logLines("forward")) >= n
	})
	for _, line := range e.gw.logLines("forward") {
		if line["code"] != "request_canceled" || line["outcome"] != "sent_no_response" {
			t.Errorf("forward log line %v, want code request_canceled and outcome sent_no_response", line)
		}
	}
	waitUntil(t, "the gateway closes every held upstream request", drillBound, func() bool {
		_, active, _ := held.counts()
		return active == 0
	})
	if e.ready(c) != http.StatusOK {
		t.Errorf("/readyz after callers disconnected is not 200")
	}
	held.Release()
	if r := e.forward(context.Background(), c, body); r.status != http.StatusOK || r.outcome != "answered" {
		t.Errorf("forward after the disconnects = %v, want 200 answered", r)
	}
	if r := e.forward(context.Background(), c, drillBody(tok, "acme-charges", e.procURL)); r.status != http.StatusOK {
		t.Errorf("forward to the usual processor after the disconnects = %v, want 200", r)
	}
}

func TestDrillSIGTERMUnderLoad(t *testing.T) {
	e := newEnv(t)
	slow := startUpstream(t, e.procCA)
	e.signAllowlist(e.allowlistYAML(1) + drillEntry("drill-slow", slow.addr))
	// Far longer than the drill holds the requests, however slow the
	// machine: a timeout here would be a flake, not a finding.
	e.setConfig("  timeout: 5s\n", "  timeout: 30s\n")
	e.start()
	c := e.client(billing)
	tok := e.tokenize(c, visa)
	body := drillBody(tok, "drill-slow", "https://"+slow.addr+"/v1/charges")

	// Requests in flight: held at the processor until after SIGTERM, so
	// the drill does not depend on how fast anything runs.
	const n = 6
	var wg sync.WaitGroup
	res := make([]result, n)
	for i := range n {
		wg.Go(func() { res[i] = e.forward(context.Background(), c, body) })
	}
	waitUntil(t, "the processor holds every forward", drillBound, func() bool { got, _, _ := slow.counts(); return got == n })

	if err := e.gw.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the gateway logs its shutdown", drillBound, func() bool {
		return len(e.gw.logLines("shutting down: finishing requests in flight")) == 1
	})
	// New connections are refused while the old requests are still held.
	waitUntil(t, "new connections are refused after SIGTERM", drillBound, func() bool {
		conn, err := net.DialTimeout("tcp", e.addr, time.Second)
		if err == nil {
			conn.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	if _, active, _ := slow.counts(); active != n {
		t.Fatalf("%d of %d requests are still in flight at the processor, want all: the gateway cut them off", active, n)
	}

	// Then the processor answers, and every request in flight finishes.
	slow.Release()
	wg.Wait()
	for i, r := range res {
		if r.err != nil || r.status != http.StatusOK || r.outcome != "answered" {
			t.Errorf("in-flight forward %d = %v, want 200 answered", i, r)
		}
	}
	code, err := e.gw.wait(drillBound)
	if err != nil || code != 0 {
		t.Errorf("after SIGTERM: exit %d, %v; want exit 0\nlog:\n%s", code, err, e.gw.log())
	}
	// After the drain, the final audit head, then the background loops
	// stopped and awaited, before the stores and the audit sink close.
	log := e.gw.log()
	head, stopped := strings.Index(log, `"final":true`), strings.Index(log, `"msg":"background loops stopped"`)
	if head < 0 || stopped < head {
		t.Errorf("want the final audit head, then \"background loops stopped\", in the log:\n%s", log)
	}
}

// TestDrillRedisSentinelFailover runs the gateway on a Sentinel-watched
// Redis and kills the master under load: forwards fail typed while the
// replica is promoted, and succeed again without a restart.
func TestDrillRedisSentinelFailover(t *testing.T) {
	e := newEnv(t)
	s := redistest.StartSentinel(t, redistest.SentinelOptions{})
	e.setConfig(e.redisConfig(), "    mode: sentinel\n    master_name: "+redistest.MasterName+"\n    addrs: ["+strings.Join(s.Addrs(), ", ")+"]\n")
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)
	tok := e.tokenize(c, visa)
	// Asynchronous replication loses writes the replica lacks; make sure
	// it holds the card and the allowlist mark.
	ctx := context.Background()
	if got, err := s.Client().Do(ctx, "WAIT", 1, 5000).Int(); err != nil || got != 1 {
		t.Fatalf("WAIT 1 = %d, %v; want the replica to acknowledge", got, err)
	}

	l := e.startLoad(c, 4, drillBody(tok, "acme-charges", e.procURL))
	l.waitFor(t, "answered", 10, drillBound, func(r result) bool { return r.status == http.StatusOK })
	s.Failover()
	waitUntil(t, "forwards succeed on the promoted replica", 2*drillBound, func() bool {
		return e.forward(ctx, c, drillBody(tok, "acme-charges", e.procURL)).status == http.StatusOK
	})
	ok, unavailable := checkOutageResults(t, l.results())
	t.Logf("sentinel failover under load: %d answered, typed 503s %v", ok, unavailable)
	if tok2 := e.tokenize(c, mastercard); e.forward(ctx, c, drillBody(tok2, "acme-charges", e.procURL)).status != http.StatusOK {
		t.Errorf("a card tokenized after the failover does not forward")
	}
}

// TestGatewayOnRedisCluster runs the gateway on a three-master Cluster
// with every part that keeps state in Redis switched on: the card store,
// the allowlist mark, the audit stream, rate limits, idempotency, the kill
// switch and canaries. Each multi-key script only works on a Cluster if
// its keys share a slot; a CROSSSLOT anywhere fails a forward here.
func TestGatewayOnRedisCluster(t *testing.T) {
	e := newEnv(t)
	cl := redistest.StartCluster(t)
	const stream = "cardgate:audit"
	e.writeConfig("audit:\n  file: " + filepath.Join(e.dir, "audit.log") + "\n  redis_stream: " + stream + "\n" +
		"limits:\n  per_caller: {rate: 1000, per: 1s, burst: 1000}\n  per_caller_destination: {rate: 1000, per: 1s, burst: 1000}\n")
	e.setConfig(e.redisConfig(), "    mode: cluster\n    addrs: ["+strings.Join(cl.Addrs(), ", ")+"]\n")
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)
	ctx := context.Background()
	var first result
	var firstBody map[string]any
	for i := range 12 {
		// Not the amex: tokenize sends a three-digit CVC.
		tok := e.tokenize(c, []string{visa, visa2, mastercard}[i%3])
		body := forwardBody(tok)
		body["url"] = e.procURL
		r := e.forwardWith(ctx, c, body, http.Header{"Idempotency-Key": {"cluster-" + itoa(i)}})
		if r.status != http.StatusOK || r.outcome != "answered" {
			t.Fatalf("forward %d on the cluster = %v, want 200 answered\nlog:\n%s", i, r, e.gw.log())
		}
		if i == 0 {
			first, firstBody = r, body
		}
	}
	// A replay is answered from the stored response, without a second
	// request to the processor; another request under the same key is
	// refused.
	sent := len(e.processor.received())
	key := http.Header{"Idempotency-Key": {"cluster-0"}}
	if r := e.forwardWith(ctx, c, firstBody, key); r.status != http.StatusOK || r.forwardID != first.forwardID {
		t.Errorf("replay on the cluster = %v (forward %s), want 200 with forward %s", r, r.forwardID, first.forwardID)
	}
	other := forwardBody(firstBody["card"].(string))
	other["url"], other["body"] = e.procURL, `{"amount":1}`
	if r := e.forwardWith(ctx, c, other, key); r.status != http.StatusConflict {
		t.Errorf("same Idempotency-Key, another request = %v, want 409", r)
	}
	if n := len(e.processor.received()); n != sent {
		t.Errorf("the processor received %d more requests after the replay, want none", n-sent)
	}
	for _, n := range cl.Nodes {
		if size := n.Client().DBSize(ctx).Val(); size == 0 {
			t.Errorf("cluster node %s holds no key; want the gateway's keys spread over the cluster", n.Addr())
		}
	}
	e.assertNoCardsIn("the cluster's dump", cl.Dump())
	run(t, binary, "audit", "verify", "--redis", strings.Join(cl.Addrs(), ","), "--stream", stream)
	// The same check through the gateway's own configuration.
	run(t, binary, "audit", "verify", "-config", filepath.Join(e.dir, "cardgate.yaml"))
}

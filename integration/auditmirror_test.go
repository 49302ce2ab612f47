package integration

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAuditSinksConvergeAfterRedisOutage: with the audit file and the
// Redis stream both configured, forwards under way when Redis dies still
// get their result records (in the file), /readyz fails while the stream
// lacks them, and once Redis is back the gateway copies them over: both
// sinks end with the same records, and both verify.
func TestAuditSinksConvergeAfterRedisOutage(t *testing.T) {
	e := newEnv(t)
	held := startUpstream(t, e.procCA)
	auditFile := filepath.Join(e.dir, "audit.log")
	const stream = "cardgate:audit"
	e.writeConfig("audit:\n  file: " + auditFile + "\n  redis_stream: " + stream + "\n  timeout: 500ms\n")
	e.signAllowlist(e.allowlistYAML(1) + drillEntry("drill-held", held.addr))
	e.start()
	c := e.client(billing)
	tok := e.tokenize(c, visa)
	for range 3 {
		if r := e.forward(context.Background(), c, drillBody(tok, "acme-charges", e.procURL)); r.status != http.StatusOK {
			t.Fatalf("forward before the outage: %v", r)
		}
	}

	// Three forwards under way: their intents are in both sinks.
	var wg sync.WaitGroup
	results := make([]result, 3)
	for i := range results {
		wg.Go(func() {
			results[i] = e.forward(context.Background(), c, drillBody(tok, "drill-held", "https://"+held.addr+"/v1/charges"))
		})
	}
	waitUntil(t, "the held upstream has the three requests", 10*time.Second, func() bool { n, _, _ := held.counts(); return n == 3 })
	e.redis.RDB() // what Redis keeps over its restart
	e.redis.Stop()
	held.Release()
	wg.Wait()
	for _, r := range results {
		if r.status != http.StatusOK {
			t.Errorf("forward under way when Redis died: %v, want 200 (its result is in the audit file)", r)
		}
	}
	if got := e.ready(c); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage = %d, want 503", got)
	}

	e.redis.Restart()
	waitUntil(t, "ready again", 20*time.Second, func() bool { return e.ready(c) == http.StatusOK })
	if len(e.gw.logLines("audit mirror is behind the audit file; intents (and so forwards) are refused until it catches up")) == 0 {
		t.Error("the gateway never logged that the stream fell behind")
	}
	if len(e.gw.logLines("audit mirror caught up with the audit file")) == 0 {
		t.Error("the gateway never logged that the stream caught up")
	}

	fileLines := strings.Split(strings.TrimSpace(string(mustRead(t, auditFile))), "\n")
	msgs, err := e.redis.Client().XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var streamLines []string
	for _, m := range msgs {
		streamLines = append(streamLines, m.Values["record"].(string))
	}
	if strings.Join(fileLines, "\n") != strings.Join(streamLines, "\n") {
		t.Errorf("the audit file holds %d records and the stream %d; want the same records in the same order", len(fileLines), len(streamLines))
	}
	results3 := 0
	for _, l := range streamLines {
		if strings.Contains(l, `"kind":"result"`) && strings.Contains(l, `"destination":"drill-held"`) {
			results3++
		}
	}
	if results3 != 3 {
		t.Errorf("the stream holds %d result records of the held forwards, want 3:\n%s\nlog:\n%s", results3, strings.Join(fileLines, "\n"), e.gw.log())
	}
	for _, args := range [][]string{{"audit", "verify", auditFile}, {"audit", "verify", "--redis", e.redis.Addr(), "--stream", stream}} {
		if out, err := exec.Command(binary, args...).CombinedOutput(); err != nil {
			t.Errorf("cardgate %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if r := e.forward(context.Background(), c, drillBody(tok, "acme-charges", e.procURL)); r.status != http.StatusOK {
		t.Errorf("forward after the stream caught up: %v, want 200", r)
	}
}

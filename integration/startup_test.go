package integration

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartLog: a normal start (production mode with the local keyring
// allowed by keys.local.unsafe_allow_outside_dev, as the env runs) warns
// that key custody is off and says so in /readyz, and does not log a kill
// switch change when nothing is disabled.
func TestStartLog(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)
	// A few kill switch polls (every 250ms) after the first read.
	waitReadyDetail(t, c, e.addr, "key_custody", "UNSAFE: local keyring outside dev mode")
	time.Sleep(time.Second)

	if lines := e.gw.logLines("kill switch state changed"); len(lines) != 0 {
		t.Errorf("the start logged %d kill switch changes with nothing disabled: %v", len(lines), lines)
	}
	warned := false
	for _, l := range jsonLines(t, e.gw.log()) {
		if l["level"] == "WARN" && strings.HasPrefix(l["msg"].(string), "UNSAFE: local keyring outside dev mode") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no UNSAFE warning for the local keyring outside dev mode in the log:\n%s", e.gw.log())
	}

	resp, err := c.Get("https://" + e.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep struct {
		Checks map[string]struct {
			OK     bool   `json:"ok"`
			Detail string `json:"detail"`
		} `json:"checks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !rep.Checks["key_custody"].OK {
		t.Errorf("readyz = %d, key_custody %+v; want ready, the check passing with its warning", resp.StatusCode, rep.Checks["key_custody"])
	}
}

// TestStartRefusedAllowlist: a gateway whose allowlist does not verify
// refuses to start, and its log does not claim to keep a "last good"
// allowlist it never had.
func TestStartRefusedAllowlist(t *testing.T) {
	e := newEnv(t)
	e.write("allowlist.yaml", []byte(e.allowlistYAML(1))) // never signed
	if err := os.MkdirAll(filepath.Join(e.dir, "allowlist.sigs"), 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := startProcess(t, binary, "serve", "-config", filepath.Join(e.dir, "cardgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if code, err := p.wait(15 * time.Second); err != nil || code == 0 {
		t.Fatalf("serve with an unsigned allowlist: exit %d, %v; want a refused start\n%s", code, err, p.log())
	}
	log := p.log()
	if strings.Contains(log, "keeping the last good allowlist") {
		t.Errorf("the refused start claims to keep a last good allowlist:\n%s", log)
	}
	if len(p.logLines("allowlist: load refused; no allowlist is live, so every forward is refused")) != 1 {
		t.Errorf("no line saying no allowlist is live:\n%s", log)
	}
}

// TestRedisOutageLogIsJSON: while Redis is down, everything the gateway
// writes to its log, go-redis's own messages included, is one JSON object
// per line.
func TestRedisOutageLogIsJSON(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)
	e.redis.Stop()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		e.ready(c) // pings the store and the audit stream
		time.Sleep(100 * time.Millisecond)
	}
	e.redis.Restart()
	waitUntil(t, "ready again after Redis returned", 15*time.Second, func() bool { return e.ready(c) == http.StatusOK })

	lines := jsonLines(t, e.gw.log())
	routed := 0
	for _, l := range lines {
		if l["msg"] == "redis client" {
			routed++
		}
	}
	if routed == 0 {
		t.Errorf("no go-redis message reached the JSON log during the outage (%d lines)", len(lines))
	}
}

// jsonLines parses every line of log as a JSON object, failing the test on
// any line that is not one.
func jsonLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("log line %d is not a JSON object: %q", n, sc.Text())
			continue
		}
		out = append(out, m)
	}
	return out
}

// TestCanaryRecordAllowlistVersion: a canary record names the allowlist
// version in force (it used to carry 0), and the canary CLI takes its
// flags after the token.
func TestCanaryRecordAllowlistVersion(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)
	can := e.tokenize(c, mastercard)
	if out, err := exec.Command(binary, "canary", "add", can, "-config", filepath.Join(e.dir, "cardgate.yaml")).CombinedOutput(); err != nil {
		t.Fatalf("canary add TOKEN -config FILE: %v\n%s", err, out)
	}
	waitReadyDetail(t, c, e.addr, "canaries", "1 canaries")
	req := e.numberOnly(can)
	if status, out := e.post(c, "/v1/forward", req); status != http.StatusNotFound {
		t.Fatalf("canary forward = %d %v, want 404", status, out)
	}
	raw := mustRead(t, filepath.Join(e.dir, "audit.log"))
	found := false
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec struct {
			Kind             string `json:"kind"`
			AllowlistVersion uint64 `json:"allowlist_version"`
			AllowlistSHA256  string `json:"allowlist_sha256"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if rec.Kind != "canary" {
			continue
		}
		found = true
		if rec.AllowlistVersion != 1 || len(rec.AllowlistSHA256) != 64 {
			t.Errorf("canary record: allowlist_version %d, sha256 %q; want 1 and the live allowlist's digest", rec.AllowlistVersion, rec.AllowlistSHA256)
		}
	}
	if !found {
		t.Errorf("no canary record in the audit log:\n%s", raw)
	}
}

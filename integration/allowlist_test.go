package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// withPrev sets prev_sha256 in an allowlist document to the hash of prev.
func withPrev(doc, prev string) string {
	sum := sha256.Sum256([]byte(prev))
	return strings.Replace(doc, `prev_sha256: ""`, "prev_sha256: "+hex.EncodeToString(sum[:]), 1)
}

// readyDetail returns /readyz's allowlist detail.
func (e *env) readyDetail(t *testing.T) (int, string) {
	t.Helper()
	resp, err := e.client(billing).Get("https://" + e.addr + "/readyz")
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
	return resp.StatusCode, rep.Checks["allowlist"].Detail
}

// waitReady polls /readyz until its allowlist detail contains want.
func (e *env) waitReady(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, d := e.readyDetail(t)
		if strings.Contains(d, want) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz allowlist detail = %q, want it to contain %q\nlog:\n%s", d, want, e.gw.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAllowlistReload walks a gateway through a good reload, a bad one
// (which keeps the last good allowlist and says so in /readyz), and a
// restart onto an older signed file (refused: rollback).
func TestAllowlistReload(t *testing.T) {
	e := newEnv(t)
	v1 := e.allowlistYAML(1)
	e.signAllowlist(v1)
	e.start()
	c := e.client(billing)
	// A fresh token each time: the CVC is deleted after its first forward.
	forward := func() (int, map[string]any) {
		req := forwardBody(e.tokenize(c, visa))
		req["url"] = e.procURL
		return e.post(c, "/v1/forward", req)
	}

	v2 := withPrev(e.allowlistYAML(2), v1)
	e.signAllowlist(v2)
	if err := e.gw.signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitReady(t, "version 2")
	if status, out := forward(); status != http.StatusOK || out["allowlist_version"] != float64(2) {
		t.Fatalf("forward after reload = %d %v, want 200 on version 2", status, out)
	}

	// An altered version 3 is refused; version 2 keeps serving.
	e.signAllowlist(withPrev(e.allowlistYAML(3), v2))
	p := filepath.Join(e.dir, "allowlist.yaml")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), "methods: [POST]", "methods: [POST, PUT]", 1)), 0o600)
	e.gw.signal(syscall.SIGHUP)
	detail := e.waitReady(t, "last reload failed")
	if !strings.Contains(detail, "version 2") {
		t.Errorf("readyz detail = %q, want version 2 still live", detail)
	}
	if status, out := forward(); status != http.StatusOK || out["allowlist_version"] != float64(2) {
		t.Errorf("forward after a failed reload = %d %v, want 200 on version 2", status, out)
	}

	// Restarting onto the validly signed version 1 is a rollback: the
	// high-water mark in Redis says 2.
	e.gw.signal(syscall.SIGTERM)
	if code, err := e.gw.wait(15 * time.Second); err != nil || code != 0 {
		t.Fatalf("SIGTERM: exit %d, %v", code, err)
	}
	e.signAllowlist(v1)
	p2, err := startProcess(t, binary, "serve", "-config", filepath.Join(e.dir, "cardgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	code, err := p2.wait(15 * time.Second)
	if err != nil || code == 0 {
		t.Fatalf("gateway on a rolled-back allowlist: exit %d, %v; want it to refuse to start\nlog:\n%s", code, err, p2.log())
	}
	if !strings.Contains(p2.log(), "rollback") {
		t.Errorf("the refusal does not name the rollback:\n%s", p2.log())
	}
}

func TestExpiredAllowlistRefusesStart(t *testing.T) {
	e := newEnv(t)
	doc := e.allowlistYAML(1)
	now := time.Now().UTC()
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "issued_at:"):
			lines[i] = "issued_at: " + now.Add(-48*time.Hour).Format(time.RFC3339)
		case strings.HasPrefix(l, "expires:"):
			lines[i] = "expires: " + now.Add(-time.Hour).Format(time.RFC3339)
		}
	}
	e.signAllowlist(strings.Join(lines, "\n"))
	p, err := startProcess(t, binary, "serve", "-config", filepath.Join(e.dir, "cardgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if code, err := p.wait(15 * time.Second); err != nil || code == 0 {
		t.Fatalf("gateway on an expired allowlist: exit %d, %v; want a refusal\nlog:\n%s", code, err, p.log())
	}
	if !strings.Contains(p.log(), "expired") {
		t.Errorf("the refusal does not say the allowlist expired:\n%s", p.log())
	}
}

package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// addAuditors makes n more auditor keys with ssh-keygen, lists them with
// the env's own key in allowed_signers, one principal each, and returns
// the private key files, the env's own first.
func (e *env) addAuditors(n int) []string {
	e.t.Helper()
	keys := []string{e.signKey}
	for i := 2; i < n+2; i++ {
		k := filepath.Join(e.dir, fmt.Sprintf("auditor%d", i))
		run(e.t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", filepath.Base(k), "-f", k)
		keys = append(keys, k)
	}
	var signers strings.Builder
	for i, k := range keys {
		pub, err := os.ReadFile(k + ".pub")
		if err != nil {
			e.t.Fatal(err)
		}
		fmt.Fprintf(&signers, "auditor%d@cardgate.test namespaces=%q %s", i+1, namespace, pub)
	}
	e.write("allowed_signers", []byte(signers.String()))
	return keys
}

// signWith writes doc and replaces every signature with one per key, made
// by ssh-keygen -Y sign. A key given twice signs twice.
func (e *env) signWith(doc string, keys ...string) {
	e.t.Helper()
	dir := filepath.Join(e.dir, "allowlist.sigs")
	if err := os.RemoveAll(dir); err != nil {
		e.t.Fatal(err)
	}
	p := e.write("allowlist.yaml", []byte(doc))
	for i, k := range keys {
		run(e.t, "ssh-keygen", "-q", "-Y", "sign", "-f", k, "-n", namespace, p)
		sig, err := os.ReadFile(p + ".sig")
		if err != nil {
			e.t.Fatal(err)
		}
		os.Remove(p + ".sig")
		e.write(fmt.Sprintf("allowlist.sigs/%d-%s.sig", i, filepath.Base(k)), sig)
	}
}

// TestThresholdTwoOfThree runs a gateway configured for 2 of 3 auditors.
// At start and on reload (SIGHUP), one signature is refused, one key
// signing twice is refused, and two distinct signers are accepted.
func TestThresholdTwoOfThree(t *testing.T) {
	e := newEnv(t)
	keys := e.addAuditors(2)
	e.setConfig("  threshold: 1\n", "  threshold: 2\n")
	config := filepath.Join(e.dir, "cardgate.yaml")

	// At start.
	v1 := e.allowlistYAML(1)
	for _, tt := range []struct {
		name string
		keys []string
	}{
		{"one signer", keys[:1]},
		{"one key signing twice", []string{keys[1], keys[1]}},
	} {
		e.signWith(v1, tt.keys...)
		p, err := startProcess(t, binary, "serve", "-config", config)
		if err != nil {
			t.Fatal(err)
		}
		code, err := p.wait(15 * time.Second)
		if err != nil || code == 0 {
			t.Fatalf("start with %s: exit %d, %v; want a refusal\nlog:\n%s", tt.name, code, err, p.log())
		}
		if !strings.Contains(p.log(), "threshold_not_met: 1 of 2 required signers") {
			t.Errorf("start with %s: the refusal does not say 1 of 2 signers:\n%s", tt.name, p.log())
		}
	}
	e.signWith(v1, keys[0], keys[1])
	e.start()
	if _, d := e.readyDetail(t); !strings.HasPrefix(d, "version 1,") || strings.Contains(d, "failed") {
		t.Fatalf("readyz allowlist detail after start = %q, want version 1", d)
	}

	// On reload. Each step waits for its own refusal text: the gateway
	// also polls the files, and may see a half-written set first.
	hup := func() {
		t.Helper()
		if err := e.gw.signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	v2 := withPrev(e.allowlistYAML(2), v1)
	e.signWith(v2, keys[2])
	hup()
	if d := e.waitReady(t, "threshold_not_met: 1 of 2 required signers"); !strings.HasPrefix(d, "version 1,") {
		t.Errorf("after a reload with one signer, readyz detail = %q, want version 1 still live", d)
	}

	e.signWith(v2, keys[1], keys[2])
	hup()
	e.waitReady(t, "version 2,")
	if _, d := e.readyDetail(t); strings.Contains(d, "failed") {
		t.Errorf("after a reload with two signers, readyz detail = %q, want no failure", d)
	}
	c := e.client(billing)
	req := forwardBody(e.tokenize(c, visa))
	req["url"] = e.procURL
	if status, out := e.post(c, "/v1/forward", req); status != http.StatusOK || out["allowlist_version"] != float64(2) {
		t.Errorf("forward after the accepted reload = %d %v, want 200 on version 2", status, out)
	}

	v3 := withPrev(e.allowlistYAML(3), v2)
	e.signWith(v3, keys[0], keys[0])
	hup()
	if d := e.waitReady(t, "threshold_not_met: 1 of 2 required signers"); !strings.HasPrefix(d, "version 2,") {
		t.Errorf("after a reload signed twice by one key, readyz detail = %q, want version 2 still live", d)
	}
}

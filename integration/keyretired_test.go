package integration

import (
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestKeyRetired: tokenize, rotate the key, retire the old version by
// force, and forward the old token: the caller gets 410 key_retired (it
// used to be 500 internal_error), nothing is sent, and a card tokenized
// under the new version still forwards.
func TestKeyRetired(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)
	old := e.tokenize(c, visa)

	e.cli("keys", "rotate")
	e.cli("keys", "retire", "-min-version", "2", "-force")
	// The local keyring is read at start: the running gateway still holds
	// the retired version until it restarts, as `keys retire` says.
	if err := e.gw.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := e.gw.wait(30 * time.Second); err != nil || code != 0 {
		t.Fatalf("gateway stop: exit %d, %v", code, err)
	}
	e.start()
	c = e.client(billing)

	status, out := e.post(c, "/v1/forward", e.numberOnly(old))
	if status != http.StatusGone || errCode(out) != "key_retired" {
		t.Errorf("forward of a token under a retired key = %d %v, want 410 key_retired", status, out)
	}
	if errOut, _ := out["error"].(map[string]any); errOut["outcome"] != "not_sent" {
		t.Errorf("outcome = %v, want not_sent", errOut["outcome"])
	}
	if n := len(e.processor.received()); n != 0 {
		t.Errorf("the processor received %d requests, want none", n)
	}

	fresh := e.tokenize(c, visa2)
	if status, out := e.post(c, "/v1/forward", e.numberOnly(fresh)); status != http.StatusOK {
		t.Errorf("forward of a token under the new key = %d %v, want 200", status, out)
	}
}

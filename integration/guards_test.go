package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// answer is one raw HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) code() string {
	var m map[string]any
	_ = json.Unmarshal(a.body, &m)
	return errCode(m)
}

// postTo posts body as JSON to addr with extra headers and returns the raw
// answer, so tests can compare answers byte for byte.
func postTo(t *testing.T, c *http.Client, addr, path string, body any, hdr map[string]string) answer {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "https://"+addr+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("POST %s: %v", path, err)
		return answer{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: raw}
}

// startReplica starts a second gateway process on the same configuration
// (same Redis, same allowlist) but its own audit file, and returns its
// address and the audit file's path.
func (e *env) startReplica(name string) (string, string, *process) {
	e.t.Helper()
	cfg, err := os.ReadFile(filepath.Join(e.dir, "cardgate.yaml"))
	if err != nil {
		e.t.Fatal(err)
	}
	auditPath := filepath.Join(e.dir, name+"-audit.log")
	cfg = bytes.Replace(cfg, []byte(filepath.Join(e.dir, "audit.log")), []byte(auditPath), 1)
	path := e.write(name+".yaml", cfg)
	p, err := startProcess(e.t, binary, "serve", "-config", path)
	if err != nil {
		e.t.Fatal(err)
	}
	addr, err := p.waitForLog("cardgate listening", "addr", 15*time.Second)
	if err != nil {
		e.t.Fatalf("replica %s did not start: %v\nlog:\n%s", name, err, p.log())
	}
	e.t.Cleanup(func() { e.assertNoCardsIn("replica log", []byte(p.log())) })
	c := e.client(billing)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get("https://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("replica %s never became ready\nlog:\n%s", name, p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addr, auditPath, p
}

// cli runs the cardgate binary with the env's configuration.
func (e *env) cli(args ...string) string {
	e.t.Helper()
	cmd := exec.Command(binary, append([]string{args[0], "-config", filepath.Join(e.dir, "cardgate.yaml")}, args[1:]...)...)
	cmd.Env = append(os.Environ(), "CARDGATE_LOG_LEVEL=info")
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("cardgate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// numberOnly is a forward that can be repeated: the CVC is deleted after
// its first use.
func (e *env) numberOnly(tok string) map[string]any {
	m := forwardBody(tok)
	m["url"] = e.procURL
	m["body"] = `{"amount":1000,"number":"{{card.number}}","exp":"{{card.exp_month}}/{{card.exp_year}}"}`
	return m
}

// TestTwoReplicas runs two gateway processes on one Redis: an
// Idempotency-Key holds across them, the kill switch reaches both, a
// canary token raises the alert, and a dry run sends nothing.
func TestTwoReplicas(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	addr2, audit2, p2 := e.startReplica("replica2")
	addrs := []string{e.addr, addr2}
	c := e.client(billing)
	tok := e.tokenize(c, visa)
	req := e.numberOnly(tok)

	t.Run("idempotency across replicas", func(t *testing.T) {
		var wg sync.WaitGroup
		answers := make([]answer, 10)
		for i := range answers {
			wg.Go(func() {
				answers[i] = postTo(t, c, addrs[i%2], "/v1/forward", req, map[string]string{"Idempotency-Key": "order-77"})
			})
		}
		wg.Wait()
		if n := len(e.processor.received()); n != 1 {
			t.Fatalf("processor received %d requests for one Idempotency-Key, want exactly 1", n)
		}
		replays := 0
		for i, a := range answers {
			if a.status != http.StatusOK {
				t.Errorf("duplicate %d: %d %s", i, a.status, a.body)
				continue
			}
			if !bytes.Equal(a.body, answers[0].body) && answers[0].status == http.StatusOK {
				t.Errorf("duplicate %d answered %s, want the same bytes as %s", i, a.body, answers[0].body)
			}
			if a.header.Get("Idempotent-Replayed") == "true" {
				replays++
			}
			e.assertNoCardsIn("an idempotent answer", a.body)
		}
		if replays != len(answers)-1 {
			t.Errorf("%d answers marked Idempotent-Replayed, want %d", replays, len(answers)-1)
		}
		other := forwardBody(tok)
		other["url"] = e.procURL
		other["body"] = `{"amount":2000,"number":"{{card.number}}"}`
		if a := postTo(t, c, addr2, "/v1/forward", other, map[string]string{"Idempotency-Key": "order-77"}); a.status != http.StatusConflict || a.code() != "idempotency_key_reused" {
			t.Errorf("same key, different request = %d %s, want 409 idempotency_key_reused", a.status, a.body)
		}
		e.assertNoCardsIn("the Redis dump", e.redis.Dump())
	})

	t.Run("dry run sends nothing", func(t *testing.T) {
		before := len(e.processor.received())
		dry := e.numberOnly(tok)
		dry["dry_run"] = true
		a := postTo(t, c, addr2, "/v1/forward", dry, nil)
		if a.status != http.StatusOK || !bytes.Contains(a.body, []byte(`[card.number]`)) || !bytes.Contains(a.body, []byte(`"outcome":"not_sent"`)) {
			t.Errorf("dry run = %d %s, want 200 with masked stand-ins and not_sent", a.status, a.body)
		}
		if n := len(e.processor.received()); n != before {
			t.Errorf("a dry run reached the processor")
		}
	})

	t.Run("kill switch reaches every replica", func(t *testing.T) {
		start := time.Now()
		e.cli("destinations", "disable", "acme-charges", "--reason", "integration drill")
		for i, addr := range addrs {
			for {
				a := postTo(t, c, addr, "/v1/forward", req, nil)
				if a.status == http.StatusForbidden && a.code() == "destination_disabled" {
					t.Logf("replica %d refused %v after the disable command returned", i, time.Since(start))
					break
				}
				// The design's bound is 1s; the test allows more so a slow
				// machine cannot fail it.
				if time.Since(start) > 5*time.Second {
					t.Fatalf("replica %d still answers %d %s 5s after the disable", i, a.status, a.body)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		if out := e.cli("destinations", "status"); !strings.Contains(out, "acme-charges") || !strings.Contains(out, "integration drill") {
			t.Errorf("status = %q", out)
		}
		e.cli("destinations", "enable", "acme-charges")
		deadline := time.Now().Add(5 * time.Second)
		for _, addr := range addrs {
			for postTo(t, c, addr, "/v1/forward", req, nil).status != http.StatusOK {
				if time.Now().After(deadline) {
					t.Fatal("a replica still refuses after enable")
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	})

	t.Run("canary token", func(t *testing.T) {
		can := e.tokenize(c, mastercard)
		e.cli("canary", "add", can)
		// Replicas poll the canary set; wait until this one has read it.
		waitReadyDetail(t, e.client(billing), addr2, "canaries", "1 canaries")
		cr := forwardBody(can)
		cr["url"] = e.procURL
		before := len(e.processor.received())
		a := postTo(t, c, addr2, "/v1/forward", cr, nil)
		if a.status != http.StatusNotFound || a.code() != "token_not_found" {
			t.Errorf("canary forward = %d %s, want 404 token_not_found", a.status, a.body)
		}
		if len(e.processor.received()) != before {
			t.Error("a canary token reached the processor")
		}
		if _, err := p2.waitForLog("ALERT: canary token used", "token", 5*time.Second); err != nil {
			t.Errorf("no canary alert in the replica's log: %v", err)
		}
	})

	t.Run("audit logs verify", func(t *testing.T) {
		for _, path := range []string{filepath.Join(e.dir, "audit.log"), audit2} {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			e.assertNoCardsIn("the audit log", raw)
			out, err := exec.Command(binary, "audit", "verify", path).CombinedOutput()
			if err != nil {
				t.Errorf("cardgate audit verify %s: %v\n%s", filepath.Base(path), err, out)
			}
		}
		all := string(mustRead(t, filepath.Join(e.dir, "audit.log"))) + string(mustRead(t, audit2))
		for _, want := range []string{`"kind":"intent"`, `"kind":"result"`, `"kind":"denied"`, `"reason":"destination_disabled"`, `"kind":"canary"`} {
			if !strings.Contains(all, want) {
				t.Errorf("the audit logs lack %s", want)
			}
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBudgets: over the per-(caller, destination) budget, a 429 with
// Retry-After, and nothing sent.
func TestBudgets(t *testing.T) {
	e := newEnv(t)
	e.writeConfig("limits:\n  per_caller_destination: {rate: 1, per: 1m, burst: 2}\n")
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)
	req := e.numberOnly(e.tokenize(c, visa))
	for i := range 2 {
		if a := postTo(t, c, e.addr, "/v1/forward", req, nil); a.status != http.StatusOK {
			t.Fatalf("forward %d = %d %s, want 200 within the burst", i, a.status, a.body)
		}
	}
	a := postTo(t, c, e.addr, "/v1/forward", req, nil)
	if a.status != http.StatusTooManyRequests || a.code() != "rate_limited" {
		t.Fatalf("third forward = %d %s, want 429 rate_limited", a.status, a.body)
	}
	if ra := a.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q, want whole seconds", ra)
	}
	if n := len(e.processor.received()); n != 2 {
		t.Errorf("processor received %d, want 2", n)
	}
}

// waitReadyDetail polls addr's /readyz until check's detail contains want.
func waitReadyDetail(t *testing.T, c *http.Client, addr, check, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := c.Get("https://" + addr + "/readyz")
		if err == nil {
			var rep struct {
				Checks map[string]struct {
					Detail string `json:"detail"`
				} `json:"checks"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&rep)
			resp.Body.Close()
			last = rep.Checks[check].Detail
			if strings.Contains(last, want) {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("readyz %s detail = %q, want it to contain %q", check, last, want)
}

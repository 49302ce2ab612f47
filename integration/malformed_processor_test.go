package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/testpki"
)

// The card of the malformed-processor test. A processor echoes it in bytes
// net/http cannot parse, and net/http quotes those bytes in its errors:
// cardscan masks the number there, but nothing could mask the CVC, the
// expiry or the name. So the gateway must never write an error's cause.
const (
	echoPAN  = visa2
	echoCVC  = "987"
	echoName = "Jane Q Cardholder"
)

// echoLeaks finds the card's values in text. The short digit strings
// count only where they stand alone, so that a port or a byte count that
// happens to hold them is not a leak.
var echoLeaks = []struct {
	what string
	re   *regexp.Regexp
}{
	{"card number", regexp.MustCompile(echoPAN)},
	{"cvc", regexp.MustCompile(`(^|[^0-9])` + echoCVC + `([^0-9]|$)`)},
	{"expiry", regexp.MustCompile(`11/2031`)},
	{"expiry year", regexp.MustCompile(`(^|[^0-9])2031([^0-9]|$)`)},
	{"name", regexp.MustCompile(`Cardholder`)},
}

// hexDigest matches the hex digests in audit records and logs (hashes,
// certificate digests): random hex holds "987" or "2031" now and then.
var hexDigest = regexp.MustCompile(`^[0-9a-f]{32,}$`)

func leaksIn(s string) []string {
	if hexDigest.MatchString(s) {
		return nil
	}
	var out []string
	for _, p := range echoLeaks {
		if p.re.MatchString(s) {
			out = append(out, p.what)
		}
	}
	return out
}

// malformedForms are the answers the test processor sends, by path.
var malformedForms = []struct {
	name   string
	answer func(echo string) string
}{
	{"header line without a colon", func(echo string) string {
		return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Bad " + echo + "\r\nContent-Length: 2\r\n\r\n{}"
	}},
	{"malformed status line", func(echo string) string {
		return "HTTP/1.1 " + compact(echo) + " OK\r\nContent-Length: 2\r\n\r\n{}"
	}},
	{"status line without a version", func(echo string) string {
		return compact(echo) + "\r\nContent-Length: 2\r\n\r\n{}"
	}},
	{"invalid chunked encoding", func(echo string) string {
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" + compact(echo) + "\r\n" + echo + "\r\n0\r\n\r\n"
	}},
	{"bad Content-Length", func(echo string) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: " + compact(echo) + "\r\n\r\n{}"
	}},
	{"header with a NUL byte", func(echo string) string {
		return "HTTP/1.1 200 OK\r\nX-Echo: " + echo + "\x00\r\nContent-Length: 2\r\n\r\n{}"
	}},
	{"over-long header section", func(echo string) string {
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\n")
		for i := 0; b.Len() < 256<<10; i++ {
			fmt.Fprintf(&b, "X-Echo-%d: %s\r\n", i, echo)
		}
		b.WriteString("Content-Length: 2\r\n\r\n{}")
		return b.String()
	}},
	{"response cut mid-body", func(echo string) string {
		return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n" + `{"echo":"` + echo + `"`
	}},
}

func compact(s string) string { return strings.ReplaceAll(s, " ", "_") }

// startRawProcessor is a TLS server that speaks HTTP by hand, since
// net/http cannot be made to send malformed answers. It reads one request,
// echoes the card fields of its JSON body in the answer that the request's
// path selects (/v1/charges/N is malformedForms[N]) and closes.
func startRawProcessor(t *testing.T, ca *testpki.CA) string {
	t.Helper()
	leaf, err := ca.Issue(testpki.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				raw, _ := io.ReadAll(req.Body)
				var in map[string]any
				_ = json.Unmarshal(raw, &in)
				echo := fmt.Sprintf("number=%v cvc=%v exp=%v name=%v", in["number"], in["cvc"], in["exp"], in["name"])
				n, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/v1/charges/"))
				if err != nil || n < 0 || n >= len(malformedForms) {
					io.WriteString(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
					return
				}
				io.WriteString(c, malformedForms[n].answer(echo))
			}()
		}
	}()
	return ln.Addr().String()
}

// TestMalformedProcessorAnswersDoNotLeak forwards a card to a processor
// that answers each malformed form with the card echoed in it, and scans
// the gateway's log, the audit file, Redis and every answer the caller got
// for the card number, the CVC, the expiry and the name.
func TestMalformedProcessorAnswersDoNotLeak(t *testing.T) {
	e := newEnv(t)
	// Both entries of the standard allowlist point at the raw processor.
	e.processor.addr = startRawProcessor(t, e.procCA)
	e.procURL = "https://" + e.processor.addr + "/v1/charges"
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)

	var answers [][]byte
	for i, form := range malformedForms {
		t.Run(form.name, func(t *testing.T) {
			// The CVC is consumed by each forward: tokenize afresh.
			status, out := e.post(c, "/v1/cards", map[string]any{
				"number": echoPAN, "exp_month": 11, "exp_year": 2031, "cvc": echoCVC, "name": echoName,
			})
			if status != http.StatusCreated {
				t.Fatalf("POST /v1/cards = %d %v, want 201", status, out)
			}
			tok, _ := out["token"].(string)
			req := forwardBody(tok)
			req["url"] = e.procURL + "/" + strconv.Itoa(i)
			status, raw := e.postRaw(c, "/v1/forward", req, http.Header{"Idempotency-Key": {"malformed-" + strconv.Itoa(i)}})
			answers = append(answers, raw)
			var got struct {
				Error struct{ Code, Message, Outcome string } `json:"error"`
			}
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("answer is not JSON: %v", err)
			}
			if status < 500 || got.Error.Code == "" || got.Error.Outcome == "not_sent" {
				t.Errorf("forward = %d %s/%s, want a 5xx upstream error that says the card may have been sent", status, got.Error.Code, got.Error.Outcome)
			}
		})
	}

	for i, raw := range answers {
		scanJSONStrings(t, fmt.Sprintf("answer %d", i), raw, nil)
	}
	// The gateway's output reaches the test through a pipe: wait for the
	// last forward's line.
	countForwardLines := func(log string) int { return strings.Count(log, `"msg":"forward"`) }
	for deadline := time.Now().Add(10 * time.Second); countForwardLines(e.gw.log()) < len(malformedForms) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	var forwardLines int
	for _, line := range strings.Split(strings.TrimSpace(e.gw.log()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			if l := leaksIn(line); len(l) > 0 {
				t.Errorf("gateway log line that is not JSON holds the %v", l)
			}
			continue
		}
		if m["msg"] == "forward" && m["code"] != nil {
			forwardLines++
			if m["cause_class"] == nil {
				t.Errorf("forward log line has no cause_class: %v", m["code"])
			}
		}
		// The time is the gateway's clock, not bytes anyone sent.
		scanJSONStrings(t, "gateway log", []byte(line), map[string]bool{"time": true})
	}
	if forwardLines != len(malformedForms) {
		t.Errorf("forward log lines with an error = %d, want %d", forwardLines, len(malformedForms))
	}
	audit, err := os.ReadFile(filepath.Join(e.dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(audit)), "\n") {
		scanJSONStrings(t, "audit record", []byte(line), nil)
	}
	// Redis holds ciphertext and the stored (error) answers; its bytes are
	// binary, so only the long values are looked for.
	dump := e.redis.Dump()
	for _, s := range []string{echoPAN, "11/2031", "Cardholder", "cvc=" + echoCVC} {
		if bytes.Contains(dump, []byte(s)) {
			t.Errorf("the Redis dump holds %q", s)
		}
	}
	e.assertNoCardsIn("the Redis dump", dump)
}

// scanJSONStrings reports every string in the JSON document raw that
// holds the card's values. Numbers are skipped: nobody can write text into
// them.
func scanJSONStrings(t *testing.T, what string, raw []byte, skip map[string]bool) {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Errorf("%s is not JSON: %v", what, err)
		return
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if l := leaksIn(k); len(l) > 0 {
					t.Errorf("%s key %s holds the %v", what, path+"."+k, l)
				}
				if !skip[k] {
					walk(path+"."+k, x)
				}
			}
		case []any:
			for i, x := range v {
				walk(path+"["+strconv.Itoa(i)+"]", x)
			}
		case string:
			if l := leaksIn(v); len(l) > 0 {
				t.Errorf("%s %s holds the %v", what, path, l)
			}
		}
	}
	walk("", v)
}

// postRaw sends v as JSON with the extra headers and returns the status
// and the raw answer.
func (e *env) postRaw(c *http.Client, path string, v any, h http.Header) (int, []byte) {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+e.addr+path, bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, vals := range h {
		req.Header[k] = vals
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	return resp.StatusCode, raw
}

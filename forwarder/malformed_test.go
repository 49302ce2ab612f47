package forwarder

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/internal/testpki"
	"github.com/cardgate/cardgate/vaultclient"
)

// The card the leak tests forward. The processors below echo it back in
// the bytes net/http fails to parse; net/http then quotes those bytes in
// its errors. The CVC, the expiry and the name are what cardscan cannot
// mask, so they are what these tests look for.
const (
	leakPAN    = "4111111111111111"
	leakCVC    = "987"
	leakName   = "Jane Q Cardholder"
	leakMonth  = 11
	leakYear   = 2031
	leakEchoed = "number=4111111111111111 cvc=987 exp=11/2031 name=Jane Q Cardholder"
)

// leakPatterns finds the card's values in text. The short digit strings
// match only where they stand alone, so that a port (127.0.0.1:40987) or
// a byte count that happens to hold them is not a leak.
var leakPatterns = []struct {
	what string
	re   *regexp.Regexp
}{
	{"card number", regexp.MustCompile(leakPAN)},
	{"cvc", regexp.MustCompile(`(^|[^0-9])` + leakCVC + `([^0-9]|$)`)},
	{"expiry", regexp.MustCompile(`11/2031`)},
	{"expiry year", regexp.MustCompile(`(^|[^0-9])2031([^0-9]|$)`)},
	{"name", regexp.MustCompile(`Cardholder`)},
}

// digest matches the hex digests in audit records and logs (hashes,
// certificate digests): random hex holds "987" or "2031" now and then.
var digest = regexp.MustCompile(`^[0-9a-f]{32,}$`)

// leaks returns what of the card s holds.
func leaks(s string) []string {
	if digest.MatchString(s) {
		return nil
	}
	var out []string
	for _, p := range leakPatterns {
		if p.re.MatchString(s) {
			out = append(out, p.what)
		}
	}
	return out
}

// TestLeakPatterns: the patterns find the echo in every form the
// processors below send it, and pass the look-alikes of a clean log line.
func TestLeakPatterns(t *testing.T) {
	for _, s := range []string{leakEchoed, compactEcho, `"cvc=987"`, "exp 11/2031", "Jane_Q_Cardholder", `"year":"2031"`} {
		if len(leaks(s)) == 0 {
			t.Errorf("leaks(%q) = none, want a hit", s)
		}
	}
	for _, s := range []string{"127.0.0.1:40987", "12031ms", "fwd_abcdef234567", "duration 98765", "049774af058e860f4c84f501c7f5702d5e1ff2ae84a987a1e9964b8b4a6357e0"} {
		if got := leaks(s); len(got) != 0 {
			t.Errorf("leaks(%q) = %v, want none", s, got)
		}
	}
}

// compactEcho is the echo without spaces, for slots that end at a space
// (the status code, a Content-Length value).
var compactEcho = strings.ReplaceAll(leakEchoed, " ", "_")

// malformedAnswers are the processor answers net/http cannot parse, each
// carrying the echo where net/http's error would quote it.
var malformedAnswers = []struct {
	name   string
	answer func(echo string) string
	class  string // the cause class the log line must carry
}{
	{"header line without a colon", func(echo string) string {
		return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Bad " + echo + "\r\nContent-Length: 2\r\n\r\n{}"
	}, ClassMalformedResponse},
	{"malformed status line", func(echo string) string {
		return "HTTP/1.1 " + strings.ReplaceAll(echo, " ", "_") + " OK\r\nContent-Length: 2\r\n\r\n{}"
	}, ClassMalformedResponse},
	{"status line without a version", func(echo string) string {
		return strings.ReplaceAll(echo, " ", "_") + "\r\nContent-Length: 2\r\n\r\n{}"
	}, ClassMalformedResponse},
	{"invalid chunked encoding", func(echo string) string {
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.ReplaceAll(echo, " ", "_") + "\r\n" + echo + "\r\n0\r\n\r\n"
	}, ClassMalformedResponse},
	{"bad Content-Length", func(echo string) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: " + strings.ReplaceAll(echo, " ", "_") + "\r\n\r\n{}"
	}, ClassMalformedResponse},
	{"conflicting Content-Length", func(echo string) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: " + strings.ReplaceAll(echo, " ", "_") + "\r\n\r\n{}"
	}, ClassMalformedResponse},
	{"unsupported Transfer-Encoding", func(echo string) string {
		return "HTTP/1.1 200 OK\r\nTransfer-Encoding: " + strings.ReplaceAll(echo, " ", "_") + "\r\n\r\n{}"
	}, ClassMalformedResponse},
	{"header with a NUL byte", func(echo string) string {
		return "HTTP/1.1 200 OK\r\nX-Echo: " + echo + "\x00\r\nContent-Length: 2\r\n\r\n{}"
	}, ClassMalformedResponse},
	{"header with a control byte", func(echo string) string {
		return "HTTP/1.1 200 OK\r\nX-Echo: " + echo + "\x01\x7f\r\nContent-Length: 2\r\n\r\n{}"
	}, ClassMalformedResponse},
	{"header name with a space", func(echo string) string {
		return "HTTP/1.1 200 OK\r\n" + echo + ": x\r\nContent-Length: 2\r\n\r\n{}"
	}, ClassMalformedResponse},
	{"over-long header section", func(echo string) string {
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\n")
		for i := 0; b.Len() < 2*maxResponseHeaderBytes; i++ {
			fmt.Fprintf(&b, "X-Echo-%d: %s\r\n", i, echo)
		}
		b.WriteString("Content-Length: 2\r\n\r\n{}")
		return b.String()
	}, ClassMalformedResponse},
	{"response cut mid-body", func(echo string) string {
		body := `{"echo":"` + echo + `"`
		return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n" + body
	}, ClassEOF},
	{"response cut mid-headers", func(echo string) string {
		return "HTTP/1.1 200 OK\r\nX-Echo: " + echo
	}, ClassEOF},
}

// rawProcessor is a TLS server written byte by byte: httptest cannot send
// malformed HTTP. It reads one request per connection, builds the echo
// from the JSON body it got, writes answer(echo) and closes.
type rawProcessor struct {
	port int
	ca   *testpki.CA
}

func newRawProcessor(t *testing.T, answer func(echo string) string) *rawProcessor {
	t.Helper()
	ca, err := testpki.NewCA("raw processor CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.Leaf{DNSNames: []string{"pay.example.com"}})
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
				var in map[string]string
				_ = json.Unmarshal(raw, &in)
				echo := fmt.Sprintf("number=%s cvc=%s exp=%s name=%s", in["number"], in["cvc"], in["exp"], in["name"])
				io.WriteString(c, answer(echo))
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	p := &rawProcessor{ca: ca}
	p.port, _ = strconv.Atoi(port)
	return p
}

// leakTemplate sends every field, as a checkout would.
const leakTemplate = `{"number":"{{card.number}}","cvc":"{{card.cvc}}","exp":"{{card.exp_month}}/{{card.exp_year}}","name":"{{card.name}}"}`

// leakCard is the card behind testToken in the leak tests.
func leakCard() *vaultclient.Card {
	return &vaultclient.Card{
		Token: testToken, Number: vaultclient.NewPAN(leakPAN), ExpMonth: leakMonth, ExpYear: leakYear,
		CVC: vaultclient.NewCVC(leakCVC), Name: vaultclient.NewName(leakName), Brand: "visa", Last4: "1111",
	}
}

// captureHandler is a slog.Handler that keeps every record with its
// attributes resolved, groups included.
type captureHandler struct {
	mu    *sync.Mutex
	recs  *[]capturedRecord
	attrs []slog.Attr
}

type capturedRecord struct {
	level slog.Level
	msg   string
	attrs map[string]slog.Value
}

func newCaptureHandler() *captureHandler {
	return &captureHandler{mu: &sync.Mutex{}, recs: &[]capturedRecord{}}
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	rec := capturedRecord{level: r.Level, msg: r.Message, attrs: map[string]slog.Value{}}
	var add func(prefix string, a slog.Attr)
	add = func(prefix string, a slog.Attr) {
		v := a.Value.Resolve()
		if v.Kind() == slog.KindGroup {
			for _, g := range v.Group() {
				add(prefix+a.Key+".", g)
			}
			return
		}
		rec.attrs[prefix+a.Key] = v
	}
	for _, a := range h.attrs {
		add("", a)
	}
	r.Attrs(func(a slog.Attr) bool { add("", a); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.recs = append(*h.recs, rec)
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{mu: h.mu, recs: h.recs, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *captureHandler) WithGroup(string) slog.Handler { return h }

func (h *captureHandler) records() []capturedRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]capturedRecord(nil), *h.recs...)
}

// texts returns every string that could carry bytes: the messages and the
// string and any-valued attributes. Numbers, durations and times are typed
// values a processor cannot write into.
func (r capturedRecord) texts() map[string]string {
	out := map[string]string{"msg": r.msg}
	for k, v := range r.attrs {
		switch v.Kind() {
		case slog.KindString, slog.KindAny:
			out[k] = v.String()
		}
	}
	return out
}

// TestMalformedProcessorAnswersDoNotLeak sends the card to a processor
// that answers with each malformed form, echoing the card, and checks every
// sink: the log (through a capturing handler), the spans (an in-memory
// exporter), the audit records (the real audit file) and what the caller
// gets (the error's text and message).
func TestMalformedProcessorAnswersDoNotLeak(t *testing.T) {
	for _, tt := range malformedAnswers {
		t.Run(tt.name, func(t *testing.T) {
			p := newRawProcessor(t, tt.answer)
			logs := newCaptureHandler()
			spans := tracetest.NewInMemoryExporter()
			e := newEnvOn(t, &processor{port: p.port}, func(o *Options, d *allowlist.Destination) {
				o.RootCAs = p.ca.Pool()
				o.Logger = slog.New(logs)
				o.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
			})
			e.cards.cards[testToken] = leakCard

			resp, err := e.f.Forward(context.Background(), e.jsonRequest(leakTemplate))
			fe := forwardErrFrom(t, resp, err)
			if fe.Outcome == NotSent {
				t.Errorf("Forward outcome = not_sent, want sent_no_response or answered: the processor got the card")
			}
			if fe.Class != tt.class {
				t.Errorf("Forward error class = %q (code %q), want %q", fe.Class, fe.Code, tt.class)
			}
			// The cause itself quotes the processor for most forms: that is
			// what the test is about. Where net/http quotes nothing, the test
			// still checks every sink.
			for where, s := range map[string]string{
				"Error()": err.Error(), "%v": fmt.Sprintf("%v", err), "%+v": fmt.Sprintf("%+v", err),
				"Message": fe.Message, "Code": fe.Code, "Class": fe.Class,
			} {
				if l := leaks(s); len(l) > 0 {
					t.Errorf("caller-visible %s = %q holds the %v", where, s, l)
				}
			}

			var sawForward bool
			for _, r := range logs.records() {
				if r.msg == "forward" {
					sawForward = true
					if got := r.attrs["cause_class"].String(); got != tt.class {
						t.Errorf("forward log line cause_class = %q, want %q", got, tt.class)
					}
				}
				for k, s := range r.texts() {
					if l := leaks(s); len(l) > 0 {
						t.Errorf("log line %q attribute %s = %q holds the %v", r.msg, k, s, l)
					}
				}
			}
			if !sawForward {
				t.Errorf("no forward log line")
			}

			ended := spans.GetSpans()
			if len(ended) == 0 {
				t.Errorf("no spans recorded")
			}
			for _, s := range ended {
				texts := map[string]string{"name": s.Name, "status": s.Status.Description}
				addAttrs := func(prefix string, as []attribute.KeyValue) {
					for _, a := range as {
						texts[prefix+string(a.Key)] = a.Value.Emit()
					}
				}
				addAttrs("", s.Attributes)
				for _, ev := range s.Events {
					texts["event "+ev.Name] = ev.Name
					addAttrs("event "+ev.Name+" ", ev.Attributes)
				}
				for k, v := range texts {
					if l := leaks(v); len(l) > 0 {
						t.Errorf("span %s %s = %q holds the %v", s.Name, k, v, l)
					}
				}
			}

			raw, rerr := os.ReadFile(e.auditPath)
			if rerr != nil {
				t.Fatal(rerr)
			}
			recs := e.auditRecords()
			if len(recs) != 2 {
				t.Errorf("audit records = %d, want intent and result", len(recs))
			}
			for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("audit line: %v", err)
				}
				for k, v := range m {
					if s, ok := v.(string); ok {
						if l := leaks(s); len(l) > 0 {
							t.Errorf("audit record %s = %q holds the %v", k, s, l)
						}
					}
				}
			}
		})
	}
}

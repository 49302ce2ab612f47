package integration

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/testpki"
)

// hostileAnswers are answers that hand the forwarded card back in a form
// a byte scan does not read but the caller's reader decodes: XML
// character references, markup an XML reader drops, entity values it
// joins, and UTF-32. Each takes the card number the processor received.
var hostileAnswers = map[string]struct {
	contentType string
	body        func(pan string) string
	decode      func(t *testing.T, body string) string // what the caller's reader makes of it
}{
	"references": {"application/xml", func(pan string) string {
		var b strings.Builder
		for _, c := range pan {
			b.WriteString("&#" + string('0'+c/10) + string('0'+c%10) + ";")
		}
		return "<r><n>" + b.String() + "</n></r>"
	}, xmlText},
	"comment": {"application/xml", func(pan string) string {
		return "<r><n>" + pan[:6] + "<!-- split -->" + pan[6:] + "</n></r>"
	}, xmlText},
	"cdata": {"text/xml", func(pan string) string {
		return "<r><n><![CDATA[" + pan[:8] + "]]><![CDATA[" + pan[8:] + "]]></n></r>"
	}, xmlText},
	"entities": {"application/xml", func(pan string) string {
		return `<!DOCTYPE r [<!ENTITY a "` + pan[:8] + `"><!ENTITY b "` + pan[8:] + `">]><r><n>&a;&b;</n></r>`
	}, expandEntities},
	"utf-32": {"application/json; charset=utf-32", func(pan string) string {
		var b []byte
		for _, c := range []byte(`{"n":"` + pan + `"}`) {
			b = append(b, c, 0, 0, 0)
		}
		return string(b)
	}, func(_ *testing.T, body string) string { return strings.ReplaceAll(body, "\x00", "") }},
}

// xmlText is every text and attribute value of an XML document, as a
// reader that joins adjacent text would see it.
func xmlText(t *testing.T, body string) string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(body))
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the answer is not XML a caller could read: %v", err)
		}
		switch tok := tok.(type) {
		case xml.CharData:
			b.Write(tok)
		case xml.StartElement:
			for _, a := range tok.Attr {
				b.WriteString(a.Value + " ")
			}
		}
	}
	return b.String()
}

var entityDecl = regexp.MustCompile(`<!ENTITY (\w+) "([^"]*)">`)

// expandEntities replaces each &name; by its declared value, as an XML
// reader with DTD support does.
func expandEntities(_ *testing.T, body string) string {
	for _, m := range entityDecl.FindAllStringSubmatch(body, -1) {
		body = strings.ReplaceAll(body, "&"+m[1]+";", m[2])
	}
	return body
}

// startHostileProcessor answers POST /v1/charges/NAME with the card it
// received, spelled as hostileAnswers[NAME] spells it.
func startHostileProcessor(t *testing.T, ca *testpki.CA) string {
	t.Helper()
	leaf, err := ca.Issue(testpki.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Number string `json:"number"`
		}
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in)
		a, ok := hostileAnswers[strings.TrimPrefix(r.URL.Path, "/v1/charges/")]
		if !ok || in.Number == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", a.contentType)
		io.WriteString(w, a.body(in.Number))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestHostileEncodedAnswers: whatever form a processor gives the card it
// received, the caller's reader finds no card in the answer, over the
// built binary.
func TestHostileEncodedAnswers(t *testing.T) {
	e := newEnv(t)
	e.processor.addr = startHostileProcessor(t, e.procCA)
	e.procURL = "https://" + e.processor.addr + "/v1/charges"
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)
	for name, a := range hostileAnswers {
		t.Run(name, func(t *testing.T) {
			req := forwardBody(e.tokenize(c, visa))
			req["url"] = e.procURL + "/" + name
			status, out := e.post(c, "/v1/forward", req)
			if status != http.StatusOK || out["outcome"] != "answered" {
				t.Fatalf("forward = %d %v, want 200 answered", status, out)
			}
			body, _ := out["body"].(string)
			if out["body_encoding"] == "base64" {
				t.Fatalf("the answer came back as base64; the case is broken")
			}
			if strings.Contains(a.decode(t, a.body(visa)), visa) == false {
				t.Fatalf("the case is broken: its own reader does not find the card in the unmasked answer")
			}
			if got := a.decode(t, body); strings.Contains(got, visa) {
				t.Errorf("the caller reads the card in the answer: %q", got)
			}
			e.assertNoCardsIn("the answer", []byte(body))
		})
	}
}

// startStrayBytesProcessor answers each request with a two-byte body and,
// after it, bytes the gateway never asked for: an echo of the request.
// net/http's Transport finds them on the idle connection and writes them
// to the standard library's logger.
func startStrayBytesProcessor(t *testing.T, ca *testpki.CA) string {
	t.Helper()
	leaf, err := ca.Issue(testpki.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
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
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
				time.Sleep(50 * time.Millisecond)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Echo: "+echo+"\r\nContent-Length: 0\r\n\r\n")
				time.Sleep(500 * time.Millisecond)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestStrayProcessorBytesNotLogged: bytes a processor sends after its
// answer, echoing the card, reach neither the log (net/http quotes them
// to the standard logger) nor the caller.
func TestStrayProcessorBytesNotLogged(t *testing.T) {
	e := newEnv(t)
	e.processor.addr = startStrayBytesProcessor(t, e.procCA)
	e.procURL = "https://" + e.processor.addr + "/v1/charges"
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)
	status, out := e.post(c, "/v1/cards", map[string]any{
		"number": echoPAN, "exp_month": 11, "exp_year": 2031, "cvc": echoCVC, "name": echoName,
	})
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/cards = %d %v, want 201", status, out)
	}
	tok, _ := out["token"].(string)
	req := forwardBody(tok)
	req["url"] = e.procURL
	status, raw := e.postRaw(c, "/v1/forward", req, nil)
	if status != http.StatusOK {
		t.Fatalf("forward = %d %s, want 200", status, raw)
	}
	scanJSONStrings(t, "answer", raw, nil)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(e.gw.log(), "Unsolicited response") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(e.gw.log(), "Unsolicited response") {
		t.Fatalf("the gateway never reported the stray bytes; the case is broken:\n%s", e.gw.log())
	}
	for _, line := range strings.Split(strings.TrimSpace(e.gw.log()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			t.Errorf("gateway log line is not JSON (holds the %v): %.120q", leaksIn(line), line)
			continue
		}
		scanJSONStrings(t, "gateway log", []byte(line), map[string]bool{"time": true})
	}
}

// TestClientGreetingNotLogged: an HTTP/2 client whose first bytes are not
// the connection preface gets them quoted in net/http's log line ("bogus
// greeting %q", 24 bytes: a card number and a CVC). The gateway's log
// keeps the words, never the bytes.
func TestClientGreetingNotLogged(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	cert, err := e.callerCA.Issue(testpki.Leaf{URIs: []string{billing}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.serverCA.Pool(), Certificates: []tls.Certificate{cert.TLS}, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	if conn.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("the gateway does not offer HTTP/2 (ALPN %q); this test needs a listener that does", conn.ConnectionState().NegotiatedProtocol)
	}
	io.WriteString(conn, echoPAN+" cvc="+echoCVC+"\r\n\r\n")
	io.Copy(io.Discard, conn) // until the server gives up on it
	conn.Close()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(e.gw.log(), "bogus greeting") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(e.gw.log(), "bogus greeting") {
		t.Fatalf("the gateway never logged the greeting; the case is broken:\n%s", e.gw.log())
	}
	for _, line := range strings.Split(strings.TrimSpace(e.gw.log()), "\n") {
		scanJSONStrings(t, "gateway log", []byte(line), map[string]bool{"time": true})
	}
}

package testprocessor

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/cardgate/cardgate/internal/testpki"
)

// testCard is what every processor in these tests expects: a standard
// test card, a month that needs zero-padding, and a name that needs
// escaping in every body format.
var testCard = Card{Number: "4242424242424242", ExpMonth: 3, ExpYear: 2030, CVC: "737", Name: `Jane "JJ" Doe & <Co>`}

func newCA(t *testing.T) *testpki.CA {
	t.Helper()
	ca, err := testpki.NewCA("testprocessor test CA")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// result is what a client saw and what the processor recorded.
type result struct {
	status int
	header http.Header
	body   []byte
	x      Exchange
}

// do sends req over TLS to s and returns the answer and the exchange the
// processor recorded for it.
func do(t *testing.T, s *Server, req *http.Request) result {
	t.Helper()
	before := len(s.Exchanges())
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	xs := s.Exchanges()
	if len(xs) != before+1 {
		t.Fatalf("processor recorded %d exchanges, want %d", len(xs), before+1)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: b, x: xs[len(xs)-1]}
}

func newRequest(t *testing.T, method, url, contentType string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// jsonAt decodes b and walks it by keys, returning the value found or
// nil.
func jsonAt(t *testing.T, b []byte, keys ...string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, b)
	}
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// check compares what a client saw with what a case wants.
func check(t *testing.T, got result, status int, verdict Verdict) {
	t.Helper()
	if got.status != status || got.x.Verdict != verdict {
		t.Errorf("answer = %d, verdict %s (%s); want %d, verdict %s\nbody: %s", got.status, got.x.Verdict, got.x.Reason, status, verdict, got.body)
	}
}

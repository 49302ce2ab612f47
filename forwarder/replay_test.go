package forwarder

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// A GET whose card is in a header, on a pooled connection that the
// processor drops after reading the request: net/http would resend a
// body-less request it thinks replayable, sending the card twice.
func TestBodylessRequestIsNeverReplayed(t *testing.T) {
	var n atomic.Int32
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 2 {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close() // read the request, answer nothing
			}
			return
		}
		w.Write([]byte("ok"))
	})
	req := func() *Request {
		return &Request{Destination: "acme", URL: e.url("/v1/lookup"), Method: "GET", Card: testToken,
			Headers: http.Header{"X-Card-Number": {"{{card.number}}"}}, Caller: caller, RequestID: "req_test"}
	}
	if _, err := e.f.Forward(context.Background(), req()); err != nil {
		t.Fatalf("first forward: %v", err)
	}
	_, err := e.f.Forward(context.Background(), req())
	fe, _ := err.(*Error)
	if fe == nil || fe.Outcome != SentNoResponse {
		t.Errorf("second forward = %v, want a sent_no_response error", err)
	}
	got := 0
	for _, r := range e.p.requests() {
		if r.header.Get("X-Card-Number") == testPAN {
			got++
		}
	}
	if got != 2 {
		t.Errorf("processor received the card %d times for two forwards, want 2", got)
	}
}

// Go's HTTP client quotes a malformed response line in its error; the
// forwarder's error text (which the API layer logs) must not carry a card
// from it.
func TestMalformedResponseKeepsCardsOutOfErrors(t *testing.T) {
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Echo " + testPAN + "\r\n\r\n")
		bw.Flush()
	})
	_, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}"}`))
	if err == nil {
		t.Fatal("Forward of a malformed answer = nil error")
	}
	if strings.Contains(err.Error(), testPAN) {
		t.Errorf("Forward error %q holds the card number", err)
	}
	if strings.Contains(e.logText(), testPAN) {
		t.Errorf("the forwarder's log holds the card number:\n%s", e.logText())
	}
}

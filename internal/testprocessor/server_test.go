package testprocessor

import (
	"bytes"
	"net/http"
	"testing"
)

// The server bounds what it reads, records every request with its
// verdict, and hands out copies of its record.
func TestServerRecordsAndBounds(t *testing.T) {
	s := Start(t, newCA(t), &Stripe{SecretKey: stripeKey, Card: testCard})
	if _, ok := s.Last(); ok {
		t.Fatal("Last() on a fresh server reports an exchange")
	}
	big := newRequest(t, http.MethodPost, s.URL+StripePath, "application/x-www-form-urlencoded", bytes.Repeat([]byte("a"), maxBody+1))
	got := do(t, s, big)
	check(t, got, http.StatusRequestEntityTooLarge, RefusedRequest)

	req := newRequest(t, http.MethodPost, s.URL+StripePath, "application/x-www-form-urlencoded", stripeForm(nil))
	req.Header.Set("Authorization", basic(stripeKey, ""))
	got = do(t, s, req)
	check(t, got, http.StatusOK, Accepted)
	last, ok := s.Last()
	if !ok || last.Verdict != Accepted || last.Path != StripePath || last.Method != http.MethodPost || !bytes.Equal(last.Body, stripeForm(nil)) {
		t.Errorf("Last() = %s %s %s, want the accepted charge", last.Method, last.Path, last.Verdict)
	}
	xs := s.Exchanges()
	xs[0].Verdict = Accepted
	if s.Exchanges()[0].Verdict != RefusedRequest {
		t.Error("Exchanges() returned the server's own record, not a copy")
	}
}

// Update changes what the processor expects between requests.
func TestServerUpdate(t *testing.T) {
	p := &Stripe{SecretKey: stripeKey, Card: testCard}
	s := Start(t, newCA(t), p)
	send := func() Verdict {
		req := newRequest(t, http.MethodPost, s.URL+StripePath, "application/x-www-form-urlencoded", stripeForm(nil))
		req.Header.Set("Authorization", basic(stripeKey, ""))
		return do(t, s, req).x.Verdict
	}
	if v := send(); v != Accepted {
		t.Fatalf("verdict = %s, want accepted", v)
	}
	s.Update(func() { p.Card.Number = UpdatedNumber })
	if v := send(); v != RefusedCard {
		t.Errorf("verdict after Update = %s, want %s", v, RefusedCard)
	}
}

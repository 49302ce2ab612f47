package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	testToken = "tok_abc123"
	metaOK    = `{"token":"tok_abc123","brand":"visa","last4":"4242","exp_month":3,"exp_year":2031,"fingerprint":"fp","created_at":"2026-03-10T12:00:00Z","last_used_at":"2026-03-11T08:30:00Z","cvc_held":true}`
)

// TestCardCallsWire: each card call sends its method, path and body, and
// reads its answer.
func TestCardCallsWire(t *testing.T) {
	s := startScripted(t, false,
		step{status: 200, body: metaOK},
		step{status: 200, body: metaOK},
		step{status: 200, body: `{"token":"tok_abc123","cvc_held":true,"cvc_expires_at":"2026-03-10T13:00:00Z"}`},
		step{status: 204},
	)
	c, _ := s.client(t)
	ctx := context.Background()
	wantMeta := &CardMeta{Token: testToken, Brand: "visa", Last4: "4242", ExpMonth: 3, ExpYear: 2031, Fingerprint: "fp",
		CreatedAt: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC), LastUsedAt: time.Date(2026, 3, 11, 8, 30, 0, 0, time.UTC), CVCHeld: true}

	meta, err := c.Card(ctx, testToken)
	if err != nil {
		t.Fatalf("Card: %v", err)
	}
	if diff := cmp.Diff(wantMeta, meta); diff != "" {
		t.Errorf("Card (-want +got):\n%s", diff)
	}
	name := "Ann Other"
	meta, err = c.UpdateCard(ctx, testToken, CardUpdate{ExpMonth: 3, ExpYear: 2031, Name: &name})
	if err != nil {
		t.Fatalf("UpdateCard: %v", err)
	}
	if diff := cmp.Diff(wantMeta, meta); diff != "" {
		t.Errorf("UpdateCard (-want +got):\n%s", diff)
	}
	info, err := c.CollectCVC(ctx, testToken, "321")
	if err != nil {
		t.Fatalf("CollectCVC: %v", err)
	}
	if want := (&CVCInfo{Token: testToken, CVCHeld: true, CVCExpiresAt: time.Date(2026, 3, 10, 13, 0, 0, 0, time.UTC)}); !cmp.Equal(want, info) {
		t.Errorf("CollectCVC = %+v, want %+v", info, want)
	}
	if err := c.DeleteCard(ctx, testToken); err != nil {
		t.Fatalf("DeleteCard: %v", err)
	}

	want := []struct {
		method, path, contentType string
		body                      map[string]any
	}{
		{"GET", "/v1/cards/" + testToken, "", nil},
		{"PATCH", "/v1/cards/" + testToken, "application/json", map[string]any{"exp_month": 3.0, "exp_year": 2031.0, "name": "Ann Other"}},
		{"POST", "/v1/cards/" + testToken + "/cvc", "application/json", map[string]any{"cvc": "321"}},
		{"DELETE", "/v1/cards/" + testToken, "", nil},
	}
	got := s.received()
	if len(got) != len(want) {
		t.Fatalf("gateway received %d requests, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.method != w.method || g.path != w.path || g.contentType != w.contentType {
			t.Errorf("request %d = %s %s (%q), want %s %s (%q)", i, g.method, g.path, g.contentType, w.method, w.path, w.contentType)
		}
		var body map[string]any
		if g.body != "" {
			if err := json.Unmarshal([]byte(g.body), &body); err != nil {
				t.Fatalf("request %d body: %v", i, err)
			}
		}
		if diff := cmp.Diff(w.body, body); diff != "" {
			t.Errorf("request %d body (-want +got):\n%s", i, diff)
		}
	}
}

// TestUpdateCardSendsOnlyWhatIsSet: zero fields are left out, so the
// gateway leaves them as they are.
func TestUpdateCardSendsOnlyWhatIsSet(t *testing.T) {
	s := startScripted(t, false, step{status: 200, body: metaOK}, step{status: 200, body: metaOK})
	c, _ := s.client(t)
	empty := ""
	for _, u := range []CardUpdate{{ExpMonth: 4, ExpYear: 2032}, {Name: &empty}} {
		if _, err := c.UpdateCard(context.Background(), testToken, u); err != nil {
			t.Fatal(err)
		}
	}
	got := s.received()
	if got[0].body != `{"exp_month":4,"exp_year":2032}` || got[1].body != `{"name":""}` {
		t.Errorf("bodies = %s, %s", got[0].body, got[1].body)
	}
}

// TestCardCallRefusesNonToken: a value not spelled like a token (it could
// be a card number) is never put into a URL.
func TestCardCallRefusesNonToken(t *testing.T) {
	s := startScripted(t, false)
	c, _ := s.client(t)
	ctx := context.Background()
	for _, tok := range []string{testCard, "", "tok_", "tok_a/b", "tok_../x", "4242 4242 4242 4242", "tok_a?b=1"} {
		_, err1 := c.Card(ctx, tok)
		_, err2 := c.UpdateCard(ctx, tok, CardUpdate{ExpMonth: 1, ExpYear: 2031})
		_, err3 := c.CollectCVC(ctx, tok, "123")
		err4 := c.DeleteCard(ctx, tok)
		for i, err := range []error{err1, err2, err3, err4} {
			if !errors.Is(err, ErrTokenNotFound) {
				t.Errorf("call %d with %q = %v, want ErrTokenNotFound", i, tok, err)
			}
			if err != nil && strings.Contains(err.Error(), "4242") {
				t.Errorf("error text %q holds the value", err)
			}
		}
	}
	if n := len(s.received()); n != 0 {
		t.Errorf("gateway received %d requests, want 0", n)
	}
}

// TestCardCallErrors: refusals are typed and returned at once; a call the
// gateway did not act on is retried.
func TestCardCallErrors(t *testing.T) {
	errBody := func(code string) string {
		return `{"error":{"code":"` + code + `","message":"m","request_id":"req_1"}}`
	}
	for _, tt := range []struct {
		name     string
		steps    []step
		call     func(c *Client) error
		want     error
		requests int
	}{
		{"not permitted", []step{{status: 403, body: errBody("operation_not_permitted")}},
			func(c *Client) error { _, err := c.Card(context.Background(), testToken); return err }, ErrOperationNotPermitted, 1},
		{"invalid update", []step{{status: 422, body: errBody("invalid_update")}},
			func(c *Client) error {
				_, err := c.UpdateCard(context.Background(), testToken, CardUpdate{ExpMonth: 1})
				return err
			}, ErrInvalidUpdate, 1},
		{"deleted token", []step{{status: 404, body: errBody("token_not_found")}},
			func(c *Client) error { return c.DeleteCard(context.Background(), testToken) }, ErrTokenNotFound, 1},
		{"audit down, then deleted", []step{{status: 503, body: errBody("audit_unavailable"), headers: map[string]string{"Retry-After": "1"}}, {status: 204}},
			func(c *Client) error { return c.DeleteCard(context.Background(), testToken) }, nil, 2},
		{"over budget, then read", []step{{status: 429, body: errBody("rate_limited"), headers: map[string]string{"Retry-After": "1"}}, {status: 200, body: metaOK}},
			func(c *Client) error { _, err := c.Card(context.Background(), testToken); return err }, nil, 2},
		{"read cut off, retried", []step{{abort: true}, {status: 200, body: metaOK}},
			func(c *Client) error { _, err := c.Card(context.Background(), testToken); return err }, nil, 2},
		{"delete cut off, not retried", []step{{abort: true}, {status: 204}},
			func(c *Client) error { return c.DeleteCard(context.Background(), testToken) }, ErrNoAnswer, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startScripted(t, false, tt.steps...)
			c, _ := s.client(t)
			err := tt.call(c)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if n := len(s.received()); n != tt.requests {
				t.Errorf("gateway received %d requests, want %d", n, tt.requests)
			}
		})
	}
}

// TestCardTypesNeverPrint: an update and the metadata print no expiry or
// name, whatever the verb or encoder.
func TestCardTypesNeverPrint(t *testing.T) {
	name := "Ann Other"
	u := CardUpdate{ExpMonth: 3, ExpYear: 2031, Name: &name}
	m := CardMeta{Token: testToken, Brand: "visa", Last4: "4242", ExpMonth: 3, ExpYear: 2031}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{ReplaceAttr: dropTime})).Info("x", "u", u, "m", m)
	j, _ := json.Marshal(u)
	for _, out := range []string{fmt.Sprint(u), fmt.Sprintf("%v %+v %#v %s %q %x", u, u, u, u, u, u), fmt.Sprintf("%v %+v %#v", m, m, m), logs.String(), string(j)} {
		for _, secret := range []string{"Ann", "2031"} {
			if strings.Contains(out, secret) {
				t.Errorf("printed %q", out)
			}
		}
	}
}

// dropTime removes a log record's time: its digits can spell a test
// expiry year or CVC, which the leak checks look for.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

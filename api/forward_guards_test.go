package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/forwarder"
)

// guardForwarder answers with a fixed response or error and records the
// idempotency key it was given.
type guardForwarder struct {
	recorder
	resp *forwarder.Response
	key  string
}

func (g *guardForwarder) Forward(ctx context.Context, req *forwarder.Request) (*forwarder.Response, error) {
	g.calls++
	g.key = req.IdempotencyKey
	if g.err != nil {
		return nil, g.err
	}
	return g.resp, nil
}

func TestForwardGuards(t *testing.T) {
	const body = `{"destination":"d","url":"https://x.example/","method":"POST","card":"tok_x"}`
	tests := []struct {
		name        string
		resp        *forwarder.Response
		err         error
		keys        []string
		wantStatus  int
		wantCode    string
		wantHeaders map[string]string
		wantKey     string
		wantCalls   int
	}{
		{"rate limited carries Retry-After in whole seconds, rounded up",
			nil, &forwarder.Error{Code: "rate_limited", Message: "over budget", Outcome: forwarder.NotSent, RetryAfter: 1500 * time.Millisecond}, nil,
			http.StatusTooManyRequests, "rate_limited", map[string]string{"Retry-After": "2"}, "", 1},
		{"kill switch stale is a 503 with Retry-After",
			nil, &forwarder.Error{Code: "killswitch_unavailable", Message: "stale", Outcome: forwarder.NotSent}, nil,
			http.StatusServiceUnavailable, "killswitch_unavailable", map[string]string{"Retry-After": "5"}, "", 1},
		{"destination disabled is a 403",
			nil, &forwarder.Error{Code: "destination_disabled", Message: "off", Outcome: forwarder.NotSent}, nil,
			http.StatusForbidden, "destination_disabled", nil, "", 1},
		{"the key is passed on",
			&forwarder.Response{Outcome: forwarder.Answered, Status: 201}, nil, []string{"order-1"},
			http.StatusOK, "", map[string]string{"Idempotent-Replayed": ""}, "order-1", 1},
		{"a replay is marked",
			&forwarder.Response{Outcome: forwarder.Answered, Status: 201, Replayed: true}, nil, []string{"order-1"},
			http.StatusOK, "", map[string]string{"Idempotent-Replayed": "true"}, "order-1", 1},
		{"a replayed error is marked",
			nil, &forwarder.Error{Code: "upstream_timeout", Message: "slow", Outcome: forwarder.SentNoResponse, Replayed: true}, []string{"order-1"},
			http.StatusGatewayTimeout, "upstream_timeout", map[string]string{"Idempotent-Replayed": "true"}, "order-1", 1},
		{"two keys are refused before forwarding",
			nil, nil, []string{"a", "b"}, http.StatusBadRequest, "invalid_idempotency_key", nil, "", 0},
		{"an empty key is refused before forwarding",
			nil, nil, []string{""}, http.StatusBadRequest, "invalid_idempotency_key", nil, "", 0},
		{"key reused is a 409",
			nil, &forwarder.Error{Code: "idempotency_key_reused", Message: "reused", Outcome: forwarder.NotSent}, []string{"k"},
			http.StatusConflict, "idempotency_key_reused", nil, "k", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &guardForwarder{resp: tt.resp}
			g.err = tt.err
			h, err := New(Options{Cards: g, Forwarder: g, DevCallers: true})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("POST", "/v1/forward", strings.NewReader(body))
			r.RemoteAddr = "127.0.0.1:5555"
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set(DevCallerHeader, "billing")
			for _, k := range tt.keys {
				r.Header.Add(IdempotencyKeyHeader, k)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d (%s)", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantCode != "" && !strings.Contains(w.Body.String(), `"code":"`+tt.wantCode+`"`) {
				t.Errorf("body = %s, want code %s", w.Body, tt.wantCode)
			}
			if tt.wantCalls == 0 && !strings.Contains(w.Body.String(), `"outcome":"not_sent"`) {
				t.Errorf("body = %s, want outcome not_sent", w.Body)
			}
			for k, v := range tt.wantHeaders {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if g.calls != tt.wantCalls || g.key != tt.wantKey {
				t.Errorf("forwarder calls, key = %d, %q; want %d, %q", g.calls, g.key, tt.wantCalls, tt.wantKey)
			}
		})
	}
}

package vaultclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// lookupSelfAnswer puts a front on the Vault stand-in that answers
// auth/token/lookup-self with data and passes every other request to the
// stand-in, and returns a token-auth config for it.
func lookupSelfAnswer(t *testing.T, v *vaultStandIn, data map[string]any) TransitConfig {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/auth/token/lookup-self" {
			writeJSON(w, http.StatusOK, envelope(data, nil))
			return
		}
		v.serve(w, r)
	}))
	srv.Config.ErrorLog = v.srv.Config.ErrorLog
	srv.TLS = v.srv.TLS.Clone()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c := v.config(t)
	c.Address = srv.URL
	c.Auth = TransitAuth{Method: TransitAuthToken, Token: v.rootToken()}
	return c
}

// TestTransitTokenLifetimeUnreadable: a token whose ttl or renewable flag
// Vault reports in a form that does not parse is refused at start with
// ErrTokenLifetime, never taken as "never expires" (which would skip
// renewal until the token lapsed). The error does not quote the value.
func TestTransitTokenLifetimeUnreadable(t *testing.T) {
	v := newVaultStandIn(t)
	tests := []struct {
		name string
		data map[string]any
		ok   bool
	}{
		{"readable: renewable, an hour", map[string]any{"ttl": 3600, "renewable": true}, true},
		{"readable: never expires", map[string]any{"ttl": 0, "renewable": false}, true},
		{"readable: no ttl at all", map[string]any{"renewable": false}, true},
		{"ttl not a duration", map[string]any{"ttl": "soon-ish", "renewable": true}, false},
		{"ttl an object", map[string]any{"ttl": map[string]any{"s": 1}, "renewable": true}, false},
		{"ttl negative", map[string]any{"ttl": -30, "renewable": true}, false},
		{"renewable not a boolean", map[string]any{"ttl": 3600, "renewable": "perhaps-ish"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := OpenTransit(context.Background(), lookupSelfAnswer(t, v, tt.data))
			if tr != nil {
				tr.Close()
			}
			switch {
			case tt.ok && err != nil:
				t.Fatalf("OpenTransit = %v, want it open", err)
			case !tt.ok && !errors.Is(err, ErrTokenLifetime):
				t.Fatalf("OpenTransit = %v, want %v", err, ErrTokenLifetime)
			case !tt.ok && strings.Contains(err.Error(), "-ish"):
				t.Errorf("OpenTransit error %q quotes Vault's value", err)
			}
		})
	}
}

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/api"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/forwarder"
	"github.com/cardgate/cardgate/vaultclient"
)

// TestKeyCustodyCheck: the local keyring outside dev mode passes readiness
// but says UNSAFE; every other setup says where the keys are, and never
// UNSAFE.
func TestKeyCustodyCheck(t *testing.T) {
	tests := []struct {
		name, mode, backend string
		wantUnsafe          bool
		want                string
	}{
		{"local outside dev", config.ModeProduction, config.KeysLocal, true, "keys.local.unsafe_allow_outside_dev"},
		{"local in dev", config.ModeDev, config.KeysLocal, false, "dev mode"},
		{"hsm", config.ModeProduction, config.KeysHSM, false, "HSM"},
		{"vault", config.ModeProduction, config.KeysVault, false, "Vault Transit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Mode, cfg.Keys.Backend = tt.mode, tt.backend
			c := keyCustodyCheck(cfg)
			detail, err := c.Check(context.Background())
			if err != nil {
				t.Errorf("key_custody check = %v, want it to pass (it reports, it does not refuse)", err)
			}
			if c.Name != "key_custody" || !strings.Contains(detail, tt.want) || strings.HasPrefix(detail, "UNSAFE") != tt.wantUnsafe {
				t.Errorf("check %q detail = %q, want it to contain %q, UNSAFE %v", c.Name, detail, tt.want, tt.wantUnsafe)
			}
		})
	}
}

// retiredForwarder fails every forward as the forwarder does when the
// vault reports a card under a retired key version.
type retiredForwarder struct{}

func (retiredForwarder) Forward(context.Context, *forwarder.Request) (*forwarder.Response, error) {
	cause := &vaultclient.Error{Code: vaultclient.CodeKeyRetired, Message: "card sealed under a retired key", Err: vaultclient.ErrKeyRetired}
	return nil, &forwarder.Error{Code: cause.ErrorCode(), Message: cause.PublicMessage(), Outcome: forwarder.NotSent, Err: cause}
}

// TestKeyRetiredAnswer: the API answers a retired key with 410 key_retired
// (it used to be 500 internal_error, the code missing from its table).
func TestKeyRetiredAnswer(t *testing.T) {
	h, err := api.New(api.Options{Cards: nopCards{}, Forwarder: retiredForwarder{}, DevCallers: true})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/forward", strings.NewReader(`{"destination":"acme","url":"https://api.acme.example/","method":"POST","card":"tok_x","body":"{{card.number}}"}`))
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(api.DevCallerHeader, "billing")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var body struct {
		Error struct{ Code, Outcome string } `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("answer %q: %v", w.Body, err)
	}
	if w.Code != http.StatusGone || body.Error.Code != vaultclient.CodeKeyRetired || body.Error.Outcome != string(forwarder.NotSent) {
		t.Errorf("answer = %d %s, want 410 key_retired, not_sent", w.Code, w.Body)
	}
}

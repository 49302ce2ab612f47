package forwarder

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/vaultclient"
)

// TestCardInFreeFieldRefused: a record stored before tokenize refused
// card-like names (here the Cards seam returns it) must not send a card
// number through {{card.name}}, least of all to an entry allowed the name
// and not the number. The check runs on every non-number field the
// template uses, before rendering and before the intent record.
func TestCardInFreeFieldRefused(t *testing.T) {
	tests := []struct {
		name      string
		fields    []allowlist.Field // the entry's
		body      string
		card      func(*vaultclient.Card)
		wantCode  string // "" means sent
		wantKinds []audit.Kind
	}{
		{"name is a card number, entry allows the name only", []allowlist.Field{allowlist.FieldName}, `{"holder":"{{card.name}}"}`,
			func(c *vaultclient.Card) { c.Name = vaultclient.NewName("4111111111111111") }, CodeInvalidName, []audit.Kind{audit.KindDenied}},
		{"spaced card number in the name", []allowlist.Field{allowlist.FieldName}, `{"holder":"{{card.name}}"}`,
			func(c *vaultclient.Card) { c.Name = vaultclient.NewName("Jane 4111 1111 1111 1111") }, CodeInvalidName, []audit.Kind{audit.KindDenied}},
		{"dashed card number in the name, number sent too", nil, `{"n":"{{card.number}}","holder":"{{card.name}}"}`,
			func(c *vaultclient.Card) { c.Name = vaultclient.NewName("4111-1111-1111-1111") }, CodeInvalidName, []audit.Kind{audit.KindDenied}},
		{"the card's own number in the name", nil, `{"n":"{{card.number}}","holder":"{{card.name}}"}`,
			func(c *vaultclient.Card) { c.Name = vaultclient.NewName("Jane " + testPAN) }, CodeInvalidName, []audit.Kind{audit.KindDenied}},
		{"card number in the cvc", nil, `{"n":"{{card.number}}","c":"{{card.cvc}}"}`,
			func(c *vaultclient.Card) { c.CVC = vaultclient.NewCVC("4111111111111111") }, CodeInternal, nil},
		{"card-like name the template does not use", nil, `{"n":"{{card.number}}"}`,
			func(c *vaultclient.Card) { c.Name = vaultclient.NewName("4111111111111111") }, "", []audit.Kind{audit.KindIntent, audit.KindResult}},
		{"clean name", []allowlist.Field{allowlist.FieldName}, `{"holder":"{{card.name}}"}`,
			func(c *vaultclient.Card) {}, "", []audit.Kind{audit.KindIntent, audit.KindResult}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, echo, func(_ *Options, d *allowlist.Destination) {
				if tt.fields != nil {
					d.Fields = tt.fields
				}
			})
			base := e.cards.cards[testToken]
			e.cards.cards[testToken] = func() *vaultclient.Card { c := base(); tt.card(c); return c }

			_, err := e.f.Forward(context.Background(), e.jsonRequest(tt.body))
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Forward = %v, want success", err)
				}
			} else {
				fe := forwardErrFrom(t, nil, err)
				if fe.Code != tt.wantCode || fe.Outcome != NotSent {
					t.Errorf("Forward = %q/%q, want %q/not_sent", fe.Code, fe.Outcome, tt.wantCode)
				}
				if strings.Contains(fe.Error(), "1111") {
					t.Errorf("error %q quotes the field", fe.Error())
				}
				if n := len(e.p.requests()); n != 0 {
					t.Errorf("processor got %d requests, want 0", n)
				}
			}
			if diff := cmp.Diff(tt.wantKinds, e.auditKinds()); diff != "" {
				t.Errorf("audit records (-want +got):\n%s", diff)
			}
			if strings.Contains(e.logText(), "1111") {
				t.Errorf("log holds the smuggled number:\n%s", e.logText())
			}
		})
	}
}

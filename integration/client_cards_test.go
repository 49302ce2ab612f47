package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/client"
	"github.com/cardgate/cardgate/internal/testpki"
)

// cardClient is a client package Client for identity, with its own
// certificate files (a Client reads its files again when they change, so
// two identities never share them).
func (e *env) cardClient(identity, name string) *client.Client {
	e.t.Helper()
	cert, err := e.callerCA.Issue(testpki.Leaf{URIs: []string{identity}, Client: true})
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := client.New("https://"+e.addr, client.WithPEMFiles(
		e.write(name+"/caller.crt", cert.CertPEM), e.write(name+"/caller.key", cert.KeyPEM), e.write(name+"/gateway-ca.pem", e.serverCA.PEM())))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.CloseIdleConnections)
	return c
}

// TestClientCardCalls runs the client package's card calls against the
// built gateway on Redis: read, update, collect a CVC that the next
// forward sends, delete, each refused with its typed code for a caller
// without the permission, and a deleted token answered as unknown.
func TestClientCardCalls(t *testing.T) {
	e := newEnv(t)
	e.writeConfig(cardCallers)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	bill, pay := e.cardClient(billing, "billing"), e.cardClient(payouts, "payouts")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	year := time.Now().Year() + 2

	tok, err := bill.Tokenize(ctx, client.Card{Number: visa, ExpMonth: 12, ExpYear: year, Name: "Jane Doe"})
	if err != nil {
		t.Fatalf("Tokenize: %v", err)
	}
	meta, err := pay.Card(ctx, tok.Token)
	if err != nil || meta.Token != tok.Token || meta.Last4 != "4242" || meta.ExpMonth != 12 || meta.ExpYear != year || meta.CVCHeld || meta.CreatedAt.IsZero() {
		t.Fatalf("Card as payouts (read only) = %+v, %v", meta, err)
	}

	// payouts may only read: each change is refused, typed, and changes
	// nothing.
	name := "Mallory"
	refusals := []struct {
		op   string
		call func() error
	}{
		{"UpdateCard", func() error {
			_, err := pay.UpdateCard(ctx, tok.Token, client.CardUpdate{Name: &name})
			return err
		}},
		{"CollectCVC", func() error { _, err := pay.CollectCVC(ctx, tok.Token, testCVC); return err }},
		{"DeleteCard", func() error { return pay.DeleteCard(ctx, tok.Token) }},
	}
	for _, r := range refusals {
		var ce *client.Error
		if err := r.call(); !errors.Is(err, client.ErrOperationNotPermitted) || !errors.As(err, &ce) || ce.Status != http.StatusForbidden || ce.Attempts != 1 {
			t.Errorf("%s as payouts: %v, want operation_not_permitted, 403, one attempt", r.op, err)
		}
	}

	meta, err = bill.UpdateCard(ctx, tok.Token, client.CardUpdate{ExpMonth: 3, ExpYear: year + 1})
	if err != nil || meta.ExpMonth != 3 || meta.ExpYear != year+1 {
		t.Fatalf("UpdateCard = %+v, %v; want the new expiry", meta, err)
	}
	info, err := bill.CollectCVC(ctx, tok.Token, testCVC)
	if err != nil || !info.CVCHeld || info.Token != tok.Token || !info.CVCExpiresAt.After(time.Now()) {
		t.Fatalf("CollectCVC = %+v, %v", info, err)
	}
	resp, err := bill.Forward(ctx, &client.ForwardRequest{
		Destination: "acme-charges", URL: e.procURL, Method: http.MethodPost, Card: tok.Token,
		Headers: http.Header{"Content-Type": {"application/json"}},
		Body:    `{"number":"{{card.number}}","cvc":"{{card.cvc}}","exp":"{{card.exp_month}}/{{card.exp_year}}"}`,
	})
	if err != nil || resp.Outcome != client.Answered {
		t.Fatalf("Forward with the collected CVC = %+v, %v", resp, err)
	}
	got := e.processor.received()
	want := fmt.Sprintf(`{"number":"%s","cvc":"%s","exp":"03/%d"}`, visa, testCVC, year+1)
	if len(got) != 1 || got[0].Body != want {
		t.Errorf("the processor received %d requests; want one with the updated expiry and the collected CVC", len(got))
	}
	if meta, err := bill.Card(ctx, tok.Token); err != nil || meta.CVCHeld {
		t.Errorf("Card after the forward = %+v, %v; want the CVC used up", meta, err)
	}

	if err := bill.DeleteCard(ctx, tok.Token); err != nil {
		t.Fatalf("DeleteCard: %v", err)
	}
	for _, c := range []*client.Client{bill, pay} {
		if _, err := c.Card(ctx, tok.Token); !errors.Is(err, client.ErrTokenNotFound) {
			t.Errorf("Card after the delete: %v, want token_not_found", err)
		}
	}
	if err := bill.DeleteCard(ctx, tok.Token); !errors.Is(err, client.ErrTokenNotFound) {
		t.Errorf("DeleteCard again: %v, want token_not_found", err)
	}
	// A card number where a token belongs never reaches the wire.
	if _, err := bill.Card(ctx, visa); !errors.Is(err, client.ErrTokenNotFound) {
		t.Errorf("Card(a card number): %v, want token_not_found without a request", err)
	}
	if log := e.gw.log(); strings.Contains(log, visa) || strings.Contains(log, `"`+testCVC+`"`) {
		t.Error("the gateway log holds the card or the CVC")
	}
}

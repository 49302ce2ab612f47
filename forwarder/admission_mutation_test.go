package forwarder

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/cardgate/cardgate/allowlist"
)

// Found by mutation testing (docs/mutation.md): what the re-check's
// refusal says, and a forward canceled while its host is looked up.

// The re-check's refusal names the part of the URL outside the entry; the
// code alone (destination_not_allowed) is the same for each.
func TestRecheckNamesThePart(t *testing.T) {
	entries := recheckEntries(t)
	tests := []struct {
		name, url, want string
	}{
		{"host", "https://api.example.com:8443/v1/charges", "url: host is not the entry's host"},
		{"port", "https://pay.example.com:9443/v1/charges", "url: port is not the entry's port"},
		{"path", "https://pay.example.com:8443/v1/refunds", "url: path is outside the entry's path prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := entries["acme"]
			tgt, te := parseTarget(tt.url)
			if te != nil {
				t.Fatal(te)
			}
			r := &Request{Destination: d.ID, Method: "POST", Caller: caller}
			v := &validated{target: tgt, fields: []allowlist.Field{allowlist.FieldNumber}}
			e := recheck(&d, r, v)
			if e == nil || e.Code != CodeDestinationNotAllowed || e.Message != tt.want {
				t.Errorf("recheck(%s) = %v, want %s: %q", tt.url, e, CodeDestinationNotAllowed, tt.want)
			}
		})
	}
}

// blockingResolver answers no lookup: it waits until the lookup's context
// ends, as a resolver does whose server never answers.
type blockingResolver struct{ started chan struct{} }

func (r blockingResolver) LookupNetIP(ctx context.Context, _, _ string) ([]netip.Addr, error) {
	close(r.started)
	<-ctx.Done()
	return nil, ctx.Err()
}

// A forward whose caller goes away while the host is looked up is
// canceled, not a DNS failure: the caller's going says nothing about the
// destination's name.
func TestCanceledDuringLookup(t *testing.T) {
	res := blockingResolver{started: make(chan struct{})}
	e := newEnv(t, echo, func(o *Options, _ *allowlist.Destination) { o.Resolver = res })
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-res.started
		cancel()
	}()
	_, err := e.f.Forward(ctx, e.jsonRequest(`{"n":"{{card.number}}"}`))
	var fe *Error
	if !errors.As(err, &fe) || fe.Code != CodeCanceled || fe.Outcome != NotSent {
		t.Errorf("Forward canceled during the lookup = %v, want %s/not_sent", err, CodeCanceled)
	}
	if detok, _ := e.cards.counts(); detok != 0 {
		t.Errorf("card store calls = %d, want 0", detok)
	}
}

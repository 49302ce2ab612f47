package vaultclient_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/forwarder"
	"github.com/cardgate/cardgate/vaultclient"
)

type staticAllowlist struct{ al *allowlist.Allowlist }

func (s staticAllowlist) Current() (*allowlist.Allowlist, error) { return s.al, nil }

type loopbackResolver struct{}

func (loopbackResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

// TestLegacyCardLikeNameIsNotForwarded: a record stored before Tokenize
// refused card-like names still reads back with its name. The forwarder,
// reading it through a real Vault, refuses to render it into a request
// for an entry that may receive the name, and the number never reaches the
// processor.
func TestLegacyCardLikeNameIsNotForwarded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyring := filepath.Join(dir, "keyring.json")
	if err := vaultclient.CreateLocalKeyring(keyring); err != nil {
		t.Fatal(err)
	}
	keys, err := vaultclient.OpenLocalKeyring(keyring)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	store, err := vaultclient.OpenBoltStore(filepath.Join(dir, "cards.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	v, err := vaultclient.New(store, keys, vaultclient.Options{})
	if err != nil {
		t.Fatal(err)
	}

	const smuggled = "Jane 4111 1111 1111 1111"
	in := vaultclient.CardInput{Number: "4242424242424242", ExpMonth: 12, ExpYear: time.Now().Year() + 2, Name: smuggled}
	if _, err := v.Tokenize(ctx, in); !errors.Is(err, vaultclient.ErrCardInFreeText) {
		t.Fatalf("Tokenize(card-like name) = %v, want ErrCardInFreeText", err)
	}
	tok, err := vaultclient.StoreLegacyCardForTest(ctx, v, in)
	if err != nil {
		t.Fatal(err)
	}
	card, err := v.Detokenize(ctx, tok)
	if err != nil {
		t.Fatalf("Detokenize(legacy record) = %v", err)
	}
	if card.Name.Reveal() != smuggled {
		t.Fatalf("legacy record's name did not read back as stored")
	}

	var hits atomic.Int32
	proc := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(proc.Close)
	_, portStr, _ := net.SplitHostPort(proc.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	pool := proc.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs

	const caller = "spiffe://cardgate.test/billing"
	dest := allowlist.Destination{
		ID: "names-only", URL: "https://pay.example.com:" + portStr + "/v1", Methods: []string{"POST"},
		Callers: []string{caller}, Fields: []allowlist.Field{allowlist.FieldName},
		UnsafeAllowRanges: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Host:              "pay.example.com", Port: port, PathPrefix: "/v1",
	}
	al := &allowlist.Allowlist{
		Doc: allowlist.Document{Format: allowlist.Format, Version: 1, IssuedAt: time.Now().Add(-time.Hour),
			Expires: time.Now().Add(time.Hour), Destinations: []allowlist.Destination{dest}},
		SHA256: "0000000000000000000000000000000000000000000000000000000000000001",
	}
	sink, err := audit.OpenFileSink(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	auditLog, err := audit.New(audit.Options{Sinks: []audit.Sink{sink}})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	f, err := forwarder.New(forwarder.Options{
		Allowlist: staticAllowlist{al}, Cards: v, Auditor: auditLog, RootCAs: pool,
		Resolver: loopbackResolver{}, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)

	_, err = f.Forward(ctx, &forwarder.Request{
		Destination: "names-only", URL: "https://pay.example.com:" + portStr + "/v1/payees", Method: "POST", Card: tok,
		Headers: http.Header{"Content-Type": {"application/json"}}, Body: `{"payee":"{{card.name}}"}`, Caller: caller,
	})
	var fe *forwarder.Error
	if !errors.As(err, &fe) || fe.Code != forwarder.CodeInvalidName || fe.Outcome != forwarder.NotSent {
		t.Fatalf("Forward(legacy card-like name) = %v, want invalid_name/not_sent", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("processor got %d requests, want 0", n)
	}
	if bytes.Contains(logs.Bytes(), []byte("1111")) {
		t.Errorf("the log holds the smuggled number")
	}
}

package client_test

import (
	"crypto/tls"
	"encoding/json"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/cardgate/cardgate/internal/testpki"
)

// exampleGateway is a stand-in for cardgate in the examples: an mTLS
// server with the gateway's wire format and canned answers. The
// integration tests run the client against the real gateway.
type exampleGateway struct {
	URL                           string
	CallerCert, CallerKey, CAFile string

	srv *httptest.Server
	dir string
}

func (g *exampleGateway) Close() {
	g.srv.Close()
	os.RemoveAll(g.dir)
}

func startExampleGateway() *exampleGateway {
	must := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp("", "cardgate-client-example-")
	must(err)
	serverCA, err := testpki.NewCA("example server CA")
	must(err)
	callerCA, err := testpki.NewCA("example callers CA")
	must(err)
	leaf, err := serverCA.Issue(testpki.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	must(err)
	caller, err := callerCA.Issue(testpki.Leaf{URIs: []string{"spiffe://cardgate.local/billing"}, Client: true})
	must(err)
	g := &exampleGateway{
		dir:        dir,
		CallerCert: filepath.Join(dir, "caller.crt"),
		CallerKey:  filepath.Join(dir, "caller.key"),
		CAFile:     filepath.Join(dir, "ca.pem"),
	}
	must(os.WriteFile(g.CallerCert, caller.CertPEM, 0o600))
	must(os.WriteFile(g.CallerKey, caller.KeyPEM, 0o600))
	must(os.WriteFile(g.CAFile, serverCA.PEM(), 0o600))

	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/cards", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Number   string `json:"number"`
			ExpMonth int    `json:"exp_month"`
			ExpYear  int    `json:"exp_year"`
		}
		if json.NewDecoder(r.Body).Decode(&in) != nil || len(in.Number) < 13 {
			answer(w, 422, map[string]any{"error": map[string]any{"code": "invalid_card_number", "message": "not a card number", "request_id": "req_example"}})
			return
		}
		answer(w, 201, map[string]any{"token": "tok_example", "last4": in.Number[len(in.Number)-4:], "brand": "visa",
			"exp_month": in.ExpMonth, "exp_year": in.ExpYear, "fingerprint": "example"})
	})
	mux.HandleFunc("POST /v1/forward", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Destination, URL, Method, Body string
			DryRun                         bool `json:"dry_run"`
		}
		if json.NewDecoder(r.Body).Decode(&in) != nil {
			answer(w, 400, map[string]any{"error": map[string]any{"code": "invalid_json", "message": "bad body", "request_id": "req_example", "outcome": "not_sent"}})
			return
		}
		if in.Destination != "example-local-processor" {
			answer(w, 403, map[string]any{"error": map[string]any{"code": "destination_not_allowed", "message": "no allowlist entry admits this URL", "request_id": "req_example", "outcome": "not_sent"}})
			return
		}
		if in.DryRun {
			preview := strings.NewReplacer("{{card.number}}", "[card.number]", "{{card.cvc}}", "[card.cvc]").Replace(in.Body)
			answer(w, 200, map[string]any{"forward_id": "fwd_example", "allowlist_version": 1, "outcome": "not_sent", "status": 0,
				"headers": map[string]any{}, "body": "", "dry_run": map[string]any{"method": in.Method, "url": in.URL, "headers": map[string]any{}, "body": preview}})
			return
		}
		answer(w, 200, map[string]any{"forward_id": "fwd_example", "allowlist_version": 1, "outcome": "answered", "status": 201,
			"headers": map[string]any{"Content-Type": []string{"application/json"}}, "body": `{"id":"ch_1","number":"************4242"}`})
	})
	g.srv = httptest.NewUnstartedServer(mux)
	g.srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{leaf.TLS},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    callerCA.Pool(),
		MinVersion:   tls.VersionTLS12,
	}
	g.srv.StartTLS()
	g.URL = g.srv.URL
	return g
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", "req_example")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

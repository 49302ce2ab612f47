package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/cardgate/cardgate/client"
)

// Tokenize a card, then forward it to an allowlisted processor. The
// gateway here is a stand-in started by the example (see
// example_gateway_test.go); with a real one, give its URL and the files
// `cardgate init` wrote.
func Example() {
	gw := startExampleGateway()
	defer gw.Close()

	c, err := client.New(gw.URL, client.WithPEMFiles(gw.CallerCert, gw.CallerKey, gw.CAFile))
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	tok, err := c.Tokenize(ctx, client.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2030, CVC: "123"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("token:", tok.Token, tok.Brand, tok.Last4)

	resp, err := c.Forward(ctx, &client.ForwardRequest{
		Destination: "example-local-processor",
		URL:         "https://127.0.0.1:9443/v1/charges",
		Method:      http.MethodPost,
		Card:        tok.Token,
		Headers:     http.Header{"Content-Type": {"application/json"}},
		Body:        `{"amount":1000,"number":"{{card.number}}","cvc":"{{card.cvc}}"}`,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("processor answered:", resp.Status, resp.Outcome)
	fmt.Println(resp.Body)
	// Output:
	// token: tok_example visa 4242
	// processor answered: 201 answered
	// {"id":"ch_1","number":"************4242"}
}

// A dry run checks the allowlist and the template and shows what would be
// sent, without reading the card.
func ExampleClient_Forward_dryRun() {
	gw := startExampleGateway()
	defer gw.Close()
	c, err := client.New(gw.URL, client.WithPEMFiles(gw.CallerCert, gw.CallerKey, gw.CAFile))
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseIdleConnections()

	resp, err := c.Forward(context.Background(), &client.ForwardRequest{
		Destination: "example-local-processor",
		URL:         "https://127.0.0.1:9443/v1/charges",
		Method:      http.MethodPost,
		Card:        "tok_example",
		Body:        `{"number":"{{card.number}}"}`,
		DryRun:      true,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Outcome, resp.DryRun.Method, resp.DryRun.URL)
	fmt.Println(resp.DryRun.Body)
	// Output:
	// not_sent POST https://127.0.0.1:9443/v1/charges
	// {"number":"[card.number]"}
}

// Branch on the stable code with errors.Is, and on the outcome to know
// whether the card may have left.
func ExampleError() {
	gw := startExampleGateway()
	defer gw.Close()
	c, err := client.New(gw.URL, client.WithPEMFiles(gw.CallerCert, gw.CallerKey, gw.CAFile))
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseIdleConnections()

	_, err = c.Forward(context.Background(), &client.ForwardRequest{
		Destination: "somewhere-else",
		URL:         "https://api.elsewhere.example/v1/charges",
		Method:      http.MethodPost,
		Card:        "tok_example",
	})
	var e *client.Error
	switch {
	case errors.Is(err, client.ErrDestinationNotAllowed):
		errors.As(err, &e)
		fmt.Println("refused by the allowlist; outcome:", e.Outcome)
	case errors.As(err, &e) && e.Outcome != client.NotSent:
		fmt.Println("the card may have been sent: reconcile with key", e.IdempotencyKey)
	case err != nil:
		fmt.Println("failed, nothing sent:", err)
	}
	// Output:
	// refused by the allowlist; outcome: not_sent
}

// A Card prints masked, however it is printed.
func ExampleCard() {
	card := client.Card{Number: "4242 4242 4242 4242", ExpMonth: 12, ExpYear: 2030, CVC: "123", Name: "Jane Doe"}
	fmt.Println(card)
	fmt.Printf("%+v %q\n", card.Number, card.CVC)
	// Output:
	// client.Card{Number:************4242 Expiry:[set] CVC:[set] Name:[set]}
	// ************4242 "***"
}

// With SPIFFE, the Workload API's X509Source gives the caller's SVID and
// the trust bundle, and rotates both; the client uses the current ones at
// every new connection.
func ExampleWithX509Source() {
	ctx := context.Background()
	src, err := workloadapi.NewX509Source(ctx) // SPIFFE_ENDPOINT_SOCKET names the agent
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	gatewayID := spiffeid.RequireFromString("spiffe://example.org/cardgate")
	c, err := client.New("https://cardgate.internal:8443",
		client.WithX509Source(src, src, tlsconfig.AuthorizeID(gatewayID)))
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseIdleConnections()
	// c.Tokenize, c.Forward …
}

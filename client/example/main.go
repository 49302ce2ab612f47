// Command example is a caller of cardgate written with the client package:
// it tokenizes the test card 4242 4242 4242 4242 and forwards it to an
// allowlisted destination, by default the example one `cardgate init`
// writes. Run it from a cardgate checkout:
//
//	go run ./client/example -dir gw -idempotency-keys=false -dry-run
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/cardgate/cardgate/client"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		var e *client.Error
		if errors.As(err, &e) && e.Outcome == client.SentNoResponse {
			fmt.Fprintln(os.Stderr, "example: the card may have reached the processor; reconcile before trying again")
		}
		os.Exit(1)
	}
}

func run() error {
	gateway := flag.String("gateway", "https://127.0.0.1:8443", "the gateway's `URL`")
	dir := flag.String("dir", "", "a `directory` written by cardgate init: its caller.crt, caller.key and ca.pem")
	cert := flag.String("cert", "", "the caller's certificate `file` (PEM); default DIR/caller.crt")
	key := flag.String("key", "", "the caller's key `file` (PEM); default DIR/caller.key")
	ca := flag.String("ca", "", "the CA `file` (PEM) of the gateway's certificate; default DIR/ca.pem")
	destination := flag.String("destination", "example-local-processor", "the allowlist entry `id`")
	target := flag.String("url", "https://127.0.0.1:9443/v1/charges", "the processor `URL` the entry admits")
	dryRun := flag.Bool("dry-run", false, "check the forward without reading the card or sending anything")
	keys := flag.Bool("idempotency-keys", true, "send an Idempotency-Key (false for a gateway on the bolt store)")
	timeout := flag.Duration("timeout", 30*time.Second, "the bound on the whole run")
	flag.Parse()
	orDir := func(v *string, name string) {
		if *v == "" && *dir != "" {
			*v = filepath.Join(*dir, name)
		}
	}
	orDir(cert, "caller.crt")
	orDir(key, "caller.key")
	orDir(ca, "ca.pem")
	if *cert == "" || *key == "" || *ca == "" {
		return errors.New("give -dir, or -cert, -key and -ca")
	}

	opts := []client.Option{client.WithPEMFiles(*cert, *key, *ca)}
	if !*keys {
		opts = append(opts, client.WithoutIdempotencyKeys())
	}
	c, err := client.New(*gateway, opts...)
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	// A public test card number; never a real one.
	card := client.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: time.Now().Year() + 3, CVC: "123"}
	tok, err := c.Tokenize(ctx, card)
	if err != nil {
		return err
	}
	fmt.Printf("tokenized %v: %s (%s, last4 %s)\n", card, tok.Token, tok.Brand, tok.Last4)

	resp, err := c.Forward(ctx, &client.ForwardRequest{
		Destination: *destination,
		URL:         *target,
		Method:      http.MethodPost,
		Card:        tok.Token,
		Headers:     http.Header{"Content-Type": {"application/json"}},
		Body:        `{"amount":1000,"number":"{{card.number}}","cvc":"{{card.cvc}}"}`,
		DryRun:      *dryRun,
	})
	if err != nil {
		return err
	}
	if resp.DryRun != nil {
		fmt.Printf("dry run passed (allowlist version %d): would send %s %s\n  %s\n",
			resp.AllowlistVersion, resp.DryRun.Method, resp.DryRun.URL, resp.DryRun.Body)
		return nil
	}
	body, err := resp.BodyBytes()
	if err != nil {
		return err
	}
	fmt.Printf("forwarded %s: the processor answered %d (outcome %s)\n  %s\n", resp.ForwardID, resp.Status, resp.Outcome, body)
	return nil
}

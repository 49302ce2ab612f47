package credentials_test

import (
	"context"
	"fmt"
	"log"

	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/credentials"
)

func ExampleStore() {
	store, err := credentials.New([]credentials.Spec{
		{Name: "acme-live-key", Source: credentials.Env{Var: "ACME_API_KEY"}},
	}, credentials.Options{
		// The process environment by default; a map here.
		Getenv: func(k string) (string, bool) {
			v, ok := map[string]string{"ACME_API_KEY": "sk_test_example"}[k]
			return v, ok
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Reload(context.Background()); err != nil {
		log.Fatal(err) // at start: refuse to serve with a bad credential
	}
	secret, err := store.Get("acme-live-key")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(secret, store.Names())
	// Output: [secret.acme-live-key] [acme-live-key]
}

// specsFromConfig is the translation cmd/cardgate makes from the
// configuration file's credentials section.
func specsFromConfig(cfg config.Config) []credentials.Spec {
	var specs []credentials.Spec
	for _, name := range cfg.CredentialNames() {
		c := cfg.Credentials[name]
		sp := credentials.Spec{Name: name, Encoding: credentials.Encoding(c.Encoding), Kind: credentials.Kind(c.Kind)}
		switch {
		case c.File != "":
			sp.Source = credentials.File{Path: c.File}
		case c.Env != "":
			sp.Source = credentials.Env{Var: c.Env}
		case c.Vault != nil:
			sp.Source = credentials.VaultKV{Mount: c.Vault.Mount, Path: c.Vault.Path, Key: c.Vault.Key, Version: c.Vault.Version}
		}
		specs = append(specs, sp)
	}
	return specs
}

func Example_fromConfig() {
	cfg, err := config.Parse([]byte(`
credentials:
  acme-live-key:
    env: ACME_API_KEY
  cybersource-secret:
    vault: {mount: secret, path: processors/cybersource, key: shared_secret}
    encoding: base64
    kind: hmac-key
`))
	if err != nil {
		log.Fatal(err)
	}
	for _, sp := range specsFromConfig(cfg) {
		fmt.Printf("%s %s %+v %q %q\n", sp.Name, sp.Source.Kind(), sp.Source, sp.Encoding, sp.Kind)
	}
	// Output:
	// acme-live-key env {Var:ACME_API_KEY} "" ""
	// cybersource-secret vault {Mount:secret Path:processors/cybersource Key:shared_secret Version:0} "base64" "hmac-key"
}

// The texts "cardgate init" writes: the allowlist, the configuration and
// the next steps it prints.

package main

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/cardgate/cardgate/allowlist"
)

// initAllowlist is version 1 of the allowlist: one destination, the local
// test processor, marked as an example. The layout is the one auditors
// review: one key per line, flow lists only.
func initAllowlist(o *initOptions, now time.Time) []byte {
	ranges := "[127.0.0.1/32]"
	switch h := o.processor.Hostname(); {
	case h == "localhost":
		ranges = "[127.0.0.1/32, ::1/128]"
	case strings.Contains(h, ":"):
		ranges = "[" + h + "/128]"
	default:
		ranges = "[" + h + "/32]"
	}
	return fmt.Appendf(nil, `# cardgate allowlist, written by cardgate init on %[1]s.
# EXAMPLE: its one destination is a test processor on this machine, for a
# first forward. Replace it with your processors (cardgate allowlist next
# starts version 2), review the change (cardgate allowlist diff), and have
# your auditors sign it. The bytes of this file are what is signed.
format: %[2]s
namespace: %[3]s
environment: %[4]s
version: 1
issued_at: %[5]s
expires: %[6]s
prev_sha256: ""
destinations:
  - id: %[7]s
    purpose: EXAMPLE - a local test processor for a first forward
    owner: you@example.com
    url: %[8]s
    methods: [POST]
    callers: ["%[9]s"]
    fields: [number, cvc, exp_month, exp_year, name]
    unsafe_allow_ranges: %[10]s
`, now.UTC().Format(time.DateOnly), allowlist.Format, allowlist.Namespace, o.environment,
		now.UTC().Add(-time.Minute).Truncate(time.Second).Format(time.RFC3339),
		now.UTC().Add(initAllowlistLifetime).Truncate(time.Second).Format(time.RFC3339),
		initDestination, o.processor.String(), o.caller, ranges)
}

// initConfig is cardgate.yaml: what a single node needs to start, and a
// Redis section to switch to.
func initConfig(o *initOptions, now time.Time) []byte {
	p := func(name string) string { return yamlPath(o.abs, name) }
	return fmt.Appendf(nil, `# cardgate configuration, written by cardgate init on %[1]s. It starts as
# written:  cardgate serve -config %[2]s
# Keys not shown have their defaults; cardgate.example.yaml explains every key.
#
# mode: dev only because the card keys are in the local development keyring
# (keyring.json). Before real cards, move them to Vault Transit or an HSM
# (keys.backend), then set mode: production. Callers authenticate with mTLS
# all the same: dev mode's header identity works only on a listener without
# TLS, and this one has TLS.
mode: dev
environment: %[3]s   # must equal the signed allowlist's environment

listen:
  addr: %[4]q
  tls:
    cert_file: %[5]s
    key_file: %[6]s
    client_ca_file: %[7]s   # the CA that issues callers' certificates

allowlist:
  path: %[8]s
  signatures_dir: %[9]s
  allowed_signers: %[10]s
  threshold: 1   # one auditor here; production wants 2 or more
  state_file: %[11]s   # the highest version accepted: no rollback across restarts

store:
  # The embedded single-node store: no other service needed.
  backend: bolt
  bolt:
    path: %[12]s
  # Redis instead, for several replicas, shared budgets and Idempotency-Key
  # support: change backend: bolt to backend: redis, uncomment the lines
  # below, and remove the killswitch section, whose state moves to Redis
  # (the redis store refuses killswitch.file). allowlist.state_file may
  # then go too: without it, the rollback mark is kept in Redis.
  # redis:
  #   addrs: [127.0.0.1:6379]
  #   password: ""   # prefer CARDGATE_REDIS_PASSWORD

keys:
  backend: local   # development only: the key-encryption key is a file
  local:
    path: %[13]s

egress:
  # Trusts the test processor's certificate (processor.crt). For real
  # processors, drop this line (the system roots) or name their CA bundle.
  ca_file: %[7]s

audit:
  file: %[14]s

# The card calls each caller may make; forwards are the allowlist's to
# permit. List each new caller here with only what it needs.
callers:
  - caller: "%[16]s"
    allow: [tokenize, read, update, delete]

killswitch:
  file: %[15]s

log:
  level: info
`, now.UTC().Format(time.DateOnly), shellQuote(filepath.Join(o.abs, "cardgate.yaml")), o.environment, o.listen,
		p("server.crt"), p("server.key"), p("ca.pem"),
		p("allowlist.yaml"), p("allowlist.sigs"), p("allowed_signers"), p("allowlist.state"),
		p("cards.db"), p("keyring.json"), p("audit.log"), p("killswitch.json"), o.caller)
}

// initTestCard is the test card of the printed tokenize, and its expiry
// year, far enough ahead that the README's copy stays valid.
const (
	initTestCard    = "4242424242424242"
	initTestExpYear = 2035
)

// printInitNext prints what was written and the commands to go on with.
// The README's "Your own gateway in ten minutes" shows these commands for
// DIR "gw"; a test keeps the two the same.
func printInitNext(w io.Writer, o *initOptions, now time.Time, signedWith string) {
	f := func(name string) string { return shellQuote(filepath.Join(o.dir, name)) }
	host, port, _ := net.SplitHostPort(o.listen)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	gw := "https://" + net.JoinHostPort(host, port)
	tls := "--cacert " + f("ca.pem") + " --cert " + f("caller.crt") + " --key " + f("caller.key")
	forward := fmt.Sprintf(`{"destination":"%s","url":"%s","method":"POST","card":"'"$TOKEN"'","headers":{"Content-Type":["application/json"]},"body":"{\"amount\":1000,\"number\":\"{{card.number}}\",\"cvc\":\"{{card.cvc}}\"}"`,
		initDestination, o.processor.String())
	fmt.Fprintf(w, `cardgate init: wrote a self-hosted starting point to %[1]s (development only)
  ca.pem, ca.key                 a development CA, valid until %[2]s; ca.key can issue more callers
  server.crt, server.key         the gateway's certificate: localhost, 127.0.0.1, ::1
  caller.crt, caller.key         one caller: %[3]s
  processor.crt, processor.key   for a test processor at %[4]s
  keyring.json                   the development keyring: the card keys are in this file
  auditor, auditor.pub           the auditor's ed25519 key; allowed_signers pins it
  allowlist.yaml                 version 1, one EXAMPLE destination (%[5]s), expires %[6]s
  allowlist.sigs/auditor.sig     signed with %[7]s
  cardgate.yaml                  mode dev, the embedded bolt store (a Redis section is commented out)

Next steps:

1. Start the gateway:

   cardgate serve -config %[8]s

2. In another shell, tokenize a test card over mTLS, and keep its token:

   TOKEN=$(curl -sS %[9]s -H 'Content-Type: application/json' -d '{"number":"%[10]s","exp_month":12,"exp_year":%[11]d,"cvc":"123"}' %[12]s/v1/cards | sed 's/.*"token":"\([^"]*\)".*/\1/'); echo "$TOKEN"

3. Check a forward of that token with a dry run, which reads no card and sends nothing:

   curl -sS %[9]s -H 'Content-Type: application/json' -d '%[13]s,"dry_run":true}' %[12]s/v1/forward

4. Forward it for real: run any HTTPS test server at %[15]s with
   processor.crt and processor.key, then send the same without the dry run.
   The gateway sends the card there; its answer comes back masked:

   curl -sS %[9]s -H 'Content-Type: application/json' -d '%[13]s}' %[12]s/v1/forward

5. The same from Go with the client package (github.com/cardgate/cardgate/client),
   from a cardgate checkout; the bolt store takes no Idempotency-Key:

   go run ./client/example -gateway %[12]s -dir %[14]s -idempotency-keys=false -dry-run

Before real cards: move the keys to Vault or an HSM (keys.backend), issue
callers' certificates from your own CA, replace the example destination
and have it signed by two or more auditors (allowlist.threshold).
`, o.dir, now.Add(initCALifetime).UTC().Format(time.DateOnly), o.caller, o.processor.String(), initDestination,
		now.Add(initAllowlistLifetime).UTC().Format(time.DateOnly), signedWith,
		f("cardgate.yaml"), tls, initTestCard, initTestExpYear, gw, forward, shellQuote(o.dir), o.processor.Host)
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	safe := s != ""
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("_./-:@=+,", rune(c)) {
			safe = false
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

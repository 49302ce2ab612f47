package integration

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeSection is the heading of the README section TestReadmeTenMinutes
// runs.
const readmeSection = "## Your own gateway in ten minutes"

// readmeCommands returns the commands of the README section's sh blocks,
// in order, with continuation lines joined.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n"+readmeSection+"\n")
	if !ok {
		t.Fatalf("README.md has no %q section", readmeSection)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var cmds []string
	inSh, cont := false, ""
	for _, line := range strings.Split(section, "\n") {
		switch {
		case !inSh && line == "```sh":
			inSh = true
		case inSh && line == "```":
			inSh = false
		case inSh && strings.HasSuffix(line, `\`):
			cont += strings.TrimSuffix(line, `\`)
		case inSh && strings.TrimSpace(line) != "":
			cmds = append(cmds, cont+line)
			cont = ""
		}
	}
	return cmds
}

// TestReadmeTenMinutes runs every command of the README's "Your own
// gateway in ten minutes" as a new user would: bash, curl and openssl
// against the built binary, in a fresh directory. Only what a test must
// change is changed, each in rewrites below: the gateway listens on a port
// the kernel chose (CARDGATE_LISTEN_ADDR) and the example destination is a
// test processor on another, so init is given that -processor URL and the
// commands the two addresses; `go run ./client/example` is the example
// built once. Each command's output is checked, and every command must
// have a check, so a command added to the README is run and checked too.
func TestReadmeTenMinutes(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "sed", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's commands need %s: %v", tool, err)
		}
	}
	cmds := readmeCommands(t)
	if len(cmds) < 5 {
		t.Fatalf("the README section has %d commands: %q", len(cmds), cmds)
	}
	example := filepath.Join(t.TempDir(), "example")
	if out, err := exec.Command("go", "build", "-o", example, "../client/example").CombinedOutput(); err != nil {
		t.Fatalf("go build ./client/example: %v\n%s", err, out)
	}
	bin := t.TempDir()
	if err := os.Symlink(binary, filepath.Join(bin, "cardgate")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("CARDGATE_LISTEN_ADDR", "127.0.0.1:0")
	t.Chdir(t.TempDir())

	procLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer procLn.Close()
	procURL := "https://" + procLn.Addr().String() + "/v1/charges"
	var gwAddr string // known once the gateway listens
	rewrite := func(cmd string) string {
		if cmd == "cardgate init gw" {
			return "cardgate init -processor " + procURL + " gw"
		}
		cmd = strings.ReplaceAll(cmd, "https://127.0.0.1:9443/v1/charges", procURL)
		if rest, ok := strings.CutPrefix(cmd, "go run ./client/example "); ok {
			cmd = example + " -url " + procURL + " " + rest
		}
		return strings.ReplaceAll(cmd, "https://127.0.0.1:8443", "https://"+gwAddr)
	}

	// What each command must print. Every command needs one.
	token := regexp.MustCompile(`^tok_[A-Za-z0-9]+$`)
	checks := []struct {
		prefix string
		check  func(out string) error
	}{
		{"cardgate init gw", func(out string) error {
			return wantIn(out, "cardgate init: wrote a self-hosted starting point to gw", "cardgate serve -config gw/cardgate.yaml")
		}},
		{"TOKEN=$(curl ", func(out string) error {
			if !token.MatchString(strings.TrimSpace(out)) {
				return fmt.Errorf("printed %q, want a token", out)
			}
			return nil
		}},
		{"go run ./client/example ", func(out string) error {
			return wantIn(out, "tokenized client.Card{Number:************4242 ", "dry run passed (allowlist version 1)", `"number":"[card.number]"`)
		}},
		{"curl ", func(out string) error {
			if strings.Contains(out, `"dry_run":{`) {
				return wantIn(out, `"outcome":"not_sent"`, `[card.number]`, `[card.cvc]`)
			}
			return wantIn(out, `"outcome":"answered"`, `"status":201`, `************4242`)
		}},
		{"openssl req ", func(string) error { return nil }}, // its output is the key; checked below
		{"openssl x509 ", func(out string) error { return wantIn(out, "Certificate request self-signature ok") }},
	}
	checkFor := func(cmd string) func(string) error {
		for _, c := range checks {
			if strings.HasPrefix(cmd, c.prefix) {
				return c.check
			}
		}
		t.Fatalf("no check for the README's command %q: add one", cmd)
		return nil
	}

	// The commands before serve, one at a time; serve in the background;
	// the rest in one bash, as in the user's second shell, so that TOKEN
	// carries from one command to the next.
	serveAt := -1
	for i, cmd := range cmds {
		if strings.HasPrefix(cmd, "cardgate serve ") {
			serveAt = i
			break
		}
		out, err := exec.Command("bash", "-c", rewrite(cmd)).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		if err := checkFor(cmd)(string(out)); err != nil {
			t.Errorf("%s: %v\n%s", cmd, err, out)
		}
	}
	if serveAt < 0 {
		t.Fatal("the README section has no cardgate serve command")
	}
	args := strings.Fields(cmds[serveAt])
	gw, err := startProcess(t, binary, args[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	if gwAddr, err = gw.waitForLog("cardgate listening", "addr", 15*time.Second); err != nil {
		t.Fatalf("%s: %v\n%s", cmds[serveAt], err, gw.log())
	}
	proc := serveProcessor(t, procLn, "gw")

	const marker = "@@readme-command "
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	rest := cmds[serveAt+1:]
	for i, cmd := range rest {
		fmt.Fprintf(&script, "echo '%s%d'\n%s\n", marker, i, rewrite(cmd))
	}
	out, err := exec.Command("bash", "-c", script.String()).CombinedOutput()
	parts := strings.Split(string(out), marker)
	if err != nil || len(parts) != len(rest)+1 {
		t.Fatalf("the commands after serve: %v\n%s", err, out)
	}
	for i, cmd := range rest {
		got := strings.TrimPrefix(parts[i+1], fmt.Sprintf("%d\n", i))
		if err := checkFor(cmd)(got); err != nil {
			t.Errorf("%s: %v\n%s", cmd, err, got)
		}
	}

	// The real forward reached the test processor with the card; the dry
	// runs sent nothing.
	if n := proc.count(); n != 1 {
		t.Errorf("the test processor received %d requests, want the one real forward", n)
	}
	if got := proc.last(); !strings.Contains(got, visa) || !strings.Contains(got, `"cvc":"123"`) {
		t.Errorf("the test processor did not receive the card and CVC (got %d bytes)", len(got))
	}
	if strings.Contains(gw.log(), `"level":"WARN"`) {
		t.Errorf("the gateway warned on init's configuration:\n%s", gw.log())
	}
	for _, sp := range testCardSpellings {
		if strings.Contains(gw.log(), sp.text) {
			t.Errorf("the gateway log holds the test card (%s)", sp.how)
		}
	}
	checkReadmeCaller(t, "https://"+gwAddr)
}

// checkReadmeCaller: the caller certificate the README's openssl commands
// issue from the development CA is a SPIFFE caller the gateway accepts.
func checkReadmeCaller(t *testing.T, base string) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair("payouts.crt", "payouts.key")
	if err != nil {
		t.Fatalf("the openssl commands' certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join("gw", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("payouts.crt does not verify as a client certificate of gw/ca.pem: %v", err)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cardgate.local/payouts" || leaf.IsCA {
		t.Errorf("payouts.crt: URIs %v, CA %v; want one SPIFFE ID, not a CA", leaf.URIs, leaf.IsCA)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(base + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz with payouts.crt: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz with payouts.crt = %d, want 200", resp.StatusCode)
	}
}

func wantIn(out string, wants ...string) error {
	for _, w := range wants {
		if !strings.Contains(out, w) {
			return fmt.Errorf("the output lacks %q", w)
		}
	}
	return nil
}

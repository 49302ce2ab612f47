package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/vaultclient"
)

// snapshot reads every file under dir, by path relative to dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runInitCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"init"}, args...), &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestInitWritesAStartingPoint checks everything init writes, signed with
// ssh-keygen and, with ssh-keygen off the PATH, with cardgate's signer.
func TestInitWritesAStartingPoint(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Fatalf("ssh-keygen is needed by this test (scripts/test installs it): %v", err)
	}
	for _, tt := range []struct {
		name, path, signedWith string
	}{
		{"ssh-keygen", os.Getenv("PATH"), "signed with ssh-keygen -Y sign"},
		{"without ssh-keygen", "", "signed with cardgate allowlist sign's signer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.path == "" {
				tt.path = t.TempDir() // a PATH where nothing is found
			}
			t.Setenv("PATH", tt.path)
			dir := filepath.Join(t.TempDir(), "gw")
			out, err := runInitCmd(t, dir)
			if err != nil {
				t.Fatalf("init: %v\n%s", err, out)
			}
			if !strings.Contains(out, tt.signedWith) {
				t.Errorf("output does not say %q:\n%s", tt.signedWith, out)
			}
			checkInitFiles(t, dir)
			checkInitPKI(t, dir, "spiffe://cardgate.local/billing")
			checkInitAllowlist(t, dir, keygen)

			cfg, err := config.Load(filepath.Join(dir, "cardgate.yaml"), func(string) string { return "" })
			if err != nil {
				t.Fatalf("the written configuration does not load: %v", err)
			}
			if cfg.Store.Backend != config.StoreBolt || cfg.Listen.Addr != config.DefaultListenAddr || cfg.Listen.TLS.ClientCAFile != filepath.Join(dir, "ca.pem") || cfg.Environment != "development" {
				t.Errorf("configuration: store %q, listen %q, client CA %q, environment %q", cfg.Store.Backend, cfg.Listen.Addr, cfg.Listen.TLS.ClientCAFile, cfg.Environment)
			}
			wantCallers := []config.Caller{{Caller: "spiffe://cardgate.local/billing", Allow: config.CardOps()}}
			if diff := cmp.Diff(wantCallers, cfg.Callers); diff != "" {
				t.Errorf("configuration callers (-want +got):\n%s", diff)
			}
			raw, _ := os.ReadFile(filepath.Join(dir, "cardgate.yaml"))
			if !strings.Contains(string(raw), "#   addrs: [127.0.0.1:6379]") {
				t.Error("the configuration has no commented Redis section")
			}
			if _, err := vaultclient.OpenLocalKeyring(filepath.Join(dir, "keyring.json")); err != nil {
				t.Errorf("the keyring does not open: %v", err)
			}
		})
	}
}

// checkInitFiles: exactly the listed files, secrets readable by the owner
// only.
func checkInitFiles(t *testing.T, dir string) {
	t.Helper()
	var got []string
	for name := range snapshot(t, dir) {
		got = append(got, name)
	}
	want := []string{"./"}
	for _, n := range initNames {
		want = append(want, n)
	}
	want[slices.Index(want, "allowlist.sigs")] = "allowlist.sigs/"
	want = append(want, "allowlist.sigs/auditor.sig")
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files in DIR (-want +got):\n%s", diff)
	}
	for _, secret := range []string{"ca.key", "server.key", "caller.key", "processor.key", "keyring.json", "auditor", "cardgate.yaml"} {
		fi, err := os.Stat(filepath.Join(dir, secret))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", secret, fi.Mode().Perm())
		}
	}
}

// checkInitPKI: P-256 throughout, each certificate verifies for its use,
// and every key matches its certificate.
func checkInitPKI(t *testing.T, dir, caller string) {
	t.Helper()
	ca := readCert(t, filepath.Join(dir, "ca.pem"))
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 || ca.NotAfter.Sub(ca.NotBefore) > 400*24*time.Hour {
		t.Errorf("CA: IsCA %v, usage %v, lifetime %v", ca.IsCA, ca.KeyUsage, ca.NotAfter.Sub(ca.NotBefore))
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, c := range []struct {
		name  string
		usage x509.ExtKeyUsage
		hosts []string
	}{
		{"server", x509.ExtKeyUsageServerAuth, []string{"localhost", "127.0.0.1", "::1"}},
		{"processor", x509.ExtKeyUsageServerAuth, []string{"localhost", "127.0.0.1"}},
		{"caller", x509.ExtKeyUsageClientAuth, []string{""}},
	} {
		cert := readCert(t, filepath.Join(dir, c.name+".crt"))
		if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: key is not ECDSA P-256", c.name)
		}
		if life := cert.NotAfter.Sub(cert.NotBefore); life > 100*24*time.Hour || cert.IsCA {
			t.Errorf("%s: lifetime %v, CA %v; want at most 100 days, not a CA", c.name, life, cert.IsCA)
		}
		for _, host := range c.hosts {
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{c.usage}}); err != nil {
				t.Errorf("%s for %q: %v", c.name, host, err)
			}
		}
		if _, err := tls.LoadX509KeyPair(filepath.Join(dir, c.name+".crt"), filepath.Join(dir, c.name+".key")); err != nil {
			t.Errorf("%s: key does not match: %v", c.name, err)
		}
	}
	cert := readCert(t, filepath.Join(dir, "caller.crt"))
	var uris []string
	for _, u := range cert.URIs {
		uris = append(uris, u.String())
	}
	if strings.HasPrefix(caller, "spiffe://") {
		if !slices.Equal(uris, []string{caller}) || len(cert.DNSNames) != 0 {
			t.Errorf("caller SANs: URIs %q, DNS %q; want exactly the URI %s", uris, cert.DNSNames, caller)
		}
	} else if !slices.Equal(cert.DNSNames, []string{caller}) || len(uris) != 0 {
		t.Errorf("caller SANs: URIs %q, DNS %q; want exactly the DNS name %s", uris, cert.DNSNames, caller)
	}
	if ip := readCert(t, filepath.Join(dir, "server.crt")).IPAddresses; len(ip) == 0 || !ip[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("server IP SANs = %v", ip)
	}
}

// checkInitAllowlist: the gateway's verifier and the auditor's stock
// ssh-keygen both accept the allowlist, and the key pair is whole.
func checkInitAllowlist(t *testing.T, dir, keygen string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "allowlist.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	signers, _ := os.ReadFile(filepath.Join(dir, "allowed_signers"))
	sigs, err := allowlist.ReadSignatures(context.Background(), filepath.Join(dir, "allowlist.sigs"))
	if err != nil {
		t.Fatal(err)
	}
	al, err := allowlist.Verify(raw, sigs, allowlist.Policy{AllowedSigners: signers, Threshold: 1, Environment: "development"})
	if err != nil {
		t.Fatalf("allowlist.Verify: %v", err)
	}
	if n := len(al.Doc.Destinations); n != 1 || al.Doc.Destinations[0].ID != initDestination || !strings.Contains(string(raw), "EXAMPLE") {
		t.Errorf("allowlist: %d destinations, first %q; want the one marked EXAMPLE", n, al.Doc.Destinations[0].ID)
	}
	cmd := exec.Command(keygen, "-Y", "verify", "-f", filepath.Join(dir, "allowed_signers"), "-I", "auditor@cardgate.local",
		"-n", allowlist.Namespace, "-s", filepath.Join(dir, "allowlist.sigs", "auditor.sig"))
	cmd.Stdin = bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("ssh-keygen -Y verify: %v\n%s", err, out)
	}
	privPEM, _ := os.ReadFile(filepath.Join(dir, "auditor"))
	priv, err := ssh.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatalf("auditor key: %v", err)
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "auditor.pub"))
	if !bytes.Equal(ssh.MarshalAuthorizedKey(priv.PublicKey()), pub) || priv.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Error("auditor.pub is not the ed25519 public key of auditor")
	}
}

// TestInitRedisSwitch follows the written configuration's comment for
// Redis, step by step: the configuration it leaves must load, with and
// without allowlist.state_file, and each step it names must be needed.
func TestInitRedisSwitch(t *testing.T) {
	dir := t.TempDir()
	if out, err := runInitCmd(t, dir); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "cardgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	for _, step := range []string{"change backend: bolt to backend: redis", "uncomment the lines", "remove the killswitch section", "allowlist.state_file may\n  # then go too"} {
		if !strings.Contains(cfg, step) {
			t.Fatalf("the configuration's Redis comment no longer says %q; update this test", step)
		}
	}
	switchBackend := func(s string) string { return strings.Replace(s, "  backend: bolt\n", "  backend: redis\n", 1) }
	uncomment := func(s string) string {
		return strings.NewReplacer("  # redis:\n", "  redis:\n", "  #   addrs:", "    addrs:", "  #   password:", "    password:").Replace(s)
	}
	dropKillSwitch := regexp.MustCompile(`(?m)^killswitch:\n  file: .*\n`).ReplaceAllLiteralString
	dropStateFile := regexp.MustCompile(`(?m)^  state_file: .*\n`).ReplaceAllLiteralString
	load := func(s string) error {
		p := filepath.Join(t.TempDir(), "cardgate.yaml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(p, func(string) string { return "" })
		return err
	}
	switched := dropKillSwitch(uncomment(switchBackend(cfg)), "")
	if err := load(switched); err != nil {
		t.Errorf("after the comment's steps: %v", err)
	}
	if err := load(dropStateFile(switched, "")); err != nil {
		t.Errorf("after the steps, without allowlist.state_file: %v", err)
	}
	if err := load(uncomment(switchBackend(cfg))); err == nil || !strings.Contains(err.Error(), "killswitch.file") {
		t.Errorf("without removing the killswitch section: %v, want a refusal of killswitch.file", err)
	}
}

// TestInitDNSCaller: a caller named by DNS gets a DNS SAN and no URI.
func TestInitDNSCaller(t *testing.T) {
	dir := t.TempDir()
	if out, err := runInitCmd(t, "-caller", "billing.internal", "-environment", "staging", dir); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	checkInitPKI(t, dir, "billing.internal")
	cfg, err := config.Load(filepath.Join(dir, "cardgate.yaml"), func(string) string { return "" })
	if err != nil || len(cfg.Callers) != 1 || cfg.Callers[0].Caller != "billing.internal" {
		t.Errorf("configuration callers = %+v, %v; want the DNS caller", cfg.Callers, err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "allowlist.yaml"))
	if !strings.Contains(string(raw), `callers: ["billing.internal"]`) || !strings.Contains(string(raw), "environment: staging") {
		t.Errorf("allowlist does not name the caller and environment:\n%s", raw)
	}
}

// TestInitRefusesToOverwrite: any one file init writes, or the gateway
// makes, already in DIR stops init before it writes anything; so does a
// second init into the same DIR.
func TestInitRefusesToOverwrite(t *testing.T) {
	for _, name := range append(slices.Clone(initNames), initRuntimeFiles...) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, name), []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)
			out, err := runInitCmd(t, dir)
			if err == nil || !strings.Contains(err.Error(), "refusing to overwrite: "+name) {
				t.Fatalf("init with %s present: %v, want a refusal naming it\n%s", name, err, out)
			}
			if diff := cmp.Diff(before, snapshot(t, dir)); diff != "" {
				t.Errorf("DIR changed (-before +after):\n%s", diff)
			}
		})
	}
	t.Run("a second init", func(t *testing.T) {
		dir := t.TempDir()
		if out, err := runInitCmd(t, dir); err != nil {
			t.Fatalf("first init: %v\n%s", err, out)
		}
		before := snapshot(t, dir)
		_, err := runInitCmd(t, dir)
		if err == nil || !strings.Contains(err.Error(), "refusing to overwrite: ca.pem, ca.key") {
			t.Fatalf("second init: %v, want a refusal naming every file", err)
		}
		if diff := cmp.Diff(before, snapshot(t, dir)); diff != "" {
			t.Errorf("DIR changed (-before +after):\n%s", diff)
		}
	})
}

// TestInstallFilesRollsBack: a file that appears while init installs is
// never replaced, and what init had installed is removed again.
func TestInstallFilesRollsBack(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "c"), []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := installFiles(dir, []initFile{{"a", 0o600, []byte("a")}, {"b", 0o600, []byte("b")}, {"c", 0o600, []byte("ours")}})
	if err == nil {
		t.Fatal("installFiles over an existing file: no error")
	}
	want := map[string]string{"./": "", "c": "theirs"}
	if diff := cmp.Diff(want, snapshot(t, dir)); diff != "" {
		t.Errorf("DIR after the failed install (-want +got):\n%s", diff)
	}
}

func TestInitRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no DIR", nil, "usage"},
		{"two DIRs", []string{"a", "b"}, "usage"},
		{"caller with a space", []string{"-caller", "bill ing", "D"}, "-caller"},
		{"SPIFFE ID without a path", []string{"-caller", "spiffe://cardgate.local", "D"}, "SPIFFE ID with a path"},
		{"card-like caller", []string{"-caller", "4242 4242 4242 4242", "D"}, "-caller"},
		{"environment", []string{"-environment", "Prod!", "D"}, "-environment"},
		{"listen", []string{"-listen", "8443", "D"}, "-listen"},
		{"remote processor", []string{"-processor", "https://api.acme.example/v1/charges", "D"}, "on this machine"},
		{"plain http processor", []string{"-processor", "http://127.0.0.1:9443/", "D"}, "-processor"},
		{"processor without a port", []string{"-processor", "https://127.0.0.1/", "D"}, "-processor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			out, err := runInitCmd(t, tt.args...)
			if err == nil || !strings.Contains(err.Error()+out, tt.want) {
				t.Fatalf("init %q: %v, want an error with %q\n%s", tt.args, err, tt.want, out)
			}
			if _, err := os.Stat("D"); !os.IsNotExist(err) {
				t.Errorf("init %q created DIR", tt.args)
			}
		})
	}
}

// TestReadmeTenMinutesCommands: every command of the README's "Your own
// gateway in ten minutes" is the one `cardgate init gw` prints, so that
// the README shows what init tells a user to run (integration's
// TestReadmeTenMinutes runs them).
func TestReadmeTenMinutesCommands(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Your own gateway in ten minutes\n")
	if !ok {
		t.Fatal("README.md has no \"Your own gateway in ten minutes\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	t.Chdir(t.TempDir())
	out, err := runInitCmd(t, "gw")
	if err != nil {
		t.Fatalf("init gw: %v\n%s", err, out)
	}
	printed := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		printed[strings.TrimSpace(line)] = true
	}
	var checked int
	inCode := false
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			continue
		}
		if !inCode {
			continue
		}
		for _, prefix := range []string{"cardgate serve ", "TOKEN=", "curl ", "go run ./client/example "} {
			if strings.HasPrefix(line, prefix) {
				checked++
				if !printed[line] {
					t.Errorf("the README's command is not what init prints:\n%s", line)
				}
			}
		}
	}
	if checked != 5 {
		t.Errorf("found %d of the README's 5 commands (serve, tokenize, dry run, client example, forward)", checked)
	}
}

// TestExampleConfigPointsToInit: the reference configuration cannot start
// as shipped; its first line says, in one line, what it is missing (every
// cardgate directory of a file it names that is not there, Redis and
// Vault when it uses them) and names the command that writes one that
// starts.
func TestExampleConfigPointsToInit(t *testing.T) {
	const path = "../../cardgate.example.yaml"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	cfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatalf("cardgate.example.yaml does not load: %v", err)
	}
	want := []string{"cardgate init DIR"}
	if cfg.Store.Backend == config.StoreRedis {
		want = append(want, "Redis")
	}
	if cfg.Keys.Backend == config.KeysVault {
		want = append(want, "Vault")
	}
	missing := regexp.MustCompile(`"(/[^"]+)"`)
	var fe *config.FieldError
	for _, err := range unjoin(cfg.CheckFiles()) {
		m := missing.FindStringSubmatch(err.Error())
		if !errors.As(err, &fe) || m == nil {
			t.Fatalf("CheckFiles: %v, want a problem that quotes its path", err)
		}
		d := filepath.Dir(m[1])
		for filepath.Base(d) != "cardgate" && d != "/" {
			d = filepath.Dir(d)
		}
		if d == "/" {
			t.Errorf("%s (%s) is not under a cardgate directory: say in the first line where it is", m[1], fe.Key)
		} else if !slices.Contains(want, d) {
			want = append(want, d)
		}
	}
	if len(want) < 3 {
		t.Fatalf("the example misses only %q; does it start as shipped now? then say so", want)
	}
	for _, w := range want {
		if !strings.Contains(first, w) {
			t.Errorf("cardgate.example.yaml's first line %q does not mention %q", first, w)
		}
	}
}

// unjoin returns the errors errors.Join joined.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err != nil {
		return []error{err}
	}
	return nil
}

// "cardgate init DIR": a working self-hosted starting point.

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/crypto/ssh"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/vaultclient"
)

const initUsage = `usage: cardgate init [flags] DIR

Writes a self-hosted starting point into DIR (created if missing): a
development CA, the gateway's certificate, one caller's certificate, a
certificate for a local test processor, a development keyring, an
auditor's ed25519 key with allowed_signers, a first allowlist (one
EXAMPLE destination) signed with ssh-keygen (or, without it, the same
SSHSIG signature made by cardgate), and cardgate.yaml, which starts with
the embedded bolt store. It refuses, before writing anything, if any file
it would write is already there, and prints the commands to go on with.

Development only: the CA key and the card keys are files in DIR.

flags:
`

// Lifetimes of what init makes. Short enough that a forgotten development
// setup dies by itself, long enough to learn the gateway with.
const (
	initCALifetime        = 365 * 24 * time.Hour
	initLeafLifetime      = 90 * 24 * time.Hour
	initAllowlistLifetime = 30 * 24 * time.Hour
	initSSHKeygenTimeout  = 30 * time.Second
	initDestination       = "example-local-processor"
)

// initOptions are the command's flags.
type initOptions struct {
	dir         string // as given, for the printed commands
	abs         string // absolute, for the files that name paths
	caller      string
	environment string
	listen      string
	processor   *url.URL
}

func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := commandFlags("init", initUsage, stderr)
	caller := fs.String("caller", "spiffe://cardgate.local/billing", "the caller `identity`: a SPIFFE ID (URI SAN) or a DNS name (DNS SAN)")
	env := fs.String("environment", "development", "the `environment` the gateway and its allowlist are bound to")
	listen := fs.String("listen", config.DefaultListenAddr, "the gateway's listen `address`")
	processor := fs.String("processor", "https://127.0.0.1:9443/v1/charges", "the local test processor's `URL` (the example destination)")
	err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return errUsage
	}
	operands := fs.Args()
	if len(operands) != 1 {
		fs.Usage()
		return errUsage
	}
	o, err := checkInitOptions(operands[0], *caller, *env, *listen, *processor)
	if err != nil {
		return err
	}
	return initDir(ctx, o, time.Now(), stdout)
}

func checkInitOptions(dir, caller, env, listen, processor string) (*initOptions, error) {
	o := &initOptions{dir: filepath.Clean(dir), caller: caller, environment: env, listen: listen}
	var err error
	if o.abs, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if strings.ContainsFunc(o.abs, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		// It is written into the configuration and the printed commands.
		return nil, errors.New("init: DIR holds a control character")
	}
	if !validIdentity(caller) {
		return nil, fmt.Errorf("init: -caller %q: want a SPIFFE ID (spiffe://trust.domain/path) or a DNS name, at most 128 of A-Z a-z 0-9 . _ : / @ -", caller)
	}
	if strings.HasPrefix(caller, "spiffe://") {
		if id, err := spiffeid.FromString(caller); err != nil || id.Path() == "" {
			return nil, fmt.Errorf("init: -caller %q is not a SPIFFE ID with a path", caller)
		}
	}
	if !validEnvironment(env) {
		return nil, fmt.Errorf("init: -environment %q: want lowercase letters, digits, '-' or '_'", env)
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return nil, fmt.Errorf("init: -listen %q is not host:port", listen)
	}
	u, err := url.Parse(processor)
	if err != nil || u.Scheme != "https" || u.Port() == "" || u.RawQuery != "" || u.User != nil ||
		!(u.Hostname() == "localhost" || isLoopbackIP(u.Hostname())) {
		return nil, fmt.Errorf("init: -processor %q: want https://127.0.0.1:PORT/PATH (or ::1, or localhost): the example destination is a test processor on this machine", processor)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	o.processor = u
	return o, nil
}

// validIdentity is the README's rule for a caller identity.
func validIdentity(s string) bool {
	if s == "" || len(s) > 128 || !isAlnum(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("._:/@-", rune(c)) {
			return false
		}
	}
	return true
}

func validEnvironment(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isLoopbackIP(s string) bool {
	ip := net.ParseIP(s)
	return ip != nil && ip.IsLoopback()
}

// initFile is one file init writes, relative to DIR.
type initFile struct {
	name string
	mode os.FileMode
	data []byte
}

// initRuntimeFiles are the files the gateway makes from the written
// configuration. Init writes none of them, but refuses if one is there:
// it would belong to an earlier gateway, sealed under another keyring or
// past another allowlist version.
var initRuntimeFiles = []string{"cards.db", "audit.log", "allowlist.state", "killswitch.json"}

// initDir makes everything in memory, checks that none of it is in DIR,
// and only then writes it.
func initDir(ctx context.Context, o *initOptions, now time.Time, stdout io.Writer) error {
	if err := refuseExisting(o.abs); err != nil {
		return err
	}
	files, signedWith, err := initMake(ctx, o, now)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.abs, 0o700); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	// Once more, now that DIR exists: installFiles also never replaces a
	// file, but this names every one before anything is written.
	if err := refuseExisting(o.abs); err != nil {
		return err
	}
	if err := installFiles(o.abs, files); err != nil {
		return err
	}
	printInitNext(stdout, o, now, signedWith)
	return nil
}

// initNames are the files and the directory init writes, in DIR.
var initNames = []string{
	"ca.pem", "ca.key", "server.crt", "server.key", "caller.crt", "caller.key", "processor.crt", "processor.key",
	"keyring.json", "auditor", "auditor.pub", "allowed_signers", "allowlist.yaml", "allowlist.sigs", "cardgate.yaml",
}

// refuseExisting fails, naming every one, if any file init would write or
// the gateway would make is already in dir.
func refuseExisting(dir string) error {
	var there []string
	for _, n := range append(initNames, initRuntimeFiles...) {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil || !errors.Is(err, os.ErrNotExist) {
			there = append(there, n)
		}
	}
	if len(there) > 0 {
		return fmt.Errorf("init: refusing to overwrite: %s already in %s; nothing was written (choose an empty directory)", strings.Join(there, ", "), dir)
	}
	return nil
}

// initMake builds every file. The keyring and the signature need real
// files (CreateLocalKeyring and ssh-keygen write them), so they are made
// in a private scratch directory that is removed afterwards.
func initMake(ctx context.Context, o *initOptions, now time.Time) ([]initFile, string, error) {
	pki, err := makeInitPKI(o, now)
	if err != nil {
		return nil, "", err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("init: auditor key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, "", fmt.Errorf("init: auditor key: %w", err)
	}
	privBlock, err := ssh.MarshalPrivateKey(priv, "auditor@cardgate.local")
	if err != nil {
		return nil, "", fmt.Errorf("init: auditor key: %w", err)
	}
	pub := ssh.MarshalAuthorizedKey(signer.PublicKey())
	signers := fmt.Appendf(nil, "auditor@cardgate.local namespaces=%q %s", allowlist.Namespace, pub)
	doc := initAllowlist(o, now)

	scratch, err := os.MkdirTemp("", "cardgate-init-")
	if err != nil {
		return nil, "", fmt.Errorf("init: %w", err)
	}
	defer os.RemoveAll(scratch)
	keyring := filepath.Join(scratch, "keyring.json")
	if err := vaultclient.CreateLocalKeyring(keyring); err != nil {
		return nil, "", fmt.Errorf("init: %w", err)
	}
	ring, err := os.ReadFile(keyring)
	if err != nil {
		return nil, "", fmt.Errorf("init: %w", err)
	}
	sig, signedWith, err := signInitAllowlist(ctx, scratch, doc, pem.EncodeToMemory(privBlock), signer)
	if err != nil {
		return nil, "", err
	}
	// What the gateway will check at start, checked now: a document or a
	// signature it would refuse is never written.
	if _, err := allowlist.Verify(doc, []allowlist.Signature{{Name: "auditor.sig", Armor: sig}}, allowlist.Policy{
		AllowedSigners: signers, Threshold: 1, Environment: o.environment, Now: func() time.Time { return now },
	}); err != nil {
		return nil, "", fmt.Errorf("init: the allowlist made would not verify: %w", err)
	}
	cfg := initConfig(o, now)
	if c, err := config.Parse(cfg); err != nil {
		return nil, "", fmt.Errorf("init: the configuration made does not parse: %w", err)
	} else if err := c.Validate(); err != nil {
		return nil, "", fmt.Errorf("init: the configuration made is not valid: %w", err)
	}
	return []initFile{
		{"ca.pem", 0o644, pki.caCert},
		{"ca.key", 0o600, pki.caKey},
		{"server.crt", 0o644, pki.serverCert},
		{"server.key", 0o600, pki.serverKey},
		{"caller.crt", 0o644, pki.callerCert},
		{"caller.key", 0o600, pki.callerKey},
		{"processor.crt", 0o644, pki.processorCert},
		{"processor.key", 0o600, pki.processorKey},
		{"keyring.json", 0o600, ring},
		{"auditor", 0o600, pem.EncodeToMemory(privBlock)},
		{"auditor.pub", 0o644, pub},
		{"allowed_signers", 0o644, signers},
		{"allowlist.yaml", 0o644, doc},
		{filepath.Join("allowlist.sigs", "auditor.sig"), 0o644, sig},
		{"cardgate.yaml", 0o600, cfg},
	}, signedWith, nil
}

// signInitAllowlist signs doc with the stock ssh-keygen when it is on the
// PATH, as an auditor would, else with allowlist.Sign, the code of
// `cardgate allowlist sign`, which writes the same SSHSIG format.
func signInitAllowlist(ctx context.Context, scratch string, doc, privPEM []byte, signer ssh.Signer) ([]byte, string, error) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		sig, err := allowlist.Sign(doc, signer)
		if err != nil {
			return nil, "", fmt.Errorf("init: sign the allowlist: %w", err)
		}
		return sig, "cardgate allowlist sign's signer (ssh-keygen is not on the PATH)", nil
	}
	keyFile, docFile := filepath.Join(scratch, "auditor"), filepath.Join(scratch, "allowlist.yaml")
	if err := os.WriteFile(keyFile, privPEM, 0o600); err != nil {
		return nil, "", fmt.Errorf("init: %w", err)
	}
	if err := os.WriteFile(docFile, doc, 0o600); err != nil {
		return nil, "", fmt.Errorf("init: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, initSSHKeygenTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, keygen, "-q", "-Y", "sign", "-f", keyFile, "-n", allowlist.Namespace, docFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("init: ssh-keygen -Y sign: %w: %s", err, strings.TrimSpace(string(out)))
	}
	sig, err := os.ReadFile(docFile + ".sig")
	if err != nil {
		return nil, "", fmt.Errorf("init: ssh-keygen -Y sign: %w", err)
	}
	return sig, "ssh-keygen -Y sign", nil
}

// installFiles writes each file to a temporary name in dir, syncs it, and
// links it to its name, which fails rather than replace a file that
// appeared meanwhile. On any failure, what was installed is removed again.
func installFiles(dir string, files []initFile) (err error) {
	var done []string
	defer func() {
		if err != nil {
			for i := len(done) - 1; i >= 0; i-- {
				os.Remove(done[i])
			}
		}
	}()
	sigs := filepath.Join(dir, "allowlist.sigs")
	if err := os.Mkdir(sigs, 0o755); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	done = append(done, sigs)
	for _, f := range files {
		final := filepath.Join(dir, f.name)
		if err := writeNew(final, f.data, f.mode); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		// Removed in reverse order, so allowlist.sigs goes after its file.
		done = append(done, final)
	}
	for _, d := range []string{sigs, dir} {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	return nil
}

// writeNew creates path with data, whole or not at all, and never over
// an existing file.
func writeNew(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".init-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Chmod(mode)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return werr
	}
	return os.Link(tmp.Name(), path)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// initPKI is the development CA and the certificates it issued, in PEM.
type initPKI struct {
	caCert, caKey, serverCert, serverKey, callerCert, callerKey, processorCert, processorKey []byte
}

func makeInitPKI(o *initOptions, now time.Time) (*initPKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("init: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "cardgate development CA (" + o.environment + ")"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(initCALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caCert, caDER, err := issue(caTmpl, nil, caKey, &caKey.PublicKey)
	if err != nil {
		return nil, err
	}
	p := &initPKI{caCert: caDER}
	if p.caKey, err = pemKey(caKey); err != nil {
		return nil, err
	}
	leaf := func(cn string, eku x509.ExtKeyUsage, dns []string, ips []net.IP, uris []*url.URL) ([]byte, []byte, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("init: key: %w", err)
		}
		tmpl := &x509.Certificate{
			Subject:               pkix.Name{CommonName: cn},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(initLeafLifetime),
			KeyUsage:              x509.KeyUsageDigitalSignature,
			ExtKeyUsage:           []x509.ExtKeyUsage{eku},
			BasicConstraintsValid: true,
			DNSNames:              dns,
			IPAddresses:           ips,
			URIs:                  uris,
		}
		_, certPEM, err := issue(tmpl, caCert, caKey, &key.PublicKey)
		if err != nil {
			return nil, nil, err
		}
		keyPEM, err := pemKey(key)
		return certPEM, keyPEM, err
	}
	local := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	serverDNS, serverIPs := []string{"localhost"}, local
	if host, _, _ := net.SplitHostPort(o.listen); host != "" && host != "localhost" {
		if ip := net.ParseIP(host); ip == nil {
			serverDNS = append(serverDNS, host)
		} else if !ip.IsLoopback() && !ip.IsUnspecified() {
			serverIPs = append(serverIPs, ip)
		}
	}
	if p.serverCert, p.serverKey, err = leaf("cardgate", x509.ExtKeyUsageServerAuth, serverDNS, serverIPs, nil); err != nil {
		return nil, err
	}
	var dns []string
	var uris []*url.URL
	if strings.HasPrefix(o.caller, "spiffe://") {
		u, err := url.Parse(o.caller)
		if err != nil {
			return nil, fmt.Errorf("init: -caller: %w", err)
		}
		uris = []*url.URL{u} // an X.509-SVID: exactly one URI SAN
	} else {
		dns = []string{o.caller}
	}
	if p.callerCert, p.callerKey, err = leaf(o.caller, x509.ExtKeyUsageClientAuth, dns, nil, uris); err != nil {
		return nil, err
	}
	if p.processorCert, p.processorKey, err = leaf("cardgate test processor", x509.ExtKeyUsageServerAuth, []string{"localhost"}, local, nil); err != nil {
		return nil, err
	}
	return p, nil
}

// issue signs tmpl with parentKey (self-signed when parent is nil).
func issue(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, pub *ecdsa.PublicKey) (*x509.Certificate, []byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("init: serial: %w", err)
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("init: certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("init: certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func pemKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("init: key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// yamlPath quotes a path for YAML: a JSON string is a YAML double-quoted
// scalar, whatever the path holds.
func yamlPath(dir, name string) string {
	b, _ := json.Marshal(filepath.Join(dir, name))
	return string(b)
}

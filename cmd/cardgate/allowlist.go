package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/cardgate/cardgate/allowlist"
)

const allowlistUsage = `usage: cardgate allowlist <command> [flags] FILE

commands:
  verify  check FILE and its detached signatures exactly as the gateway would
  sign    sign FILE with an OpenSSH key (file or ssh-agent), like ssh-keygen -Y sign
  diff    OLD NEW: semantic diff that flags every change widening risk
  show    FILE as a readable table
  next    start the next version of FILE: version+1, prev_sha256, issued_at

Flags come before FILE. Run "cardgate allowlist <command> -h" for a command's flags.
Signatures are plain OpenSSH SSHSIG files in namespace ` + allowlist.Namespace + `;
auditors can check them with ssh-keygen -Y verify (see AUDITING.md).
`

// runAllowlist is "cardgate allowlist …": the auditors' tools.
func runAllowlist(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, allowlistUsage)
		return errUsage
	}
	switch args[0] {
	case "verify":
		return allowlistVerify(args[1:], stdout, stderr)
	case "sign":
		return allowlistSign(args[1:], stdout, stderr)
	case "diff":
		return allowlistDiff(args[1:], stdout, stderr)
	case "show":
		return allowlistShow(args[1:], stdout, stderr)
	case "next":
		return allowlistNext(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, allowlistUsage)
		return nil
	}
	fmt.Fprintf(stderr, "cardgate allowlist: unknown command %q\n\n%s", args[0], allowlistUsage)
	return errUsage
}

// newFlagSet returns a flag set whose -h text starts with the command's
// synopsis and purpose.
func newFlagSet(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	return commandFlags("allowlist "+name, fmt.Sprintf("usage: cardgate allowlist %s %s\n\n%s\n\nflags:\n", name, synopsis, about), stderr)
}

// parseFlags parses args and checks the number of positional arguments.
func parseFlags(fs *flag.FlagSet, args []string, positional int) error {
	if err := parseArgs(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() != positional {
		fmt.Fprintf(fs.Output(), "cardgate %s: want %d file argument(s) after the flags, got %d\n", fs.Name(), positional, fs.NArg())
		fs.Usage()
		return errUsage
	}
	return nil
}

// defaultSigsDir is where the gateway's layout keeps signatures for FILE:
// allowlist.yaml -> allowlist.sigs/.
func defaultSigsDir(file string) string {
	return strings.TrimSuffix(file, filepath.Ext(file)) + ".sigs"
}

func allowlistVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", "--allowed-signers F --threshold M --environment E [flags] FILE",
		"Verifies FILE exactly as the gateway does: every detached signature in --sigs\n"+
			"against the pinned allowed_signers, the threshold over distinct keys and\n"+
			"principals, strict parsing, environment, expiry and maximum validity; with\n"+
			"--prev or --state also the version chain. Exits non-zero if the gateway\n"+
			"would refuse FILE.", stderr)
	signersPath := fs.String("allowed-signers", "", "OpenSSH allowed_signers `file` pinned by the gateway (required)")
	threshold := fs.Int("threshold", 0, "`M`: distinct signers required (required)")
	env := fs.String("environment", "", "the gateway's environment, e.g. prod (required)")
	sigsDir := fs.String("sigs", "", "`dir`ectory of *.sig files (default: FILE without extension + .sigs)")
	maxValidity := fs.Duration("max-validity", 0, "longest allowed expires-issued_at (default 2160h, 90 days)")
	prev := fs.String("prev", "", "the previous approved `file`: FILE must be its successor")
	state := fs.String("state", "", "the gateway's rollback state `file` (JSON); checked, never written")
	at := fs.String("at", "", "verify as of this RFC 3339 `time` instead of now")
	if err := parseFlags(fs, args, 1); err != nil || fs.NArg() == 0 {
		return err
	}
	file := fs.Arg(0)
	if *signersPath == "" || *threshold < 1 || *env == "" {
		fmt.Fprintln(stderr, "cardgate allowlist verify: --allowed-signers, --threshold and --environment are required")
		fs.Usage()
		return errUsage
	}
	if *sigsDir == "" {
		*sigsDir = defaultSigsDir(file)
	}
	now := time.Now
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("allowlist verify: --at: %w", err)
		}
		now = func() time.Time { return t }
	}
	signers, err := os.ReadFile(*signersPath)
	if err != nil {
		return fmt.Errorf("allowlist verify: %w", err)
	}
	raw, sigs, err := readSignedSet(file, *sigsDir)
	if err != nil {
		return fmt.Errorf("allowlist verify: %w", err)
	}
	policy := allowlist.Policy{AllowedSigners: signers, Threshold: *threshold, Environment: *env, MaxValidity: *maxValidity, Now: now}

	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "file:\t%s\n", file)
	fmt.Fprintf(w, "sha256:\t%s\n", allowlist.SHA256Hex(raw))
	if doc, perr := allowlist.ParseUnverified(raw); perr == nil {
		fmt.Fprintf(w, "version:\t%d\n", doc.Version)
		fmt.Fprintf(w, "prev_sha256:\t%s\n", orDash(doc.PrevSHA256))
		fmt.Fprintf(w, "environment:\t%s\n", doc.Environment)
		fmt.Fprintf(w, "issued_at:\t%s\n", doc.IssuedAt.Format(time.RFC3339))
		fmt.Fprintf(w, "expires:\t%s (%s)\n", doc.Expires.Format(time.RFC3339), untilText(doc.Expires, now()))
		fmt.Fprintf(w, "destinations:\t%d\n", len(doc.Destinations))
	} else {
		fmt.Fprintf(w, "parse:\t%v\n", perr)
	}
	w.Flush()

	a, verr := allowlist.Verify(raw, sigs, policy)
	var results []allowlist.SignatureResult
	if a != nil {
		results = a.Signatures
	}
	var ve *allowlist.VerifyError
	if errors.As(verr, &ve) && ve.Signatures != nil {
		results = ve.Signatures
	}
	fmt.Fprintf(stdout, "signatures (%s):\n", *sigsDir)
	w = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	counted := 0
	for _, r := range results {
		if r.Status == allowlist.StatusValid {
			counted++
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", r.File, r.Status, orDash(r.Principal), orDash(r.Fingerprint), r.Detail)
	}
	if len(results) == 0 {
		fmt.Fprintf(w, "  (none checked)\n")
	}
	w.Flush()
	met := "NOT met"
	if counted >= *threshold {
		met = "met"
	}
	fmt.Fprintf(stdout, "threshold: %d of %d distinct signers: %s\n", counted, *threshold, met)

	if verr == nil {
		verr = checkChain(a, *prev, *state)
	}
	if verr != nil {
		fmt.Fprintf(stdout, "result: REFUSED: %v\n", verr)
		return fmt.Errorf("allowlist verify: %s would be refused: %w", file, verr)
	}
	fmt.Fprintf(stdout, "result: ACCEPTED (version %d, sha256 %s)\n", a.Doc.Version, a.SHA256)
	return nil
}

// checkChain applies the rollback rules against an earlier file or a
// state file, without writing anything.
func checkChain(a *allowlist.Allowlist, prevPath, statePath string) error {
	next := allowlist.Successor{Version: a.Doc.Version, SHA256: a.SHA256, PrevSHA256: a.Doc.PrevSHA256}
	if prevPath != "" {
		prevRaw, err := os.ReadFile(prevPath)
		if err != nil {
			return fmt.Errorf("--prev: %w", err)
		}
		prevDoc, err := allowlist.ParseUnverified(prevRaw)
		if err != nil {
			return fmt.Errorf("--prev: %w", err)
		}
		if prevDoc.Version+1 != a.Doc.Version {
			return fmt.Errorf("version %d does not follow version %d of %s", a.Doc.Version, prevDoc.Version, prevPath)
		}
		if err := allowlist.CheckSuccession(allowlist.State{Version: prevDoc.Version, SHA256: allowlist.SHA256Hex(prevRaw)}, next); err != nil {
			return err
		}
	}
	if statePath != "" {
		st, err := allowlist.NewFileStateStore(statePath).Load(context.Background())
		if err != nil {
			return fmt.Errorf("--state: %w", err)
		}
		if err := allowlist.CheckSuccession(st, next); err != nil {
			return err
		}
	}
	return nil
}

// readSignedSet reads FILE and every *.sig in dir, as the gateway does.
func readSignedSet(file, dir string) ([]byte, []allowlist.Signature, error) {
	raw, err := allowlist.ReadDocument(file)
	if err != nil {
		return nil, nil, err
	}
	sigs, err := allowlist.ReadSignatures(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	return raw, sigs, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func untilText(t, now time.Time) string {
	d := t.Sub(now)
	if d <= 0 {
		return "EXPIRED " + (-d).Round(time.Minute).String() + " ago"
	}
	if d > 48*time.Hour {
		return fmt.Sprintf("in %d days", int(d.Hours()/24))
	}
	return "in " + d.Round(time.Minute).String()
}

func allowlistSign(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sign", "(--key PRIVATE_KEY | --agent FINGERPRINT) [--out FILE.sig] FILE",
		"Signs the exact bytes of FILE in namespace "+allowlist.Namespace+".\n"+
			"The output is what `ssh-keygen -Y sign -n "+allowlist.Namespace+"` writes.\n"+
			"FILE must parse as an allowlist; review it (show, diff) before signing.\n"+
			"Passphrase-protected and hardware (sk) keys: load them into ssh-agent and\n"+
			"use --agent, or sign with ssh-keygen -Y sign directly.", stderr)
	keyPath := fs.String("key", "", "OpenSSH private key `file` (unencrypted)")
	agentFP := fs.String("agent", "", "sign with the ssh-agent key (SSH_AUTH_SOCK) whose fingerprint is `SHA256:…`")
	out := fs.String("out", "", "signature `file` (default FILE.sig); never overwritten unless --force")
	force := fs.Bool("force", false, "overwrite an existing signature file")
	if err := parseFlags(fs, args, 1); err != nil || fs.NArg() == 0 {
		return err
	}
	file := fs.Arg(0)
	if (*keyPath == "") == (*agentFP == "") {
		fmt.Fprintln(stderr, "cardgate allowlist sign: give exactly one of --key or --agent")
		fs.Usage()
		return errUsage
	}
	raw, err := allowlist.ReadDocument(file)
	if err != nil {
		return fmt.Errorf("allowlist sign: %w", err)
	}
	doc, err := allowlist.ParseUnverified(raw)
	if err != nil {
		return fmt.Errorf("allowlist sign: refusing to sign a document the gateway would reject: %w", err)
	}
	var signer ssh.Signer
	if *keyPath != "" {
		pem, err := os.ReadFile(*keyPath)
		if err != nil {
			return fmt.Errorf("allowlist sign: %w", err)
		}
		signer, err = ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return errors.New("allowlist sign: the key is passphrase-protected: add it to ssh-agent and use --agent")
		}
		if err != nil {
			return fmt.Errorf("allowlist sign: %s: %w", *keyPath, err)
		}
	} else {
		var closeAgent func()
		signer, closeAgent, err = agentSigner(*agentFP)
		if err != nil {
			return fmt.Errorf("allowlist sign: %w", err)
		}
		defer closeAgent()
	}
	armored, err := allowlist.Sign(raw, signer)
	if err != nil {
		return err
	}
	if *out == "" {
		*out = file + ".sig"
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if *force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(*out, flags, 0o644)
	if err != nil {
		return fmt.Errorf("allowlist sign: %w", err)
	}
	if _, err := f.Write(armored); err != nil {
		f.Close()
		return fmt.Errorf("allowlist sign: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("allowlist sign: %w", err)
	}
	fmt.Fprintf(stdout, "signed %s (version %d, environment %s, sha256 %s) with %s %s\nwrote %s\n",
		file, doc.Version, doc.Environment, allowlist.SHA256Hex(raw), signer.PublicKey().Type(), ssh.FingerprintSHA256(signer.PublicKey()), *out)
	return nil
}

// Bounds on talking to ssh-agent.
const (
	agentDialTimeout = 5 * time.Second
	agentTimeout     = 2 * time.Minute
)

// agentSigner finds the key with fingerprint fp in the ssh-agent at
// SSH_AUTH_SOCK. Hardware keys then ask for a touch on the device.
func agentSigner(fp string) (ssh.Signer, func(), error) {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, nil, errors.New("--agent: SSH_AUTH_SOCK is not set")
	}
	conn, err := net.DialTimeout("unix", sock, agentDialTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("--agent: %w", err)
	}
	// A wedged agent must not hang the auditor's shell; the bound is long
	// enough for a touch on a hardware key.
	if err := conn.SetDeadline(time.Now().Add(agentTimeout)); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("--agent: %w", err)
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("--agent: %w", err)
	}
	for _, s := range signers {
		if ssh.FingerprintSHA256(s.PublicKey()) == fp {
			return s, func() { conn.Close() }, nil
		}
	}
	conn.Close()
	return nil, nil, fmt.Errorf("--agent: no key with fingerprint %s in the agent (ssh-add -l lists them)", fp)
}

func allowlistShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("show", "FILE", "Prints FILE as a table. It does NOT check signatures; use verify for that.", stderr)
	if err := parseFlags(fs, args, 1); err != nil || fs.NArg() == 0 {
		return err
	}
	raw, err := allowlist.ReadDocument(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("allowlist show: %w", err)
	}
	doc, err := allowlist.ParseUnverified(raw)
	if err != nil {
		return fmt.Errorf("allowlist show: %w", err)
	}
	fmt.Fprintf(stdout, "%s  version %d  environment %s  (signatures not checked)\n", doc.Format, doc.Version, doc.Environment)
	fmt.Fprintf(stdout, "issued %s  expires %s  sha256 %s\nprev_sha256 %s\n\n",
		doc.IssuedAt.Format(time.RFC3339), doc.Expires.Format(time.RFC3339), allowlist.SHA256Hex(raw), orDash(doc.PrevSHA256))
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tHOST\tPORT\tPATH PREFIX\tMETHODS\tCALLERS\tCARD FIELDS\tNOTES")
	for _, d := range doc.Destinations {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Host, d.Port, d.PathPrefix,
			strings.Join(d.Methods, ","), strings.Join(d.Callers, ","), joinFields(d.Fields), strings.Join(notes(&d), "; "))
	}
	return w.Flush()
}

func joinFields(fs []allowlist.Field) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ",")
}

// notes lists what a reviewer must notice about an entry.
func notes(d *allowlist.Destination) []string {
	var n []string
	if d.IsWildcard() {
		n = append(n, "WILDCARD host")
	}
	for _, p := range d.UnsafeAllowRanges {
		n = append(n, "UNSAFE range "+p.String())
	}
	if len(d.CardHeaders) > 0 {
		n = append(n, "card in headers "+strings.Join(d.CardHeaders, ","))
	}
	if d.TLS != nil && len(d.TLS.SPKIPins) > 0 {
		n = append(n, fmt.Sprintf("%d SPKI pin(s)", len(d.TLS.SPKIPins)))
	}
	if d.TLS != nil && d.TLS.CABundle != "" {
		n = append(n, "CA bundle "+d.TLS.CABundle)
	}
	if d.TLS != nil && d.TLS.ClientCert != "" {
		n = append(n, "client cert "+d.TLS.ClientCert)
	}
	if d.Timeout != 0 {
		n = append(n, "timeout "+d.Timeout.String())
	}
	if d.MaxResponseBytes != 0 {
		n = append(n, fmt.Sprintf("max response %d B", d.MaxResponseBytes))
	}
	return n
}

func allowlistDiff(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("diff", "[--fail-on-widen] OLD NEW",
		"Compares two allowlists field by field. Lines marked WIDENS are changes that\n"+
			"increase risk (new destination or host, port, broader path, new caller, method,\n"+
			"card field or card header, new unsafe range, removed pins, new or changed\n"+
			"client certificate, longer validity).\n"+
			"Signatures are not checked.", stderr)
	failOnWiden := fs.Bool("fail-on-widen", false, "exit non-zero when any change widens risk")
	if err := parseFlags(fs, args, 2); err != nil || fs.NArg() == 0 {
		return err
	}
	var docs [2]*allowlist.Document
	var raws [2][]byte
	for i := range docs {
		raw, err := allowlist.ReadDocument(fs.Arg(i))
		if err != nil {
			return fmt.Errorf("allowlist diff: %w", err)
		}
		if docs[i], err = allowlist.ParseUnverified(raw); err != nil {
			return fmt.Errorf("allowlist diff: %s: %w", fs.Arg(i), err)
		}
		raws[i] = raw
	}
	changes := diffDocuments(docs[0], docs[1], allowlist.SHA256Hex(raws[0]))
	widens := 0
	for _, c := range changes {
		mark := "       "
		if c.widens {
			mark = "WIDENS "
			widens++
		}
		fmt.Fprintf(stdout, "%s%s\n", mark, c.text)
	}
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "no semantic changes")
	}
	fmt.Fprintf(stdout, "%d change(s), %d widening risk\n", len(changes), widens)
	if *failOnWiden && widens > 0 {
		return fmt.Errorf("allowlist diff: %d change(s) widen risk", widens)
	}
	return nil
}

type change struct {
	text   string
	widens bool
}

// diffDocuments lists semantic changes from old to new.
func diffDocuments(old, new *allowlist.Document, oldSHA string) []change {
	var c []change
	add := func(widens bool, format string, a ...any) {
		c = append(c, change{fmt.Sprintf(format, a...), widens})
	}
	if new.Version <= old.Version {
		add(true, "~ version %d -> %d: NOT increasing; the gateway refuses it as a rollback", old.Version, new.Version)
	} else {
		add(false, "~ version %d -> %d", old.Version, new.Version)
	}
	if new.Version == old.Version+1 && new.PrevSHA256 != oldSHA {
		add(true, "~ prev_sha256 %s does NOT match sha256 of OLD %s", orDash(new.PrevSHA256), oldSHA)
	}
	if old.Environment != new.Environment {
		add(true, "~ environment %s -> %s", old.Environment, new.Environment)
	}
	oldValidity, newValidity := old.Expires.Sub(old.IssuedAt), new.Expires.Sub(new.IssuedAt)
	add(newValidity > oldValidity, "~ expires %s -> %s (validity %s -> %s)",
		old.Expires.Format(time.RFC3339), new.Expires.Format(time.RFC3339), oldValidity, newValidity)

	oldByID := map[string]*allowlist.Destination{}
	for i := range old.Destinations {
		oldByID[old.Destinations[i].ID] = &old.Destinations[i]
	}
	newIDs := map[string]bool{}
	for i := range new.Destinations {
		n := &new.Destinations[i]
		newIDs[n.ID] = true
		o, ok := oldByID[n.ID]
		if !ok {
			add(true, "+ destination %s: %s (host %s, port %d, callers %s, card fields %s)", n.ID, n.URL, n.Host, n.Port,
				strings.Join(n.Callers, ","), joinFields(n.Fields))
			if cc := clientCert(n); cc != "" {
				add(true, "~ %s: client cert - -> %s", n.ID, cc)
			}
			continue
		}
		c = append(c, diffDestination(o, n)...)
	}
	for _, o := range old.Destinations {
		if !newIDs[o.ID] {
			add(false, "- destination %s: %s", o.ID, o.URL)
		}
	}
	return c
}

func diffDestination(o, n *allowlist.Destination) []change {
	var c []change
	at := "~ " + n.ID + ": "
	add := func(widens bool, format string, a ...any) {
		c = append(c, change{at + fmt.Sprintf(format, a...), widens})
	}
	if o.Host != n.Host {
		add(true, "host %s -> %s (new host)", o.Host, n.Host)
	}
	if o.Port != n.Port {
		add(true, "port %d -> %d", o.Port, n.Port)
	}
	if o.PathPrefix != n.PathPrefix {
		// Only a move to a sub-path of the old prefix narrows.
		narrower := (o.PathPrefix == "/" && n.PathPrefix != "/") || strings.HasPrefix(n.PathPrefix, o.PathPrefix+"/")
		add(!narrower, "path prefix %s -> %s", o.PathPrefix, n.PathPrefix)
	}
	listDiff := func(name string, widenOnAdd bool, oldL, newL []string) {
		for _, v := range newL {
			if !slices.Contains(oldL, v) {
				add(widenOnAdd, "+ %s %s", name, v)
			}
		}
		for _, v := range oldL {
			if !slices.Contains(newL, v) {
				add(!widenOnAdd, "- %s %s", name, v)
			}
		}
	}
	listDiff("method", true, o.Methods, n.Methods)
	listDiff("caller", true, o.Callers, n.Callers)
	listDiff("card field", true, strings.Split(joinFields(o.Fields), ","), strings.Split(joinFields(n.Fields), ","))
	listDiff("card header", true, o.CardHeaders, n.CardHeaders)
	var oldR, newR []string
	for _, p := range o.UnsafeAllowRanges {
		oldR = append(oldR, p.String())
	}
	for _, p := range n.UnsafeAllowRanges {
		newR = append(newR, p.String())
	}
	listDiff("unsafe range", true, oldR, newR)
	pins := func(d *allowlist.Destination) (p []string, ca string) {
		if d.TLS == nil {
			return nil, ""
		}
		for _, x := range d.TLS.SPKIPins {
			p = append(p, fmt.Sprintf("%x", x))
		}
		return p, d.TLS.CABundle
	}
	oldP, oldCA := pins(o)
	newP, newCA := pins(n)
	// Removing pins widens what certificates are accepted; adding narrows,
	// unless it is the first pin set (then it narrows from "any").
	listDiff("SPKI pin (sha256 hex)", false, oldP, newP)
	if len(oldP) > 0 && len(newP) == 0 {
		add(true, "all SPKI pins removed")
	}
	if oldCA != newCA {
		add(true, "CA bundle %s -> %s", orDash(oldCA), orDash(newCA))
	}
	// A client certificate is the gateway's credential at a processor: a
	// new or different one presents it where it was not presented before
	// (and, under TLS 1.2, shows it on the wire), so it is flagged.
	// Removing it only makes an mTLS processor refuse the handshake.
	oldCC, newCC := clientCert(o), clientCert(n)
	if oldCC != newCC {
		add(newCC != "", "client cert %s -> %s", orDash(oldCC), orDash(newCC))
	}
	if o.Timeout != n.Timeout {
		add(n.Timeout > o.Timeout || n.Timeout == 0, "timeout %s -> %s", o.Timeout, n.Timeout)
	}
	if o.MaxResponseBytes != n.MaxResponseBytes {
		add(n.MaxResponseBytes > o.MaxResponseBytes || n.MaxResponseBytes == 0, "max_response_bytes %d -> %d", o.MaxResponseBytes, n.MaxResponseBytes)
	}
	if o.Purpose != n.Purpose {
		add(false, "purpose %q -> %q", o.Purpose, n.Purpose)
	}
	if o.Owner != n.Owner {
		add(false, "owner %s -> %s", o.Owner, n.Owner)
	}
	return c
}

func clientCert(d *allowlist.Destination) string {
	if d.TLS == nil {
		return ""
	}
	return d.TLS.ClientCert
}

func allowlistNext(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("next", "[--validity D] [--out NEW] FILE",
		"Starts the next version of FILE: version+1, prev_sha256 = sha256 of FILE,\n"+
			"issued_at = now, expires = now + validity. Only those lines are edited, so\n"+
			"comments and layout survive. Edit the destinations, review with diff, then sign.", stderr)
	validity := fs.Duration("validity", 0, "expires-issued_at of the new version (default: the same as FILE's)")
	out := fs.String("out", "", "write the new version to this `file` (default: stdout); never overwritten")
	if err := parseFlags(fs, args, 1); err != nil || fs.NArg() == 0 {
		return err
	}
	raw, err := allowlist.ReadDocument(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("allowlist next: %w", err)
	}
	next, err := nextVersion(raw, time.Now(), *validity)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(next)
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("allowlist next: %w", err)
	}
	if _, err := f.Write(next); err != nil {
		f.Close()
		return fmt.Errorf("allowlist next: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("allowlist next: %w", err)
	}
	fmt.Fprintf(stderr, "wrote %s\n", *out)
	return nil
}

// topLevelValue matches one top-level "key: value" line, capturing the
// prefix up to the value and the value itself (quoted or bare), so that a
// trailing comment survives the edit.
func topLevelValue(key string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^(` + regexp.QuoteMeta(key) + `:[ \t]*)("[^"\n]*"|'[^'\n]*'|[^ \t#\r\n]*)`)
}

// nextVersion edits the text of raw rather than re-serializing it, so
// that reviewers' comments and the layout of the signed file survive.
func nextVersion(raw []byte, now time.Time, validity time.Duration) ([]byte, error) {
	doc, err := allowlist.ParseUnverified(raw)
	if err != nil {
		return nil, fmt.Errorf("allowlist next: %w", err)
	}
	if validity == 0 {
		validity = doc.Expires.Sub(doc.IssuedAt)
	}
	if validity <= 0 {
		return nil, errors.New("allowlist next: --validity must be positive")
	}
	issued := now.UTC().Truncate(time.Second)
	edits := []struct{ key, value string }{
		{"version", fmt.Sprint(doc.Version + 1)},
		{"issued_at", issued.Format(time.RFC3339)},
		{"expires", issued.Add(validity).Format(time.RFC3339)},
		{"prev_sha256", `"` + allowlist.SHA256Hex(raw) + `"`},
	}
	text := string(raw)
	for _, e := range edits {
		re := topLevelValue(e.key)
		switch n := len(re.FindAllStringIndex(text, -1)); {
		case n == 0 && e.key == "prev_sha256":
			// Version 1 may omit it: add it under the version line.
			text = topLevelValue("version").ReplaceAllString(text, "${1}${2}\nprev_sha256: "+e.value)
		case n != 1:
			return nil, fmt.Errorf("allowlist next: expected exactly one top-level %q line, found %d", e.key, n)
		default:
			text = re.ReplaceAllString(text, "${1}"+e.value)
		}
	}
	out := []byte(text)
	check, err := allowlist.ParseUnverified(out)
	if err != nil {
		return nil, fmt.Errorf("allowlist next: the edited file does not parse: %w", err)
	}
	if check.Version != doc.Version+1 || check.PrevSHA256 != allowlist.SHA256Hex(raw) {
		return nil, errors.New("allowlist next: the edit did not take; edit version and prev_sha256 by hand")
	}
	return out, nil
}

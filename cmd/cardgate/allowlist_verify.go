// "cardgate allowlist verify": the gateway's checks, run by an auditor.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cardgate/cardgate/allowlist"
)

func allowlistVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
	signers, err := allowlist.ReadAllowedSigners(ctx, *signersPath)
	if err != nil {
		return fmt.Errorf("allowlist verify: %w", err)
	}
	raw, sigs, err := readSignedSet(ctx, file, *sigsDir)
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
	if as, err := allowlist.ParseAllowedSigners(signers); err == nil {
		for _, d := range as.DuplicateKeys() {
			fmt.Fprintf(stdout, "warning: %s lists key %s on lines %s (principals %s): it counts as ONE signer; ssh-keygen -Y find-principals names only the first line's principals\n",
				*signersPath, d.Fingerprint, joinInts(d.Lines), strings.Join(d.Principals, ", "))
		}
	}

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
		verr = checkChain(ctx, a, *prev, *state)
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
func checkChain(ctx context.Context, a *allowlist.Allowlist, prevPath, statePath string) error {
	next := allowlist.Successor{Version: a.Doc.Version, SHA256: a.SHA256, PrevSHA256: a.Doc.PrevSHA256}
	if prevPath != "" {
		prevRaw, err := allowlist.ReadDocument(ctx, prevPath)
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
		st, err := allowlist.NewFileStateStore(statePath).Load(ctx)
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
func readSignedSet(ctx context.Context, file, dir string) ([]byte, []allowlist.Signature, error) {
	raw, err := allowlist.ReadDocument(ctx, file)
	if err != nil {
		return nil, nil, err
	}
	sigs, err := allowlist.ReadSignatures(ctx, dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	return raw, sigs, nil
}

func joinInts(n []int) string {
	s := make([]string, len(n))
	for i, v := range n {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}

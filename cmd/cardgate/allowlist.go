package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/cardgate/cardgate/allowlist"
)

const allowlistUsage = `usage: cardgate allowlist <command> [flags] FILE

commands:
  verify  check FILE and its detached signatures exactly as the gateway would
  sign    sign FILE with an OpenSSH key (file or ssh-agent), like ssh-keygen -Y sign
  diff    OLD NEW: semantic diff that flags every change widening risk
  show    FILE as a readable table
  next    start the next version of FILE: version+1, prev_sha256, issued_at
  egress-policy  FILE as a Kubernetes or Cilium egress network policy

Flags go before or after FILE ("--" ends them). Run "cardgate allowlist <command> -h" for a command's flags.
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
		return allowlistVerify(ctx, args[1:], stdout, stderr)
	case "sign":
		return allowlistSign(ctx, args[1:], stdout, stderr)
	case "diff":
		return allowlistDiff(ctx, args[1:], stdout, stderr)
	case "show":
		return allowlistShow(ctx, args[1:], stdout, stderr)
	case "next":
		return allowlistNext(ctx, args[1:], stdout, stderr)
	case "egress-policy":
		return allowlistEgress(ctx, args[1:], stdout, stderr)
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
// After -h it returns errHelp, wherever -h stands: the usage was printed
// and the command must not run ("sign --key K -h FILE" once signed FILE).
func parseFlags(fs *flag.FlagSet, args []string, positional int) error {
	if err := parseCommand(fs, args); err != nil {
		return err
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

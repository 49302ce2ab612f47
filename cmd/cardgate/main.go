// Command cardgate is the card-forwarding egress gateway: one binary for
// the server, the demo, and the auditor and operator tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `usage: cardgate <command> [arguments]

commands:
  serve -config FILE        run the gateway
  demo                      run a self-contained demo on loopback (no Redis needed)
  init DIR                  write a self-hosted starting point: certificates, keyring, signed allowlist, config
  allowlist sign|verify|diff|show|next ...
                            the auditor's tools for the signed allowlist
  keys init|status|rotate|rewrap|retire ...
                            key backends: create keys, rotate, re-seal records, retire versions
  cards status -config FILE
                            count stored cards by time since last use (retention)
  cards import|export ...   move cards between vaults: age-encrypted JSON lines (docs/migration.md)
  audit verify FILE | --redis ADDR --stream KEY
                            check the hash-chained audit log
  destinations disable ID|--all [--reason TEXT] | enable ID|--all | status
                            the kill switch: stop forwards to a destination at once
  canary add|remove TOKEN | list
                            mark tokens whose use raises an alert
  probe URL                 GET an admin URL; fail unless 200 (container healthchecks)
  version                   print the version

Run "cardgate <command> -h" for a command's flags.
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, errHelp) {
			return // -h: the usage was asked for and printed
		}
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "cardgate:", err)
		}
		os.Exit(1)
	}
}

// errUsage means the usage text was already printed.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "init":
		return runInit(ctx, args[1:], stdout, stderr)
	case "allowlist":
		return runAllowlist(ctx, args[1:], stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr)
	case "destinations":
		return runDestinations(ctx, args[1:], stdout, stderr)
	case "canary":
		return runCanary(ctx, args[1:], stdout, stderr)
	case "keys":
		return runKeys(ctx, args[1:], stdout, stderr)
	case "cards":
		return runCards(ctx, args[1:], stdout, stderr)
	case "probe":
		return runProbe(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "cardgate", version)
		return nil
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "cardgate: unknown command %q\n\n%s", args[0], usage)
	return errUsage
}

// isHelp reports whether a, in a command's place, asks for its usage.
func isHelp(a string) bool { return a == "help" || a == "-h" || a == "-help" || a == "--help" }

// errHelp means -h was asked for and the usage printed: not a failure.
var errHelp = errors.New("help")

// parseArgs is fs.Parse for a subcommand, except that flags may also come
// after and between the operands ("allowlist next OLD --out NEW"), where
// the std flag package stops at the first operand. "--" ends the flags:
// everything after it is an operand. Afterwards fs.Args() holds the
// operands in order, as after fs.Parse. The errors are fs.Parse's:
// flag.ErrHelp after -h or -help (the usage was printed), another error
// for a bad flag (fs printed why).
func parseArgs(fs *flag.FlagSet, args []string) error {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if endedByDashes(fs, args[:len(args)-len(rest)]) {
			operands = append(operands, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
	// Parse again so that fs.Args() is the operands: after "--" nothing is
	// read as a flag, and the flags already set keep their values.
	return fs.Parse(append([]string{"--"}, operands...))
}

// endedByDashes reports whether the arguments fs.Parse consumed ended with
// the "--" terminator, rather than with a "--" that was a flag's value. It
// walks them as the flag package does: "-name=value" and a boolean flag
// take one argument, any other flag two.
func endedByDashes(fs *flag.FlagSet, consumed []string) bool {
	for i := 0; i < len(consumed); i++ {
		a := consumed[i]
		if a == "--" {
			return true
		}
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && !isBoolFlag(f) {
			i++ // the next argument is this flag's value
		}
	}
	return false
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// parseCommand parses a subcommand's args with parseArgs and says how the
// command ends: errHelp after -h (a success: the usage was printed),
// errUsage after a bad flag (the reason was printed).
func parseCommand(fs *flag.FlagSet, args []string) error {
	if err := parseArgs(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return errUsage
	}
	return nil
}

// commandFlags returns the flag set of a subcommand: errors and help go to
// stderr, and -h prints usage (the command's help text) and then the flags.
// Parse it with parseArgs (or parseCommand), which also takes flags after
// the operands.
func commandFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

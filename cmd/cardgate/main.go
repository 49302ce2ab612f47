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
	case "probe":
		return runProbe(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "cardgate", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "cardgate: unknown command %q\n\n%s", args[0], usage)
	return errUsage
}

// errHelp means -h was asked for and the usage printed: not a failure.
var errHelp = errors.New("help")

// parseInterspersed parses fs's flags wherever they stand among the
// operands, which the std flag package stops at, and returns the operands.
// -h gives errHelp; a bad flag, errUsage (fs has printed why).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, errUsage
		}
		if fs.NArg() == 0 {
			return operands, nil
		}
		operands = append(operands, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// commandFlags returns the flag set of a subcommand: errors and help go to
// stderr, and -h prints usage (the command's help text) and then the flags.
func commandFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

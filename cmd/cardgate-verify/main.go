package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"golang.org/x/mod/sumdb/note"
)

const usage = `usage: cardgate-verify checkpoint  --key VKEY CHECKPOINT
       cardgate-verify inclusion   --key VKEY [--forward ID] PROOFS
       cardgate-verify consistency --key VKEY OLD NEW PROOF
       cardgate-verify log         --key VKEY --checkpoint CP [--checkpoint CP ...] AUDITFILE

Checks a cardgate audit log's checkpoints and proofs without trusting the
gateway. VKEY is the log's pinned note verifier key (or --key-file FILE).

  checkpoint   verify the signature and print origin, size and root
  inclusion    verify the tlog-proofs of 'cardgate audit prove' (each
               against the checkpoint it carries) and print the records
  consistency  verify that checkpoint NEW extends checkpoint OLD with the
               proof of 'cardgate audit consistency'
  log          recompute the tree over the audit file; every checkpoint
               must be the root of its first SIZE lines (catches lines cut
               from the end, dropped, reordered, rewritten, and forks), then
               list the allowlist loads they record

Exit status: 0 all good, 1 a check failed, 2 usage.
`

// maxInput bounds the checkpoint and proof files read.
const maxInput = 16 << 20

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "cardgate-verify:", err)
		if errors.Is(err, errFailed) {
			fmt.Fprintln(os.Stdout, "FAILED")
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func run(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	key := fs.String("key", "", "the log's note verifier key")
	keyFile := fs.String("key-file", "", "a file holding the verifier key")
	forward := fs.String("forward", "", "inclusion: every proven record must belong to this forward")
	var cpFiles listFlag
	fs.Var(&cpFiles, "checkpoint", "log: a checkpoint the file must match (repeatable)")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if *keyFile != "" {
		b, err := readFile(*keyFile)
		if err != nil {
			return err
		}
		*key = strings.TrimSpace(string(b))
	}
	if *key == "" {
		fmt.Fprintln(stderr, "cardgate-verify: --key VKEY (or --key-file FILE) is required")
		return errUsage
	}
	v, err := note.NewVerifier(*key)
	if err != nil {
		return fmt.Errorf("--key: not a note verifier key: %w", err)
	}
	files := fs.Args()
	switch {
	case cmd == "checkpoint" && len(files) == 1:
		b, err := readFile(files[0])
		if err != nil {
			return err
		}
		c, err := openCheckpoint(b, v)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ok: %s\n", c)
		return nil
	case cmd == "inclusion" && len(files) == 1:
		b, err := readFile(files[0])
		if err != nil {
			return err
		}
		return verifyInclusion(stdout, b, v, *forward)
	case cmd == "consistency" && len(files) == 3:
		var bs [3][]byte
		for i, f := range files {
			if bs[i], err = readFile(f); err != nil {
				return err
			}
		}
		return verifyConsistency(stdout, bs[0], bs[1], bs[2], v)
	case cmd == "log" && len(files) == 1 && len(cpFiles) > 0:
		var cps []checkpoint
		for _, f := range cpFiles {
			b, err := readFile(f)
			if err != nil {
				return err
			}
			c, err := openCheckpoint(b, v)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			cps = append(cps, c)
		}
		lf, err := openRegular(files[0])
		if err != nil {
			return err
		}
		defer lf.Close()
		return verifyLog(stdout, lf, cps)
	}
	fmt.Fprint(stderr, usage)
	return errUsage
}

// openRegular opens path for reading and refuses anything but a regular
// file. O_NONBLOCK makes the open of a named pipe return at once (a
// plain open blocks until a writer appears), so that whoever controls
// the files cannot hang the check; on a regular file it changes nothing.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return f, nil
}

func readFile(path string) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxInput {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxInput)
	}
	return b, nil
}

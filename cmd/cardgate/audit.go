package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/internal/fileread"
)

const auditUsage = `usage: cardgate audit verify [flags] FILE
       cardgate audit verify [flags] -config FILE [--stream KEY]
       cardgate audit verify [flags] --redis ADDR[,ADDR...] --stream KEY
       cardgate audit prove|consistency|checkpoint-key … (see cardgate audit prove -h)

Recomputes every record's hash and follows every chain; reports each
record modified, deleted, inserted or reordered, with its line (or stream
id), chain and seq. Exits non-zero on any problem. Lists, as "outcome
unknown", each intent whose forward has no result record (a crash between
the two, or a forward still in flight): not a problem of the log, but a
forward to reconcile with the processor.

Records removed from the end of a chain cannot be detected from the log
alone: keep the last hashes this command prints (the gateway also logs its
chain's head every minute and at shutdown), and pass them back with
--expect or --expect-last next time. A log with no records at all (an empty
file, a stream that does not exist) fails unless --allow-empty is given.

With -config, the gateway's own Redis settings are used (single node,
Sentinel or Cluster, TLS, credentials) and the stream defaults to its
audit.redis_stream. With --redis, a single address is one node and a list
is a Cluster; credentials come from ` + config.EnvRedisUsername + ` and ` + config.EnvRedisPassword + `.

flags:
`

// runAudit runs "cardgate audit …".
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 1 && isHelp(args[0]) {
		fmt.Fprint(stderr, auditUsage)
		return errHelp
	}
	if len(args) > 0 && (args[0] == "prove" || args[0] == "consistency" || args[0] == "checkpoint-key") {
		return runAuditProve(ctx, args[0], args[1:], stdout, stderr) // audit_prove.go
	}
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(stderr, auditUsage)
		return errUsage
	}
	fs := commandFlags("audit verify", auditUsage, stderr)
	addrs := fs.String("redis", "", "verify the Redis stream at these addresses instead of a file")
	stream := fs.String("stream", "", "the stream key (with --redis, or to override -config's)")
	cfgPath := fs.String("config", "", "verify the audit stream of the gateway configured in FILE")
	allowEmpty := fs.Bool("allow-empty", false, "succeed on a log with no records (an empty file, a missing stream)")
	var anchors anchorFlags
	fs.Var(anchors.flag(false), "expect", "a hash that must be on its chain (repeatable)")
	fs.Var(anchors.flag(true), "expect-last", "a hash that must be its chain's last record (repeatable)")

	if err := parseCommand(fs, args[1:]); err != nil {
		return err
	}
	files := fs.Args()

	var rep *audit.Report
	var err error
	var what string // the log, as the empty-log message names it
	switch {
	case *cfgPath != "" && *addrs == "" && len(files) == 0:
		rep, what, err = verifyConfigured(ctx, *cfgPath, *stream, anchors)
	case *cfgPath != "":
		fs.Usage()
		return errUsage
	case *addrs != "" && len(files) == 0:
		if *stream == "" {
			fmt.Fprintln(stderr, "cardgate audit verify: --redis needs --stream KEY")
			return errUsage
		}
		rep, err = verifyRedis(ctx, strings.Split(*addrs, ","), *stream, anchors)
		what = "stream " + *stream
	case *addrs == "" && len(files) == 1:
		if *stream != "" {
			fmt.Fprintln(stderr, "cardgate audit verify: --stream needs --redis ADDR")
			return errUsage
		}
		rep, err = verifyFile(files[0], anchors)
		what = files[0]
	default:
		fs.Usage()
		return errUsage
	}
	if rep == nil {
		return err
	}
	empty := err == nil && rep.Records == 0 && !*allowEmpty
	if !empty {
		printReport(stdout, rep)
	}
	if empty {
		// Nothing verified is not "verified": a wrong path, a wrong stream
		// key or a log emptied by someone would otherwise pass.
		fmt.Fprintln(stdout, "FAILED: no records")
		return fmt.Errorf("audit verify: %s holds no records (an empty file, or a stream that does not exist); pass --allow-empty if that is expected: %w", what, errEmptyLog)
	}
	return err
}

// errEmptyLog is wrapped by runAudit's error for a log without records.
var errEmptyLog = errors.New("empty audit log")

func verifyFile(path string, anchors []audit.Anchor) (*audit.Report, error) {
	f, err := fileread.Open(path) // a FIFO must not hang the verifier

	if err != nil {
		return nil, fmt.Errorf("audit verify: %w", err)
	}
	defer f.Close()
	return audit.Verify(f, anchors...)
}

// verifyConfigured reads the stream through the same client the gateway
// builds, so Sentinel, TLS and credentials work as they do in serve.
func verifyConfigured(ctx context.Context, path, stream string, anchors []audit.Anchor) (*audit.Report, string, error) {
	cfg, err := config.Load(path, os.Getenv)
	if err != nil {
		return nil, "", err
	}
	if stream == "" {
		stream = cfg.Audit.RedisStream
	}
	if cfg.Store.Backend != config.StoreRedis || stream == "" {
		return nil, "", fmt.Errorf("audit verify: %s has no Redis audit stream; verify audit.file with FILE instead", path)
	}
	c, err := newRedisClient(cfg.Store.Redis)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	rep, err := audit.VerifyStream(ctx, c, stream, anchors...)
	return rep, "stream " + stream, err
}

func verifyRedis(ctx context.Context, addrs []string, stream string, anchors []audit.Anchor) (*audit.Report, error) {
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 addrs,
		Username:              os.Getenv(config.EnvRedisUsername),
		Password:              os.Getenv(config.EnvRedisPassword),
		DialTimeout:           5 * time.Second,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		ContextTimeoutEnabled: true,
	})
	defer c.Close()
	return audit.VerifyStream(ctx, c, stream, anchors...)
}

// printReport prints the chains, then the problems, then a verdict.
func printReport(w io.Writer, rep *audit.Report) {
	for _, c := range rep.Chains {
		fmt.Fprintf(w, "chain %s: %d records, seq %d-%d, last hash %s\n", c.Chain, c.Records, c.FirstSeq, c.LastSeq, c.LastHash)
	}
	// Not problems: forwards whose card may have left with no result
	// recorded (AUDITING.md, "outcome unknown").
	for _, o := range rep.OutcomeUnknown {
		where := fmt.Sprintf("line %d", o.Line)
		if o.StreamID != "" {
			where = "stream id " + o.StreamID
		}
		fmt.Fprintf(w, "outcome unknown: %s: chain %s seq %d: intent of forward %s has no result record\n", where, o.Chain, o.Seq, o.ForwardID)
	}
	if rep.UntrackedIntents > 0 {
		fmt.Fprintf(w, "outcome unknown: %d more intents not checked for a result (too many open at once)\n", rep.UntrackedIntents)
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(w, p)
	}
	if rep.Omitted > 0 {
		fmt.Fprintf(w, "… and %d more problems, not listed\n", rep.Omitted)
	}
	if rep.OK() {
		fmt.Fprintf(w, "ok: %d records in %d chains verified\n", rep.Records, len(rep.Chains))
		return
	}
	fmt.Fprintf(w, "FAILED: %d problems in %d records\n", rep.NumProblems(), rep.Records)
}

// anchorFlags collects --expect and --expect-last values in order.
type anchorFlags []audit.Anchor

func (a *anchorFlags) flag(last bool) flag.Value { return anchorFlag{a, last} }

type anchorFlag struct {
	list *anchorFlags
	last bool
}

func (f anchorFlag) String() string { return "" }

func (f anchorFlag) Set(s string) error {
	if len(s) != 64 || strings.Trim(s, "0123456789abcdef") != "" {
		return errors.New("must be 64 lowercase hex digits")
	}
	*f.list = append(*f.list, audit.Anchor{Hash: s, Last: f.last})
	return nil
}

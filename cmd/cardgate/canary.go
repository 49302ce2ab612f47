package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cardgate/cardgate/canary"
	"github.com/cardgate/cardgate/config"
)

const canaryUsage = `usage: cardgate canary [-config FILE] add TOKEN
       cardgate canary [-config FILE] remove TOKEN
       cardgate canary [-config FILE] list

Canary tokens detect theft. Tokenize a test card through POST /v1/cards,
plant the token where a thief would find it, and mark it here. A forward
with it is refused exactly like a token that does not exist, and raises an
alert: an error log line "ALERT: canary token used", the metric
cardgate.forwarder.canary_uses and a "canary" audit record.

Needs the redis store (credentials from ` + config.EnvRedisUsername + ` and ` + config.EnvRedisPassword + `).

flags:
`

// runCanary runs "cardgate canary …".
func runCanary(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := commandFlags("canary", canaryUsage, stderr)
	path := fs.String("config", "cardgate.yaml", "the gateway's configuration file")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	op := fs.Args()
	switch {
	case len(op) == 2 && (op[0] == "add" || op[0] == "remove"):
	case len(op) == 1 && op[0] == "list":
	default:
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(*path, os.Getenv)
	if err != nil {
		return err
	}
	if cfg.Store.Backend != config.StoreRedis {
		return errors.New("canary tokens need the redis store (store.backend: redis)")
	}
	rdb, err := newRedisClient(cfg.Store.Redis)
	if err != nil {
		return err
	}
	defer rdb.Close()
	set, err := canary.NewSet(rdb, canaryKey(cfg), cfg.Store.Redis.Timeout)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch op[0] {
	case "add":
		if err := set.Add(ctx, op[1]); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "marked", op[1], "as a canary")
	case "remove":
		if err := set.Remove(ctx, op[1]); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "unmarked", op[1])
	case "list":
		toks, err := set.List(ctx)
		if err != nil {
			return err
		}
		for _, t := range toks {
			fmt.Fprintln(stdout, t)
		}
	}
	return nil
}

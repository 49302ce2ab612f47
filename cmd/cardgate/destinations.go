package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/killswitch"
)

const destinationsUsage = `usage: cardgate destinations [-config FILE] disable ID [--reason TEXT]
       cardgate destinations [-config FILE] disable --all [--reason TEXT]
       cardgate destinations [-config FILE] enable ID | --all
       cardgate destinations [-config FILE] status

The kill switch. "disable" stops every forward to destination ID (or, with
--all, to every destination) on every replica within
killswitch.max_staleness (1s by default); callers get 403
destination_disabled. "enable" lifts it: the signed allowlist decides
again, so enabling never allows more than the allowlist does, and neither
command needs the auditors' signatures.

The state is where the gateway reads it: in Redis with the redis store
(credentials from ` + config.EnvRedisUsername + ` and ` + config.EnvRedisPassword + `), or in
killswitch.file with bolt.

flags:
`

// runDestinations runs "cardgate destinations …".
func runDestinations(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := commandFlags("destinations", destinationsUsage, stderr)
	path := fs.String("config", "cardgate.yaml", "the gateway's configuration file")
	reason := fs.String("reason", "", "why (disable only): printable ASCII, at most 200 bytes; shown by status and in the gateway log, never to callers")
	all := fs.Bool("all", false, "every destination: the global switch")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	operands := fs.Args()
	if len(operands) == 0 {
		fs.Usage()
		return errUsage
	}
	verb, ids := operands[0], operands[1:]
	id := ""
	switch verb {
	case "disable", "enable":
		switch {
		case *all && len(ids) == 0:
			id = killswitch.All
		case !*all && len(ids) == 1:
			id = ids[0]
		default:
			fmt.Fprintf(stderr, "cardgate destinations %s: name one destination id, or --all\n", verb)
			return errUsage
		}
		if err := killswitch.ValidateID(id); err != nil {
			return err
		}
		if verb == "enable" && *reason != "" {
			fmt.Fprintln(stderr, "cardgate destinations enable: --reason is for disable")
			return errUsage
		}
	case "status":
		if len(ids) != 0 || *all {
			fs.Usage()
			return errUsage
		}
	default:
		fs.Usage()
		return errUsage
	}

	cfg, err := config.Load(*path, os.Getenv)
	if err != nil {
		return err
	}
	store, closeStore, err := openKillSwitchStore(cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()

	name := id
	if id == killswitch.All {
		name = "every destination"
	}
	switch verb {
	case "disable":
		if err := store.Disable(ctx, id, killswitch.Switch{Reason: *reason, At: time.Now().UTC()}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "disabled %s; every replica refuses it within %v\n", name, cfg.KillSwitch.MaxStaleness)
	case "enable":
		if err := store.Enable(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "enabled %s; the signed allowlist decides again\n", name)
		if id != killswitch.All {
			// A global switch still in force would make this look like it
			// did nothing.
			if st, err := store.Load(ctx); err == nil {
				if _, ok := st[killswitch.All]; ok {
					fmt.Fprintln(stdout, "note: the global switch (--all) is still on: nothing is forwarded until it is lifted")
				}
			}
		}
	case "status":
		st, err := store.Load(ctx)
		if err != nil {
			return err
		}
		if len(st) == 0 {
			fmt.Fprintln(stdout, "nothing disabled: the signed allowlist alone decides")
			return nil
		}
		for _, id := range slices.Sorted(maps.Keys(st)) {
			sw := st[id]
			name := id
			if id == killswitch.All {
				name = "* (every destination)"
			}
			at := "unknown time"
			if !sw.At.IsZero() {
				at = sw.At.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "disabled %s since %s: %s\n", name, at, sw.Reason)
		}
	}
	return nil
}

// openKillSwitchStore opens the store the gateway reads.
func openKillSwitchStore(cfg config.Config) (killswitch.Store, func(), error) {
	if cfg.Store.Backend == config.StoreRedis {
		rdb, err := newRedisClient(cfg.Store.Redis)
		if err != nil {
			return nil, nil, err
		}
		return killSwitchStore(cfg, rdb), func() { rdb.Close() }, nil
	}
	st := killSwitchStore(cfg, nil)
	if st == nil {
		return nil, nil, errors.New("killswitch.file: not set, so this gateway has no kill switch (allowed in dev mode only); set it and restart the gateway")
	}
	return st, func() {}, nil
}

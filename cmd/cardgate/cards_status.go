package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/vaultclient"
)

const cardsStatusUsage = `usage: cardgate cards status -config FILE

Counts the cards in the configured store (redis or bolt) by the time since
their last use (tokenize, forward, update, CVC collection), and in total.
With cards.retention set, cards older than it are about to expire. It
reads only the stores' last-use markers: no key backend is opened and no
card is decrypted.

flags:
`

// cardsStatus prints the age buckets of the store's cards.
func cardsStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := commandFlags("cards status", cardsStatusUsage, stderr)
	path := fs.String("config", "", "the gateway's configuration `file`")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if *path == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(*path, os.Getenv)
	if err != nil {
		return err
	}
	var store vaultclient.LifecycleStore
	switch cfg.Store.Backend {
	case config.StoreBolt:
		b, err := vaultclient.OpenBoltStore(cfg.Store.Bolt.Path)
		if err != nil {
			return fmt.Errorf("store.bolt: %w", err)
		}
		defer b.Close()
		store = b
	case config.StoreRedis:
		rdb, err := newRedisClient(cfg.Store.Redis)
		if err != nil {
			return err
		}
		defer rdb.Close()
		store = vaultclient.NewRedisStore(rdb, cfg.Store.Redis.Prefix)
	default:
		return fmt.Errorf("store.backend %q has no cards to count", cfg.Store.Backend)
	}
	ac, err := vaultclient.CountByAge(ctx, store, time.Now(), nil)
	if err != nil {
		return err
	}
	writeAgeCounts(stdout, ac, cfg.Cards.Retention)
	return nil
}

// writeAgeCounts prints one line per bucket, then the total.
func writeAgeCounts(w io.Writer, ac vaultclient.AgeCounts, retention time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "last used\tcards")
	lower := "0"
	for i, n := range ac.Counts {
		if i < len(ac.Bounds) {
			upper := days(ac.Bounds[i])
			fmt.Fprintf(tw, "%s to %s ago\t%d\n", lower, upper, n)
			lower = upper
		} else {
			fmt.Fprintf(tw, "%s ago or more\t%d\n", lower, n)
		}
	}
	fmt.Fprintf(tw, "total\t%d\n", ac.Total)
	tw.Flush()
	if retention > 0 {
		fmt.Fprintf(w, "retention: cards unused for %s expire\n", days(retention))
	} else {
		fmt.Fprintln(w, "retention: off (cards.retention is not set); unused cards are kept")
	}
}

// days writes d in days when it is a whole number of them.
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

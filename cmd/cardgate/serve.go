package main

import (
	"context"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/cardgate/cardgate/config"
)

const serveUsage = `usage: cardgate serve [-config FILE]

Runs the gateway. The whole configuration is checked first, and every
problem in it (and every file it names that cannot be read) is reported at
once, before anything is connected to.

flags:
`

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := commandFlags("serve", serveUsage, stderr)
	path := fs.String("config", "cardgate.yaml", "the configuration `file`")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	// Every problem in the file, and every file it names that cannot be
	// read, at once and before anything is connected to.
	cfg, err := config.LoadAndCheckFiles(*path, os.Getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log.Level)
	// Process-wide, so here and once: see redisLog and stdLog.
	redis.SetLogger(redisLog{log: log})
	stdlog.SetFlags(0)
	stdlog.SetOutput(stdLog{log: log})
	tuneGC(os.Getenv, os.ReadFile, log)
	g, err := openGateway(ctx, cfg, log)
	if err != nil {
		log.Error("cardgate failed to start", slog.String("error", err.Error()))
		return err
	}
	defer g.close()
	ln, err := net.Listen("tcp", cfg.Listen.Addr)
	if err != nil {
		return fmt.Errorf("listen.addr: %w", err)
	}
	reload := make(chan struct{}, 1)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	g.loops.Go("SIGHUP relay", func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			select {
			case reload <- struct{}{}:
			default: // a reload is already pending
			}
		}
	})
	return g.serve(ctx, ln, reload)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

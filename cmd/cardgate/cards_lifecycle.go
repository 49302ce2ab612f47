package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/cardgate/cardgate/api"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/ratelimit"
	"github.com/cardgate/cardgate/vaultclient"
)

// Wiring of the card lifecycle: per-caller permissions (callers), budgets
// (cards.per_caller) and retention (cards.retention).

// Card call metrics. Their attributes are the operation and the code:
// closed sets of words, never a caller or a token.
const (
	metricCardRefused = "cardgate.cards.refused"
)

// cardWiring is what openGateway builds for the card calls.
type cardWiring struct {
	api     api.CardOptions
	sweeper *vaultclient.RetentionSweeper // bolt with cards.retention; nil otherwise
}

// newRedisCardStore is the card store on Redis, with the retention as its
// records' TTL.
func newRedisCardStore(rdb redis.UniversalClient, cfg config.Config) *vaultclient.RedisStore {
	s := vaultclient.NewRedisStore(rdb, cfg.Store.Redis.Prefix)
	s.SetRetention(cfg.Cards.Retention)
	return s
}

// openCardCalls builds the card calls' permissions and budget, and the
// bolt retention sweeper. It logs, at every start, when the callers
// section is absent: who may do what is then a default, not a decision.
func (g *gateway) openCardCalls(cfg config.Config, rdb redis.UniversalClient, store vaultclient.Store, log *slog.Logger) error {
	meter := g.tel.meters.Meter("github.com/cardgate/cardgate/cmd/cardgate")
	refused, err := meter.Int64Counter(metricCardRefused,
		metric.WithDescription("Card calls refused by permission (operation_not_permitted) or budget (rate_limited, rate_limit_unavailable), by operation and code."))
	if err != nil {
		return fmt.Errorf("cards: counter: %w", err)
	}
	perms := newCallerPermissions(cfg)
	if cfg.Callers == nil {
		if cfg.Mode == config.ModeDev {
			log.Warn("DEV MODE: no callers section: every caller may tokenize, read, update and delete cards; list callers and their operations before production")
		} else {
			log.Warn("no callers section: every authenticated caller may tokenize, and no caller may read, update or delete a card; list callers and their operations (docs/cards.md)")
		}
	}
	g.cards.api = api.CardOptions{
		Lifecycle:   g.vault,
		Permissions: countingPermissions{perms, refused},
		Auditor:     g.guards.auditor,
	}
	if limits := (ratelimit.Limits{PerCaller: ratelimit.Limit(cfg.Cards.PerCaller)}); !limits.Unlimited() {
		var b api.Budget
		if cfg.Store.Backend == config.StoreRedis {
			b, err = ratelimit.NewRedis(ratelimit.RedisOptions{Client: rdb, Prefix: cfg.Store.Redis.Prefix + "ratelimit:cards:" + cfg.Environment + ":", Limits: limits})
		} else {
			b, err = ratelimit.NewMemory(limits, nil)
		}
		if err != nil {
			return fmt.Errorf("cards.per_caller: %w", err)
		}
		g.cards.api.Budget = countingBudget{b, refused}
	}
	if bolt, ok := store.(*vaultclient.BoltStore); ok && cfg.Cards.Retention > 0 {
		g.cards.sweeper, err = vaultclient.NewRetentionSweeper(bolt, vaultclient.RetentionOptions{
			Retention: cfg.Cards.Retention, Logger: log, MeterProvider: g.tel.meters,
		})
		if err != nil {
			return fmt.Errorf("cards.retention: %w", err)
		}
	}
	return nil
}

// runCardRetention starts the bolt retention sweep, which returns when
// ctx ends. Redis expires records itself.
func (g *gateway) runCardRetention(loops *runGroup) {
	if g.cards.sweeper != nil {
		loops.Go("card retention sweep", func(ctx context.Context) { _ = g.cards.sweeper.Run(ctx) })
	}
}

// callerPermissions is the callers section as api.Permissions.
type callerPermissions struct {
	byCaller map[string]map[api.CardOp]bool
	any      map[api.CardOp]bool // the "*" entry, or the default
}

func newCallerPermissions(cfg config.Config) callerPermissions {
	p := callerPermissions{byCaller: map[string]map[api.CardOp]bool{}, any: map[api.CardOp]bool{}}
	if cfg.Callers == nil {
		// The defaults (config.Caller): dev permits everything;
		// production permits tokenizing, as before the section existed.
		p.any[api.OpTokenize] = true
		if cfg.Mode == config.ModeDev {
			for _, op := range config.CardOps() {
				p.any[api.CardOp(op)] = true
			}
		}
		return p
	}
	for _, e := range cfg.Callers {
		ops := p.any
		if e.Caller != config.AnyCaller {
			ops = map[api.CardOp]bool{}
			p.byCaller[e.Caller] = ops
		}
		for _, op := range e.Allow {
			ops[api.CardOp(op)] = true
		}
	}
	return p
}

// Permitted implements api.Permissions. An empty caller is never
// permitted (the API always has one; fail closed if not).
func (p callerPermissions) Permitted(_ context.Context, caller string, op api.CardOp) bool {
	if caller == "" {
		return false
	}
	return p.any[op] || p.byCaller[caller][op]
}

// countingPermissions counts refusals.
type countingPermissions struct {
	p       api.Permissions
	refused metric.Int64Counter
}

func (c countingPermissions) Permitted(ctx context.Context, caller string, op api.CardOp) bool {
	ok := c.p.Permitted(ctx, caller, op)
	if !ok {
		c.refused.Add(ctx, 1, metric.WithAttributes(
			attribute.String("operation", string(op)), attribute.String("code", api.CodeOperationNotPermitted)))
	}
	return ok
}

// countingBudget counts refusals.
type countingBudget struct {
	b       api.Budget
	refused metric.Int64Counter
}

func (c countingBudget) Allow(ctx context.Context, caller, op string) error {
	err := c.b.Allow(ctx, caller, op)
	if err != nil {
		code := "rate_limit_unavailable"
		var re *ratelimit.Error
		if errors.As(err, &re) {
			code = re.Code
		}
		c.refused.Add(ctx, 1, metric.WithAttributes(attribute.String("operation", op), attribute.String("code", code)))
	}
	return err
}

// Span names of the card lifecycle routes.
const (
	cardTokenRoute = "/v1/cards/{token}"
	cardCVCRoute   = "/v1/cards/{token}/cvc"
)

// cardRoute names path's card lifecycle route, or "" if it is none. The
// token segment must be spelled like a token; anything else (it could be
// a card number) is no route.
func cardRoute(path string) string {
	rest, ok := strings.CutPrefix(path, "/v1/cards/")
	if !ok {
		return ""
	}
	tok, tail, _ := strings.Cut(rest, "/")
	if !vaultclient.ValidToken(tok) {
		return ""
	}
	switch {
	case !strings.Contains(rest, "/"):
		return cardTokenRoute
	case tail == "cvc":
		return cardCVCRoute
	}
	return ""
}

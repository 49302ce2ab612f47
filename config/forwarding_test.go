package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateForwarding(t *testing.T) {
	base := func() Config {
		c, err := Parse(mustRead(t, "testdata/dev.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	production := func(c *Config) {
		c.Mode = ModeProduction
		c.Listen.TLS = ListenTLS{CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}
		c.Keys.Local.UnsafeAllowOutsideDev = true
		c.Audit.File = "audit.log"
		c.KillSwitch.File = "killswitch.json"
	}
	redis := func(c *Config) {
		c.Store.Backend = StoreRedis
		c.Store.Redis.Addrs = []string{"127.0.0.1:6379"}
		c.KillSwitch.File = ""
	}
	limit := Limit{Rate: 100, Per: time.Second, Burst: 20}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantKey string // "" means valid
	}{
		{"dev without an audit sink", func(c *Config) {}, ""},
		{"production with a file sink", production, ""},
		{"production without a sink", func(c *Config) { production(c); c.Audit.File = "" }, "audit.file"},
		{"stream with bolt", func(c *Config) { c.Audit.RedisStream = "cardgate:audit" }, "audit.redis_stream"},
		{"stream and file with redis", func(c *Config) {
			production(c)
			redis(c)
			c.Audit = Audit{File: "audit.log", RedisStream: "cardgate:audit", Timeout: time.Second}
		}, ""},
		{"stream alone in production", func(c *Config) {
			production(c)
			redis(c)
			c.Audit = Audit{RedisStream: "cardgate:audit", Timeout: time.Second}
		}, "audit.file"},
		{"zero audit timeout", func(c *Config) { c.Audit.Timeout = 0 }, "audit.timeout"},
		{"limits", func(c *Config) { c.Limits = Limits{PerCaller: limit, PerCallerDestination: limit} }, ""},
		{"negative rate", func(c *Config) { c.Limits.PerCaller.Rate = -1 }, "limits.per_caller.rate"},
		{"rate without per", func(c *Config) { c.Limits.PerCallerDestination = Limit{Rate: 1, Burst: 1} }, "limits.per_caller_destination.per"},
		{"rate without burst", func(c *Config) { c.Limits.PerCaller = Limit{Rate: 1, Per: time.Second} }, "limits.per_caller.burst"},
		{"short idempotency ttl", func(c *Config) { c.Idempotency.TTL = time.Second }, "idempotency.ttl"},
		{"lease shorter than a forward", func(c *Config) { c.Idempotency.Lease = c.Egress.Timeout }, "idempotency.lease"},
		{"negative wait", func(c *Config) { c.Idempotency.Wait = -time.Second }, "idempotency.wait"},
		{"bolt in production without a kill switch file", func(c *Config) { production(c); c.KillSwitch.File = "" }, "killswitch.file"},
		{"kill switch file with redis", func(c *Config) { production(c); redis(c); c.KillSwitch.File = "ks.json" }, "killswitch.file"},
		{"poll slower than staleness allows", func(c *Config) { c.KillSwitch.PollInterval = 600 * time.Millisecond }, "killswitch.poll_interval"},
		{"staleness over 10s", func(c *Config) { c.KillSwitch.MaxStaleness = time.Minute }, "killswitch.max_staleness"},
		{"zero attempts", func(c *Config) { c.Egress.Retry.MaxAttempts = 0 }, "egress.retry.max_attempts"},
		{"too many attempts", func(c *Config) { c.Egress.Retry.MaxAttempts = 11 }, "egress.retry.max_attempts"},
		{"max backoff below backoff", func(c *Config) { c.Egress.Retry.MaxBackoff = time.Millisecond }, "egress.retry.max_backoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want a *FieldError for %s", err, tt.wantKey)
			}
			if !strings.Contains(err.Error(), "config: "+tt.wantKey+": ") {
				t.Errorf("Validate() = %v, want it to name %s", err, tt.wantKey)
			}
		})
	}
}

func TestForwardingDefaults(t *testing.T) {
	c := Default()
	if c.Idempotency.TTL != 24*time.Hour || c.KillSwitch.MaxStaleness != time.Second || c.Egress.Retry.MaxAttempts != DefaultRetryMaxAttempts {
		t.Errorf("defaults = %+v %+v %+v", c.Idempotency, c.KillSwitch, c.Egress.Retry)
	}
	if !(c.Limits == Limits{}) {
		t.Errorf("limits default = %+v, want none (rate 0 is unlimited)", c.Limits)
	}
}

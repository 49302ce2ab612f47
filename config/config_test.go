package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadDev(t *testing.T) {
	cfg, err := Load("testdata/dev.yaml", nil)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	if cfg.Listen.ReadHeaderTimeout != DefaultReadHeaderTimeout {
		t.Errorf("read_header_timeout = %v, want the default %v", cfg.Listen.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	}
	if cfg.Store.Backend != StoreBolt || cfg.Store.Bolt.Path != "cards.db" {
		t.Errorf("store = %+v, want bolt at cards.db", cfg.Store)
	}
}

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{
		EnvListenAddr:    "127.0.0.1:9999",
		EnvRedisAddrs:    " 10.0.0.1:6379, 10.0.0.2:6379 ",
		EnvRedisPassword: "s3cret",
	}
	raw, err := os.ReadFile("testdata/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	// Two addresses need a topology that takes several: a cluster here.
	raw = []byte(strings.Replace(string(raw), "backend: bolt", "backend: redis\n  redis:\n    mode: cluster", 1))
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	if cfg.Listen.Addr != "127.0.0.1:9999" {
		t.Errorf("listen.addr = %q, want the env override", cfg.Listen.Addr)
	}
	if got := strings.Join(cfg.Store.Redis.Addrs, ","); got != "10.0.0.1:6379,10.0.0.2:6379" {
		t.Errorf("store.redis.addrs = %q, want the two env addresses", got)
	}
	if cfg.Store.Redis.Password != "s3cret" {
		t.Errorf("store.redis.password not taken from %s", EnvRedisPassword)
	}
}

func TestParseStrict(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", "mode: dev\nlisten:\n  adress: x\n", "listen.adress (line 3): unknown key"},
		{"duplicate key", "mode: dev\nmode: production\n", "mode (line 2): given twice (first on line 1)"},
		{"wrong type", "listen:\n  max_request_bytes: lots\n", `listen.max_request_bytes (line 2): "lots" is not a whole number`},
		{"bad duration", "listen:\n  read_timeout: soon\n", `listen.read_timeout (line 2): "soon" is not a duration: write a duration with a unit, e.g. 15s`},
		{"duration without a unit", "listen:\n  read_timeout: 15\n", "listen.read_timeout (line 2): 15 has no unit"},
		{"two documents", "mode: dev\n---\nmode: dev\n", "more than one YAML document"},
		{"empty", "", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %v, want an error containing %q", tt.yaml, err, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	base := func() Config {
		c, err := Parse(mustRead(t, "testdata/dev.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantKey string
	}{
		{"bad mode", func(c *Config) { c.Mode = "staging" }, "mode"},
		{"no environment", func(c *Config) { c.Environment = "" }, "environment"},
		{"production without tls", func(c *Config) { c.Mode = ModeProduction; c.Keys.Local.UnsafeAllowOutsideDev = true }, "listen.tls"},
		{"dev on a public address", func(c *Config) { c.Listen.Addr = "0.0.0.0:8443" }, "listen.addr"},
		{"tls without client ca", func(c *Config) { c.Listen.TLS = ListenTLS{CertFile: "c", KeyFile: "k"} }, "listen.tls.client_ca_file"},
		{"local keyring in production", func(c *Config) {
			c.Mode = ModeProduction
			c.Listen.TLS = ListenTLS{CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}
		}, "keys.backend"},
		{"threshold zero", func(c *Config) { c.Allowlist.Threshold = 0 }, "allowlist.threshold"},
		{"no allowlist", func(c *Config) { c.Allowlist.Path = "" }, "allowlist.path"},
		{"bolt without a state file", func(c *Config) { c.Allowlist.StateFile = "" }, "allowlist.state_file"},
		{"redis without addrs", func(c *Config) { c.Store.Backend = StoreRedis }, "store.redis.addrs"},
		{"bad redis addr", func(c *Config) { c.Store.Backend = StoreRedis; c.Store.Redis.Addrs = []string{"redis"} }, "store.redis.addrs[0]"},
		{"unknown store", func(c *Config) { c.Store.Backend = "s3" }, "store.backend"},
		{"zero timeout", func(c *Config) { c.Egress.Timeout = 0 }, "egress.timeout"},
		{"write timeout shorter than the upstream's", func(c *Config) { c.Egress.Timeout = 60 * time.Second }, "listen.write_timeout"},
		{"write timeout without room for the body", func(c *Config) { c.Listen.ReadTimeout = 30 * time.Second }, "listen.write_timeout"},
		{"shutdown shorter than a forward", func(c *Config) { c.Listen.ShutdownTimeout = 30 * time.Second }, "listen.shutdown_timeout"},
		{"negative cvc ttl", func(c *Config) { c.Cards.CVCTTL = -time.Second }, "cards.cvc_ttl"},
		{"bad level", func(c *Config) { c.Log.Level = "loud" }, "log.level"},
		{"crl without tls", func(c *Config) { c.Listen.TLS = ListenTLS{CRLFile: "callers.crl"} }, "listen.tls"},
		{"client cert name", func(c *Config) {
			c.Egress.ClientCerts = map[string]ClientCert{"acme/mtls": {CertFile: "c", KeyFile: "k"}}
		}, "egress.client_certs.acme/mtls"},
		{"client cert without key", func(c *Config) {
			c.Egress.ClientCerts = map[string]ClientCert{"acme-mtls": {CertFile: "c"}}
		}, "egress.client_certs.acme-mtls.key_file"},
		{"client cert without cert", func(c *Config) {
			c.Egress.ClientCerts = map[string]ClientCert{"acme-mtls": {KeyFile: "k"}}
		}, "egress.client_certs.acme-mtls.cert_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(&c)
			err := c.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want a *FieldError for %s", err, tt.wantKey)
			}
			if !strings.Contains(err.Error(), "config: "+tt.wantKey+":") {
				t.Errorf("Validate() = %v, want it to name %s", err, tt.wantKey)
			}
		})
	}
	c := base()
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(dev.yaml) = %v, want nil", err)
	}
	c.Egress.ClientCerts = map[string]ClientCert{"acme-mtls_2027.v1": {CertFile: "c", KeyFile: "k"}}
	c.Listen.TLS = ListenTLS{CertFile: "c", KeyFile: "k", ClientCAFile: "ca", CRLFile: "callers.crl"}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(dev.yaml with a client cert and a CRL) = %v, want nil", err)
	}
}

func TestProductionWithUnsafeLocalKeyring(t *testing.T) {
	c, err := Parse(mustRead(t, "testdata/dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c.Mode = ModeProduction
	c.Listen.TLS = ListenTLS{CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}
	c.Keys.Local.UnsafeAllowOutsideDev = true
	c.Audit.File = "audit.log"
	c.KillSwitch.File = "killswitch.json"
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil with the explicit unsafe override", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The shipped example must stay a valid configuration.
func TestExampleParses(t *testing.T) {
	c, err := Parse(mustRead(t, "../cardgate.example.yaml"))
	if err != nil {
		t.Fatalf("Parse(cardgate.example.yaml) = %v", err)
	}
	c.Keys.Local.UnsafeAllowOutsideDev = true // the example is production mode with the only backend so far
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(cardgate.example.yaml) = %v", err)
	}
}

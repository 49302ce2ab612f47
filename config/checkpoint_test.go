package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateCheckpoint(t *testing.T) {
	base := func() Config {
		c, err := Parse(mustRead(t, "testdata/dev.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		c.Audit.File = "audit.log"
		return c
	}
	local := func(c *Config) {
		c.Audit.Checkpoint.Origin = "cardgate.test/audit/dev-1"
		c.Audit.Checkpoint.File = "checkpoint"
		c.Audit.Checkpoint.Signer = CheckpointSignerLocal
		c.Audit.Checkpoint.KeyFile = "checkpoint.key"
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantKey string
	}{
		{"off", func(c *Config) {}, ""},
		{"local in dev", local, ""},
		{"file without origin", func(c *Config) { c.Audit.Checkpoint.File = "checkpoint" }, "audit.checkpoint.origin"},
		{"origin with a space", func(c *Config) { local(c); c.Audit.Checkpoint.Origin = "a b" }, "audit.checkpoint.origin"},
		{"no audit file", func(c *Config) { local(c); c.Audit.File = "" }, "audit.checkpoint.origin"},
		{"no checkpoint file", func(c *Config) { local(c); c.Audit.Checkpoint.File = "" }, "audit.checkpoint.file"},
		{"short interval", func(c *Config) { local(c); c.Audit.Checkpoint.Interval = time.Millisecond }, "audit.checkpoint.interval"},
		{"no key file", func(c *Config) { local(c); c.Audit.Checkpoint.KeyFile = "" }, "audit.checkpoint.key_file"},
		{"local outside dev", func(c *Config) { local(c); c.Mode = ModeProduction }, "audit.checkpoint.signer"},
		{"unknown signer", func(c *Config) { local(c); c.Audit.Checkpoint.Signer = "pkcs11" }, "audit.checkpoint.signer"},
		{"hsm without hsm keys", func(c *Config) { local(c); c.Audit.Checkpoint.Signer = CheckpointSignerHSM }, "audit.checkpoint.signer"},
		{"vault without vault keys", func(c *Config) {
			local(c)
			c.Audit.Checkpoint.Signer = CheckpointSignerVault
			c.Audit.Checkpoint.VaultKey = "checkpoint"
			c.Audit.Checkpoint.VaultKeyVersion = 1
		}, "audit.checkpoint.signer"},
		{"vault without a version", func(c *Config) {
			local(c)
			c.Audit.Checkpoint.Signer = CheckpointSignerVault
			c.Audit.Checkpoint.VaultKey = "checkpoint"
		}, "audit.checkpoint.vault_key_version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(&c)
			var fe *FieldError
			err := c.Validate()
			switch {
			case tt.wantKey == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantKey == "":
			case !errors.As(err, &fe) || !strings.Contains(err.Error(), "config: "+tt.wantKey+": "):
				t.Errorf("Validate() = %v, want it to name %s", err, tt.wantKey)
			}
		})
	}
}

func TestParseCheckpoint(t *testing.T) {
	c, err := Parse([]byte(string(mustRead(t, "testdata/dev.yaml")) + `
audit:
  file: audit.log
  checkpoint:
    origin: cardgate.test/audit/dev-1
    file: checkpoint
    interval: 30s
    signer: local
    key_file: checkpoint.key
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Checkpoint{Origin: "cardgate.test/audit/dev-1", File: "checkpoint", Interval: 30 * time.Second, Timeout: DefaultCheckpointTimeout, Signer: "local", KeyFile: "checkpoint.key", HSMKeyLabel: DefaultCheckpointHSMKeyLabel}
	if c.Audit.Checkpoint != want {
		t.Errorf("Audit.Checkpoint = %+v, want %+v", c.Audit.Checkpoint, want)
	}
}

package main

import (
	"context"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/config"
)

// TestKeyCustodyCheck: the local keyring outside dev mode passes readiness
// but says UNSAFE; every other setup says where the keys are, and never
// UNSAFE.
func TestKeyCustodyCheck(t *testing.T) {
	tests := []struct {
		name, mode, backend string
		wantUnsafe          bool
		want                string
	}{
		{"local outside dev", config.ModeProduction, config.KeysLocal, true, "keys.local.unsafe_allow_outside_dev"},
		{"local in dev", config.ModeDev, config.KeysLocal, false, "dev mode"},
		{"hsm", config.ModeProduction, config.KeysHSM, false, "HSM"},
		{"vault", config.ModeProduction, config.KeysVault, false, "Vault Transit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Mode, cfg.Keys.Backend = tt.mode, tt.backend
			c := keyCustodyCheck(cfg)
			detail, err := c.Check(context.Background())
			if err != nil {
				t.Errorf("key_custody check = %v, want it to pass (it reports, it does not refuse)", err)
			}
			if c.Name != "key_custody" || !strings.Contains(detail, tt.want) || strings.HasPrefix(detail, "UNSAFE") != tt.wantUnsafe {
				t.Errorf("check %q detail = %q, want it to contain %q, UNSAFE %v", c.Name, detail, tt.want, tt.wantUnsafe)
			}
		})
	}
}

package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCallersParse(t *testing.T) {
	c, err := Parse(mustRead(t, "testdata/callers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	want := []Caller{
		{Caller: "spiffe://example.org/checkout", Allow: []string{OpTokenize}},
		{Caller: "dev:billing", Allow: []string{OpRead, OpUpdate, OpDelete}},
		{Caller: AnyCaller, Allow: []string{OpRead}},
	}
	if diff := cmp.Diff(want, c.Callers); diff != "" {
		t.Errorf("Callers (-want +got):\n%s", diff)
	}
	if c.Cards.Retention != 8760*time.Hour || c.Cards.PerCaller != (Limit{Rate: 100, Per: time.Second, Burst: 20}) {
		t.Errorf("Cards = %+v", c.Cards)
	}
}

// TestCallersAbsentOrEmpty: no section is nil (the defaults apply); an
// empty one is an empty list (nothing is permitted).
func TestCallersAbsentOrEmpty(t *testing.T) {
	c, err := Parse(mustRead(t, "testdata/dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Callers != nil {
		t.Errorf("Callers without a section = %v, want nil", c.Callers)
	}
	c, err = Parse(append(mustRead(t, "testdata/dev.yaml"), []byte("callers: []\n")...))
	if err != nil {
		t.Fatal(err)
	}
	if c.Callers == nil || len(c.Callers) != 0 {
		t.Errorf("Callers with callers: [] = %#v, want an empty list", c.Callers)
	}
}

func TestValidateCards(t *testing.T) {
	base := func() Config {
		c, err := Parse(mustRead(t, "testdata/callers.yaml"))
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
		{"valid", func(c *Config) {}, ""},
		{"unknown operation", func(c *Config) { c.Callers[0].Allow = []string{"forward"} }, "callers[0].allow"},
		{"operation twice", func(c *Config) { c.Callers[1].Allow = []string{OpRead, OpRead} }, "callers[1].allow"},
		{"no operations", func(c *Config) { c.Callers[0].Allow = nil }, "callers[0].allow"},
		{"empty caller", func(c *Config) { c.Callers[0].Caller = "" }, "callers[0].caller"},
		{"caller with a space", func(c *Config) { c.Callers[0].Caller = "a b" }, "callers[0].caller"},
		{"caller twice", func(c *Config) { c.Callers[2].Caller = "dev:billing" }, "callers[2].caller"},
		{"negative retention", func(c *Config) { c.Cards.Retention = -time.Hour }, "cards.retention"},
		{"retention in minutes", func(c *Config) { c.Cards.Retention = 30 * time.Minute }, "cards.retention"},
		{"retention off", func(c *Config) { c.Cards.Retention = 0 }, ""},
		{"retention within the cvc ttl", func(c *Config) { c.Cards.Retention = MinRetention; c.Cards.CVCTTL = 25 * time.Hour }, "cards.retention"},
		{"budget without per", func(c *Config) { c.Cards.PerCaller = Limit{Rate: 1, Burst: 1} }, "cards.per_caller.per"},
		{"budget without burst", func(c *Config) { c.Cards.PerCaller = Limit{Rate: 1, Per: time.Second} }, "cards.per_caller.burst"},
		{"negative budget", func(c *Config) { c.Cards.PerCaller.Rate = -1 }, "cards.per_caller.rate"},
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
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), "config: "+tt.wantKey+": ") {
				t.Fatalf("Validate() = %v, want it to name %s", err, tt.wantKey)
			}
		})
	}
}

// TestCallersStrict: an unknown key in an entry is refused, as everywhere.
func TestCallersStrict(t *testing.T) {
	_, err := Parse(append(mustRead(t, "testdata/dev.yaml"), []byte("callers:\n  - caller: a\n    allow: [read]\n    alow: [delete]\n")...))
	if err == nil || !strings.Contains(err.Error(), "callers[0].alow") {
		t.Errorf("Parse with a misspelt key = %v, want an error naming callers[0].alow", err)
	}
}

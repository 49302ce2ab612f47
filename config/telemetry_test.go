package config

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateTelemetry(t *testing.T) {
	base := func() Config {
		c, err := Parse(mustRead(t, "testdata/dev.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	otlp := func(endpoint string) func(*Config) {
		return func(c *Config) {
			c.Telemetry.Traces.Exporter = ExporterOTLP
			c.Telemetry.Traces.OTLP.Endpoint = endpoint
		}
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantKey string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"stdout", func(c *Config) { c.Telemetry.Traces.Exporter = ExporterStdout }, ""},
		{"otlp https", otlp("https://otel-collector:4318/v1/traces"), ""},
		{"otlp http", otlp("http://127.0.0.1:4318/v1/traces"), ""},
		{"admin loopback", func(c *Config) { c.Admin.Addr = "127.0.0.1:9464" }, ""},
		{"admin explicit any", func(c *Config) { c.Admin.Addr = "0.0.0.0:9464" }, ""},
		{"unknown exporter", func(c *Config) { c.Telemetry.Traces.Exporter = "jaeger" }, "telemetry.traces.exporter"},
		{"otlp without endpoint", otlp(""), "telemetry.traces.otlp.endpoint"},
		{"otlp grpc scheme", otlp("grpc://collector:4317"), "telemetry.traces.otlp.endpoint"},
		{"otlp no host", otlp("https:///v1/traces"), "telemetry.traces.otlp.endpoint"},
		{"otlp credentials", otlp("https://user:pw@collector:4318/v1/traces"), "telemetry.traces.otlp.endpoint"},
		{"otlp query", otlp("https://collector:4318/v1/traces?x=1"), "telemetry.traces.otlp.endpoint"},
		{"otlp zero timeout", func(c *Config) {
			otlp("https://collector:4318/v1/traces")(c)
			c.Telemetry.Traces.OTLP.Timeout = 0
		}, "telemetry.traces.otlp.timeout"},
		{"ratio above one", func(c *Config) { c.Telemetry.Traces.SampleRatio = 1.5 }, "telemetry.traces.sample_ratio"},
		{"ratio negative", func(c *Config) { c.Telemetry.Traces.SampleRatio = -0.1 }, "telemetry.traces.sample_ratio"},
		{"no service name", func(c *Config) { c.Telemetry.ServiceName = "" }, "telemetry.service_name"},
		{"admin without host", func(c *Config) { c.Admin.Addr = ":9464" }, "admin.addr"},
		{"admin not host:port", func(c *Config) { c.Admin.Addr = "localhost" }, "admin.addr"},
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
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), "config: "+tt.wantKey+":") {
				t.Errorf("Validate() = %v, want a *FieldError naming %s", err, tt.wantKey)
			}
		})
	}
}

func TestTelemetryDefaultsAndEnv(t *testing.T) {
	c := Default()
	if c.Telemetry.Traces.Exporter != ExporterNone || c.Admin.Addr != "" {
		t.Errorf("defaults: exporter %q, admin.addr %q; want tracing and the admin listener off", c.Telemetry.Traces.Exporter, c.Admin.Addr)
	}
	if c.Telemetry.Traces.OTLP.Timeout != DefaultOTLPTimeout || c.Telemetry.Traces.SampleRatio != DefaultTraceSampleRatio {
		t.Errorf("defaults: otlp.timeout %v, sample_ratio %v", c.Telemetry.Traces.OTLP.Timeout, c.Telemetry.Traces.SampleRatio)
	}
	env := map[string]string{EnvAdminAddr: "127.0.0.1:9999", EnvOTLPEndpoint: "https://c:4318/v1/traces"}
	c.applyEnv(func(k string) string { return env[k] })
	if c.Admin.Addr != "127.0.0.1:9999" || c.Telemetry.Traces.OTLP.Endpoint != "https://c:4318/v1/traces" {
		t.Errorf("env overrides: admin.addr %q, otlp.endpoint %q", c.Admin.Addr, c.Telemetry.Traces.OTLP.Endpoint)
	}
}

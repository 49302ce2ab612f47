package credentials

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cardgate/cardgate/internal/vaultstandin"
)

// TestMetrics: versions by credential name and refused reloads are
// counted; no value is in any metric.
func TestMetrics(t *testing.T) {
	v := vaultstandin.New(t)
	v.EnableKV2("secret")
	v.Put("secret", "acme", map[string]any{"k": "sk_live_one"})
	v.Put("secret", "acme", map[string]any{"k": "sk_live_two"})
	reader := sdkmetric.NewManualReader()
	s := mustStore(t, []Spec{
		{Name: "acme", Source: VaultKV{Mount: "secret", Path: "acme", Key: "k"}},
		{Name: "local", Source: Env{Var: "L"}},
	}, Options{Vault: vaultSession(t, v), Getenv: envOf(map[string]string{"L": "sk_live_env"}),
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	v.Seal(true)
	if err := s.Reload(context.Background()); err == nil {
		t.Fatal("Reload() with Vault sealed succeeded")
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	versions := map[string]int64{}
	var failures int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					name, _ := p.Attributes.Value("credential")
					versions[name.AsString()] = p.Value
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					failures += p.Value
				}
			}
		}
	}
	if versions["acme"] != 2 || versions["local"] != 0 || len(versions) != 2 {
		t.Errorf("cardgate.credentials.version = %v, want acme 2 and local 0", versions)
	}
	if failures != 1 {
		t.Errorf("cardgate.credentials.reload_failures = %d, want 1", failures)
	}
	js, _ := json.Marshal(rm)
	if strings.Contains(string(js), "sk_live") {
		t.Errorf("metrics hold a value: %s", js)
	}
}

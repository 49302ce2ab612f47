package vaultclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// observations collects every histogram data point in reader as
// "metric attr=value … count=N", sorted, and fails the test if an
// attribute key outside keys appears or a value holds any of secrets.
func observations(t *testing.T, reader *sdkmetric.ManualReader, secrets ...string) []string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	allowed := map[string][]string{
		MetricKeyDuration:   {"backend", "operation", "outcome"},
		MetricStoreDuration: {"operation", "outcome", "store"}, // sorted, as the SDK keeps them
	}
	var got []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			h, ok := m.Data.(metricdata.Histogram[float64])
			if !ok {
				t.Errorf("metric %s is %T, want a float64 histogram", m.Name, m.Data)
				continue
			}
			if m.Unit != "s" {
				t.Errorf("metric %s unit = %q, want s", m.Name, m.Unit)
			}
			for _, dp := range h.DataPoints {
				var keys []string
				line := m.Name
				for _, kv := range dp.Attributes.ToSlice() {
					keys = append(keys, string(kv.Key))
					line += " " + string(kv.Key) + "=" + kv.Value.Emit()
					for _, s := range secrets {
						if strings.Contains(kv.Value.Emit(), s) {
							t.Errorf("metric %s attribute %s = %q holds %q", m.Name, kv.Key, kv.Value.Emit(), s)
						}
					}
				}
				if !slices.Equal(keys, allowed[m.Name]) {
					t.Errorf("metric %s attribute keys = %q, want %q", m.Name, keys, allowed[m.Name])
				}
				got = append(got, fmt.Sprintf("%s count=%d", line, dp.Count))
			}
		}
	}
	slices.Sort(got)
	return got
}

// TestKeyDurationMetric: each key-backend and store call is one
// observation, labelled by kind, operation and outcome, and Detokenize in
// particular records exactly one decrypt.
func TestKeyDurationMetric(t *testing.T) {
	card := testCards[0]
	const (
		keyDur   = "cardgate.vaultclient.key_duration"
		storeDur = "cardgate.vaultclient.store_duration"
	)
	tests := []struct {
		name string
		// keys wraps the real keyring for the measured Vault.
		keys func(k Keyer) Keyer
		op   func(ctx context.Context, v *Vault, token string) error
		want []string
	}{
		{
			name: "detokenize",
			op: func(ctx context.Context, v *Vault, token string) error {
				_, err := v.Detokenize(ctx, token)
				return err
			},
			// The measured Vault is a new one (a new process, in effect),
			// so its first forward of the token marks the use: one touch.
			want: []string{
				keyDur + " backend=local operation=decrypt outcome=ok count=1",
				storeDur + " operation=get_record outcome=ok store=bolt count=1",
				storeDur + " operation=touch outcome=ok store=bolt count=1",
			},
		},
		{
			name: "detokenize consuming the cvc",
			op: func(ctx context.Context, v *Vault, token string) error {
				_, err := v.DetokenizeConsumingCVC(ctx, token)
				return err
			},
			want: []string{
				keyDur + " backend=local operation=decrypt outcome=ok count=1",
				storeDur + " operation=get_and_delete_cvc outcome=ok store=bolt count=1",
				storeDur + " operation=touch outcome=ok store=bolt count=1",
			},
		},
		{
			name: "tokenize",
			op: func(ctx context.Context, v *Vault, _ string) error {
				_, err := v.Tokenize(ctx, card.input())
				return err
			},
			want: []string{
				keyDur + " backend=local operation=encrypt outcome=ok count=1",
				keyDur + " backend=local operation=fingerprint outcome=ok count=1",
				storeDur + " operation=put outcome=ok store=bolt count=1",
			},
		},
		{
			name: "unknown token: the store answered, no key call",
			op: func(ctx context.Context, v *Vault, _ string) error {
				_, err := v.Detokenize(ctx, "tok_"+strings.Repeat("a", 32))
				if code(err) != CodeTokenNotFound {
					return fmt.Errorf("code %q, want %q", code(err), CodeTokenNotFound)
				}
				return nil
			},
			want: []string{storeDur + " operation=get_record outcome=ok store=bolt count=1"},
		},
		{
			name: "backend error",
			keys: func(k Keyer) Keyer { return faultyKeyer{Keyer: k, decryptErr: errors.New("hsm: device error")} },
			op: func(ctx context.Context, v *Vault, token string) error {
				_, err := v.Detokenize(ctx, token)
				if code(err) != CodeKeyBackendUnavailable {
					return fmt.Errorf("code %q, want %q", code(err), CodeKeyBackendUnavailable)
				}
				return nil
			},
			want: []string{
				keyDur + " backend=other operation=decrypt outcome=error count=1",
				storeDur + " operation=get_record outcome=ok store=bolt count=1",
			},
		},
		{
			name: "backend timeout",
			keys: func(k Keyer) Keyer { return faultyKeyer{Keyer: k, block: true} },
			op: func(ctx context.Context, v *Vault, token string) error {
				_, err := v.Detokenize(ctx, token)
				if code(err) != CodeKeyBackendUnavailable {
					return fmt.Errorf("code %q, want %q", code(err), CodeKeyBackendUnavailable)
				}
				return nil
			},
			want: []string{
				keyDur + " backend=other operation=decrypt outcome=timeout count=1",
				storeDur + " operation=get_record outcome=ok store=bolt count=1",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			keys, _ := newTestKeyring(t)
			store := newTestBolt(t)
			info, err := newTestVault(t, store, keys, Options{}).Tokenize(ctx, card.input())
			if err != nil {
				t.Fatal(err)
			}

			reader := sdkmetric.NewManualReader()
			var k Keyer = keys
			if tt.keys != nil {
				k = tt.keys(keys)
			}
			v := newTestVault(t, store, k, Options{
				KeyTimeout:    50 * time.Millisecond,
				MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
			})
			if err := tt.op(ctx, v, info.Token); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			got := observations(t, reader, info.Token, card.digits, card.cvc, info.Fingerprint)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("observations (-want +got):\n%s", diff)
			}
		})
	}
}

// TestKeyDurationBackends: the backend label names what operators deploy,
// for each real backend, and the store label each real store.
func TestKeyDurationBackends(t *testing.T) {
	tests := []struct {
		name         string
		open         func(t *testing.T) (Keyer, Store)
		backend, sto string
	}{
		{"local keyring, bolt", func(t *testing.T) (Keyer, Store) { k, _ := newTestKeyring(t); return k, newTestBolt(t) }, "local", "bolt"},
		{"softhsm2, redis", func(t *testing.T) (Keyer, Store) {
			k, _ := newTestPKCS11(t)
			s, _ := newTestRedis(t)
			return k, s
		}, "hsm", "redis"},
		{"transit, bolt", func(t *testing.T) (Keyer, Store) { k, _, _ := newTestTransit(t); return k, newTestBolt(t) }, "vault", "bolt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			keys, store := tt.open(t)
			info, err := newTestVault(t, store, keys, Options{}).Tokenize(ctx, testCards[0].input())
			if err != nil {
				t.Fatal(err)
			}
			reader := sdkmetric.NewManualReader()
			v := newTestVault(t, store, keys, Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
			if _, err := v.Detokenize(ctx, info.Token); err != nil {
				t.Fatal(err)
			}
			want := []string{
				MetricKeyDuration + " backend=" + tt.backend + " operation=decrypt outcome=ok count=1",
				MetricStoreDuration + " operation=get_record outcome=ok store=" + tt.sto + " count=1",
				MetricStoreDuration + " operation=touch outcome=ok store=" + tt.sto + " count=1", // a new Vault's first forward marks the use
			}
			if diff := cmp.Diff(want, observations(t, reader, info.Token, testCards[0].digits)); diff != "" {
				t.Errorf("observations (-want +got):\n%s", diff)
			}
		})
	}
}

// TestKeyDurationRewrap: a rewrap batch is one rewrap observation, and
// the records it reads are store observations.
func TestKeyDurationRewrap(t *testing.T) {
	ctx := context.Background()
	keys, rotate := rewrapCases[0].setup(t)
	store := newTestBolt(t)
	info, err := newTestVault(t, store, keys, Options{}).Tokenize(ctx, testCards[0].input())
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	v := newTestVault(t, store, rotate(t), Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	p, err := v.Rewrap(ctx, RewrapOptions{})
	if err != nil || p.Rewrapped != 1 {
		t.Fatalf("Rewrap = %+v, %v; want 1 rewrapped", p, err)
	}
	want := []string{
		MetricKeyDuration + " backend=local operation=rewrap outcome=ok count=1",
		MetricStoreDuration + " operation=get outcome=ok store=bolt count=1",
	}
	if diff := cmp.Diff(want, observations(t, reader, info.Token, testCards[0].digits)); diff != "" {
		t.Errorf("observations (-want +got):\n%s", diff)
	}
}

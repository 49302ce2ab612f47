package config

import (
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/errors")

// TestLoadErrors loads each broken configuration in testdata/errors and
// compares the whole error text with its golden file: every problem at
// once, each naming the key path, the line or the environment variable,
// the value found and the form expected; never a Go type, and never the
// value of a key that holds a secret.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		checkFiles bool
	}{
		{name: "types"},
		{name: "unknown"},
		{name: "secrets"},
		{name: "mixed"},
		{name: "syntax"},
		{name: "two-documents"},
		{name: "empty"},
		{name: "list"},
		{name: "files", checkFiles: true},
		{name: "env", checkFiles: true, env: map[string]string{
			EnvRedisAddrs:    "redis://user:pw@10.0.0.5:6379, 10.0.0.6:6379",
			EnvLogLevel:      "loud",
			EnvListenAddr:    "0.0.0.0:8443",
			EnvKeyringPath:   "testdata/errors/files/missing-keyring.json",
			EnvRedisPassword: "hunter2-env",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			load := Load
			if tt.checkFiles {
				load = LoadAndCheckFiles
			}
			_, err := load("testdata/errors/"+tt.name+".yaml", func(k string) string { return tt.env[k] })
			if err == nil {
				t.Fatal("Load = nil, want the configuration refused")
			}
			var all *Errors
			if !errors.As(err, &all) || len(all.Problems) == 0 {
				t.Fatalf("Load = %T %v, want *Errors", err, err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("errors.As(Load's error, *FieldError) = false")
			}
			got := err.Error() + "\n"
			golden := "testdata/errors/" + tt.name + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("Load(%s) error (-want +got):\n%s", tt.name, diff)
			}
			for _, leak := range []string{"!!", "unmarshal", "time.Duration", "config.", "int64", "uint32", "hunter2", "pw@"} {
				if strings.Contains(got, leak) {
					t.Errorf("Load(%s) error holds %q:\n%s", tt.name, leak, got)
				}
			}
		})
	}
}

// TestLoadGood: a good file loads through both entry points, and Load does
// not look at files (keys init runs before the keyring exists).
func TestLoadGood(t *testing.T) {
	if _, err := Load("testdata/dev.yaml", nil); err != nil {
		t.Errorf("Load(dev.yaml) = %v", err)
	}
	// dev.yaml names files relative to where cardgate runs; none is here.
	_, err := LoadAndCheckFiles("testdata/dev.yaml", nil)
	for _, want := range []string{`allowlist.path (line 6): "allowlist.yaml" does not exist`, `keys.local.path (line 17): "keyring.json" does not exist`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadAndCheckFiles(dev.yaml) = %v, want it to report %s", err, want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"addrs", "addrs", 0}, {"adress", "addrs", 3}, {"address", "addrs", 2},
		{"read_timout", "read_timeout", 1}, {"", "abc", 3}, {"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

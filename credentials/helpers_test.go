package credentials

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// envOf returns a Getenv that reads m.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// mustStore returns a loaded store.
func mustStore(t *testing.T, specs []Spec, o Options) *Store {
	t.Helper()
	s, err := New(specs, o)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	if err := s.Reload(context.Background()); err != nil {
		t.Fatalf("Reload() = %v", err)
	}
	return s
}

// secretOf loads one environment credential and returns it.
func secretOf(t *testing.T, name, val string) Secret {
	t.Helper()
	s := mustStore(t, []Spec{{Name: name, Source: Env{Var: "V"}}}, Options{Getenv: envOf(map[string]string{"V": val})})
	sec, err := s.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

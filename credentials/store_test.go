package credentials

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNewRefusesBadSpecs(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string // in the error
	}{
		{"empty name", Spec{Source: Env{Var: "A"}}, "the name must be"},
		{"upper case name", Spec{Name: "Acme", Source: Env{Var: "A"}}, "the name must be"},
		{"name starting with dash", Spec{Name: "-acme", Source: Env{Var: "A"}}, "the name must be"},
		{"name too long", Spec{Name: strings.Repeat("a", 64), Source: Env{Var: "A"}}, "the name must be"},
		{"no source", Spec{Name: "a"}, "no source"},
		{"pointer source", Spec{Name: "a", Source: &File{Path: "/x"}}, "must be a File, Env or VaultKV value"},
		{"empty path", Spec{Name: "a", Source: File{}}, "path is empty"},
		{"bad env name", Spec{Name: "a", Source: Env{Var: "1A"}}, "not a variable name"},
		{"empty env name", Spec{Name: "a", Source: Env{}}, "not a variable name"},
		{"bad encoding", Spec{Name: "a", Source: Env{Var: "A"}, Encoding: "base32"}, "encoding \"base32\""},
		{"bad kind", Spec{Name: "a", Source: Env{Var: "A"}, Kind: "rsa-private-key"}, "kind \"rsa-private-key\""},
		{"vault without client", Spec{Name: "a", Source: VaultKV{Mount: "secret", Path: "p", Key: "k"}}, "no Vault client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New([]Spec{tt.spec}, Options{})
			if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() = %v, want ErrBadSpec saying %q", err, tt.want)
			}
		})
	}
	_, err := New([]Spec{{Name: "a", Source: Env{Var: "A"}}, {Name: "a", Source: Env{Var: "B"}}}, Options{})
	if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("New(duplicate) = %v, want ErrBadSpec", err)
	}
}

func TestGet(t *testing.T) {
	s, err := New([]Spec{{Name: "zeta", Source: Env{Var: "Z"}}, {Name: "acme", Source: Env{Var: "A"}}},
		Options{Getenv: envOf(map[string]string{"A": "a-value", "Z": "z-value"})})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"acme", "zeta"}, s.Names()); diff != "" {
		t.Errorf("Names() (-want +got):\n%s", diff)
	}
	if !s.Has("acme") || s.Has("nope") {
		t.Errorf("Has(acme), Has(nope) = %v, %v", s.Has("acme"), s.Has("nope"))
	}
	if sec, err := s.Get("acme"); !errors.Is(err, ErrNotLoaded) || !sec.IsZero() {
		t.Errorf("Get before Reload = %v, %v; want a zero Secret and ErrNotLoaded", sec, err)
	}
	if st := s.Status(); st.Ready {
		t.Errorf("Status before Reload = %+v, want not ready", st)
	}
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sec, err := s.Get("nope"); !errors.Is(err, ErrNotFound) || !sec.IsZero() {
		t.Errorf("Get(nope) = %v, %v; want a zero Secret and ErrNotFound", sec, err)
	}
	if _, err := s.Get("sk_live_pasted\r\n"); !errors.Is(err, ErrNotFound) || strings.Contains(err.Error(), "sk_live") {
		t.Errorf("Get(not a name) = %v, want ErrNotFound without the input", err)
	}
	sec, err := s.Get("acme")
	if err != nil || string(sec.Reveal()) != "a-value" {
		t.Errorf("Get(acme) = %v, %v", sec, err)
	}
	want := Status{Ready: true, Credentials: []CredentialStatus{
		{Name: "acme", Source: SourceEnv, Kind: KindSecret}, {Name: "zeta", Source: SourceEnv, Kind: KindSecret}}}
	if diff := cmp.Diff(want, s.Status(), cmpStatus); diff != "" {
		t.Errorf("Status() (-want +got):\n%s", diff)
	}
}

// cmpStatus ignores the times in a Status.
var cmpStatus = cmp.FilterPath(func(p cmp.Path) bool {
	return strings.HasSuffix(p.String(), "At") || p.String() == "LastAttempt"
}, cmp.Ignore())

// TestReloadAllOrNothing breaks one of two credentials: the reload fails,
// names the broken one, and both old values stay live.
func TestReloadAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	fa := writeFile(t, dir, "a", []byte("old-a-value\n"))
	fb := writeFile(t, dir, "b", []byte("old-b-value\n"))
	var logs bytes.Buffer
	s := mustStore(t, []Spec{{Name: "a", Source: File{Path: fa}}, {Name: "b", Source: File{Path: fb}}},
		Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})

	writeFile(t, dir, "a", []byte("new-a-value\n"))
	writeFile(t, dir, "b", []byte("new-b\r\nX-Injected: new-b-value\n"))
	err := s.Reload(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Name != "b" || e.Source != SourceFile || e.Code != CodeInvalid {
		t.Fatalf("Reload() = %v, want an *Error naming b (file) invalid", err)
	}
	for _, name := range []string{"a", "b"} {
		sec, err := s.Get(name)
		if err != nil || string(sec.Reveal()) != "old-"+name+"-value" {
			t.Errorf("Get(%s) after a failed reload = %v, %v; want the old value", name, sec, err)
		}
	}
	st := s.Status()
	if !st.Ready || st.Failures != 1 || !strings.Contains(st.LastError, "credentials: b (file): invalid_value") {
		t.Errorf("Status() = %+v, want ready with one failure naming b", st)
	}
	for _, out := range []string{err.Error(), st.LastError, logs.String()} {
		for _, v := range []string{"old-a-value", "old-b-value", "new-a-value", "new-b-value", "X-Injected"} {
			if strings.Contains(out, v) {
				t.Errorf("%q holds a value (%s)", out, v)
			}
		}
	}

	writeFile(t, dir, "b", []byte("new-b-value\n"))
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if sec, _ := s.Get(name); string(sec.Reveal()) != "new-"+name+"-value" {
			t.Errorf("Get(%s) after a good reload is not the new value", name)
		}
	}
	if st := s.Status(); st.LastError != "" || st.Failures != 1 {
		t.Errorf("Status() after success = %+v, want the error cleared", st)
	}
	if !strings.Contains(logs.String(), `{"name":"a","source":"file","changed":true}`) {
		t.Errorf("log = %s, want a load line saying a changed", logs.String())
	}
}

// TestReloadReportsEveryFailure: operators see all broken credentials at
// once, not one per restart.
func TestReloadReportsEveryFailure(t *testing.T) {
	s, err := New([]Spec{{Name: "a", Source: Env{Var: "A"}}, {Name: "b", Source: File{Path: "/nonexistent/b"}}, {Name: "c", Source: Env{Var: "C"}}},
		Options{Getenv: envOf(map[string]string{"C": "c"})})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Reload(context.Background())
	for _, want := range []string{"credentials: a (env): empty", "credentials: b (file): read_failed"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Reload() = %v, want it to say %q", err, want)
		}
	}
	if _, err := s.Get("c"); !errors.Is(err, ErrNotLoaded) {
		t.Errorf("Get(c) after a failed first load = %v, want ErrNotLoaded (nothing partial)", err)
	}
}

// TestConcurrentGetDuringReload runs under -race: readers always see a
// complete set, old or new, never a mix.
func TestConcurrentGetDuringReload(t *testing.T) {
	dir := t.TempDir()
	fa := writeFile(t, dir, "a", []byte("gen-0\n"))
	fb := writeFile(t, dir, "b", []byte("gen-0\n"))
	s := mustStore(t, []Spec{{Name: "a", Source: File{Path: fa}}, {Name: "b", Source: File{Path: fb}}}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				a, err1 := s.Get("a")
				b, err2 := s.Get("b")
				if err := errors.Join(err1, err2); err != nil {
					errc <- err
					return
				}
				// a is read before b, so b is never older than a.
				ga, gb := string(a.Reveal()), string(b.Reveal())
				if gb < ga {
					errc <- fmt.Errorf("b (%s) older than a (%s)", gb, ga)
					return
				}
			}
		}()
	}
	for i := 1; i <= 9; i++ {
		gen := []byte(fmt.Sprintf("gen-%d\n", i))
		writeFile(t, dir, "a", gen)
		writeFile(t, dir, "b", gen)
		if err := s.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

// TestReloadKeepsHeldSecrets: a Secret taken before a reload keeps its
// value (a forward in flight is not changed under it).
func TestReloadKeepsHeldSecrets(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "a", []byte("first\n"))
	s := mustStore(t, []Spec{{Name: "a", Source: File{Path: f}}}, Options{})
	held, _ := s.Get("a")
	writeFile(t, dir, "a", []byte("second\n"))
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		runtime.GC()
	}
	if got := string(held.Reveal()); got != "first" {
		t.Errorf("held Secret = %q after reload, want first", got)
	}
	if now, _ := s.Get("a"); string(now.Reveal()) != "second" {
		t.Error("Get after reload is not the new value")
	}
}

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	// Kubernetes-style: the file is a symlink swapped atomically.
	writeFile(t, dir, "v1", []byte("value-1\n"))
	link := filepath.Join(dir, "key")
	if err := os.Symlink("v1", link); err != nil {
		t.Fatal(err)
	}
	s := mustStore(t, []Spec{{Name: "a", Source: File{Path: link}}}, Options{PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch() = %v, want context.Canceled", err)
		}
	}()

	swap := func(target string) {
		tmp := filepath.Join(dir, "key.tmp")
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, link); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, dir, "v2", []byte("value-2\n"))
	swap("v2")
	waitFor(t, s, "a", "value-2")

	// A broken file is refused and the last good value stays.
	writeFile(t, dir, "v3", nil)
	swap("v3")
	deadline := time.Now().Add(5 * time.Second)
	for s.Status().Failures == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not try the broken file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if sec, _ := s.Get("a"); string(sec.Reveal()) != "value-2" {
		t.Error("a broken file replaced the last good value")
	}
	failures := s.Status().Failures
	time.Sleep(50 * time.Millisecond)
	if got := s.Status().Failures; got != failures {
		t.Errorf("Watch retried an unchanged broken file: %d failures, then %d", failures, got)
	}

	// An edit in place (same inode) is seen too.
	writeFile(t, dir, "v3", []byte("value-3-longer\n"))
	waitFor(t, s, "a", "value-3-longer")
}

// TestWatchCatchesChangeBeforeStart: a file changed after the first
// Reload and before Watch started is still loaded.
func TestWatchCatchesChangeBeforeStart(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "a", []byte("before\n"))
	s := mustStore(t, []Spec{{Name: "a", Source: File{Path: f}}}, Options{PollInterval: 10 * time.Millisecond})
	writeFile(t, dir, "a", []byte("after-the-load\n"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Watch(ctx)
	waitFor(t, s, "a", "after-the-load")
}

func waitFor(t *testing.T, s *Store, name, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		sec, err := s.Get(name)
		if err == nil && string(sec.Reveal()) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get(%s) did not become %q (status %+v)", name, want, s.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

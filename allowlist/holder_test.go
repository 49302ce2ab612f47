package allowlist

import (
	"log/slog"
	"strings"

	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func newTestHolder(t *testing.T, s attackSetup, c *clock) (*Holder, string) {
	t.Helper()
	dir := t.TempDir()
	p := s.policy
	p.Now = c.Now
	return NewHolder(HolderOptions{
		Path: filepath.Join(dir, "allowlist.yaml"), SignaturesDir: filepath.Join(dir, "sigs"),
		Policy: p, State: NewFileStateStore(filepath.Join(dir, "state.json")),
		PollInterval: 10 * time.Millisecond,
	}), dir
}

func TestHolderFailsClosed(t *testing.T) {
	s := newAttackSetup(t)
	c := &clock{t: testNow}
	h, dir := newTestHolder(t, s, c)

	var de *DenyError
	if a, err := h.Current(); a != nil || !errors.As(err, &de) || de.Reason != ReasonAllowlistUnavailable {
		t.Fatalf("Current() before Load = %v, %v, want %s", a, err, ReasonAllowlistUnavailable)
	}
	if st := h.Status(); st.Ready {
		t.Errorf("Status() before Load = %+v, want not ready", st)
	}
	// Missing files: refused, nothing live.
	if err := h.Load(); err == nil {
		t.Fatal("Load() with no files = nil error")
	}
	if st := h.Status(); st.LastError == "" || st.Failures != 1 {
		t.Errorf("Status() after a failed Load = %+v, want the error reported", st)
	}

	raw := docSpec{}.yaml()
	writeSet(t, dir, raw, s.signBoth(t, raw)...)
	if err := h.Load(); err != nil {
		t.Fatalf("Load() = %v", err)
	}
	a, err := h.Current()
	if err != nil || !bytes.Equal(a.Raw, raw) {
		t.Fatalf("Current() = %v, %v", a, err)
	}
	st := h.Status()
	if !st.Ready || st.Version != 1 || st.SHA256 != SHA256Hex(raw) || st.LastError != "" || len(st.Signers) != 2 {
		t.Errorf("Status() = %+v", st)
	}

	// An unsigned edit is refused; the good one stays live.
	writeFile(t, filepath.Join(dir, "allowlist.yaml"), append(bytes.Clone(raw), "# edit\n"...))
	if err := h.Load(); !errors.Is(err, ErrThreshold) {
		t.Fatalf("Load(edited) = %v, want %v", err, ErrThreshold)
	}
	if a, err := h.Current(); err != nil || !bytes.Equal(a.Raw, raw) {
		t.Fatalf("Current() after a refused reload = %v, want the last good one", err)
	}
	if st := h.Status(); !st.Ready || st.LastError == "" {
		t.Errorf("Status() after a refused reload = %+v, want ready with the error", st)
	}

	// Near expiry: still live, flagged.
	c.Set(a.Doc.Expires.Add(-time.Hour))
	if st := h.Status(); !st.Ready || !st.ExpiringSoon {
		t.Errorf("Status() an hour before expiry = %+v, want ready and expiring soon", st)
	}
	// At expiry: every request is denied.
	c.Set(a.Doc.Expires)
	if a, err := h.Current(); a != nil || !errors.As(err, &de) || de.Reason != ReasonAllowlistExpired {
		t.Fatalf("Current() at expiry = %v, %v, want %s", a, err, ReasonAllowlistExpired)
	}
	if st := h.Status(); st.Ready {
		t.Errorf("Status() at expiry = %+v, want not ready", st)
	}
}

func TestHolderNilStateIsMemory(t *testing.T) {
	s := newAttackSetup(t)
	dir := t.TempDir()
	h := NewHolder(HolderOptions{Path: filepath.Join(dir, "allowlist.yaml"), SignaturesDir: filepath.Join(dir, "sigs"), Policy: s.policy})
	v1 := docSpec{version: 1}.yaml()
	v2 := docSpec{version: 2, prev: SHA256Hex(v1)}.yaml()
	for _, raw := range [][]byte{v2, v1} {
		writeSet(t, dir, raw, s.signBoth(t, raw)...)
		_ = h.Load()
	}
	if a, _ := h.Current(); a == nil || a.Doc.Version != 2 {
		t.Fatalf("after v2 then v1 with nil State, live = %v, want v2", a)
	}
	if got := h.Status().StateStore; got != "memory (not persisted)" {
		t.Errorf("Status().StateStore = %q", got)
	}
}

func TestHolderWatch(t *testing.T) {
	s := newAttackSetup(t)
	c := &clock{t: testNow}
	h, dir := newTestHolder(t, s, c)
	v1 := docSpec{version: 1}.yaml()
	writeSet(t, dir, v1, s.signBoth(t, v1)...)
	if err := h.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Watch(ctx) }()

	v2 := docSpec{version: 2, prev: SHA256Hex(v1)}.yaml()
	writeSet(t, dir, v2, s.signBoth(t, v2)...)
	deadline := time.Now().Add(5 * time.Second)
	for h.Status().Version != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Watch() = %v, want context.Canceled", err)
	}
	if st := h.Status(); st.Version != 2 {
		t.Fatalf("Watch did not load v2: %+v", st)
	}
}

func TestReadSignaturesLimits(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i <= MaxSignatures; i++ {
		writeFile(t, filepath.Join(dir, string(rune('a'+i%26))+string(rune('a'+i/26))+".sig"), []byte("x"))
	}
	if _, err := ReadSignatures(t.Context(), dir); err == nil {
		t.Errorf("ReadSignatures(%d files) = nil error", MaxSignatures+1)
	}
	dir = t.TempDir()
	writeFile(t, filepath.Join(dir, "big.sig"), bytes.Repeat([]byte("x"), MaxSignatureBytes+1))
	writeFile(t, filepath.Join(dir, "README"), []byte("ignored"))
	if _, err := ReadSignatures(t.Context(), dir); err == nil {
		t.Error("ReadSignatures(oversized) = nil error")
	}
	if err := os.Remove(filepath.Join(dir, "big.sig")); err != nil {
		t.Fatal(err)
	}
	if sigs, err := ReadSignatures(t.Context(), dir); err != nil || len(sigs) != 0 {
		t.Errorf("ReadSignatures(no .sig) = %v, %v", sigs, err)
	}
}

// TestHolderWarnsDuplicateKey: the gateway logs a key listed on two lines
// of allowed_signers, naming it by fingerprint and line.
func TestHolderWarnsDuplicateKey(t *testing.T) {
	s := newAttackSetup(t)
	dan := signer{principal: "dan@audit.example", Signer: s.alice.Signer}
	tests := []struct {
		name    string
		signers []byte
		warn    bool
	}{
		{"each key once", allowedSigners(s.alice, s.bob, s.carol), false},
		{"alice's key also as dan", allowedSigners(s.alice, s.bob, s.carol, dan), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			p := s.policy
			p.AllowedSigners = tt.signers
			NewHolder(HolderOptions{Path: "x", SignaturesDir: "y", Policy: p, State: &memoryStateStore{},
				Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			got := strings.Contains(logs.String(), "lists one key on several lines")
			if got != tt.warn {
				t.Fatalf("NewHolder(%s) warned = %v, want %v; log:\n%s", tt.name, got, tt.warn, logs.String())
			}
			if tt.warn && (!strings.Contains(logs.String(), ssh.FingerprintSHA256(s.alice.PublicKey())) || !strings.Contains(logs.String(), `"lines":[2,5]`)) {
				t.Errorf("the warning does not name the key and its lines:\n%s", logs.String())
			}
		})
	}
}

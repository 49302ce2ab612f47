package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/vaultclient"
)

// events records, in order, the gateway's log messages and the test's own
// marks, from every goroutine.
type events struct {
	mu  sync.Mutex
	seq []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq = append(e.seq, s)
}

func (e *events) has(s string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Contains(e.seq, s)
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.seq)
}

// eventsHandler is a slog handler that adds each message to events, the
// final audit head marked as such.
type eventsHandler struct{ ev *events }

func (h eventsHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h eventsHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h eventsHandler) WithGroup(string) slog.Handler            { return h }
func (h eventsHandler) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "final" && a.Value.Bool() {
			msg += " (final)"
		}
		return true
	})
	h.ev.add(msg)
	return nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// testGatewayConfig is a dev-mode gateway on the embedded store, with an
// audit file and a kill switch file, on a freshly signed allowlist.
func testGatewayConfig(t *testing.T) config.Config {
	t.Helper()
	dir := t.TempDir()
	files := demoFiles{dir: dir}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	doc := demoAllowlist(443, time.Now())
	sig, err := allowlist.Sign(doc, signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := files.write(map[string][]byte{
		"allowed_signers":            fmt.Appendf(nil, "auditor@cardgate.example namespaces=%q %s", allowlist.Namespace, ssh.MarshalAuthorizedKey(signer.PublicKey())),
		"allowlist.yaml":             doc,
		"allowlist.sigs/auditor.sig": sig,
	}); err != nil {
		t.Fatal(err)
	}
	if err := vaultclient.CreateLocalKeyring(files.path("keyring.json")); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Mode = config.ModeDev
	cfg.Environment = "demo"
	cfg.Allowlist.Path = files.path("allowlist.yaml")
	cfg.Allowlist.SignaturesDir = files.path("allowlist.sigs")
	cfg.Allowlist.AllowedSigners = files.path("allowed_signers")
	cfg.Allowlist.Threshold = 1
	cfg.Allowlist.StateFile = files.path("allowlist.state")
	cfg.Store.Backend = config.StoreBolt
	cfg.Store.Bolt.Path = files.path("cards.db")
	cfg.Keys.Local.Path = files.path("keyring.json")
	cfg.Audit.File = files.path("audit.log")
	cfg.KillSwitch.File = filepath.Join(dir, "killswitch.json")
	cfg.Listen.Addr = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The shutdown order: drain, final audit head, every background loop
// stopped and awaited, and only then the stores and the audit sink
// closed. The test's own loop is slow to notice its context ended, as a
// loop with a Redis command in flight is, and appends to the audit log
// when it does: if close ran before it returned, the append would meet a
// closed sink, and its mark would come after "closed".
func TestGatewayShutdownAwaitsLoops(t *testing.T) {
	cfg := testGatewayConfig(t)
	ev := &events{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, err := openGateway(ctx, cfg, slog.New(eventsHandler{ev: ev}))
	if err != nil {
		t.Fatal(err)
	}
	// Appended last, so closed first: the moment close starts releasing.
	g.closers = append(g.closers, closerFunc(func() error { ev.add("closed"); return nil }))
	auditRec := audit.Record{Kind: audit.KindDenied, RequestID: "req_shutdown", Caller: "billing", Decision: audit.DecisionDeny, Reason: "destination_not_allowed"}
	if _, err := g.guards.auditor.Append(ctx, auditRec); err != nil {
		t.Fatal(err)
	}
	var lateErr error
	g.loops.Go("test: slow to stop", func(ctx context.Context) {
		<-ctx.Done()
		time.Sleep(300 * time.Millisecond)
		_, lateErr = g.guards.auditor.Append(context.Background(), auditRec)
		ev.add("slow loop returned")
	})

	ln, err := net.Listen("tcp", cfg.Listen.Addr)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.serve(ctx, ln, nil) }()
	deadline := time.Now().Add(10 * time.Second)
	for !ev.has("cardgate listening") {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not start; events: %q", ev.list())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel() // SIGTERM
	if err := <-served; err != nil {
		t.Fatalf("serve = %v, want nil", err)
	}
	g.close()

	want := []string{
		"shutting down: finishing requests in flight",
		"audit chain head (final)",
		"slow loop returned",
		"background loops stopped",
		"closed",
	}
	var got []string
	for _, e := range ev.list() {
		if slices.Contains(want, e) {
			got = append(got, e)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("shutdown order (-want +got):\n%s\nall events: %q", diff, ev.list())
	}
	if lateErr != nil {
		t.Errorf("a loop's audit append during shutdown = %v, want nil (the sink was closed under it)", lateErr)
	}
	for _, e := range ev.list() {
		if strings.Contains(e, "background loops still running") {
			t.Errorf("unexpected event %q", e)
		}
	}
}

// A background loop that ends on its own stops the gateway, in the same
// order as a SIGTERM, with an error that names it: a gateway must not run
// on without, say, its kill switch poll.
func TestGatewayStopsWhenALoopEnds(t *testing.T) {
	cfg := testGatewayConfig(t)
	ev := &events{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, err := openGateway(ctx, cfg, slog.New(eventsHandler{ev: ev}))
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	quit := make(chan struct{})
	g.loops.Go("test: quitter", func(context.Context) { <-quit })
	ln, err := net.Listen("tcp", cfg.Listen.Addr)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.serve(ctx, ln, nil) }()
	close(quit)
	select {
	case err := <-served:
		if err == nil || !strings.Contains(err.Error(), "test: quitter") {
			t.Errorf("serve = %v, want an error naming the loop", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve went on after a background loop ended")
	}
	if !ev.has("background loops stopped") {
		t.Errorf("the other loops were not stopped and awaited; events: %q", ev.list())
	}
}

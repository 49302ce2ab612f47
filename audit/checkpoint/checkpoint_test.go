package checkpoint

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

const origin = "cardgate.test/audit/dev-1"

func newSigner(t *testing.T, name string) *LocalSigner {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewLocalSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeTree is a Source with settable heads: the publisher's rules are
// about sizes and roots, not about how they are computed (audit's tests
// cover that).
type fakeTree struct {
	size  uint64
	root  [32]byte
	marks map[uint64][32]byte
	err   error
}

func (f *fakeTree) Head() (uint64, [32]byte, error) { return f.size, f.root, f.err }
func (f *fakeTree) RootAt(n uint64) ([32]byte, bool) {
	r, ok := f.marks[n]
	return r, ok
}

func TestParseRoundTrip(t *testing.T) {
	c := Checkpoint{Origin: origin, Size: 42, Root: [32]byte{1, 2, 3}}
	got, err := Parse(c.Text())
	if err != nil || got != c {
		t.Fatalf("Parse(Text()) = %v, %v; want %v", got, err, c)
	}
	for name, text := range map[string]string{
		"extension line":   c.Text() + "extra\n",
		"leading zero":     origin + "\n042\n" + strings.Split(c.Text(), "\n")[2] + "\n",
		"short root":       origin + "\n42\nAAAA\n",
		"space in origin":  "a b\n42\n" + strings.Split(c.Text(), "\n")[2] + "\n",
		"no last newline":  strings.TrimSuffix(c.Text(), "\n"),
		"negative size":    origin + "\n-1\n" + strings.Split(c.Text(), "\n")[2] + "\n",
		"unpadded base64":  origin + "\n42\n" + strings.TrimRight(strings.Split(c.Text(), "\n")[2], "=") + "\n",
		"empty":            "",
		"origin with plus": "a+b\n42\n" + strings.Split(c.Text(), "\n")[2] + "\n",
	} {
		if _, err := Parse(text); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%s) = %v, want ErrMalformed", name, err)
		}
	}
}

// A published checkpoint verifies with the note package alone, given the
// verifier key; it is the C2SP text, and a signature by another key or a
// changed text fails.
func TestPublishVerifiesWithNoteAlone(t *testing.T) {
	ctx := context.Background()
	s := newSigner(t, origin)
	path := filepath.Join(t.TempDir(), "checkpoint")
	p, err := New(ctx, Options{Origin: origin, Path: path, Signer: s, Interval: time.Second, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tree := &fakeTree{size: 5, root: [32]byte{9}}
	if err := p.Attach(tree); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	msg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(s.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		t.Fatalf("note.Open: %v", err)
	}
	want := origin + "\n5\nCQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	if n.Text != want {
		t.Errorf("text = %q, want %q", n.Text, want)
	}
	if !bytes.HasPrefix(msg, []byte(want+"\n— "+origin+" ")) {
		t.Errorf("signed note = %q, want the text, a blank line and a signature line by %s", msg, origin)
	}
	other, _ := note.NewVerifier(newSigner(t, origin).VerifierKey())
	if _, err := note.Open(msg, note.VerifierList(other)); err == nil {
		t.Error("note.Open with another key of the same name succeeded")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
	}
}

func TestPublisherRules(t *testing.T) {
	ctx := context.Background()
	s := newSigner(t, origin)
	path := filepath.Join(t.TempDir(), "checkpoint")
	open := func() *Publisher {
		p, err := New(ctx, Options{Origin: origin, Path: path, Signer: s, Interval: time.Second, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := open()
	root5 := [32]byte{5}
	if err := p.Attach(&fakeTree{size: 5, root: root5}); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		tree *fakeTree
		ok   bool
	}{
		{"extends", &fakeTree{size: 7, root: [32]byte{7}, marks: map[uint64][32]byte{5: root5}}, true},
		{"same", &fakeTree{size: 5, root: root5, marks: map[uint64][32]byte{5: root5}}, true},
		{"truncated", &fakeTree{size: 4, root: [32]byte{4}, marks: map[uint64][32]byte{}}, false},
		{"rewritten", &fakeTree{size: 7, root: [32]byte{7}, marks: map[uint64][32]byte{5: {6}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := open().Attach(tc.tree)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrNotExtended)) {
				t.Errorf("Attach = %v, want ok=%v (or ErrNotExtended)", err, tc.ok)
			}
		})
	}

	// A smaller head, or another root at the same size, is never signed.
	p.Attach(&fakeTree{size: 5, root: root5})
	p.src = &fakeTree{size: 4}
	if err := p.Publish(ctx); err == nil {
		t.Error("Publish of a smaller tree succeeded")
	}
	p.src = &fakeTree{size: 5, root: [32]byte{1}}
	if err := p.Publish(ctx); err == nil {
		t.Error("Publish of another root at the same size succeeded")
	}
	p.src = &fakeTree{err: errors.New("stopped")}
	if err := p.Publish(ctx); err == nil {
		t.Error("Publish of a stopped tree succeeded")
	}

	// A published file signed by another key refuses the start.
	if _, err := New(ctx, Options{Origin: origin, Path: path, Signer: newSigner(t, origin), Interval: time.Second, Timeout: time.Second}); err == nil {
		t.Error("New with a checkpoint signed by another key succeeded")
	}
	// A signer named other than the origin is refused.
	if _, err := New(ctx, Options{Origin: origin, Path: path, Signer: newSigner(t, "other"), Interval: time.Second, Timeout: time.Second}); err == nil {
		t.Error("New with a signer named other than the origin succeeded")
	}
}

func TestOpenLocalSignerRefusesReadableKey(t *testing.T) {
	skey, _, _ := note.GenerateKey(rand.Reader, origin)
	path := filepath.Join(t.TempDir(), "key")
	os.WriteFile(path, []byte(skey+"\n"), 0o644)
	if _, err := OpenLocalSigner(context.Background(), path); err == nil || strings.Contains(err.Error(), skey) {
		t.Errorf("OpenLocalSigner(mode 0644) = %v, want an error that does not quote the key", err)
	}
	os.Chmod(path, 0o600)
	if _, err := OpenLocalSigner(context.Background(), path); err != nil {
		t.Errorf("OpenLocalSigner(mode 0600) = %v", err)
	}
	os.WriteFile(path, []byte("PRIVATE+KEY+garbage"), 0o600)
	if _, err := OpenLocalSigner(context.Background(), path); err == nil || strings.Contains(err.Error(), "garbage") {
		t.Errorf("OpenLocalSigner(garbage) = %v, want an error that does not quote the file", err)
	}
}

// growingTree grows by one leaf at each Head, so that concurrent
// Publishes see different sizes.
type growingTree struct {
	mu   sync.Mutex
	size uint64
}

func (g *growingTree) Head() (uint64, [32]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.size++
	return g.size, [32]byte{byte(g.size)}, nil
}
func (g *growingTree) RootAt(uint64) ([32]byte, bool) { return [32]byte{}, false }

// blockingSigner holds its first Sign until release is closed.
type blockingSigner struct {
	*LocalSigner
	calls   atomic.Int32
	release chan struct{}
}

func (b *blockingSigner) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	if b.calls.Add(1) == 1 {
		<-b.release
	}
	return b.LocalSigner.Sign(ctx, msg)
}

// Concurrent Publishes (the interval's and shutdown's) never leave an
// older checkpoint published after a newer one: here the first, holding
// the smaller head, is slow to sign while the second runs.
func TestPublishNeverGoesBack(t *testing.T) {
	ctx := context.Background()
	s := &blockingSigner{LocalSigner: newSigner(t, origin), release: make(chan struct{})}
	path := filepath.Join(t.TempDir(), "checkpoint")
	p, err := New(ctx, Options{Origin: origin, Path: path, Signer: s, Interval: time.Second, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	g := &growingTree{}
	p.Attach(g)
	var wg sync.WaitGroup
	wg.Go(func() { _ = p.Publish(ctx) }) // head 1, blocked in Sign
	for g.sizeNow() == 0 {
		time.Sleep(time.Millisecond)
	}
	wg.Go(func() { _ = p.Publish(ctx) }) // head 2, unless it waits for the first
	time.Sleep(200 * time.Millisecond)
	close(s.release)
	wg.Wait()
	v, _ := note.NewVerifier(s.VerifierKey())
	c, err := ReadFile(ctx, path, origin, v)
	if err != nil || c.Size != g.sizeNow() {
		t.Errorf("published size %d, %v; want the largest head seen, %d", c.Size, err, g.sizeNow())
	}
}

func (g *growingTree) sizeNow() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.size
}

func TestServeHTTP(t *testing.T) {
	ctx := context.Background()
	s := newSigner(t, origin)
	path := filepath.Join(t.TempDir(), "checkpoint")
	p, _ := New(ctx, Options{Origin: origin, Path: path, Signer: s, Interval: time.Second, Timeout: time.Second})
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/audit/checkpoint", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("before any checkpoint: %d, want 404", rec.Code)
	}
	p.Attach(&fakeTree{size: 3, root: [32]byte{3}})
	if err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	// A new Publisher serves what the last one published.
	p2, _ := New(ctx, Options{Origin: origin, Path: path, Signer: s, Interval: time.Second, Timeout: time.Second})
	for _, pub := range []*Publisher{p, p2} {
		rec = httptest.NewRecorder()
		pub.ServeHTTP(rec, httptest.NewRequest("GET", "/audit/checkpoint", nil))
		file, _ := os.ReadFile(path)
		if rec.Code != 200 || rec.Body.String() != string(file) || rec.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("served %d %q (%s), want the published file", rec.Code, rec.Body.String(), rec.Header().Get("Content-Type"))
		}
	}
}

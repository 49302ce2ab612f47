package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/cardgate/cardgate/internal/fileread"
)

// Source is the tree a Publisher signs: audit.Tree.
type Source interface {
	Head() (size uint64, root [32]byte, err error)
}

// Options configures a Publisher.
type Options struct {
	// Origin names the log (the checkpoint's first line); the Signer's
	// name must equal it.
	Origin string
	// Path is the file the signed checkpoint is published to (replaced by
	// atomic rename, mode 0644: it is public).
	Path string
	// Signer signs. The tree is attached later (Attach), once the file
	// was opened knowing the last checkpoint's size.
	Signer Signer
	// Interval between checkpoints (one is signed only if the tree grew).
	Interval time.Duration
	// Timeout bounds one signature (a Transit call).
	Timeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Publisher signs and publishes checkpoints.
type Publisher struct {
	o       Options
	src     Source
	log     *slog.Logger
	verify  note.Verifier
	pubMu   sync.Mutex // one Publish at a time, so the file never goes back
	mu      sync.Mutex
	last    Checkpoint // the last published; Size 0 and zero Root before any
	lastMsg []byte     // its signed note
	have    bool
	lastErr error
}

// MaxFile bounds a checkpoint file (the note text and a few signatures).
const MaxFile = 16 << 10

// New returns a Publisher and reads the checkpoint already published at
// o.Path, if any. That checkpoint must verify with the signer's key: a
// file that does not is either not ours or was replaced, and the start is
// refused (move it aside deliberately, keeping it as evidence).
func New(ctx context.Context, o Options) (*Publisher, error) {
	switch {
	case !ValidOrigin(o.Origin):
		return nil, errors.New("checkpoint: origin must be printable ASCII without spaces or '+'")
	case o.Signer == nil:
		return nil, errors.New("checkpoint: a signer is required")
	case o.Signer.Name() != o.Origin:
		return nil, fmt.Errorf("checkpoint: the signing key is named %q, but the origin is %q: a log signs under its origin", o.Signer.Name(), o.Origin)
	case o.Interval <= 0 || o.Timeout <= 0:
		return nil, errors.New("checkpoint: interval and timeout must be positive")
	}
	v, err := note.NewVerifier(o.Signer.VerifierKey())
	if err != nil {
		return nil, fmt.Errorf("checkpoint: signer's verifier key: %w", err)
	}
	p := &Publisher{o: o, log: o.Logger, verify: v}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	msg, err := fileread.Read(ctx, o.Path, MaxFile)
	var c Checkpoint
	if err == nil {
		c, err = Open(msg, o.Origin, v)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("checkpoint: the published checkpoint %s: %w; if the key or origin changed on purpose, move the file aside (keep it: auditors may hold it)", o.Path, err)
	default:
		p.last, p.lastMsg, p.have = c, msg, true
	}
	return p, nil
}

// ServeHTTP answers with the last checkpoint published (the signed note,
// text/plain, not to be cached for long), as C2SP tlog-tiles serves
// <prefix>/checkpoint; 404 before the first.
func (p *Publisher) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	msg := p.lastMsg
	p.mu.Unlock()
	if msg == nil {
		http.Error(w, "no checkpoint published yet", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(msg)
}

// Tree is a Source that kept its roots at earlier sizes: audit.Tree,
// opened with the last checkpoint's size as a mark.
type Tree interface {
	Source
	RootAt(size uint64) ([32]byte, bool)
}

// ErrNotExtended is wrapped by Attach's error when the audit file does not
// extend the last checkpoint published: lines were cut from its end,
// rewritten, dropped or reordered, or it is another log's file.
var ErrNotExtended = errors.New("the audit file does not extend the last checkpoint published")

// Attach makes t the tree to sign, after checking that it extends the
// last checkpoint published: the root of its first Size leaves must be
// that checkpoint's root. Call it before Run or Publish.
func (p *Publisher) Attach(t Tree) error {
	if last, ok := p.Last(); ok {
		size, _, err := t.Head()
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if size < last.Size {
			return fmt.Errorf("checkpoint: the audit file holds %d lines, and the checkpoint published at %s covers %d: %w", size, p.o.Path, last.Size, ErrNotExtended)
		}
		if root, ok := t.RootAt(last.Size); !ok || root != last.Root {
			return fmt.Errorf("checkpoint: the root of the audit file's first %d lines is not the one published at %s: %w", last.Size, p.o.Path, ErrNotExtended)
		}
	}
	p.mu.Lock()
	p.src = t
	p.mu.Unlock()
	return nil
}

// ReadFile reads and verifies a signed checkpoint file.
func ReadFile(ctx context.Context, path, origin string, v note.Verifier) (Checkpoint, error) {
	b, err := fileread.Read(ctx, path, MaxFile)
	if err != nil {
		return Checkpoint{}, err
	}
	return Open(b, origin, v)
}

// Last returns the last checkpoint published (read at New, or signed
// since), and false if there is none yet.
func (p *Publisher) Last() (Checkpoint, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last, p.have
}

// Err returns why the last attempt to publish failed, or nil.
func (p *Publisher) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

// Publish signs the tree's head and publishes it, unless it equals the
// last checkpoint. It refuses a head that does not extend the last one
// (smaller): the tree and the file must have been replaced.
func (p *Publisher) Publish(ctx context.Context) error {
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	err := p.publish(ctx)
	p.mu.Lock()
	p.lastErr = err
	p.mu.Unlock()
	return err
}

func (p *Publisher) publish(ctx context.Context) error {
	p.mu.Lock()
	src := p.src
	p.mu.Unlock()
	if src == nil {
		return errors.New("checkpoint: no tree attached")
	}
	size, root, err := src.Head()
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	last, have := p.Last()
	if have && size < last.Size {
		return fmt.Errorf("checkpoint: the tree has %d leaves, fewer than the %d of the last checkpoint published", size, last.Size)
	}
	if have && size == last.Size {
		if root != last.Root {
			return errors.New("checkpoint: the tree's root differs from the last checkpoint published at the same size")
		}
		return nil
	}
	c := Checkpoint{Origin: p.o.Origin, Size: size, Root: root}
	sctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	msg, err := Sign(sctx, c, p.o.Signer)
	cancel()
	if err != nil {
		return err
	}
	if err := writeAtomic(p.o.Path, msg); err != nil {
		return fmt.Errorf("checkpoint: publish %s: %w", p.o.Path, err)
	}
	p.mu.Lock()
	p.last, p.lastMsg, p.have = c, msg, true
	p.mu.Unlock()
	p.log.Info("audit checkpoint published", slog.String("origin", c.Origin), slog.Uint64("size", c.Size), slog.String("path", p.o.Path))
	return nil
}

// Run publishes every Interval until ctx ends, then once more (with a
// context that ctx's end does not cancel, bounded by Timeout), and returns
// nil. Failures are logged; each interval tries again. A gateway calls
// Publish once more after the last forward finished.
func (p *Publisher) Run(ctx context.Context) error {
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.o.Timeout)
			defer cancel()
			p.logErr(p.Publish(fctx))
			return nil
		case <-t.C:
			p.logErr(p.Publish(ctx))
		}
	}
}

func (p *Publisher) logErr(err error) {
	if err != nil {
		p.log.Error("audit checkpoint not published", slog.String("error", err.Error()))
	}
}

// writeAtomic replaces path with data: a temporary file in the same
// directory, fsynced, renamed over path, and the directory fsynced. A
// reader sees the old checkpoint or the new one, never part of one.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing left to remove
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

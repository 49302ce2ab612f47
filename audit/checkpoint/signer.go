package checkpoint

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/cardgate/cardgate/internal/fileread"
)

// Signer signs checkpoint notes with an Ed25519 key (the one algorithm the
// note format defines). Name is the key name in the signature line, which
// for a log's own key is its origin; KeyHash is note's key hash for the
// name and public key. VerifierKey is the note verifier key
// ("name+hash+base64") that auditors pin: note.NewVerifier reads it.
type Signer interface {
	Name() string
	KeyHash() uint32
	Sign(ctx context.Context, msg []byte) ([]byte, error)
	VerifierKey() string
}

// LocalSigner signs with a note private key held in this process. For
// development: anyone who can read the key file can sign any history, so
// it shows nothing the file's writer could not forge.
type LocalSigner struct {
	s    note.Signer
	vkey string
}

// maxKeyFile bounds the key file.
const maxKeyFile = 4 << 10

// OpenLocalSigner reads a note private key ("PRIVATE+KEY+name+hash+key",
// as note.GenerateKey and `cardgate audit checkpoint-key` write it) from
// path. The file must not be readable by group or others.
func OpenLocalSigner(ctx context.Context, path string) (*LocalSigner, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: local key: %w", err)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return nil, fmt.Errorf("checkpoint: local key %s: readable by group or others (mode %#o); chmod 600 it", path, m)
	}
	b, err := fileread.Read(ctx, path, maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: local key: %w", err)
	}
	defer clear(b)
	return NewLocalSigner(strings.TrimSpace(string(b)))
}

// NewLocalSigner builds a LocalSigner from a note private key. Errors
// never quote the key.
func NewLocalSigner(skey string) (*LocalSigner, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, errors.New("checkpoint: local key: not a note private key (PRIVATE+KEY+name+hash+key)")
	}
	// The verifier key is derived from the seed: the fifth '+' field (base64
	// itself may hold '+').
	f := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(f[len(f)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errors.New("checkpoint: local key: not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	clear(raw)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: local key: %w", err)
	}
	return &LocalSigner{s: s, vkey: vkey}, nil
}

// Name implements Signer.
func (l *LocalSigner) Name() string { return l.s.Name() }

// KeyHash implements Signer.
func (l *LocalSigner) KeyHash() uint32 { return l.s.KeyHash() }

// VerifierKey implements Signer.
func (l *LocalSigner) VerifierKey() string { return l.vkey }

// Sign implements Signer.
func (l *LocalSigner) Sign(_ context.Context, msg []byte) ([]byte, error) { return l.s.Sign(msg) }

// bound is a Signer as a note.Signer, for one note.Sign call under ctx.
type bound struct {
	ctx context.Context
	s   Signer
}

func (b bound) Name() string                    { return b.s.Name() }
func (b bound) KeyHash() uint32                 { return b.s.KeyHash() }
func (b bound) Sign(msg []byte) ([]byte, error) { return b.s.Sign(b.ctx, msg) }

// Sign returns the signed note of c. Before returning it, it verifies the
// note with the signer's own verifier key and the note package, so that a
// signer whose key and verifier key disagree (a wrong Transit key version,
// say) never publishes a checkpoint nobody can check.
func Sign(ctx context.Context, c Checkpoint, s Signer) ([]byte, error) {
	if !ValidOrigin(c.Origin) {
		return nil, fmt.Errorf("%w: origin", ErrMalformed)
	}
	msg, err := note.Sign(&note.Note{Text: c.Text()}, bound{ctx, s})
	if err != nil {
		return nil, fmt.Errorf("checkpoint: sign: %w", err)
	}
	v, err := note.NewVerifier(s.VerifierKey())
	if err != nil {
		return nil, fmt.Errorf("checkpoint: signer's verifier key: %w", err)
	}
	if _, err := Open(msg, c.Origin, v); err != nil {
		return nil, fmt.Errorf("checkpoint: the signature just made does not verify with the signer's own verifier key: %w", err)
	}
	return msg, nil
}

// Open verifies a signed checkpoint with v (whose name must be the
// origin) and parses it. Signatures by other keys (witness cosignatures)
// are allowed and ignored.
func Open(msg []byte, origin string, v note.Verifier) (Checkpoint, error) {
	if v.Name() != origin {
		return Checkpoint{}, fmt.Errorf("checkpoint: verifier key is named %q, want the origin %q", v.Name(), origin)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint: signature: %w", err)
	}
	c, err := Parse(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != origin {
		return Checkpoint{}, fmt.Errorf("checkpoint: origin %q, want %q", c.Origin, origin)
	}
	return c, nil
}

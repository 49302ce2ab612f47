package migrate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/cardgate/cardgate/internal/fileread"
)

// maxIdentityFile bounds the identity file: one age identity and
// comments.
const maxIdentityFile = 16 << 10

// LoadIdentity reads the import identity: a file as age-keygen writes it,
// holding exactly one X25519 identity ("AGE-SECRET-KEY-1…"). The file must
// not be readable or writable by group or others: whoever reads it can
// decrypt every import file sent to its recipient. Errors never quote the
// file.
func LoadIdentity(ctx context.Context, path string) (*age.X25519Identity, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("migrate: identity file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("migrate: identity file %s: mode %04o lets group or others in; chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := fileread.Read(ctx, path, maxIdentityFile)
	if err != nil {
		return nil, fmt.Errorf("migrate: identity file: %w", err)
	}
	defer clear(b)
	ids, err := age.ParseIdentities(bytes.NewReader(b))
	if err != nil {
		// age's parse errors may quote the line: say only which file.
		return nil, fmt.Errorf("migrate: identity file %s holds no age identity that parses", path)
	}
	if len(ids) != 1 {
		return nil, fmt.Errorf("migrate: identity file %s holds %d identities; want exactly one", path, len(ids))
	}
	id, ok := ids[0].(*age.X25519Identity)
	if !ok {
		return nil, fmt.Errorf("migrate: identity file %s: want an X25519 identity (age-keygen)", path)
	}
	return id, nil
}

// Input is an encrypted import file opened for one run: its sha256 (of
// the encrypted bytes, as stored) and a reader of its plaintext. The
// plaintext exists only in memory, a chunk at a time.
type Input struct {
	f      *os.File
	sum    [sha256.Size]byte
	again  hash.Hash // the second pass, which must give sum again
	plain  io.Reader
	closed bool
}

// OpenInput opens the encrypted file at path, hashes it, and starts
// decrypting it with id. The file may be binary or armored age. After
// the plaintext is read to its end, Check says whether the file was the
// same for both passes.
func OpenInput(path string, id age.Identity) (*Input, error) {
	f, err := fileread.Open(path)
	if err != nil {
		return nil, fmt.Errorf("migrate: open input: %w", err)
	}
	in := &Input{f: f}
	if err := in.open(id); err != nil {
		f.Close()
		return nil, fmt.Errorf("migrate: input %s: %w", path, err)
	}
	return in, nil
}

func (in *Input) open(id age.Identity) error {
	h := sha256.New()
	if _, err := io.Copy(h, in.f); err != nil {
		return fmt.Errorf("hash: %w", err)
	}
	h.Sum(in.sum[:0])
	if _, err := in.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	in.again = sha256.New()
	br := bufio.NewReader(io.TeeReader(in.f, in.again))
	var src io.Reader = br
	if head, _ := br.Peek(len(armor.Header)); string(head) == armor.Header {
		src = armor.NewReader(br)
	}
	plain, err := age.Decrypt(src, id)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return errors.New("not encrypted to the import identity's recipient")
		}
		return errors.New("not an age file, or damaged")
	}
	in.plain = plain
	return nil
}

// SHA256 is the sha256 of the encrypted file.
func (in *Input) SHA256() [sha256.Size]byte { return in.sum }

// Read reads plaintext. age authenticates each 64 KiB chunk before it is
// returned and refuses a truncated file at its end.
func (in *Input) Read(p []byte) (int, error) {
	n, err := in.plain.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		// age's errors describe the stream, not its contents; keep them
		// short and without bytes anyway.
		return n, errors.New("migrate: input is damaged or truncated")
	}
	return n, err
}

// Check reports whether the file read now is the file hashed at open: it
// must be called after Read returned io.EOF.
func (in *Input) Check() error {
	if _, err := io.Copy(in.again, in.f); err != nil { // anything after the age stream
		return fmt.Errorf("migrate: input: %w", err)
	}
	var got [sha256.Size]byte
	in.again.Sum(got[:0])
	if got != in.sum {
		return errors.New("migrate: input changed while it was imported; run again with the same mapping file")
	}
	return nil
}

// Close closes the file.
func (in *Input) Close() error {
	if in.closed {
		return nil
	}
	in.closed = true
	return in.f.Close()
}

// ParseRecipient parses an X25519 age recipient ("age1…"), as the
// allowlist names an export recipient.
func ParseRecipient(s string) (*age.X25519Recipient, error) {
	r, err := age.ParseX25519Recipient(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("migrate: not an age X25519 recipient (age1…)")
	}
	return r, nil
}

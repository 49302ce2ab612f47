package migrate

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"filippo.io/age"

	"github.com/cardgate/cardgate/internal/fileread"
)

// KeyWrapper wraps and unwraps a 32-byte data key with the gateway's key
// backend: *vaultclient.DataKeys, made for IdentityPurpose.
type KeyWrapper interface {
	Wrap(ctx context.Context, key []byte) ([]byte, error)
	Unwrap(ctx context.Context, wrapped []byte) ([]byte, error)
}

// IdentityPurpose is the vaultclient.DataKeys purpose that seals import
// identities: a data key wrapped for it opens nothing else.
const IdentityPurpose = "import-identity"

// sealedIdentityTag starts the line of a sealed identity file that holds
// the sealed identity; sealedIdentityAAD binds the ciphertext to its use.
const (
	sealedIdentityTag = "cardgate-sealed-age-identity/v1"
	sealedIdentityAAD = "cardgate import identity v1"
)

// NewSealedIdentity makes a new import identity and returns it sealed
// under the key backend, as a file's contents, with its recipient (the
// age1… key to give a sender). The identity is encrypted with AES-256-GCM
// under a fresh data key, which kw wraps: with the HSM or Vault backend,
// the file opens only where that backend answers, so a copy of the file
// alone decrypts nothing.
func NewSealedIdentity(ctx context.Context, kw KeyWrapper) (file []byte, recipient string, err error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, "", fmt.Errorf("migrate: new identity: %w", err)
	}
	dk := make([]byte, 32)
	rand.Read(dk)
	defer clear(dk)
	wrapped, err := kw.Wrap(ctx, dk)
	if err != nil {
		return nil, "", fmt.Errorf("migrate: seal identity: %w", err)
	}
	aead, err := newGCM(dk)
	if err != nil {
		return nil, "", err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	secret := []byte(id.String())
	defer clear(secret)
	ct := aead.Seal(nonce, nonce, secret, []byte(sealedIdentityAAD))
	recipient = id.Recipient().String()
	var b bytes.Buffer
	fmt.Fprintf(&b, "# cardgate import identity, sealed under the gateway's key backend (docs/migration.md)\n")
	fmt.Fprintf(&b, "# recipient: %s\n", recipient)
	fmt.Fprintf(&b, "%s %s %s\n", sealedIdentityTag, base64.StdEncoding.EncodeToString(wrapped), base64.StdEncoding.EncodeToString(ct))
	return b.Bytes(), recipient, nil
}

// IsSealedIdentity reports whether the file at path is a sealed identity
// (and not an age-keygen file). It reads at most the file's first 16 KiB.
func IsSealedIdentity(ctx context.Context, path string) (bool, error) {
	b, err := fileread.Read(ctx, path, maxIdentityFile)
	if err != nil {
		return false, fmt.Errorf("migrate: identity file: %w", err)
	}
	defer clear(b)
	_, ok := sealedLine(b)
	return ok, nil
}

// OpenSealedIdentity opens a sealed identity file with kw.
func OpenSealedIdentity(ctx context.Context, path string, kw KeyWrapper) (*age.X25519Identity, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("migrate: identity file: %w", err)
	} else if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("migrate: identity file %s: mode %04o lets group or others write it; chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := fileread.Read(ctx, path, maxIdentityFile)
	if err != nil {
		return nil, fmt.Errorf("migrate: identity file: %w", err)
	}
	line, ok := sealedLine(b)
	if !ok {
		return nil, fmt.Errorf("migrate: identity file %s is not a sealed identity", path)
	}
	fields := strings.Fields(line)
	bad := fmt.Errorf("migrate: identity file %s: the sealed identity is damaged", path)
	if len(fields) != 3 {
		return nil, bad
	}
	wrapped, err1 := base64.StdEncoding.DecodeString(fields[1])
	ct, err2 := base64.StdEncoding.DecodeString(fields[2])
	if err1 != nil || err2 != nil {
		return nil, bad
	}
	dk, err := kw.Unwrap(ctx, wrapped)
	if err != nil {
		return nil, fmt.Errorf("migrate: identity file %s: the key backend does not open it: %w", path, err)
	}
	defer clear(dk)
	aead, err := newGCM(dk)
	if err != nil {
		return nil, err
	}
	if len(ct) < aead.NonceSize() {
		return nil, bad
	}
	secret, err := aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], []byte(sealedIdentityAAD))
	if err != nil {
		return nil, bad
	}
	defer clear(secret)
	id, err := age.ParseX25519Identity(string(secret))
	if err != nil {
		return nil, bad
	}
	return id, nil
}

// sealedLine returns the line of b that holds the sealed identity.
func sealedLine(b []byte) (string, bool) {
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, sealedIdentityTag+" ") {
			return strings.TrimSpace(l), true
		}
	}
	return "", false
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, errors.New("migrate: identity data key is not an AES-256 key")
	}
	return cipher.NewGCM(block)
}

package vaultclient

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/cardgate/cardgate/internal/fileread"
)

// Local keyring file format and limits.
const (
	localKeyringFormat = "cardgate-local-keyring/v1"
	// LocalBackend is KeyID.Backend for the local keyring.
	LocalBackend = "local"
	// localCardKey and localFingerprintKey are the KeyID names. The
	// fingerprint key has one version in this format.
	localCardKey        = "card"
	localFingerprintKey = "fingerprint"
	localKeySize        = 32 // AES-256, HMAC-SHA256
	gcmNonceSize        = 12
	gcmTagSize          = 16
	// maxKeyringFile bounds what OpenLocalKeyring reads.
	maxKeyringFile = 1 << 20
	// fingerprintDomain is written into the MAC before the number so the
	// fingerprint key cannot be used to MAC anything else by confusion.
	fingerprintDomain = "cardgate-fingerprint/v1\x00"
)

// keyringFile is the JSON written by CreateLocalKeyring. Keys are base64
// (encoding/json's []byte form).
type keyringFile struct {
	Format  string            `json:"format"`
	Primary uint32            `json:"primary"`
	Keys    map[string][]byte `json:"keys"`     // version → AES-256 key
	HMACKey []byte            `json:"hmac_key"` // fingerprint key, separate
}

// LocalKeyring is a Keyer whose keys sit in a local file, in clear, and in
// this process's memory.
//
// It is for development only: anyone who can read the file or the
// process's memory can decrypt every card. Production uses the PKCS#11 or
// Vault Transit backends, which keep keys on separate machines. The
// configuration refuses it outside dev mode.
//
// Blobs are nonce(12) ‖ AES-256-GCM ciphertext ‖ tag(16), with the
// Binding as additional data: the same layout as the PKCS#11 backend, so
// the two share test vectors.
type LocalKeyring struct {
	mu      sync.RWMutex // guards everything below against Close
	closed  bool
	primary uint32
	aeads   map[uint32]cipher.AEAD
	hmacKey []byte
}

// CreateLocalKeyring writes a new development keyring to path with mode
// 0600: one AES-256 key (version 1, primary) and a separate HMAC key. It
// refuses to overwrite an existing file, so a keyring that already sealed
// cards cannot be lost by accident.
func CreateLocalKeyring(path string) (err error) {
	kf := keyringFile{
		Format:  localKeyringFormat,
		Primary: 1,
		Keys:    map[string][]byte{"1": make([]byte, localKeySize)},
		HMACKey: make([]byte, localKeySize),
	}
	defer clear(kf.Keys["1"])
	defer clear(kf.HMACKey)
	rand.Read(kf.Keys["1"])
	rand.Read(kf.HMACKey)
	data, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return fmt.Errorf("vaultclient: encode local keyring: %w", err)
	}
	defer clear(data)
	data = append(data, '\n')

	// O_EXCL: never overwrite, and never follow a symlink planted at path.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("vaultclient: create local keyring: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	// The umask can only narrow 0600, but set it explicitly anyway so the
	// file never depends on the environment.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("vaultclient: create local keyring: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("vaultclient: write local keyring: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("vaultclient: write local keyring: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("vaultclient: write local keyring: %w", err)
	}
	return nil
}

// OpenLocalKeyring reads a keyring written by CreateLocalKeyring. It
// refuses a file that group or others may access (the mode must be 0600
// or narrower), a file that is not a regular file, and any content that is
// not exactly the expected format.
func OpenLocalKeyring(path string) (*LocalKeyring, error) {
	data, err := readKeyringFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	k, err := parseKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("vaultclient: local keyring %s: %w", path, err)
	}
	return k, nil
}

// readKeyringFile reads path after checking that it is a regular file
// that only its owner can access. The caller zeroes the bytes.
func readKeyringFile(path string) ([]byte, error) {
	// fileread.Open refuses a FIFO or a device without blocking on it,
	// which os.Open would do until a writer came, deaf to SIGTERM.
	f, err := fileread.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vaultclient: open local keyring: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the mode checked is the mode of
	// the file read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("vaultclient: open local keyring: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("vaultclient: local keyring %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("vaultclient: local keyring %s has mode %04o; it must not be accessible to group or others (run: chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyringFile+1))
	if err != nil {
		clear(data)
		return nil, fmt.Errorf("vaultclient: read local keyring: %w", err)
	}
	if len(data) > maxKeyringFile {
		clear(data)
		return nil, fmt.Errorf("vaultclient: local keyring %s is larger than %d bytes", path, maxKeyringFile)
	}
	return data, nil
}

// RotateLocalKeyring adds version N+1 (N the highest version in the file)
// to the keyring at path and makes it primary. The file is replaced
// atomically, with mode 0600. Gateways pick the new primary up when they
// restart; records sealed under older versions still open, until
// RetireLocalKeyring removes those versions.
func RotateLocalKeyring(path string) (KeyID, error) {
	var id KeyID
	err := editKeyring(path, func(kf *keyringFile) error {
		next := uint32(0)
		for vs := range kf.Keys {
			v, _ := strconv.ParseUint(vs, 10, 32) // parseKeyring checked them
			next = max(next, uint32(v))
		}
		next++
		key := make([]byte, localKeySize)
		rand.Read(key)
		kf.Keys[strconv.FormatUint(uint64(next), 10)] = key
		kf.Primary = next
		id = KeyID{Backend: LocalBackend, Name: localCardKey, Version: next}
		return nil
	})
	return id, err
}

// RetireLocalKeyring deletes every key version below minVersion from the
// keyring at path, so records still sealed under them fail with
// ErrKeyRetired. It refuses to delete the primary, and returns the
// versions deleted. Deleting a key is irreversible.
func RetireLocalKeyring(path string, minVersion uint32) ([]uint32, error) {
	var retired []uint32
	err := editKeyring(path, func(kf *keyringFile) error {
		if minVersion > kf.Primary {
			return fmt.Errorf("refusing to retire the primary version %d", kf.Primary)
		}
		for vs, key := range kf.Keys {
			v, _ := strconv.ParseUint(vs, 10, 32)
			if uint32(v) < minVersion {
				clear(key)
				delete(kf.Keys, vs)
				retired = append(retired, uint32(v))
			}
		}
		slices.Sort(retired)
		return nil
	})
	return retired, err
}

// editKeyring reads, checks, changes and atomically replaces a keyring
// file: a new 0600 file beside it, fsynced, renamed over it.
func editKeyring(path string, edit func(*keyringFile) error) error {
	data, err := readKeyringFile(path)
	if err != nil {
		return err
	}
	defer clear(data)
	if k, err := parseKeyring(data); err != nil {
		return fmt.Errorf("vaultclient: local keyring %s: %w", path, err)
	} else {
		k.Close()
	}
	var kf keyringFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return fmt.Errorf("vaultclient: local keyring %s: not valid keyring JSON", path)
	}
	defer func() {
		clear(kf.HMACKey)
		for _, k := range kf.Keys {
			clear(k)
		}
	}()
	if err := edit(&kf); err != nil {
		return fmt.Errorf("vaultclient: local keyring %s: %w", path, err)
	}
	out, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return fmt.Errorf("vaultclient: encode local keyring: %w", err)
	}
	defer clear(out)
	out = append(out, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyring-*.tmp")
	if err != nil {
		return fmt.Errorf("vaultclient: write local keyring: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	// CreateTemp makes 0600 files; set it anyway so the mode never depends
	// on the library.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("vaultclient: write local keyring: %w", err)
	}
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return fmt.Errorf("vaultclient: write local keyring: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("vaultclient: write local keyring: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("vaultclient: write local keyring: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("vaultclient: replace local keyring: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // best effort: make the rename durable
		d.Close()
	}
	return nil
}

// parseKeyring decodes strictly and checks every key. Error messages name
// versions, never key bytes.
func parseKeyring(data []byte) (*LocalKeyring, error) {
	var kf keyringFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		// json errors can quote input; do not pass them on.
		return nil, errors.New("not valid keyring JSON")
	}
	if dec.More() {
		return nil, errors.New("trailing data after keyring JSON")
	}
	defer clear(kf.HMACKey)
	defer func() {
		for _, k := range kf.Keys {
			clear(k)
		}
	}()
	if kf.Format != localKeyringFormat {
		return nil, fmt.Errorf("format is not %q", localKeyringFormat)
	}
	if len(kf.HMACKey) != localKeySize {
		return nil, fmt.Errorf("hmac_key must be %d bytes", localKeySize)
	}
	k := &LocalKeyring{
		primary: kf.Primary,
		aeads:   make(map[uint32]cipher.AEAD, len(kf.Keys)),
		hmacKey: bytes.Clone(kf.HMACKey),
	}
	for vs, key := range kf.Keys {
		v, err := strconv.ParseUint(vs, 10, 32)
		if err != nil || v == 0 || strconv.FormatUint(v, 10) != vs {
			return nil, fmt.Errorf("key version %q is not a positive integer", vs)
		}
		if len(key) != localKeySize {
			return nil, fmt.Errorf("key version %d must be %d bytes", v, localKeySize)
		}
		if hmac.Equal(key, kf.HMACKey) {
			return nil, fmt.Errorf("key version %d equals hmac_key; they must be separate keys", v)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("key version %d: %w", v, err)
		}
		aead, err := cipher.NewGCM(block) // 12-byte nonce, 16-byte tag
		if err != nil {
			return nil, fmt.Errorf("key version %d: %w", v, err)
		}
		k.aeads[uint32(v)] = aead
	}
	if _, ok := k.aeads[k.primary]; !ok {
		return nil, fmt.Errorf("primary version %d has no key", k.primary)
	}
	return k, nil
}

var errKeyringClosed = errors.New("vaultclient: local keyring is closed")

// Encrypt seals each item under the primary version with a fresh random
// nonce.
func (k *LocalKeyring) Encrypt(ctx context.Context, items []EncryptItem) ([]Sealed, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		return nil, errKeyringClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	aead := k.aeads[k.primary]
	out := make([]Sealed, len(items))
	for i, it := range items {
		blob := make([]byte, gcmNonceSize, gcmNonceSize+len(it.Plaintext)+gcmTagSize)
		rand.Read(blob)
		blob = aead.Seal(blob, blob, it.Plaintext, it.Binding.Bytes())
		out[i] = Sealed{Key: KeyID{Backend: LocalBackend, Name: localCardKey, Version: k.primary}, Blob: blob}
	}
	return out, nil
}

// Decrypt opens each item with the version it names.
func (k *LocalKeyring) Decrypt(ctx context.Context, items []DecryptItem) ([][]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		return nil, errKeyringClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]byte, len(items))
	fail := func(err error) ([][]byte, error) {
		for _, pt := range out {
			clear(pt)
		}
		return nil, err
	}
	for i, it := range items {
		id := it.Sealed.Key
		if id.Backend != LocalBackend || id.Name != localCardKey {
			return fail(fmt.Errorf("vaultclient: local keyring has no key %s/%s: %w", id.Backend, id.Name, ErrKeyRetired))
		}
		aead, ok := k.aeads[id.Version]
		if !ok {
			return fail(fmt.Errorf("vaultclient: local keyring has no key version %d: %w", id.Version, ErrKeyRetired))
		}
		blob := it.Sealed.Blob
		if len(blob) < gcmNonceSize+gcmTagSize {
			return fail(fmt.Errorf("vaultclient: sealed %s is too short: %w", it.Binding.Field, ErrIntegrity))
		}
		pt, err := aead.Open(nil, blob[:gcmNonceSize], blob[gcmNonceSize:], it.Binding.Bytes())
		if err != nil {
			return fail(fmt.Errorf("vaultclient: open sealed %s under key version %d: %w", it.Binding.Field, id.Version, ErrIntegrity))
		}
		out[i] = pt
	}
	return out, nil
}

// Fingerprint returns HMAC-SHA256 of the number under the fingerprint key.
func (k *LocalKeyring) Fingerprint(ctx context.Context, pan []byte) ([]byte, KeyID, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		return nil, KeyID{}, errKeyringClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, KeyID{}, err
	}
	m := hmac.New(sha256.New, k.hmacKey)
	m.Write([]byte(fingerprintDomain))
	m.Write(pan)
	return m.Sum(nil), KeyID{Backend: LocalBackend, Name: localFingerprintKey, Version: 1}, nil
}

// Ping reports whether the keyring is open.
func (k *LocalKeyring) Ping(ctx context.Context) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		return errKeyringClosed
	}
	return ctx.Err()
}

// Close drops the keys. The HMAC key is zeroed; the AES keys live inside
// crypto/cipher's expanded state, which cannot be zeroed, and are dropped
// for the garbage collector.
func (k *LocalKeyring) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	clear(k.hmacKey)
	k.hmacKey = nil
	k.aeads = nil
	return nil
}

// Primary implements Keyer: the version that Encrypt uses.
func (k *LocalKeyring) Primary(ctx context.Context) (KeyID, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		return KeyID{}, errKeyringClosed
	}
	return KeyID{Backend: LocalBackend, Name: localCardKey, Version: k.primary}, ctx.Err()
}

// Rewrap implements Keyer by opening and sealing again under the primary,
// in memory.
func (k *LocalKeyring) Rewrap(ctx context.Context, items []DecryptItem) ([]Sealed, error) {
	return openAndSeal(ctx, k, items)
}

// openAndSeal rewraps for backends without a re-encrypt operation: it
// opens items and seals them again under the primary, zeroing the
// plaintexts afterwards.
func openAndSeal(ctx context.Context, k Keyer, items []DecryptItem) ([]Sealed, error) {
	pts, err := k.Decrypt(ctx, items)
	if err != nil {
		return nil, err
	}
	defer wipeAll(pts)
	enc := make([]EncryptItem, len(items))
	for i, it := range items {
		enc[i] = EncryptItem{Binding: it.Binding, Plaintext: pts[i]}
	}
	return k.Encrypt(ctx, enc)
}

func wipeAll(pts [][]byte) {
	for _, pt := range pts {
		clear(pt)
	}
}

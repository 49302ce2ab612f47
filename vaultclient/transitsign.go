package vaultclient

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// TransitNoteSigner signs signed notes (the audit log's checkpoints) with
// a Vault Transit key of type ed25519, through transit/sign: the private
// key never leaves Vault. One key version signs, pinned at construction,
// because auditors pin that version's public key; rotating the key does
// not change the signer until the configuration names the new version.
//
// Its methods are those of checkpoint.Signer. It needs read on
// transit/keys/<key> (for the public key, once) and update on
// transit/sign/<key>.
type TransitNoteSigner struct {
	t       *Transit
	name    string
	key     string
	version int
	pub     ed25519.PublicKey
	vkey    string
	hash    uint32
}

// NoteSigner returns a signer whose note key name is name, signing with
// version of the Transit key key (type ed25519). It reads the version's
// public key from Vault and derives the note verifier key from it.
func (t *Transit) NoteSigner(ctx context.Context, name, key string, version int) (*TransitNoteSigner, error) {
	if version < 1 {
		return nil, errors.New("vaultclient: transit note signer: key version must be at least 1")
	}
	resp, err := t.call(ctx, http.MethodGet, t.cfg.Mount+"/keys/"+key, nil, true)
	if err != nil {
		return nil, fmt.Errorf("vaultclient: transit read key %s: %w", key, err)
	}
	if resp.Data.Type != "ed25519" {
		return nil, fmt.Errorf("vaultclient: transit key %s is of type %q; signed notes need type ed25519", key, resp.Data.Type)
	}
	raw, ok := resp.Data.Keys[strconv.Itoa(version)]
	if !ok {
		return nil, fmt.Errorf("vaultclient: transit key %s has no version %d (or it is below min_decryption_version)", key, version)
	}
	var kv struct {
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal(raw, &kv); err != nil {
		return nil, fmt.Errorf("vaultclient: transit key %s version %d: no public key in Vault's answer", key, version)
	}
	pub, err := base64.StdEncoding.DecodeString(kv.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("vaultclient: transit key %s version %d: public key is not 32 bytes of base64", key, version)
	}
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return nil, fmt.Errorf("vaultclient: transit note signer: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("vaultclient: transit note signer: %w", err)
	}
	return &TransitNoteSigner{t: t, name: name, key: key, version: version, pub: pub, vkey: vkey, hash: v.KeyHash()}, nil
}

// Name is the note key name.
func (s *TransitNoteSigner) Name() string { return s.name }

// KeyHash is note's hash of the name and public key.
func (s *TransitNoteSigner) KeyHash() uint32 { return s.hash }

// VerifierKey is the note verifier key auditors pin.
func (s *TransitNoteSigner) VerifierKey() string { return s.vkey }

// Sign signs msg with transit/sign (pure Ed25519 over msg, as the note
// format requires: prehashed stays false). The signature is checked with
// the public key before it is returned. Signing is deterministic, so a
// retried call is harmless.
func (s *TransitNoteSigner) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	body := map[string]any{
		"input":       base64.StdEncoding.EncodeToString(msg),
		"key_version": s.version,
	}
	resp, err := s.t.call(ctx, http.MethodPost, s.t.cfg.Mount+"/sign/"+s.key, body, true)
	if err != nil {
		return nil, fmt.Errorf("vaultclient: transit sign %s: %w", s.key, err)
	}
	prefix := "vault:v" + strconv.Itoa(s.version) + ":"
	b64, ok := strings.CutPrefix(resp.Data.Signature, prefix)
	if !ok {
		return nil, fmt.Errorf("vaultclient: transit sign %s: the signature is not made by version %d", s.key, s.version)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sig) != ed25519.SignatureSize || !ed25519.Verify(s.pub, msg, sig) {
		return nil, fmt.Errorf("vaultclient: transit sign %s: the answer is not a valid Ed25519 signature by version %d", s.key, s.version)
	}
	return sig, nil
}

//go:build cgo

package vaultclient

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// PKCS11Available reports whether this build has the PKCS#11 backend. It
// needs cgo, because the vendor's module is a C library loaded with
// dlopen; a CGO_ENABLED=0 build has a stub that refuses to open.
const PKCS11Available = true

// PKCS11 is a Keyer whose keys live in an HSM, reached through the
// vendor's PKCS#11 module with crypto11. Keys are generated inside the
// token as sensitive and non-extractable, so no key bytes ever enter this
// process: AES-256-GCM and HMAC-SHA256 run in the HSM.
//
// Card keys are token objects labelled KeyLabel "-v" N, one per version;
// the fingerprint key is a generic secret labelled FingerprintLabel "-v1",
// used with CKM_SHA256_HMAC. Blobs are nonce(12) ‖ ciphertext ‖ tag(16)
// with the Binding as additional data, the local keyring's layout. The
// nonce comes from crypto/rand and is passed to the token (crypto11's
// GCMIVLength is set to 12; its default is 16).
//
// Every call is bounded by Timeout. A PKCS#11 call cannot be interrupted,
// so one that outlives its deadline is abandoned: the caller gets an
// error at once, the call finishes in the background, and its session
// stays counted against MaxSessions until then, so a hung HSM cannot
// pile up goroutines without bound. crypto11 panics on HSM errors in
// cipher.AEAD.Seal and hash.Hash.Sum, which have no error result; every
// call recovers and returns an error instead.
//
// PKCS#11 has no batch operation: opening a card and its CVC is two
// C_Decrypt calls, made one after the other under one deadline.
type PKCS11 struct {
	cfg PKCS11Config
	hsm *crypto11.Context
	sem chan struct{} // one slot per HSM call in flight, abandoned or not

	mu      sync.RWMutex // guards the fields below
	closed  bool
	primary uint32
	keys    map[uint32]cipher.AEAD // versions looked up so far
	fp      *crypto11.SecretKey
}

var errPKCS11Closed = errors.New("vaultclient: pkcs11 backend is closed")

// errHSMNoKeys means the token holds no card key version yet.
var errHSMNoKeys = errors.New("no card key on the token (run: cardgate keys init -config FILE)")

// OpenPKCS11 logs in to the token labelled cfg.TokenLabel and finds the
// keys. It fails if the token, the fingerprint key or the primary version
// is missing, or if any key it finds could leave the HSM (CKA_EXTRACTABLE
// true or CKA_SENSITIVE false).
func OpenPKCS11(ctx context.Context, cfg PKCS11Config) (*PKCS11, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &PKCS11{cfg: cfg, sem: make(chan struct{}, cfg.MaxSessions), keys: map[uint32]cipher.AEAD{}}
	if err := p.configure(ctx); err != nil {
		return nil, err
	}
	if err := p.load(ctx); err != nil {
		p.hsm.Close()
		return nil, err
	}
	return p, nil
}

// configure opens the module and logs in, within the timeout.
func (p *PKCS11) configure(ctx context.Context) error {
	cc := &crypto11.Config{
		Path:       p.cfg.Library,
		TokenLabel: p.cfg.TokenLabel,
		Pin:        p.cfg.PIN,
		// crypto11 keeps one session for itself.
		MaxSessions:     p.cfg.MaxSessions + 1,
		PoolWaitTimeout: p.cfg.Timeout,
		GCMIVLength:     gcmNonceSize,
	}
	hsm, err := hsmCall(ctx, p, "open", func() (*crypto11.Context, error) { return crypto11.Configure(cc) },
		func(c *crypto11.Context) { c.Close() })
	if err != nil {
		// crypto11's errors name the token and the PKCS#11 code, never the
		// PIN.
		return fmt.Errorf("vaultclient: pkcs11: open token %q: %w", p.cfg.TokenLabel, err)
	}
	p.hsm = hsm
	return nil
}

// load finds the fingerprint key and the card key versions and picks the
// primary.
func (p *PKCS11) load(ctx context.Context) error {
	fp, err := p.findKey(ctx, versionLabel(p.cfg.FingerprintLabel, 1))
	if err != nil {
		return err
	}
	if fp == nil {
		return fmt.Errorf("vaultclient: pkcs11: no fingerprint key %q on token %q (run: cardgate keys init -config FILE)",
			versionLabel(p.cfg.FingerprintLabel, 1), p.cfg.TokenLabel)
	}
	p.fp = fp
	versions, err := p.Versions(ctx)
	if err != nil {
		return err
	}
	primary := p.cfg.PrimaryVersion
	if primary == 0 {
		for _, v := range versions {
			if v >= p.cfg.MinVersion {
				primary = max(primary, v)
			}
		}
		if primary == 0 {
			return fmt.Errorf("vaultclient: pkcs11: token %q: %w", p.cfg.TokenLabel, errHSMNoKeys)
		}
	}
	if _, err := p.aead(ctx, primary); err != nil {
		return fmt.Errorf("vaultclient: pkcs11: primary version %d: %w", primary, err)
	}
	p.primary = primary
	return nil
}

// hsmResult carries one bounded call's outcome.
type hsmResult[T any] struct {
	v   T
	err error
}

// hsmCall runs f within ctx and the backend's timeout, holding one of the
// MaxSessions slots until f returns, and turns a panic in f into an error.
// If the deadline passes first, hsmCall returns at once and discard
// receives f's result when it arrives, so that a late plaintext is
// zeroed and a late context closed.
func hsmCall[T any](ctx context.Context, p *PKCS11, op string, f func() (T, error), discard func(T)) (T, error) {
	var zero T
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return zero, fmt.Errorf("%s: waiting for a free hsm session: %w", op, ctx.Err())
	}
	done := make(chan hsmResult[T], 1)
	go func() {
		defer func() { <-p.sem }()
		var r hsmResult[T]
		defer func() {
			if x := recover(); x != nil {
				// crypto11 panics with the PKCS#11 error, which names a
				// return code, never data.
				r = hsmResult[T]{err: fmt.Errorf("%s: hsm call failed: %v", op, x)}
			}
			done <- r
		}()
		r.v, r.err = f()
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		if discard != nil {
			go func() {
				if r := <-done; r.err == nil {
					discard(r.v)
				}
			}()
		}
		return zero, fmt.Errorf("%s: %w", op, ctx.Err())
	}
}

// findKey returns the one secret key labelled label, or nil if there is
// none. It refuses a key that is extractable or not sensitive, and a
// label held by two objects.
func (p *PKCS11) findKey(ctx context.Context, label string) (*crypto11.SecretKey, error) {
	return hsmCall(ctx, p, "find key "+label, func() (*crypto11.SecretKey, error) {
		keys, err := p.hsm.FindKeys(nil, []byte(label))
		if err != nil {
			return nil, err
		}
		switch len(keys) {
		case 0:
			return nil, nil
		case 1:
		default:
			return nil, fmt.Errorf("%d objects are labelled %q; exactly one must be", len(keys), label)
		}
		if err := p.checkNonExtractable(keys[0], label); err != nil {
			return nil, err
		}
		return keys[0], nil
	}, nil)
}

// checkNonExtractable fails closed on a key that could leave the HSM: one
// imported in clear, or generated by a tool with weaker defaults.
func (p *PKCS11) checkNonExtractable(k *crypto11.SecretKey, label string) error {
	attrs, err := p.hsm.GetAttributes(k, []crypto11.AttributeType{crypto11.CkaSensitive, crypto11.CkaExtractable})
	if err != nil {
		return fmt.Errorf("read attributes of %q: %w", label, err)
	}
	sensitive, extractable := attrs[crypto11.CkaSensitive], attrs[crypto11.CkaExtractable]
	if sensitive == nil || !bytes.Equal(sensitive.Value, []byte{1}) || extractable == nil || !bytes.Equal(extractable.Value, []byte{0}) {
		return fmt.Errorf("key %q is extractable or not sensitive; cardgate only uses keys that cannot leave the HSM", label)
	}
	return nil
}

// Versions lists the card key versions on the token, in order, including
// retired ones that have not been destroyed.
func (p *PKCS11) Versions(ctx context.Context) ([]uint32, error) {
	vs, err := hsmCall(ctx, p, "list keys", func() ([]uint32, error) {
		attrs := crypto11.NewAttributeSet()
		if err := attrs.Set(crypto11.CkaKeyType, pkcs11.CKK_AES); err != nil {
			return nil, err
		}
		keys, err := p.hsm.FindKeysWithAttributes(attrs)
		if err != nil {
			return nil, err
		}
		var vs []uint32
		for _, k := range keys {
			a, err := p.hsm.GetAttribute(k, crypto11.CkaLabel)
			if err != nil {
				return nil, err
			}
			if v, ok := parseVersionLabel(p.cfg.KeyLabel, string(a.Value)); ok {
				vs = append(vs, v)
			}
		}
		slices.Sort(vs)
		return vs, nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("vaultclient: pkcs11: %w", err)
	}
	return vs, nil
}

// aead returns the AEAD of version v, looking the key up on first use.
// A version below MinVersion, or not on the token, is ErrKeyRetired.
func (p *PKCS11) aead(ctx context.Context, v uint32) (cipher.AEAD, error) {
	if v < p.cfg.MinVersion {
		return nil, fmt.Errorf("key version %d is below the minimum version %d: %w", v, p.cfg.MinVersion, ErrKeyRetired)
	}
	p.mu.RLock()
	a, ok := p.keys[v]
	p.mu.RUnlock()
	if ok {
		return a, nil
	}
	label := versionLabel(p.cfg.KeyLabel, v)
	k, err := p.findKey(ctx, label)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, fmt.Errorf("no key %q on the token: %w", label, ErrKeyRetired)
	}
	a, err = k.NewGCM()
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", label, err)
	}
	if a.NonceSize() != gcmNonceSize || a.Overhead() != gcmTagSize {
		return nil, fmt.Errorf("key %q: gcm nonce %d and tag %d bytes, want %d and %d", label, a.NonceSize(), a.Overhead(), gcmNonceSize, gcmTagSize)
	}
	p.mu.Lock()
	p.keys[v] = a
	p.mu.Unlock()
	return a, nil
}

func (p *PKCS11) keyID(v uint32) KeyID {
	return KeyID{Backend: PKCS11Backend, Name: p.cfg.KeyLabel, Version: v}
}

// state returns the primary version, or an error once closed.
func (p *PKCS11) state() (uint32, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return 0, errPKCS11Closed
	}
	return p.primary, nil
}

// Encrypt implements Keyer: each item is sealed in the HSM under the
// primary version with a fresh nonce from crypto/rand.
func (p *PKCS11) Encrypt(ctx context.Context, items []EncryptItem) ([]Sealed, error) {
	primary, err := p.state()
	if err != nil {
		return nil, err
	}
	a, err := p.aead(ctx, primary)
	if err != nil {
		return nil, fmt.Errorf("vaultclient: pkcs11 encrypt: %w", err)
	}
	out, err := hsmCall(ctx, p, "encrypt", func() ([]Sealed, error) {
		out := make([]Sealed, len(items))
		for i, it := range items {
			blob := make([]byte, gcmNonceSize, gcmNonceSize+len(it.Plaintext)+gcmTagSize)
			rand.Read(blob)
			// Seal panics on an HSM error; hsmCall recovers.
			blob = a.Seal(blob, blob, it.Plaintext, it.Binding.Bytes())
			if len(blob) != gcmNonceSize+len(it.Plaintext)+gcmTagSize {
				return nil, fmt.Errorf("hsm returned %d bytes for a %d-byte plaintext", len(blob)-gcmNonceSize, len(it.Plaintext))
			}
			out[i] = Sealed{Key: p.keyID(primary), Blob: blob}
		}
		return out, nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("vaultclient: pkcs11 %w", err)
	}
	return out, nil
}

// Decrypt implements Keyer.
func (p *PKCS11) Decrypt(ctx context.Context, items []DecryptItem) ([][]byte, error) {
	if _, err := p.state(); err != nil {
		return nil, err
	}
	aeads := make([]cipher.AEAD, len(items))
	for i, it := range items {
		id := it.Sealed.Key
		if id.Backend != PKCS11Backend || id.Name != p.cfg.KeyLabel {
			return nil, fmt.Errorf("vaultclient: pkcs11 decrypt: this token has no key %s/%s: %w", id.Backend, id.Name, ErrKeyRetired)
		}
		a, err := p.aead(ctx, id.Version)
		if err != nil {
			return nil, fmt.Errorf("vaultclient: pkcs11 decrypt %s: %w", it.Binding.Field, err)
		}
		if len(it.Sealed.Blob) < gcmNonceSize+gcmTagSize {
			return nil, fmt.Errorf("vaultclient: pkcs11 decrypt: sealed %s is too short: %w", it.Binding.Field, ErrIntegrity)
		}
		aeads[i] = a
	}
	pts, err := hsmCall(ctx, p, "decrypt", func() ([][]byte, error) {
		out := make([][]byte, len(items))
		for i, it := range items {
			blob := it.Sealed.Blob
			pt, err := aeads[i].Open(nil, blob[:gcmNonceSize], blob[gcmNonceSize:], it.Binding.Bytes())
			if err != nil {
				wipeAll(out)
				return nil, p.classifyOpen(aeads[i], it, err)
			}
			out[i] = pt
		}
		return out, nil
	}, wipeAll)
	if err != nil {
		return nil, fmt.Errorf("vaultclient: pkcs11 %w", err)
	}
	return pts, nil
}

// classifyOpen tells a blob that does not authenticate from an HSM that
// does not work. Tokens report a failed tag check with codes that differ
// between vendors (SoftHSM2 says CKR_GENERAL_ERROR), so the code is not
// trusted: the same key seals and opens a canary, and only if that works
// is the blob blamed. This costs HSM calls on the failure path only.
func (p *PKCS11) classifyOpen(a cipher.AEAD, it DecryptItem, openErr error) (err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("decrypt %s: hsm call failed: %v", it.Binding.Field, x)
		}
	}()
	var canary [16]byte
	nonce := make([]byte, gcmNonceSize)
	rand.Read(canary[:])
	rand.Read(nonce)
	ad := []byte("cardgate-hsm-canary")
	ct := a.Seal(nil, nonce, canary[:], ad)
	if back, cerr := a.Open(nil, nonce, ct, ad); cerr != nil || !bytes.Equal(back, canary[:]) {
		return fmt.Errorf("decrypt %s under key version %d: %w", it.Binding.Field, it.Sealed.Key.Version, openErr)
	}
	return fmt.Errorf("decrypt %s under key version %d: %w", it.Binding.Field, it.Sealed.Key.Version, ErrIntegrity)
}

// Rewrap implements Keyer by opening and sealing again under the primary.
// PKCS#11 has no re-encrypt operation, so the plaintext passes through
// this process's memory for the moment between the two calls (and is
// zeroed); `cardgate keys rewrap` runs it in an operator's process, not in
// the gateway.
func (p *PKCS11) Rewrap(ctx context.Context, items []DecryptItem) ([]Sealed, error) {
	return openAndSeal(ctx, p, items)
}

// Fingerprint implements Keyer with CKM_SHA256_HMAC in the HSM, under the
// fingerprint key, over the same bytes as the local keyring's.
func (p *PKCS11) Fingerprint(ctx context.Context, pan []byte) ([]byte, KeyID, error) {
	p.mu.RLock()
	closed, fp := p.closed, p.fp
	p.mu.RUnlock()
	if closed {
		return nil, KeyID{}, errPKCS11Closed
	}
	mac, err := hsmCall(ctx, p, "fingerprint", func() ([]byte, error) {
		h, err := fp.NewHMAC(pkcs11.CKM_SHA256_HMAC, 0)
		if err != nil {
			return nil, err
		}
		if _, err := h.Write([]byte(fingerprintDomain)); err != nil {
			h.Sum(nil) // returns the session to the pool
			return nil, err
		}
		if _, err := h.Write(pan); err != nil {
			h.Sum(nil)
			return nil, err
		}
		return h.Sum(nil), nil // panics on an HSM error; hsmCall recovers
	}, nil)
	if err != nil {
		return nil, KeyID{}, fmt.Errorf("vaultclient: pkcs11 %w", err)
	}
	if len(mac) != 32 {
		return nil, KeyID{}, fmt.Errorf("vaultclient: pkcs11 fingerprint: hsm returned %d bytes, want 32", len(mac))
	}
	return mac, KeyID{Backend: PKCS11Backend, Name: p.cfg.FingerprintLabel, Version: 1}, nil
}

// Primary implements Keyer.
func (p *PKCS11) Primary(ctx context.Context) (KeyID, error) {
	v, err := p.state()
	if err != nil {
		return KeyID{}, err
	}
	return p.keyID(v), ctx.Err()
}

// Ping implements Keyer: it reads one attribute of the fingerprint key,
// one round trip that needs a logged-in session.
func (p *PKCS11) Ping(ctx context.Context) error {
	p.mu.RLock()
	closed, fp := p.closed, p.fp
	p.mu.RUnlock()
	if closed {
		return errPKCS11Closed
	}
	_, err := hsmCall(ctx, p, "ping", func() (*crypto11.Attribute, error) {
		return p.hsm.GetAttribute(fp, crypto11.CkaLabel)
	}, nil)
	if err != nil {
		return fmt.Errorf("vaultclient: pkcs11 %w", err)
	}
	return nil
}

// Rotate generates version N+1, where N is the highest version on the
// token, and returns it. With PrimaryVersion 0 it becomes this backend's
// primary at once, and every gateway's as it restarts.
func (p *PKCS11) Rotate(ctx context.Context) (KeyID, error) {
	if _, err := p.state(); err != nil {
		return KeyID{}, err
	}
	vs, err := p.Versions(ctx)
	if err != nil {
		return KeyID{}, err
	}
	next := uint32(1)
	if len(vs) > 0 {
		next = vs[len(vs)-1] + 1
	}
	if err := p.generate(ctx, versionLabel(p.cfg.KeyLabel, next), crypto11.CipherAES); err != nil {
		return KeyID{}, err
	}
	if p.cfg.PrimaryVersion == 0 {
		if _, err := p.aead(ctx, next); err != nil {
			return KeyID{}, fmt.Errorf("vaultclient: pkcs11: new version %d: %w", next, err)
		}
		p.mu.Lock()
		p.primary = next
		p.mu.Unlock()
	}
	return p.keyID(next), nil
}

// generate makes a 256-bit token key: sensitive, non-extractable, private
// (visible only after login), and usable for nothing but its purpose (no
// wrap, unwrap or derive).
func (p *PKCS11) generate(ctx context.Context, label string, c *crypto11.SymmetricCipher) error {
	_, err := hsmCall(ctx, p, "generate "+label, func() (*crypto11.SecretKey, error) {
		if existing, err := p.hsm.FindKeys(nil, []byte(label)); err != nil {
			return nil, err
		} else if len(existing) > 0 {
			return nil, fmt.Errorf("a key labelled %q exists already", label)
		}
		attrs, err := crypto11.NewAttributeSetWithIDAndLabel([]byte(label), []byte(label))
		if err != nil {
			return nil, err
		}
		for t, v := range map[crypto11.AttributeType]bool{
			crypto11.CkaPrivate: true, crypto11.CkaSensitive: true, crypto11.CkaExtractable: false,
			crypto11.CkaWrap: false, crypto11.CkaUnwrap: false, crypto11.CkaDerive: false,
		} {
			if err := attrs.Set(t, v); err != nil {
				return nil, err
			}
		}
		return p.hsm.GenerateSecretKeyWithAttributes(attrs, 256, c)
	}, nil)
	if err != nil {
		return fmt.Errorf("vaultclient: pkcs11 %w", err)
	}
	return nil
}

// DestroyBelow destroys every card key version below v on the token, so
// that records still sealed under them can never be opened again. It
// refuses to destroy the primary. It is irreversible; `cardgate keys
// retire` runs it only after rewrap has left no record under those
// versions.
func (p *PKCS11) DestroyBelow(ctx context.Context, v uint32) ([]uint32, error) {
	primary, err := p.state()
	if err != nil {
		return nil, err
	}
	if v > primary {
		return nil, fmt.Errorf("vaultclient: pkcs11: refusing to destroy the primary version %d", primary)
	}
	vs, err := p.Versions(ctx)
	if err != nil {
		return nil, err
	}
	var destroyed []uint32
	for _, old := range vs {
		if old >= v {
			break
		}
		label := versionLabel(p.cfg.KeyLabel, old)
		_, err := hsmCall(ctx, p, "destroy "+label, func() (struct{}, error) {
			keys, err := p.hsm.FindKeys(nil, []byte(label))
			if err != nil {
				return struct{}{}, err
			}
			for _, k := range keys {
				if err := k.Delete(); err != nil {
					return struct{}{}, err
				}
			}
			return struct{}{}, nil
		}, nil)
		if err != nil {
			return destroyed, fmt.Errorf("vaultclient: pkcs11 %w", err)
		}
		p.mu.Lock()
		delete(p.keys, old)
		p.mu.Unlock()
		destroyed = append(destroyed, old)
	}
	return destroyed, nil
}

// Close logs out and releases the token. It waits for calls still
// running in the HSM, including abandoned ones.
func (p *PKCS11) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.keys = nil
	p.mu.Unlock()
	if err := p.hsm.Close(); err != nil {
		return fmt.Errorf("vaultclient: pkcs11 close: %w", err)
	}
	return nil
}

// InitPKCS11 creates what a new token needs: card key version 1 if the
// token has no card key version, and the fingerprint key if it is
// missing. It is idempotent, and returns the labels it created.
func InitPKCS11(ctx context.Context, cfg PKCS11Config) ([]string, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &PKCS11{cfg: cfg, sem: make(chan struct{}, cfg.MaxSessions), keys: map[uint32]cipher.AEAD{}}
	if err := p.configure(ctx); err != nil {
		return nil, err
	}
	defer p.Close()
	var created []string
	fpLabel := versionLabel(cfg.FingerprintLabel, 1)
	fp, err := p.findKey(ctx, fpLabel)
	if err != nil {
		return nil, fmt.Errorf("vaultclient: pkcs11: %w", err)
	}
	if fp == nil {
		// CipherGeneric: CKK_GENERIC_SECRET made by
		// CKM_GENERIC_SECRET_KEY_GEN, which every token has and which
		// CKM_SHA256_HMAC accepts; crypto11's CipherHMACSHA256 tries an
		// nShield-only mechanism first and SoftHSM2 rejects it.
		if err := p.generate(ctx, fpLabel, crypto11.CipherGeneric); err != nil {
			return created, err
		}
		created = append(created, fpLabel)
	}
	vs, err := p.Versions(ctx)
	if err != nil {
		return created, err
	}
	if len(vs) == 0 {
		label := versionLabel(cfg.KeyLabel, 1)
		if err := p.generate(ctx, label, crypto11.CipherAES); err != nil {
			return created, err
		}
		created = append(created, label)
	}
	return created, nil
}

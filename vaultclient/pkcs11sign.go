//go:build cgo

package vaultclient

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/miekg/pkcs11"
	"golang.org/x/mod/sumdb/note"
)

// PKCS#11 v3.0 names not in miekg/pkcs11 v1.1.2.
const (
	ckkECEdwards           = 0x40
	ckmECEdwardsKeyPairGen = 0x1055
	ckmEdDSA               = 0x1057
)

// ed25519OID is CKA_EC_PARAMS for Ed25519: the DER OID 1.3.101.112
// (RFC 8410), which SoftHSM2 and PKCS#11 v3.0 accept.
var ed25519OID = []byte{0x06, 0x03, 0x2b, 0x65, 0x70}

// PKCS11NoteSigner signs signed notes (the audit log's checkpoints) with
// an Ed25519 key pair on a PKCS#11 token (CKM_EDDSA, pure Ed25519, as the
// note format requires). The private key is sensitive and non-extractable:
// it never leaves the token. It opens its own session, apart from the card
// backend's, and holds it until Close.
//
// Its methods are those of checkpoint.Signer.
type PKCS11NoteSigner struct {
	name, label string
	timeout     time.Duration
	pub         ed25519.PublicKey
	vkey        string
	hash        uint32

	mu      sync.Mutex // one call on the session at a time
	ctx     *pkcs11.Ctx
	session pkcs11.SessionHandle
	key     pkcs11.ObjectHandle
	ownInit bool // this signer initialized the module (and finalizes it)
}

// OpenPKCS11NoteSigner logs in to cfg's token (Library, TokenLabel, PIN)
// and finds the Ed25519 key pair labelled label: a private key that can
// sign and is sensitive and not extractable, and its public key, from
// which the note verifier key for name is derived.
func OpenPKCS11NoteSigner(ctx context.Context, cfg PKCS11Config, name, label string) (*PKCS11NoteSigner, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &PKCS11NoteSigner{name: name, label: label, timeout: cfg.Timeout}
	if err := s.open(cfg); err != nil {
		s.Close()
		return nil, fmt.Errorf("vaultclient: pkcs11 note signer %s: %w", label, err)
	}
	vkey, err := note.NewEd25519VerifierKey(name, s.pub)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("vaultclient: pkcs11 note signer: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("vaultclient: pkcs11 note signer: %w", err)
	}
	s.vkey, s.hash = vkey, v.KeyHash()
	return s, nil
}

func (s *PKCS11NoteSigner) open(cfg PKCS11Config) error {
	p := pkcs11.New(cfg.Library)
	if p == nil {
		return errors.New("cannot load the PKCS#11 module")
	}
	s.ctx = p
	switch err := p.Initialize(); {
	case err == nil:
		s.ownInit = true
	case errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)):
		// The card backend (crypto11) loaded the same module first.
	default:
		return fmt.Errorf("initialize: %w", err)
	}
	slot, err := findTokenSlot(p, cfg.TokenLabel)
	if err != nil {
		return err
	}
	if s.session, err = p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION); err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	if err := p.Login(s.session, pkcs11.CKU_USER, cfg.PIN); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
		return fmt.Errorf("login: %w", err)
	}
	priv, err := findOne(p, s.session, pkcs11.CKO_PRIVATE_KEY, s.label)
	if err != nil {
		return err
	}
	attrs, err := p.GetAttributeValue(s.session, priv, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, nil),
	})
	if err != nil {
		return fmt.Errorf("read the private key's attributes: %w", err)
	}
	if !isULong(attrs[0].Value, ckkECEdwards) {
		return errors.New("the private key is not an Edwards-curve (Ed25519) key")
	}
	if !isTrue(attrs[1].Value) || isTrue(attrs[2].Value) || !isTrue(attrs[3].Value) {
		return errors.New("the private key must be sensitive, not extractable, and able to sign")
	}
	s.key = priv
	pubObj, err := findOne(p, s.session, pkcs11.CKO_PUBLIC_KEY, s.label)
	if err != nil {
		return err
	}
	pa, err := p.GetAttributeValue(s.session, pubObj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return fmt.Errorf("read the public key: %w", err)
	}
	pt := pa[0].Value
	switch {
	case len(pt) == 2+ed25519.PublicKeySize && pt[0] == 0x04 && pt[1] == ed25519.PublicKeySize:
		pt = pt[2:] // DER OCTET STRING, as PKCS#11 v3.0 specifies
	case len(pt) == ed25519.PublicKeySize:
	default:
		return errors.New("the public key's CKA_EC_POINT is not an Ed25519 point")
	}
	s.pub = ed25519.PublicKey(append([]byte(nil), pt...))
	return nil
}

func findTokenSlot(p *pkcs11.Ctx, label string) (uint, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("list slots: %w", err)
	}
	for _, sl := range slots {
		if ti, err := p.GetTokenInfo(sl); err == nil && ti.Label == label {
			return sl, nil
		}
	}
	return 0, fmt.Errorf("no token labelled %q", label)
}

func findOne(p *pkcs11.Ctx, sh pkcs11.SessionHandle, class uint, label string) (pkcs11.ObjectHandle, error) {
	if err := p.FindObjectsInit(sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}); err != nil {
		return 0, fmt.Errorf("find objects: %w", err)
	}
	objs, _, err := p.FindObjects(sh, 2)
	_ = p.FindObjectsFinal(sh)
	if err != nil {
		return 0, fmt.Errorf("find objects: %w", err)
	}
	what := "private"
	if class == pkcs11.CKO_PUBLIC_KEY {
		what = "public"
	}
	switch len(objs) {
	case 0:
		return 0, fmt.Errorf("no %s key labelled %q on the token", what, label)
	case 1:
		return objs[0], nil
	}
	return 0, fmt.Errorf("more than one %s key labelled %q on the token", what, label)
}

func isTrue(b []byte) bool { return len(b) == 1 && b[0] != 0 }

// isULong reports whether b, a CK_ULONG in the platform's byte order, is v.
func isULong(b []byte, v uint) bool {
	switch len(b) {
	case 8:
		return binary.NativeEndian.Uint64(b) == uint64(v)
	case 4:
		return binary.NativeEndian.Uint32(b) == uint32(v)
	}
	return false
}

// Name is the note key name.
func (s *PKCS11NoteSigner) Name() string { return s.name }

// KeyHash is note's hash of the name and public key.
func (s *PKCS11NoteSigner) KeyHash() uint32 { return s.hash }

// VerifierKey is the note verifier key auditors pin.
func (s *PKCS11NoteSigner) VerifierKey() string { return s.vkey }

// Sign signs msg on the token with CKM_EDDSA and checks the signature
// with the public key before returning it. A PKCS#11 call cannot be
// interrupted: one that outlives ctx (or the configured timeout) is
// abandoned and finishes in the background, holding the session.
func (s *PKCS11NoteSigner) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	type result struct {
		sig []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.ctx == nil {
			done <- result{err: errors.New("closed")}
			return
		}
		if err := s.ctx.SignInit(s.session, []*pkcs11.Mechanism{pkcs11.NewMechanism(ckmEdDSA, nil)}, s.key); err != nil {
			done <- result{err: err}
			return
		}
		sig, err := s.ctx.Sign(s.session, msg)
		done <- result{sig, err}
	}()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("vaultclient: pkcs11 sign %s: %w", s.label, ctx.Err())
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("vaultclient: pkcs11 sign %s: %w", s.label, r.err)
		}
		if len(r.sig) != ed25519.SignatureSize || !ed25519.Verify(s.pub, msg, r.sig) {
			return nil, fmt.Errorf("vaultclient: pkcs11 sign %s: the token's answer is not a valid Ed25519 signature", s.label)
		}
		return r.sig, nil
	}
}

// Close logs out and closes the session (and finalizes the module if this
// signer initialized it).
func (s *PKCS11NoteSigner) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		return nil
	}
	if s.session != 0 {
		_ = s.ctx.CloseSession(s.session)
	}
	if s.ownInit {
		_ = s.ctx.Finalize()
	}
	s.ctx.Destroy()
	s.ctx = nil
	return nil
}

// GeneratePKCS11NoteKey creates an Ed25519 key pair labelled label on
// cfg's token: the private key sensitive, not extractable, for signing
// only. It refuses if a key with the label exists.
func GeneratePKCS11NoteKey(ctx context.Context, cfg PKCS11Config, label string) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	s := &PKCS11NoteSigner{label: label}
	defer s.Close()
	p := pkcs11.New(cfg.Library)
	if p == nil {
		return errors.New("vaultclient: pkcs11: cannot load the PKCS#11 module")
	}
	s.ctx = p
	switch err := p.Initialize(); {
	case err == nil:
		s.ownInit = true
	case errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)):
	default:
		return fmt.Errorf("vaultclient: pkcs11: initialize: %w", err)
	}
	slot, err := findTokenSlot(p, cfg.TokenLabel)
	if err != nil {
		return fmt.Errorf("vaultclient: pkcs11: %w", err)
	}
	if s.session, err = p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION); err != nil {
		return fmt.Errorf("vaultclient: pkcs11: open session: %w", err)
	}
	if err := p.Login(s.session, pkcs11.CKU_USER, cfg.PIN); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
		return fmt.Errorf("vaultclient: pkcs11: login: %w", err)
	}
	if _, err := findOne(p, s.session, pkcs11.CKO_PRIVATE_KEY, label); err == nil {
		return fmt.Errorf("vaultclient: pkcs11: a key labelled %q exists already", label)
	}
	_, _, err = p.GenerateKeyPair(s.session,
		[]*pkcs11.Mechanism{pkcs11.NewMechanism(ckmECEdwardsKeyPairGen, nil)},
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, ed25519OID),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		},
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		})
	if err != nil {
		return fmt.Errorf("vaultclient: pkcs11: generate an Ed25519 key pair (CKM_EC_EDWARDS_KEY_PAIR_GEN): %w", err)
	}
	return nil
}

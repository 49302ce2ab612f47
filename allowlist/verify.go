package allowlist

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"
)

// Policy defaults. A zero field in Policy means the default named here,
// never "no limit".
const (
	// DefaultMaxValidity is the longest expires-issued_at accepted when
	// Policy.MaxValidity is zero. It forces a re-review every quarter.
	DefaultMaxValidity = 90 * 24 * time.Hour
	// DefaultClockSkew is how far in the future issued_at may be when
	// Policy.ClockSkew is zero.
	DefaultClockSkew = 5 * time.Minute
	// MaxSignatures caps the detached signatures considered for one file.
	MaxSignatures = 32
)

// Allowlist is a document whose signatures met the threshold and whose
// policy checks passed. Only Verify builds one.
type Allowlist struct {
	Doc        Document
	Raw        []byte // the exact signed bytes
	SHA256     string // hex sha256 of Raw
	Signatures []SignatureResult

	now func() time.Time // from the Policy; used by Match when Query.Now is zero
}

// Signature statuses reported in SignatureResult.Status. Only StatusValid
// counts toward the threshold.
const (
	StatusValid        = "valid"         // verified and counted
	StatusInvalid      = "invalid"       // the signature does not verify over these bytes
	StatusUnknownKey   = "unknown_key"   // the key is not in allowed_signers
	StatusNotPermitted = "not_permitted" // listed, but namespaces=/valid-after/valid-before exclude it
	StatusWrongNS      = "wrong_namespace"
	StatusRefusedKey   = "refused"     // key type, hash, format, user presence or encoding refused
	StatusDuplicate    = "duplicate"   // the same key already signed; counts once
	StatusSameSigner   = "same_signer" // another key of the same principal group already counted
	StatusMalformed    = "malformed"   // not an armored SSHSIG
)

// SignatureResult reports one detached signature.
type SignatureResult struct {
	File        string // where it came from, for reports
	Principal   string // from allowed_signers (comma-joined); empty when unknown
	Fingerprint string // SHA256:… of the signing key
	Status      string // one of the Status constants
	Detail      string
}

// Policy holds what the gateway pins: who may sign, how many must, and the
// scope a document must carry.
type Policy struct {
	AllowedSigners []byte           // OpenSSH allowed_signers file contents
	Threshold      int              // M; at least 1 and at most the number of signer groups
	Environment    string           // must equal Document.Environment; empty is refused
	MaxValidity    time.Duration    // expires-issued_at may not exceed it; zero means DefaultMaxValidity
	ClockSkew      time.Duration    // issued_at may be this far ahead of Now; zero means DefaultClockSkew
	Now            func() time.Time // nil means time.Now
}

func (p Policy) now() func() time.Time {
	if p.Now == nil {
		return time.Now
	}
	return p.Now
}

// Problem says why Verify or a Holder refused a document. Problems are
// stable strings for logs, metrics and the CLI.
type Problem string

// Problems.
const (
	ProblemBadPolicy       Problem = "bad_policy" // the gateway's own Policy is unusable
	ProblemMalformed       Problem = "malformed"
	ProblemThreshold       Problem = "threshold_not_met"
	ProblemEnvironment     Problem = "wrong_environment"
	ProblemExpired         Problem = "expired"
	ProblemNotYetValid     Problem = "not_yet_valid"
	ProblemValidityTooLong Problem = "validity_too_long"
	ProblemRollback        Problem = "rollback"
	ProblemVersionReused   Problem = "version_reused"
	ProblemChainBroken     Problem = "prev_sha256_mismatch"
	ProblemState           Problem = "state_unavailable"
	ProblemRead            Problem = "read_failed"
	ProblemUnsupported     Problem = "unsupported_by_gateway" // HolderOptions.Check refused it
)

// VerifyError is every refusal from Verify and Holder.Load. Branch on it
// with errors.Is against the Err… values below, or errors.As for details.
type VerifyError struct {
	Problem    Problem
	Detail     string
	Signatures []SignatureResult // when signatures were checked
	Err        error             // underlying cause, if any
}

func (e *VerifyError) Error() string {
	s := "allowlist: " + string(e.Problem)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *VerifyError) Unwrap() error { return e.Err }

// Is matches any *VerifyError with the same Problem, so that
// errors.Is(err, allowlist.ErrRollback) works.
func (e *VerifyError) Is(target error) bool {
	t, ok := target.(*VerifyError)
	return ok && t.Problem == e.Problem && t.Detail == "" && t.Err == nil
}

// Sentinels for errors.Is.
var (
	ErrBadPolicy        = &VerifyError{Problem: ProblemBadPolicy}
	ErrThreshold        = &VerifyError{Problem: ProblemThreshold}
	ErrEnvironment      = &VerifyError{Problem: ProblemEnvironment}
	ErrExpired          = &VerifyError{Problem: ProblemExpired}
	ErrNotYetValid      = &VerifyError{Problem: ProblemNotYetValid}
	ErrValidityTooLong  = &VerifyError{Problem: ProblemValidityTooLong}
	ErrRollback         = &VerifyError{Problem: ProblemRollback}
	ErrVersionReused    = &VerifyError{Problem: ProblemVersionReused}
	ErrChainBroken      = &VerifyError{Problem: ProblemChainBroken}
	ErrStateUnavailable = &VerifyError{Problem: ProblemState}
	ErrUnsupported      = &VerifyError{Problem: ProblemUnsupported}
)

func refuse(p Problem, err error, format string, args ...any) *VerifyError {
	return &VerifyError{Problem: p, Detail: fmt.Sprintf(format, args...), Err: err}
}

// Signature is one armored SSHSIG file.
type Signature struct {
	Name  string
	Armor []byte
}

// Verify checks sigs over raw against p and only then parses raw. It
// enforces, in order: the policy is usable; at least Threshold distinct
// signer groups made valid signatures over exactly raw; raw parses
// strictly; environment; not yet valid, expired and maximum validity.
// Rollback needs state and is enforced by Holder (see CheckSuccession).
// Every refusal is a *VerifyError.
func Verify(raw []byte, sigs []Signature, p Policy) (*Allowlist, error) {
	signers, err := ParseAllowedSigners(p.AllowedSigners)
	if err != nil {
		return nil, refuse(ProblemBadPolicy, err, "allowed_signers")
	}
	switch {
	case p.Threshold < 1:
		return nil, refuse(ProblemBadPolicy, nil, "threshold %d: must be at least 1", p.Threshold)
	case p.Threshold > signers.Groups():
		return nil, refuse(ProblemBadPolicy, nil, "threshold %d can never be met: allowed_signers lists %d independent signers", p.Threshold, signers.Groups())
	case p.Environment == "":
		return nil, refuse(ProblemBadPolicy, nil, "no environment configured")
	case p.MaxValidity < 0 || p.ClockSkew < 0:
		return nil, refuse(ProblemBadPolicy, nil, "negative max validity or clock skew")
	}
	if len(raw) > MaxDocumentBytes {
		return nil, refuse(ProblemMalformed, nil, "document is %d bytes, more than %d", len(raw), MaxDocumentBytes)
	}
	if len(sigs) > MaxSignatures {
		return nil, refuse(ProblemMalformed, nil, "%d signatures, more than %d", len(sigs), MaxSignatures)
	}
	now := p.now()()

	results, counted := checkSignatures(raw, sigs, signers, now)
	if counted < p.Threshold {
		return nil, &VerifyError{Problem: ProblemThreshold, Signatures: results,
			Detail: fmt.Sprintf("%d of %d required signers", counted, p.Threshold)}
	}

	doc, err := ParseUnverified(raw)
	if err != nil {
		return nil, &VerifyError{Problem: ProblemMalformed, Signatures: results, Err: err}
	}
	if err := checkFreeze(doc, p, now); err != nil {
		err.Signatures = results
		return nil, err
	}
	return &Allowlist{
		Doc:        *doc,
		Raw:        bytes.Clone(raw),
		SHA256:     SHA256Hex(raw),
		Signatures: results,
		now:        p.now(),
	}, nil
}

// checkFreeze applies the scope and time rules to a parsed document.
func checkFreeze(doc *Document, p Policy, now time.Time) *VerifyError {
	maxValidity, skew := p.MaxValidity, p.ClockSkew
	if maxValidity == 0 {
		maxValidity = DefaultMaxValidity
	}
	if skew == 0 {
		skew = DefaultClockSkew
	}
	switch {
	case doc.Environment != p.Environment:
		return refuse(ProblemEnvironment, nil, "document is for %q, this gateway is %q", doc.Environment, p.Environment)
	case doc.IssuedAt.After(now.Add(skew)):
		return refuse(ProblemNotYetValid, nil, "issued_at %s is in the future", doc.IssuedAt.Format(time.RFC3339))
	case !now.Before(doc.Expires):
		return refuse(ProblemExpired, nil, "expired at %s", doc.Expires.Format(time.RFC3339))
	case doc.Expires.Sub(doc.IssuedAt) > maxValidity:
		return refuse(ProblemValidityTooLong, nil, "expires-issued_at is %s, more than the maximum %s", doc.Expires.Sub(doc.IssuedAt), maxValidity)
	}
	return nil
}

// checkSignatures verifies each signature and counts distinct signer
// groups. A key signing twice, or two keys of one group, count once.
func checkSignatures(raw []byte, sigs []Signature, signers *AllowedSigners, now time.Time) ([]SignatureResult, int) {
	results := make([]SignatureResult, 0, len(sigs))
	seenKeys := map[string]string{} // key blob -> file that counted it
	seenGroups := map[int]string{}  // group -> file that counted it
	for _, s := range sigs {
		r := SignatureResult{File: s.Name}
		key, err := verifyOne(raw, s.Armor, signers, now, &r)
		if err != nil {
			r.Detail = err.Error()
			results = append(results, r)
			continue
		}
		blob, group := string(key.Marshal()), signers.groupOf(key)
		switch {
		case seenKeys[blob] != "":
			r.Status, r.Detail = StatusDuplicate, "this key already signed in "+seenKeys[blob]+"; a key counts once"
		case seenGroups[group] != "":
			r.Status, r.Detail = StatusSameSigner, "a key of the same signer (shared principal or key) already counted in "+seenGroups[group]
		default:
			r.Status = StatusValid
			seenKeys[blob], seenGroups[group] = s.Name, s.Name
		}
		results = append(results, r)
	}
	return results, len(seenGroups)
}

// verifyOne runs every per-signature check and fills r.Status on failure.
func verifyOne(raw, armored []byte, signers *AllowedSigners, now time.Time, r *SignatureResult) (ssh.PublicKey, error) {
	r.Status = StatusMalformed
	blob, err := dearmor(armored)
	if err != nil {
		return nil, err
	}
	s, err := parseSSHSIG(blob)
	if s != nil && s.Key != nil {
		r.Fingerprint = ssh.FingerprintSHA256(s.Key)
	}
	if err != nil {
		if s != nil {
			r.Status = StatusRefusedKey
		}
		return nil, err
	}
	if s.Namespace != Namespace {
		r.Status = StatusWrongNS
		return nil, fmt.Errorf("signed for namespace %q, not %q", s.Namespace, Namespace)
	}
	principals, found, why := signers.lookup(s.Key, s.Namespace, now)
	if !found {
		r.Status = StatusUnknownKey
		return nil, errors.New("key is not in allowed_signers")
	}
	r.Principal = joinPrincipals(principals)
	if len(principals) == 0 {
		r.Status = StatusNotPermitted
		return nil, errors.New(why)
	}
	if err := s.Key.Verify(signedData(s.Namespace, s.HashAlg, raw), s.Sig); err != nil {
		r.Status = StatusInvalid
		return nil, fmt.Errorf("signature does not verify over these bytes: %w", err)
	}
	return s.Key, nil
}

func joinPrincipals(p []string) string {
	var b bytes.Buffer
	for i, s := range p {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s)
	}
	return b.String()
}

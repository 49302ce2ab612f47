package allowlist

import (
	"errors"
	"net/url"
	"time"
)

// Allowlist is a document whose signatures met the threshold and whose
// policy checks passed. Only Verify builds one.
type Allowlist struct {
	Doc        Document
	Raw        []byte // the exact signed bytes
	SHA256     string // hex sha256 of Raw
	Signatures []SignatureResult
}

// SignatureResult reports one detached signature.
type SignatureResult struct {
	File        string // where it came from, for reports
	Principal   string // from allowed_signers; empty when unknown
	Fingerprint string // SHA256:… of the signing key
	Status      string // "valid", "invalid", "unknown_key", …
	Detail      string
}

// Policy holds what the gateway pins: who may sign, how many must, and the
// scope a document must carry.
type Policy struct {
	AllowedSigners []byte        // OpenSSH allowed_signers file contents
	Threshold      int           // M; at least 1
	Environment    string        // must equal Document.Environment
	MaxValidity    time.Duration // expires-issued_at may not exceed it; zero means a default
	Now            func() time.Time
}

// Verify checks sigs over raw against p and only then parses raw.
func Verify(raw []byte, sigs []Signature, p Policy) (*Allowlist, error) {
	return nil, errors.New("allowlist: not implemented")
}

// Signature is one armored SSHSIG file.
type Signature struct {
	Name  string
	Armor []byte
}

// Query is what the forward path asks of the allowlist.
type Query struct {
	DestinationID string
	Caller        string
	Method        string
	URL           *url.URL
	Fields        []Field
	Now           time.Time
}

// Match returns the destination q may use, or a *DenyError.
func (a *Allowlist) Match(q Query) (*Destination, error) {
	return nil, &DenyError{Reason: ReasonDestinationNotAllowed, Detail: "not implemented"}
}

// Reason is a stable, documented deny code.
type Reason string

// Deny reasons. They are API: callers branch on them.
const (
	ReasonDestinationNotAllowed Reason = "destination_not_allowed" // unknown id, or url outside the entry
	ReasonMethodNotAllowed      Reason = "method_not_allowed"
	ReasonCallerNotAllowed      Reason = "caller_not_allowed"
	ReasonFieldNotAllowed       Reason = "card_field_not_allowed"
	ReasonAllowlistExpired      Reason = "allowlist_expired"
	ReasonAllowlistUnavailable  Reason = "allowlist_unavailable"
)

// DenyError says why a request was refused.
type DenyError struct {
	Reason Reason
	Detail string // safe to show the caller: never holds card data
}

func (e *DenyError) Error() string         { return "allowlist: " + string(e.Reason) + ": " + e.Detail }
func (e *DenyError) ErrorCode() string     { return string(e.Reason) }
func (e *DenyError) PublicMessage() string { return e.Detail }

// Holder keeps the last good allowlist and swaps in a new one only after it
// verifies fully. It is safe for concurrent use.
type Holder struct {
	opts HolderOptions
}

// HolderOptions configures a Holder.
type HolderOptions struct {
	Path          string // the allowlist document
	SignaturesDir string // every *.sig file in it is one detached signature
	Policy        Policy
}

// NewHolder returns a Holder with nothing loaded; call Load.
func NewHolder(o HolderOptions) *Holder { return &Holder{opts: o} }

// Load reads, verifies and swaps in the files. On failure the last good
// allowlist stays in place and the error is returned.
func (h *Holder) Load() error { return errors.New("allowlist: not implemented") }

// Current returns the live allowlist, or a *DenyError when there is none or
// it has expired. It never returns a nil allowlist with a nil error.
func (h *Holder) Current() (*Allowlist, error) {
	return nil, &DenyError{Reason: ReasonAllowlistUnavailable, Detail: "no verified allowlist is loaded"}
}

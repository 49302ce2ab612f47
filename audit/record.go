package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cardgate/cardgate/cardscan"
)

// Kind says what a record is about.
type Kind string

// Kinds. The zero value is none of them and is refused.
const (
	// KindIntent is written, and durable, before a card is sent.
	KindIntent Kind = "intent"
	// KindResult is written after a forward that had an intent record,
	// whatever happened to it.
	KindResult Kind = "result"
	// KindDenied records a refusal: nothing was sent.
	KindDenied Kind = "denied"
	// KindCanary records the use of a canary token (which is also refused).
	KindCanary Kind = "canary"
	// KindTokenized records a card a processor returned during a forward
	// (an entry's response.returned_cards) stored under a new token:
	// Token is the new token; ForwardID names the forward.
	KindTokenized Kind = "tokenized"
	// KindAllowlist records an allowlist load: accepted (decision allow)
	// or refused (decision deny, reason the refusal's code). See
	// allowlist.go.
	KindAllowlist Kind = "allowlist"
)

// Decision is the allowlist's answer.
type Decision string

// Decisions. The zero value is "no decision recorded", allowed only where
// the rules in Record say so; it never means allow.
const (
	DecisionAllow Decision = "allow"
	DecisionDeny  Decision = "deny"
)

// Outcome says whether the card left the gateway. The values are the ones
// the forwarder returns to callers, so a record and a response can be
// matched without translation.
type Outcome string

// Outcomes.
const (
	OutcomeNotSent        Outcome = "not_sent"
	OutcomeSentNoResponse Outcome = "sent_no_response"
	OutcomeAnswered       Outcome = "answered"
)

// Record is one audit event. Every field is an identifier, an enumerated
// value, a digest or a number: there is deliberately no free-form text
// field, so that no request or response body, header or card field can be
// put into the log, even by mistake. Append refuses a record whose fields do
// not match the formats documented here (ErrInvalid).
//
// The JSON field order is the struct order and is part of the hash; see the
// package documentation. Do not reorder, rename or add fields without a new
// format version: old logs would no longer verify. (A new field left out
// when empty, as Tokens is, keeps every old record's bytes.)
type Record struct {
	// Chain, Seq, Prev and Time are set by Log.Append; a caller leaves them
	// zero. Chain is 24 lowercase hex digits (96 random bits) naming one
	// writer's chain; Seq counts 1, 2, 3… within it; Prev is the Hash of
	// the record before in the chain (64 zeros for seq 1); Time is the
	// Log's clock in UTC.
	Chain string    `json:"chain"`
	Seq   uint64    `json:"seq"`
	Prev  string    `json:"prev"`
	Time  time.Time `json:"time"`

	// Kind is required.
	Kind Kind `json:"kind"`
	// RequestID is the id the API gave the HTTP request (required).
	// ForwardID pairs an intent with its result (required for both).
	// Both: 1–64 of [A-Za-z0-9_-].
	RequestID string `json:"request_id"`
	ForwardID string `json:"forward_id"`
	// Caller is the authenticated caller identity (required), in the
	// allowlist's caller syntax.
	Caller string `json:"caller"`
	// Token is the token id "tok_…", never anything else. Leave it empty
	// when the caller's value was not a well-formed token: the raw value is
	// caller input and could be a card number.
	Token string `json:"token"`
	// Tokens are the token ids of a forward that sent several named
	// cards, in the order of the cards' names; Token is then empty. The
	// member is left out when empty, so records of single-card forwards,
	// and logs written before it existed, keep their bytes and verify.
	Tokens []string `json:"tokens,omitempty"`
	// Destination is the allowlist entry id.
	Destination string `json:"destination"`
	// ResolvedIP is the address that was dialed, in netip canonical form.
	ResolvedIP string `json:"resolved_ip"`
	// TLSVersion is tls.VersionName of the negotiated version, e.g.
	// "TLS 1.3".
	TLSVersion string `json:"tls_version"`
	// PeerCertSHA256 is the lowercase hex sha256 of the leaf certificate's
	// DER bytes (what `openssl x509 -outform der | sha256sum` prints).
	PeerCertSHA256 string `json:"peer_cert_sha256"`
	// AllowlistVersion and AllowlistSHA256 name the signed allowlist that
	// made the decision (sha256 of the file, lowercase hex).
	AllowlistVersion uint64 `json:"allowlist_version"`
	AllowlistSHA256  string `json:"allowlist_sha256"`
	// Signers are the principals whose signatures counted, in an
	// allowlist record only; left out when empty, so that every other
	// record keeps its bytes (see Tokens).
	Signers []string `json:"signers,omitempty"`
	// Decision and Reason: Reason is a stable error code such as
	// "destination_not_allowed" (1–64 of [a-z0-9_.]), never a message.
	Decision Decision `json:"decision"`
	Reason   string   `json:"reason"`
	// Outcome, UpstreamStatus (0 when there was no answer) and DurationMS
	// (time from the start of the forward, milliseconds).
	Outcome        Outcome `json:"outcome"`
	UpstreamStatus int     `json:"upstream_status"`
	DurationMS     int64   `json:"duration_ms"`

	// Hash is the lowercase hex sha256 of the record's canonical bytes;
	// set by Append. It must stay the last field: the canonical bytes are
	// the encoding without it.
	Hash string `json:"hash"`
}

// ErrInvalid is wrapped by every error about a record's contents. Such a
// record is never written; a forwarder that gets it must refuse the forward.
var ErrInvalid = errors.New("invalid record")

// zeroHash is Prev for the first record of a chain.
var zeroHash = strings.Repeat("0", 64)

// maxSafeInteger is the largest integer a float64 holds exactly. Larger
// numbers would be rewritten by jq 1.6 (which stores numbers as doubles),
// and an auditor's recomputed hash would then differ from ours.
const maxSafeInteger = 1<<53 - 1

// The field shapes. Each is the regular expression in its rule (a test
// checks they agree); they are byte-class checks rather than regexps
// because every forward validates two records, and regexp matching cost a
// few percent of a forward's CPU. A caller is the allowlist's caller
// grammar plus '*': the API masks a card-like digit run in an identity
// ("dev:************4242"), and the refusal of that caller is recorded.
var (
	reID          = shape{rule: `^[A-Za-z0-9_-]{1,64}$`, first: setOf(alnum + "_-"), rest: setOf(alnum + "_-"), max: 64}
	reToken       = shape{rule: `^tok_[A-Za-z0-9]{1,124}$`, prefix: "tok_", first: setOf(alnum), rest: setOf(alnum), max: 124}
	reCaller      = shape{rule: `^[A-Za-z0-9*][A-Za-z0-9._:/@*-]{0,127}$`, first: setOf(alnum + "*"), rest: setOf(alnum + "._:/@*-"), max: 128}
	reDestination = shape{rule: `^[a-z0-9][a-z0-9._-]{0,62}$`, first: setOf(lowerDigit), rest: setOf(lowerDigit + "._-"), max: 63}
	reReason      = shape{rule: `^[a-z0-9_.]{1,64}$`, first: setOf(lowerDigit + "_."), rest: setOf(lowerDigit + "_."), max: 64}
	reSHA256      = shape{rule: `^[0-9a-f]{64}$`, first: setOf(hexLower), rest: setOf(hexLower), min: 64, max: 64}
	reChain       = shape{rule: `^[0-9a-f]{24}$`, first: setOf(hexLower), rest: setOf(hexLower), min: 24, max: 24}
)

const (
	alnum      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	lowerDigit = "abcdefghijklmnopqrstuvwxyz0123456789"
	hexLower   = "0123456789abcdef"
)

// byteSet is a set of bytes, looked up with one load.
type byteSet [256]bool

func setOf(chars string) *byteSet {
	var s byteSet
	for i := 0; i < len(chars); i++ {
		s[chars[i]] = true
	}
	return &s
}

// shape is a fixed prefix, then one byte from first, then bytes from rest,
// for min to max bytes after the prefix (min 0 means 1).
type shape struct {
	rule        string // the same shape as a regular expression, for messages
	prefix      string
	first, rest *byteSet
	min, max    int
}

func (p shape) String() string { return p.rule }

// MatchString reports whether s has the shape.
func (p shape) MatchString(s string) bool {
	body, ok := strings.CutPrefix(s, p.prefix)
	if !ok || len(body) < max(p.min, 1) || len(body) > p.max {
		return false
	}
	if !p.first[body[0]] {
		return false
	}
	for i := 1; i < len(body); i++ {
		if !p.rest[body[i]] {
			return false
		}
	}
	return true
}

// validTLSVersion reports whether v is a value TLSVersion may take
// (tls.VersionName's spelling). Older versions are listed so that a record
// of a refused downgrade can still be written.
func validTLSVersion(v string) bool {
	switch v {
	case "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3":
		return true
	}
	return false
}

// fieldError names the offending field and the rule, never the value: the
// value is what failed validation and may be a card number.
func fieldError(field, rule string) error {
	return fmt.Errorf("audit: field %s: %s: %w", field, rule, ErrInvalid)
}

// checkID checks a string field against its pattern and the card scan.
// Empty is allowed unless required.
func checkID(field, v string, re shape, required bool) error {
	if v == "" {
		if required {
			return fieldError(field, "required")
		}
		return nil
	}
	if !re.MatchString(v) {
		return fieldError(field, "must match "+re.String())
	}
	// Any window, not only whole digit groups: an identifier has no
	// business holding a long digit run at all, so a card glued to other
	// digits counts too. Identifier generators draw from alphabets where
	// long digit runs are rare (base32, as tokens do) to keep false
	// positives, which refuse the forward, negligible.
	if mayHoldCard(v) && cardscan.ContainsAnyWindow(v) {
		return fieldError(field, "holds a card-like number (13–19 digits passing the Luhn check)")
	}
	return nil
}

// minCardDigits is the fewest digits a card number has (cardscan's bound).
const minCardDigits = 13

// mayHoldCard reports whether v, which matched one of the identifier
// shapes, has enough digits for cardscan to find a card in it. The shapes
// admit only ASCII letters, digits and ._:/@*- (no '%' or backslash escape, no
// fullwidth digit), so the only digits cardscan reads in v are its ASCII
// digits, and a card needs at least 13 of them. Most identifiers have far
// fewer, and skip the scan.
func mayHoldCard(v string) bool {
	n := 0
	for i := 0; i < len(v); i++ {
		if '0' <= v[i] && v[i] <= '9' {
			n++
		}
	}
	return n >= minCardDigits
}

// checkDigest checks a hex sha256 field. Digests are not scanned for card
// numbers: 64 random hex digits hold a Luhn-valid run of 13–19 digits a few
// times in a thousand, and because a certificate or allowlist digest is the
// same for every forward, a false positive would refuse every forward to
// that destination until the certificate changed. The strict format (exactly
// 64 hex digits, checked here) leaves no room for anything but a digest.
func checkDigest(field, v string) error {
	if v != "" && !reSHA256.MatchString(v) {
		return fieldError(field, "must be 64 lowercase hex digits")
	}
	return nil
}

// validateContent checks the fields a caller fills in, and the rules
// between them that make a record meaningful.
func (r *Record) validateContent() error {
	switch r.Kind {
	case KindIntent, KindResult, KindDenied, KindCanary, KindTokenized, KindImported, KindExported:
	case KindCardUpdated, KindCardDeleted, KindCVCCollected: // record_cards.go
	case KindAllowlist:
		return r.validateAllowlist()
	default:
		return fieldError("kind", `must be "intent", "result", "denied", "canary", "tokenized", "imported", "exported", "card_updated", "card_deleted", "cvc_collected" or "allowlist"`)
	}
	if r.Signers != nil {
		return fieldError("signers", "only an allowlist record has signers")
	}
	forwardRequired := r.Kind == KindIntent || r.Kind == KindResult || r.Kind == KindTokenized
	if err := checkID("request_id", r.RequestID, reID, true); err != nil {
		return err
	}
	if err := checkID("forward_id", r.ForwardID, reID, forwardRequired); err != nil {
		return err
	}
	if err := checkID("caller", r.Caller, reCaller, true); err != nil {
		return err
	}
	if err := r.checkTokens(); err != nil {
		return err
	}
	tokenRequired := (r.Kind == KindIntent || r.Kind == KindCanary || r.Kind == KindTokenized || isCardKind(r.Kind)) && len(r.Tokens) == 0
	if err := checkID("token", r.Token, reToken, tokenRequired); err != nil {
		return err
	}
	if err := checkID("destination", r.Destination, reDestination, r.Kind == KindIntent || r.Kind == KindTokenized); err != nil {
		return err
	}
	if err := checkID("reason", r.Reason, reReason, r.Kind == KindDenied); err != nil {
		return err
	}
	if r.ResolvedIP != "" {
		// Canonical form only, so that one address has one spelling in the
		// log and the field cannot carry anything else; no IPv6 zone, which
		// is free text ("fe80::1%anything").
		// (Compared in a stack buffer: a.String() would allocate.)
		var buf [64]byte
		a, err := netip.ParseAddr(r.ResolvedIP)
		if err != nil || a.Zone() != "" || string(a.AppendTo(buf[:0])) != r.ResolvedIP {
			return fieldError("resolved_ip", "must be an IP address in canonical form, without a zone")
		}
	}
	if r.TLSVersion != "" && !validTLSVersion(r.TLSVersion) {
		return fieldError("tls_version", `must be "TLS 1.0" … "TLS 1.3"`)
	}
	if err := checkDigest("peer_cert_sha256", r.PeerCertSHA256); err != nil {
		return err
	}
	if err := checkDigest("allowlist_sha256", r.AllowlistSHA256); err != nil {
		return err
	}
	if r.AllowlistVersion > maxSafeInteger {
		return fieldError("allowlist_version", "must be at most 2^53-1")
	}
	switch r.Decision {
	case "", DecisionAllow, DecisionDeny:
	default:
		return fieldError("decision", `must be "allow", "deny" or empty`)
	}
	switch r.Outcome {
	case "", OutcomeNotSent, OutcomeSentNoResponse, OutcomeAnswered:
	default:
		return fieldError("outcome", `must be "not_sent", "sent_no_response", "answered" or empty`)
	}
	if r.UpstreamStatus != 0 && (r.UpstreamStatus < 100 || r.UpstreamStatus > 599) {
		return fieldError("upstream_status", "must be 0 or 100–599")
	}
	if r.DurationMS < 0 || r.DurationMS > maxSafeInteger {
		return fieldError("duration_ms", "must be 0 to 2^53-1")
	}

	// Rules between fields, so that a record cannot claim something
	// self-contradictory (an intent that was denied, a refusal that sent).
	if isCardKind(r.Kind) {
		return r.checkCardKind()
	}
	switch r.Kind {
	case KindIntent:
		// Before sending, only an allow decision exists and no outcome.
		if r.Decision != DecisionAllow {
			return fieldError("decision", `must be "allow" in an intent record`)
		}
		if r.Outcome != "" || r.UpstreamStatus != 0 {
			return fieldError("outcome", "must be empty in an intent record: nothing has happened yet")
		}
	case KindResult:
		if r.Outcome == "" {
			return fieldError("outcome", "required in a result record")
		}
		if r.UpstreamStatus != 0 && r.Outcome != OutcomeAnswered {
			return fieldError("upstream_status", `only an "answered" outcome has a status`)
		}
	case KindTokenized:
		if r.Decision != DecisionAllow || r.Outcome != "" || r.UpstreamStatus != 0 {
			return fieldError("decision", `must be "allow", with no outcome, in a tokenized record`)
		}
	case KindDenied:
		if r.Decision != DecisionDeny {
			return fieldError("decision", `must be "deny" in a denied record`)
		}
		if r.Outcome != "" && r.Outcome != OutcomeNotSent {
			return fieldError("outcome", `must be "not_sent" or empty in a denied record`)
		}
	}
	return r.validateMigration()
}

// MaxTokens bounds Tokens: the forwarder's limit on named cards.
const MaxTokens = 8

// checkTokens checks Tokens: each a token id, none twice, at most
// MaxTokens, and never alongside Token.
func (r *Record) checkTokens() error {
	if r.Tokens == nil {
		return nil
	}
	switch {
	case len(r.Tokens) == 0:
		return fieldError("tokens", "must be left out rather than empty")
	case len(r.Tokens) > MaxTokens:
		return fieldError("tokens", "must hold at most 8 tokens")
	case r.Token != "":
		return fieldError("tokens", "must not be set with token: one card is token, several are tokens")
	}
	for i, t := range r.Tokens {
		if err := checkID("tokens", t, reToken, true); err != nil {
			return err
		}
		if slices.Contains(r.Tokens[:i], t) {
			return fieldError("tokens", "must not hold a token twice")
		}
	}
	return nil
}

// validateChainFields checks what Append fills in; Verify uses it on
// records read back.
func (r *Record) validateChainFields() error {
	if !reChain.MatchString(r.Chain) {
		return fieldError("chain", "must be 24 lowercase hex digits")
	}
	if r.Seq < 1 || r.Seq > maxSafeInteger {
		return fieldError("seq", "must be 1 to 2^53-1")
	}
	if !reSHA256.MatchString(r.Prev) {
		return fieldError("prev", "must be 64 lowercase hex digits")
	}
	if r.Seq == 1 && r.Prev != zeroHash {
		return fieldError("prev", "must be 64 zeros in the first record of a chain")
	}
	if r.Time.IsZero() || r.Time.Location() != time.UTC {
		return fieldError("time", "must be set, in UTC")
	}
	return nil
}

// hashSuffix is how encoding/json ends a Record whose Hash is empty. The
// canonical bytes are that encoding with this suffix replaced by "}".
const hashSuffix = `,"hash":""}`

// canonical returns the bytes the hash is computed over: the compact JSON
// encoding of r, fields in struct order, without the "hash" member and
// without a trailing newline. See appendCanonical.
func (r *Record) canonical() ([]byte, error) {
	return r.appendCanonical(nil)
}

// canonicalJSON is canonical by way of encoding/json, which defines the
// canonical form: encoding/json is deterministic for a struct (fixed order,
// fixed number and time formats); HTML escaping is off so that the bytes
// equal what jq -c prints for the same object. It appends to dst.
func (r *Record) canonicalJSON(dst []byte) ([]byte, error) {
	c := *r
	c.Hash = ""
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("audit: encode record: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if !bytes.HasSuffix(b, []byte(hashSuffix)) {
		// Only a change to the Record type can cause this.
		return nil, errors.New("audit: encode record: hash is not the last field")
	}
	b = append(b[:len(b)-len(hashSuffix)], '}')
	return b, nil
}

// seal returns r's canonical bytes and their hash (lowercase hex sha256).
func (r *Record) seal() (canon []byte, hash string, err error) {
	canon, err = r.canonical()
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(canon)
	return canon, hex.EncodeToString(sum[:]), nil
}

// appendSealed appends r's stored line (no newline) to dst, and returns
// the hash it holds. r.Hash is ignored.
func (r *Record) appendSealed(dst []byte) (line []byte, hash [sha256.Size * 2]byte, err error) {
	start := len(dst)
	dst, err = r.appendCanonical(dst)
	if err != nil {
		return dst[:start], hash, err
	}
	sum := sha256.Sum256(dst[start:])
	hex.Encode(hash[:], sum[:])
	dst = append(dst[:len(dst)-1], `,"hash":"`...)
	dst = append(dst, hash[:]...)
	return append(dst, `"}`...), hash, nil
}

// storedLine returns the stored form of a record with canonical bytes
// canon and hash: canon with ,"hash":"<hash>" inserted before the closing
// brace. No newline.
func storedLine(canon []byte, hash string) []byte {
	out := make([]byte, 0, len(canon)+len(`,"hash":""`)+len(hash))
	out = append(out, canon[:len(canon)-1]...)
	out = append(out, `,"hash":"`...)
	out = append(out, hash...)
	return append(out, `"}`...)
}

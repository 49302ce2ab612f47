package allowlist

import (
	"crypto/sha256"
	"net/netip"
	"time"

	"github.com/cardgate/cardgate/cardscan"
	"github.com/cardgate/cardgate/forwarder/signing"
)

// Namespace is the SSHSIG namespace every allowlist signature must carry.
// It stops a signature made for git or for files being replayed as an
// approval of an allowlist.
const Namespace = "cardgate-allowlist@v1"

// Format identifies the document schema.
const Format = "cardgate.allowlist/v1"

// Field names a card field a destination may receive.
type Field string

// The card fields a template can ask for.
const (
	FieldNumber   Field = "number"
	FieldCVC      Field = "cvc"
	FieldExpMonth Field = "exp_month"
	FieldExpYear  Field = "exp_year"
	FieldName     Field = "name"
)

// knownField reports whether f is one of the Field constants. A document
// naming any other field is refused rather than silently ignored.
func knownField(f Field) bool {
	switch f {
	case FieldNumber, FieldCVC, FieldExpMonth, FieldExpYear, FieldName:
		return true
	}
	return false
}

// Document is the parsed allowlist. The gateway only ever builds one from
// bytes that have passed signature verification (see Verify); review tools
// may use ParseUnverified.
type Document struct {
	Format      string    `yaml:"format"`
	Namespace   string    `yaml:"namespace"`
	Environment string    `yaml:"environment"`
	Version     uint64    `yaml:"version"`
	IssuedAt    time.Time `yaml:"issued_at"`
	Expires     time.Time `yaml:"expires"`
	// PrevSHA256 is the lowercase hex sha256 of the previous approved
	// file's exact bytes. It is empty only for version 1.
	PrevSHA256   string        `yaml:"prev_sha256"`
	Destinations []Destination `yaml:"destinations"`
	// Exports are the recipients a card export may be encrypted to
	// (entry_export.go).
	Exports []Export `yaml:"exports"`
}

// Destination is one reviewed processor endpoint.
type Destination struct {
	ID      string `yaml:"id"`
	Purpose string `yaml:"purpose"`
	Owner   string `yaml:"owner"`
	// URL is https://host[:port]/path-prefix. The port defaults to 443.
	URL     string   `yaml:"url"`
	Methods []string `yaml:"methods"`
	Callers []string `yaml:"callers"`
	Fields  []Field  `yaml:"fields"`
	// CardHeaders names the request headers that may carry card
	// placeholders. The body may always carry them.
	CardHeaders []string `yaml:"card_headers"`
	// TLS holds optional per-destination TLS settings; nil means the
	// gateway's default trust roots and no pins.
	TLS *TLS `yaml:"tls"`
	// UnsafeAllowRanges lets this entry resolve into special-purpose
	// address ranges (a processor behind a private link, a local test
	// processor). Empty means only public addresses. Reviewers must treat
	// every range here as a widening of risk.
	UnsafeAllowRanges []netip.Prefix `yaml:"unsafe_allow_ranges"`
	// Timeout bounds the whole upstream exchange; zero means the gateway default.
	Timeout time.Duration `yaml:"timeout"`
	// MaxResponseBytes caps the upstream body; zero means the gateway default.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// RequestIdentifiers and Response are the entry's identifier and
	// returned-card rules (entry_response.go); nil means none.
	RequestIdentifiers []cardscan.Path `yaml:"-"`
	Response           *ResponseRules  `yaml:"-"`
	// Credentials names the gateway-held credentials this entry may use, in
	// {{secret.NAME}} header placeholders and for signing (entry_credentials.go).
	Credentials []string `yaml:"credentials"`
	// CredentialHeaders names, canonical, the request headers a
	// {{secret.NAME}} placeholder may stand in. Empty means the
	// credentials only sign (entry_credentials.go).
	CredentialHeaders []string `yaml:"credential_headers"`
	// Signing, when set, is how the gateway signs this entry's requests; nil
	// means they are not signed (entry_signing.go).
	Signing *signing.Spec `yaml:"signing"`
	// Cards names the cards a request may send in "cards" and the fields
	// each may receive (entry_cards.go). Nil means none.
	Cards map[string][]Field `yaml:"cards"`
	// Body holds the rules for the request body (entry_body.go). Nil
	// means none: an XML body may carry no DOCTYPE.
	Body *Body `yaml:"body"`

	// Filled by Parse from URL.
	Host       string `yaml:"-"` // lowercase ASCII, no trailing dot; "*.x" for a wildcard; canonical form for an IP literal
	Port       int    `yaml:"-"`
	PathPrefix string `yaml:"-"` // cleaned, starts with "/", no trailing "/" unless it is "/"

	// Line is the line of the entry in the document, for error messages
	// and review tools.
	Line int `yaml:"-"`
}

// TLS is the per-destination TLS policy.
type TLS struct {
	// SPKIPins, when non-empty, requires the processor's certificate chain
	// to contain a public key whose SubjectPublicKeyInfo hashes (sha256) to
	// one of these. Written in the document as "sha256/<std base64>".
	SPKIPins [][sha256.Size]byte `yaml:"-"`
	// CABundle names a CA bundle from the gateway's configuration to use
	// instead of the system roots. Empty means the system roots.
	CABundle string `yaml:"ca_bundle"`
	// ClientCert names a client certificate from the gateway's
	// configuration (egress.client_certs) to present to this processor,
	// for processors that require mTLS. Empty means none is ever
	// presented, even when the processor asks for one.
	ClientCert string `yaml:"client_cert"`
}

// IsWildcard reports whether d matches every name below a domain ("*.x").
func (d *Destination) IsWildcard() bool { return len(d.Host) > 2 && d.Host[:2] == "*." }

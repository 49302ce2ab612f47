package allowlist

import (
	"net/netip"
	"time"
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

// Document is the parsed allowlist. It is only ever built from bytes that
// have passed signature verification.
type Document struct {
	Format       string        `yaml:"format"`
	Namespace    string        `yaml:"namespace"`
	Environment  string        `yaml:"environment"`
	Version      uint64        `yaml:"version"`
	IssuedAt     time.Time     `yaml:"issued_at"`
	Expires      time.Time     `yaml:"expires"`
	PrevSHA256   string        `yaml:"prev_sha256"`
	Destinations []Destination `yaml:"destinations"`
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
	// UnsafeAllowRanges lets this entry resolve into special-purpose
	// address ranges (a processor behind a private link, a local test
	// processor). Empty means only public addresses. Reviewers must treat
	// every range here as a widening of risk.
	UnsafeAllowRanges []netip.Prefix `yaml:"unsafe_allow_ranges"`
	// Timeout bounds the whole upstream exchange; zero means the gateway default.
	Timeout time.Duration `yaml:"timeout"`
	// MaxResponseBytes caps the upstream body; zero means the gateway default.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`

	// Filled by Parse from URL.
	Host       string `yaml:"-"` // lowercase ASCII, no trailing dot
	Port       int    `yaml:"-"`
	PathPrefix string `yaml:"-"`
}

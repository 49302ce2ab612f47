// One destination entry: its raw YAML form and its checks. A new entry
// field goes in rawDestination and is checked in destination.

package allowlist

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

type rawDestination struct {
	ID                *string  `yaml:"id"`
	Purpose           *string  `yaml:"purpose"`
	Owner             *string  `yaml:"owner"`
	URL               *string  `yaml:"url"`
	Methods           []string `yaml:"methods"`
	Callers           []string `yaml:"callers"`
	Fields            []string `yaml:"fields"`
	CardHeaders       []string `yaml:"card_headers"`
	TLS               *rawTLS  `yaml:"tls"`
	UnsafeAllowRanges []string `yaml:"unsafe_allow_ranges"`
	Timeout           *string  `yaml:"timeout"`
	MaxResponseBytes  *string  `yaml:"max_response_bytes"`

	RequestIdentifiers []string            `yaml:"request_identifiers"` // entry_response.go
	Response           *rawResponse        `yaml:"response"`            // entry_response.go
	rawCredentials     `yaml:",inline"`    // entry_credentials.go
	Cards              map[string][]string `yaml:"cards"`
	Body               *rawBody            `yaml:"body"`
}

type rawTLS struct {
	SPKIPins   []string `yaml:"spki_pins"`
	CABundle   *string  `yaml:"ca_bundle"`
	ClientCert *string  `yaml:"client_cert"`
}

var (
	reCaller = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$`)
	reBundle = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	// A client certificate name follows the bundle grammar, so both read
	// as plain keys of the gateway's egress configuration.
	reClientCert = reBundle
	reSize       = regexp.MustCompile(`^[1-9][0-9]{0,17}$`)
	// A header name is an RFC 9110 token.
	reHeader = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
)

// allowedMethods are the only methods an entry may list. CONNECT, TRACE
// and friends have no place in a card forward.
var allowedMethods = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true}

// forbiddenCardHeaders may never carry card data: they steer routing,
// framing or connection reuse rather than carry application data.
var forbiddenCardHeaders = map[string]bool{
	"host": true, "content-length": true, "transfer-encoding": true, "connection": true,
	"te": true, "upgrade": true, "trailer": true, "keep-alive": true, "proxy-authorization": true,
	"proxy-connection": true, "forwarded": true, "x-forwarded-for": true, "x-forwarded-host": true,
	"cookie": true,
}

func (r *rawDestination) destination(i, line int) (*Destination, error) {
	at := fmt.Sprintf("line %d: destinations[%d]", line, i)
	d := Destination{Line: line}
	var err error
	if d.ID, err = required(r.ID, at+".id"); err != nil {
		return nil, err
	}
	if !ValidID(d.ID) {
		return nil, malformed("%s.id: %q must be lowercase letters, digits, '.', '-' or '_'", at, d.ID)
	}
	at = fmt.Sprintf("%s (id %q)", at, d.ID)
	if d.Purpose, err = required(r.Purpose, at+".purpose"); err != nil {
		return nil, err
	}
	if d.Owner, err = required(r.Owner, at+".owner"); err != nil {
		return nil, err
	}
	if d.URL, err = required(r.URL, at+".url"); err != nil {
		return nil, err
	}
	if d.Host, d.Port, d.PathPrefix, err = parseEntryURL(d.URL); err != nil {
		return nil, malformed("%s.url: %v", at, err)
	}

	if d.Methods, err = nonEmptyUnique(r.Methods, at+".methods", func(m string) error {
		if !allowedMethods[m] {
			return fmt.Errorf("%q is not one of GET, POST, PUT, PATCH, DELETE (uppercase)", m)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if d.Callers, err = nonEmptyUnique(r.Callers, at+".callers", func(c string) error {
		if !reCaller.MatchString(c) {
			return fmt.Errorf("%q is not a caller identity (letters, digits, '.', '_', ':', '/', '@', '-')", c)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	// An entry that lists named cards may leave the single card out.
	fields, err := nonEmptyUnique(r.Fields, at+".fields", func(f string) error {
		if !knownField(Field(f)) {
			return fmt.Errorf("%q is not a card field (number, cvc, exp_month, exp_year, name)", f)
		}
		return nil
	})
	if err != nil && (len(r.Fields) > 0 || len(r.Cards) == 0) {
		return nil, err
	}
	for _, f := range fields {
		d.Fields = append(d.Fields, Field(f))
	}
	if d.Cards, err = r.cardScopes(at); err != nil {
		return nil, err
	}
	if d.Body, err = r.body(at); err != nil {
		return nil, err
	}
	seenHeader := map[string]bool{}
	for _, h := range r.CardHeaders {
		lh := strings.ToLower(h)
		switch {
		case !reHeader.MatchString(h):
			return nil, malformed("%s.card_headers: %q is not a header name", at, h)
		case forbiddenCardHeaders[lh]:
			return nil, malformed("%s.card_headers: %q may not carry card data", at, h)
		case seenHeader[lh]:
			return nil, malformed("%s.card_headers: %q is listed twice", at, h)
		}
		seenHeader[lh] = true
		d.CardHeaders = append(d.CardHeaders, h)
	}
	if r.TLS != nil {
		d.TLS = &TLS{}
		if r.TLS.CABundle != nil {
			if !reBundle.MatchString(*r.TLS.CABundle) {
				return nil, malformed("%s.tls.ca_bundle: %q is not a bundle name", at, *r.TLS.CABundle)
			}
			d.TLS.CABundle = *r.TLS.CABundle
		}
		if r.TLS.ClientCert != nil {
			if !reClientCert.MatchString(*r.TLS.ClientCert) {
				return nil, malformed("%s.tls.client_cert: %q is not a client certificate name (letters, digits, '.', '_' or '-', at most 64)", at, *r.TLS.ClientCert)
			}
			d.TLS.ClientCert = *r.TLS.ClientCert
		}
		for _, p := range r.TLS.SPKIPins {
			b64, ok := strings.CutPrefix(p, "sha256/")
			sum, err := base64.StdEncoding.Strict().DecodeString(b64)
			if !ok || err != nil || len(sum) != sha256.Size {
				return nil, malformed("%s.tls.spki_pins: %q must be sha256/ followed by the standard base64 of 32 bytes", at, p)
			}
			for _, prev := range d.TLS.SPKIPins {
				if prev == [sha256.Size]byte(sum) {
					return nil, malformed("%s.tls.spki_pins: %q is listed twice", at, p)
				}
			}
			d.TLS.SPKIPins = append(d.TLS.SPKIPins, [sha256.Size]byte(sum))
		}
	}
	for _, s := range r.UnsafeAllowRanges {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, malformed("%s.unsafe_allow_ranges: %q is not a CIDR prefix", at, s)
		}
		if p != p.Masked() || p.Addr().Zone() != "" {
			return nil, malformed("%s.unsafe_allow_ranges: %q must be written as its network address (%s)", at, s, p.Masked())
		}
		if p.Bits() == 0 {
			return nil, malformed("%s.unsafe_allow_ranges: %q would allow every address", at, s)
		}
		d.UnsafeAllowRanges = append(d.UnsafeAllowRanges, p)
	}
	if r.Timeout != nil {
		t, err := time.ParseDuration(*r.Timeout)
		if err != nil || t <= 0 || t > MaxTimeout {
			return nil, malformed("%s.timeout: %q must be a Go duration above 0 and at most %s (e.g. 30s)", at, *r.Timeout, MaxTimeout)
		}
		d.Timeout = t
	}
	if r.MaxResponseBytes != nil {
		n, err := strconv.ParseInt(*r.MaxResponseBytes, 10, 64)
		if !reSize.MatchString(*r.MaxResponseBytes) || err != nil || n > MaxResponseLimit {
			return nil, malformed("%s.max_response_bytes: %q must be a decimal byte count from 1 to %d", at, *r.MaxResponseBytes, MaxResponseLimit)
		}
		d.MaxResponseBytes = n
	}
	if err := r.responseRules(&d, at); err != nil {
		return nil, err
	}
	if err := r.credentialFields(&d, at); err != nil {
		return nil, err
	}
	return &d, nil
}

func nonEmptyUnique(list []string, field string, check func(string) error) ([]string, error) {
	if len(list) == 0 {
		return nil, malformed("%s: must list at least one value", field)
	}
	seen := make(map[string]bool, len(list))
	for _, v := range list {
		if err := check(v); err != nil {
			return nil, malformed("%s: %v", field, err)
		}
		if seen[v] {
			return nil, malformed("%s: %q is listed twice", field, v)
		}
		seen[v] = true
	}
	return list, nil
}

package allowlist

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Size limits. They bound the work an unauthenticated file can cause
// before its signatures are checked.
const (
	// MaxDocumentBytes caps the allowlist file.
	MaxDocumentBytes = 1 << 20
	// MaxDestinations caps the number of entries.
	MaxDestinations = 1000
	// MaxTimeout caps a destination's timeout.
	MaxTimeout = 5 * time.Minute
	// MaxResponseLimit caps a destination's max_response_bytes.
	MaxResponseLimit = 64 << 20
)

// ErrMalformed marks every error from parsing a document. Each such error
// also names the line or the field.
var ErrMalformed = errors.New("malformed allowlist")

func malformed(format string, args ...any) error {
	return fmt.Errorf("allowlist: %s: %w", fmt.Sprintf(format, args...), ErrMalformed)
}

// ParseUnverified parses raw strictly into a Document WITHOUT checking any
// signature. Only review tools (show, diff, next) may use it; the gateway
// gets documents through Verify, which parses the same bytes only after
// they have verified. It checks the document's shape, not its policy
// (environment, expiry, rollback): see Verify and Holder for those.
func ParseUnverified(raw []byte) (*Document, error) {
	if len(raw) > MaxDocumentBytes {
		return nil, malformed("document is %d bytes, more than the limit of %d", len(raw), MaxDocumentBytes)
	}
	if bytes.HasPrefix(raw, []byte("\xef\xbb\xbf")) {
		return nil, malformed("document starts with a byte order mark; save it as UTF-8 without BOM")
	}
	if !utf8.Valid(raw) {
		return nil, malformed("document is not valid UTF-8")
	}
	if err := checkPlainText(raw); err != nil {
		return nil, err
	}

	// Pass 1: the node tree, to refuse YAML features a reviewer could
	// misread (anchors, aliases, merge keys, explicit tags), duplicate keys
	// and more than one document, and to learn each entry's line.
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, malformed("document is empty")
		}
		return nil, malformed("%v", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, malformed("trailing data after the document: %v", err)
		}
		return nil, malformed("line %d: trailing data: a second YAML document is not allowed", line)
	}
	if err := checkNode(&root, ""); err != nil {
		return nil, err
	}
	if len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, malformed("line %d: the document must be a mapping", root.Line)
	}
	if err := checkTopLevel(root.Content[0]); err != nil {
		return nil, err
	}
	lines := destinationLines(root.Content[0])

	// Pass 2: the typed decode, refusing unknown fields.
	dec = yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var r rawDocument
	if err := dec.Decode(&r); err != nil {
		return nil, malformed("%v", err)
	}
	return r.document(lines)
}

// checkPlainText refuses every character that YAML reads differently from
// the stock tools an auditor reviews with (diff, grep, a terminal): a lone
// CR, NEL, U+2028 and U+2029 end a YAML line, and so a YAML comment, while
// diff and grep show one line; other controls and format characters (bidi
// overrides, zero-width characters) hide or reorder text on screen. With
// them gone, what the auditor reads is what the gateway parses.
func checkPlainText(raw []byte) error {
	line := 1
	for i := 0; i < len(raw); {
		r, size := utf8.DecodeRune(raw[i:])
		switch {
		case r == '\n':
			line++
		case r == '\t':
		case r == '\r':
			return malformed("line %d: carriage return; save the file with LF line ends", line)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return malformed("line %d: control character U+%04X", line, r)
		case r == 0x2028 || r == 0x2029:
			return malformed("line %d: Unicode line or paragraph separator U+%04X, which YAML reads as a line break but diff and grep do not", line, r)
		case unicode.Is(unicode.Cf, r):
			return malformed("line %d: invisible format character U+%04X", line, r)
		}
		i += size
	}
	return nil
}

// checkNode walks the tree refusing what a plain reading would not show.
func checkNode(n *yaml.Node, at string) error {
	if n.Kind == yaml.AliasNode {
		return malformed("line %d: %saliases are not allowed; write the value out", n.Line, at)
	}
	if n.Anchor != "" {
		return malformed("line %d: %sanchors are not allowed", n.Line, at)
	}
	if n.Style&yaml.TaggedStyle != 0 {
		return malformed("line %d: %sexplicit tags (%s) are not allowed", n.Line, at, n.Tag)
	}
	if n.Kind == yaml.MappingNode {
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return malformed("line %d: %skeys must be plain strings", k.Line, at)
			}
			if k.Style != 0 {
				// Quoted keys defeat `grep '^version:'`, which AUDITING.md
				// tells reviewers they can rely on.
				return malformed("line %d: %skey %q must not be quoted", k.Line, at, k.Value)
			}
			if k.Value == "<<" {
				return malformed("line %d: %smerge keys are not allowed", k.Line, at)
			}
			if first, dup := seen[k.Value]; dup {
				return malformed("line %d: %sduplicate key %q (first at line %d)", k.Line, at, k.Value, first)
			}
			seen[k.Value] = k.Line
		}
	}
	for i, c := range n.Content {
		sub := at
		if n.Kind == yaml.MappingNode && i%2 == 1 {
			sub = at + n.Content[i-1].Value + ": "
		}
		if err := checkNode(c, sub); err != nil {
			return err
		}
	}
	return nil
}

// checkTopLevel keeps the header greppable: a block mapping whose scalar
// values sit on their key's line ("version: 3", not "version:\n  3").
func checkTopLevel(m *yaml.Node) error {
	if m.Style&yaml.FlowStyle != 0 {
		return malformed("line %d: the document must be a block mapping, not {…}", m.Line)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if v.Kind == yaml.ScalarNode && v.Line != k.Line {
			return malformed("line %d: %s: write the value on the same line as the key", k.Line, k.Value)
		}
		if v.Kind == yaml.ScalarNode && v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			return malformed("line %d: %s: block scalars (| or >) are not allowed here", k.Line, k.Value)
		}
	}
	return nil
}

// destinationLines returns the line of each entry under "destinations".
func destinationLines(m *yaml.Node) []int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "destinations" && m.Content[i+1].Kind == yaml.SequenceNode {
			var lines []int
			for _, d := range m.Content[i+1].Content {
				lines = append(lines, d.Line)
			}
			return lines
		}
	}
	return nil
}

// rawDocument mirrors the file. Scalars are strings so that this package,
// not the YAML library's type resolution, decides what a valid version,
// time or size looks like.
type rawDocument struct {
	Format       *string          `yaml:"format"`
	Namespace    *string          `yaml:"namespace"`
	Environment  *string          `yaml:"environment"`
	Version      *string          `yaml:"version"`
	IssuedAt     *string          `yaml:"issued_at"`
	Expires      *string          `yaml:"expires"`
	PrevSHA256   *string          `yaml:"prev_sha256"`
	Destinations []rawDestination `yaml:"destinations"`
}

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
}

type rawTLS struct {
	SPKIPins   []string `yaml:"spki_pins"`
	CABundle   *string  `yaml:"ca_bundle"`
	ClientCert *string  `yaml:"client_cert"`
}

var (
	reEnvironment = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	reVersion     = regexp.MustCompile(`^[1-9][0-9]{0,15}$`)
	reSHA256      = regexp.MustCompile(`^[0-9a-f]{64}$`)
	reCaller      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$`)
	reBundle      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
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

func required(s *string, field string) (string, error) {
	if s == nil || *s == "" {
		return "", malformed("field %s is missing or empty", field)
	}
	return *s, nil
}

// parseTimestamp accepts only RFC 3339 in UTC ("2026-12-01T00:00:00Z") so
// that a reviewer reads the same instant the gateway enforces.
func parseTimestamp(s *string, field string) (time.Time, error) {
	v, err := required(s, field)
	if err != nil {
		return time.Time{}, err
	}
	if !strings.HasSuffix(v, "Z") {
		return time.Time{}, malformed("field %s: %q must be RFC 3339 in UTC, ending in Z", field, v)
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, malformed("field %s: %q is not RFC 3339 (2026-12-01T00:00:00Z)", field, v)
	}
	return t.UTC(), nil
}

func (r *rawDocument) document(lines []int) (*Document, error) {
	var d Document
	var err error
	if d.Format, err = required(r.Format, "format"); err != nil {
		return nil, err
	}
	if d.Format != Format {
		return nil, malformed("field format: %q is not %q", d.Format, Format)
	}
	if d.Namespace, err = required(r.Namespace, "namespace"); err != nil {
		return nil, err
	}
	if d.Namespace != Namespace {
		return nil, malformed("field namespace: %q is not %q", d.Namespace, Namespace)
	}
	if d.Environment, err = required(r.Environment, "environment"); err != nil {
		return nil, err
	}
	if !reEnvironment.MatchString(d.Environment) {
		return nil, malformed("field environment: %q must be lowercase letters, digits, '-' or '_'", d.Environment)
	}
	v, err := required(r.Version, "version")
	if err != nil {
		return nil, err
	}
	if !reVersion.MatchString(v) {
		return nil, malformed("field version: %q must be a decimal integer from 1, without leading zeros", v)
	}
	if d.Version, err = strconv.ParseUint(v, 10, 64); err != nil {
		return nil, malformed("field version: %v", err)
	}
	if d.IssuedAt, err = parseTimestamp(r.IssuedAt, "issued_at"); err != nil {
		return nil, err
	}
	if d.Expires, err = parseTimestamp(r.Expires, "expires"); err != nil {
		return nil, err
	}
	if !d.Expires.After(d.IssuedAt) {
		return nil, malformed("field expires: %s is not after issued_at %s", d.Expires.Format(time.RFC3339), d.IssuedAt.Format(time.RFC3339))
	}
	if r.PrevSHA256 != nil {
		d.PrevSHA256 = *r.PrevSHA256
	}
	switch {
	case d.Version == 1 && d.PrevSHA256 != "":
		return nil, malformed("field prev_sha256: version 1 has no previous file; leave it empty")
	case d.Version > 1 && !reSHA256.MatchString(d.PrevSHA256):
		return nil, malformed("field prev_sha256: %q must be the 64 lowercase hex digits of sha256sum of the previous file", d.PrevSHA256)
	}
	if len(r.Destinations) > MaxDestinations {
		return nil, malformed("field destinations: %d entries, more than the limit of %d", len(r.Destinations), MaxDestinations)
	}
	ids := make(map[string]int, len(r.Destinations))
	for i := range r.Destinations {
		line := 0
		if i < len(lines) {
			line = lines[i]
		}
		dst, err := r.Destinations[i].destination(i, line)
		if err != nil {
			return nil, err
		}
		if first, dup := ids[dst.ID]; dup {
			return nil, malformed("line %d: destinations[%d].id: duplicate id %q (first at line %d)", line, i, dst.ID, first)
		}
		ids[dst.ID] = line
		d.Destinations = append(d.Destinations, *dst)
	}
	return &d, nil
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
	fields, err := nonEmptyUnique(r.Fields, at+".fields", func(f string) error {
		if !knownField(Field(f)) {
			return fmt.Errorf("%q is not a card field (number, cvc, exp_month, exp_year, name)", f)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, f := range fields {
		d.Fields = append(d.Fields, Field(f))
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

// parseEntryURL applies the rules for a destination URL in the document:
// https only; no userinfo, query or fragment; a lowercase ASCII host (IDNs
// in punycode), a wildcard only as a single leading "*." over at least two
// labels, IP literals only as exact hosts; a decimal port (default 443);
// and a clean path prefix.
func parseEntryURL(s string) (host string, port int, prefix string, err error) {
	if !strings.HasPrefix(s, "https://") {
		return "", 0, "", errors.New("must start with https://")
	}
	for _, c := range s {
		if c > 0x7e || c < 0x21 {
			return "", 0, "", errors.New("must be printable ASCII without spaces; write international host names in punycode (xn--…)")
		}
	}
	if strings.ContainsAny(s, `\`) {
		return "", 0, "", errors.New("must not contain a backslash")
	}
	rest := s[len("https://"):]
	authority, path, _ := strings.Cut(rest, "/")
	path = "/" + path
	if strings.ContainsAny(authority, "?#") || strings.ContainsAny(path, "?#") {
		return "", 0, "", errors.New("must not have a query or fragment; the path is a prefix")
	}
	if strings.Contains(authority, "@") {
		return "", 0, "", errors.New("must not contain userinfo (user@)")
	}
	if strings.Contains(authority, "%") {
		return "", 0, "", errors.New("host must not contain percent-escapes or zones")
	}
	hostPart, portPart := authority, ""
	if strings.HasPrefix(authority, "[") {
		end := strings.Index(authority, "]")
		if end < 0 {
			return "", 0, "", errors.New("unterminated [ in host")
		}
		hostPart, portPart = authority[1:end], authority[end+1:]
		a, perr := netip.ParseAddr(hostPart)
		if perr != nil || !a.Is6() || a.Is4In6() {
			return "", 0, "", fmt.Errorf("[%s] is not an IPv6 address", hostPart)
		}
		host = a.String()
	} else {
		if i := strings.LastIndex(authority, ":"); i >= 0 {
			hostPart, portPart = authority[:i], authority[i:]
		}
		if a, perr := netip.ParseAddr(hostPart); perr == nil {
			if !a.Is4() || a.String() != hostPart {
				return "", 0, "", fmt.Errorf("%q: IPv6 literals go in brackets and IPv4 in dotted decimal", hostPart)
			}
			host = a.String()
		} else {
			if hostPart != strings.ToLower(hostPart) {
				return "", 0, "", fmt.Errorf("host %q must be lowercase", hostPart)
			}
			if err := checkHostName(hostPart, true); err != nil {
				return "", 0, "", err
			}
			host = hostPart
		}
	}
	port = 443
	if portPart != "" {
		p, ok := strings.CutPrefix(portPart, ":")
		if !ok {
			return "", 0, "", fmt.Errorf("unexpected %q after the host", portPart)
		}
		if port, err = parsePort(p); err != nil {
			return "", 0, "", err
		}
	}
	if err := checkPath(path, true); err != nil {
		return "", 0, "", err
	}
	if path != "/" && strings.HasSuffix(path, "/") {
		return "", 0, "", fmt.Errorf("path prefix %q: drop the trailing slash; prefixes match on whole segments", path)
	}
	return host, port, path, nil
}

// parsePort accepts 1–65535 in decimal without sign or leading zeros, so
// the port a reviewer reads is the only way to write it.
func parsePort(p string) (int, error) {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return 0, fmt.Errorf("port %q must be a decimal from 1 to 65535 without leading zeros", p)
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %q must be decimal", p)
		}
	}
	n, _ := strconv.Atoi(p)
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is out of range", p)
	}
	return n, nil
}

// checkHostName checks a lowercase DNS name. With wildcard set, a single
// leading "*." over at least two labels is allowed: "*.acme.example" but
// not "*.example", "a.*.example" or "*acme.example".
func checkHostName(h string, wildcard bool) error {
	if h == "" {
		return errors.New("host is empty")
	}
	if len(h) > 253 {
		return fmt.Errorf("host %q is longer than 253 characters", h)
	}
	if strings.HasSuffix(h, ".") {
		return fmt.Errorf("host %q: drop the trailing dot", h)
	}
	labels := strings.Split(h, ".")
	if labels[0] == "*" && wildcard {
		labels = labels[1:]
		if len(labels) < 2 {
			return fmt.Errorf("host %q: a wildcard must sit over at least two labels (*.acme.example)", h)
		}
	}
	for _, l := range labels {
		if strings.Contains(l, "*") {
			return fmt.Errorf("host %q: the only wildcard allowed is a single leading \"*.\"", h)
		}
		if l == "" || len(l) > 63 {
			return fmt.Errorf("host %q has an empty label or one longer than 63 characters", h)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("host %q: a label may not start or end with '-'", h)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("host %q: only a-z, 0-9 and '-' are allowed; write international names in punycode (xn--…)", h)
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		// "10.1" or "1.2.3" are read as addresses by some resolvers.
		return fmt.Errorf("host %q ends in an all-digit label; write IP addresses in full", h)
	}
	return nil
}

// checkPath is CheckPath with the path named in the message, for the
// document's errors. In the document (entry set) no percent-escape is
// allowed at all.
func checkPath(p string, entry bool) error {
	if r := pathProblem(p); r != "" {
		return fmt.Errorf("path %q %s", p, r)
	}
	if entry && strings.Contains(p, "%") {
		return fmt.Errorf("path prefix %q must not contain percent-escapes", p)
	}
	return nil
}

// SHA256Hex returns the lowercase hex sha256 of raw, as sha256sum prints it.
func SHA256Hex(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

package allowlist

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
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
		return nil, syntaxErr(1, SyntaxBOM, "document starts with a byte order mark; save it as UTF-8 without BOM")
	}
	if !utf8.Valid(raw) {
		return nil, syntaxErr(invalidUTF8Line(raw), SyntaxNotUTF8, "document is not valid UTF-8")
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
		return nil, yamlError(err, "")
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlError(err, "trailing data after the document: ")
		}
		return nil, syntaxErr(extra.Line, SyntaxSecondDocument, "trailing data: a second YAML document is not allowed")
	}
	if err := checkNode(&root, ""); err != nil {
		return nil, err
	}
	if len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, syntaxErr(root.Line, SyntaxNotMapping, "the document must be a mapping")
	}
	if err := checkTopLevel(root.Content[0]); err != nil {
		return nil, err
	}
	if err := checkLayout(raw, root.Content[0]); err != nil {
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
	r.exportLines = exportLines(root.Content[0])
	return r.document(lines)
}

// reYAMLLine finds the line the YAML parser names in its errors.
var reYAMLLine = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// yamlError turns the YAML parser's "yaml: line N: …" into a SyntaxError
// naming line N; other errors stay plain malformed errors.
func yamlError(err error, prefix string) error {
	if m := reYAMLLine.FindStringSubmatch(err.Error()); m != nil {
		if n, cerr := strconv.Atoi(m[1]); cerr == nil {
			return syntaxErr(n, SyntaxYAML, "%s%s", prefix, m[2])
		}
	}
	return malformed("%s%v", prefix, err)
}

// invalidUTF8Line returns the line of the first byte that is not UTF-8.
func invalidUTF8Line(raw []byte) int {
	line := 1
	for i := 0; i < len(raw); {
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size <= 1 {
			return line
		}
		if r == '\n' {
			line++
		}
		i += size
	}
	return line
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
	Exports      []rawExport      `yaml:"exports"`
	exportLines  []int
}

var (
	reEnvironment = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	reVersion     = regexp.MustCompile(`^[1-9][0-9]{0,15}$`)
	reSHA256      = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

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
	if d.Exports, err = exports(r.Exports, r.exportLines, ids); err != nil {
		return nil, err
	}
	return &d, nil
}

// SHA256Hex returns the lowercase hex sha256 of raw, as sha256sum prints it.
func SHA256Hex(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

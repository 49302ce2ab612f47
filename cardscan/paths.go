package cardscan

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Paths name the values of a body that an allowlist entry's response rules
// treat differently from the rest: processor identifiers that are kept
// although they look like card numbers, and returned cards that are
// tokenized. The allowlist declares them and the forwarder applies them;
// both parse them here, so that what an auditor signs is what the gateway
// matches.
//
// The syntax is a small, strict subset of the usual notations, and
// anything outside it is refused with a *PathError:
//
//   - JSON: "$" then steps: .key (ASCII letters, digits, '_' and '-'),
//     ['key'] (any printable text but ' and \, for keys with dots or
//     spaces), [N] (an array index, 0–999999) and [*] (every element of
//     an array; it never matches object members). "$.a.b",
//     "$.a[*].b", "$.a[0].b", "$['odd.key']". Keys are compared with the
//     body's keys after JSON unescaping, byte for byte. No recursive
//     descent (..), filters, slices or unions.
//   - XML: "/" then element names from the root, separated by "/", and
//     optionally "@name" as the last step for an attribute:
//     "/reply/orderStatus/payment/schemeResponse/transactionIdentifier",
//     "/reply/order/@id". Names are local names: a namespace prefix is
//     refused in the path and ignored in the body, since processors change
//     prefixes freely and a prefix means nothing without its declaration.
//     Names are ASCII ([A-Za-z_][A-Za-z0-9._-]*). No "//", "*", "..",
//     predicates or text() steps.
//   - Form (application/x-www-form-urlencoded): "form:" then the key as it
//     reads after decoding, 1–128 printable ASCII characters without
//     spaces: "form:network_transaction_id", "form:card[number]".
//
// A path has at most MaxPathDepth steps (an XML attribute counts as one).

// Limits on paths.
const (
	// MaxPaths is the most paths one list of an allowlist entry may hold.
	MaxPaths = 32
	// MaxPathDepth is the most steps one path may have.
	MaxPathDepth = 16
	// maxPathBytes bounds the text of one path.
	maxPathBytes = 512
	// maxKeyBytes bounds one JSON key or form key.
	maxKeyBytes = 128
	// maxIndex is the largest JSON array index a path may name.
	maxIndex = 999999
)

// PathKind says which body type a path applies to. A path of one kind
// never matches a body of another.
type PathKind uint8

// Path kinds. The zero value is no kind: the zero Path matches nothing.
const (
	PathJSON PathKind = iota + 1
	PathXML
	PathForm
)

func (k PathKind) String() string {
	switch k {
	case PathJSON:
		return "json"
	case PathXML:
		return "xml"
	case PathForm:
		return "form"
	}
	return "none"
}

type stepKind uint8

const (
	stepKey   stepKind = iota + 1 // JSON object member
	stepIndex                     // JSON array element N
	stepAny                       // JSON array element, any
	stepElem                      // XML element
	stepAttr                      // XML attribute (last step only)
)

type step struct {
	kind  stepKind
	name  string // key, element or attribute local name
	index int
}

// Path is a parsed path. The zero value matches nothing.
type Path struct {
	kind  PathKind
	steps []step // JSON and XML
	key   string // form
	src   string
}

// PathProblem is a stable code for what is wrong with a path.
type PathProblem string

// Path problems.
const (
	PathEmpty        PathProblem = "empty"
	PathTooLong      PathProblem = "too_long"
	PathUnknownKind  PathProblem = "unknown_kind"  // not "$", "/" or "form:"
	PathNoSteps      PathProblem = "no_steps"      // "$" or "/" alone: the whole body
	PathTooDeep      PathProblem = "too_deep"      // more than MaxPathDepth steps
	PathBadKey       PathProblem = "bad_key"       // a key or name outside its character set
	PathBadIndex     PathProblem = "bad_index"     // not 0–999999 without leading zeros
	PathUnsupported  PathProblem = "unsupported"   // "..", "//", filters, wildcards outside [*], …
	PathNamespace    PathProblem = "namespace"     // an XML name with a prefix
	PathAttrNotLast  PathProblem = "attr_not_last" // an XML @attribute before the last step
	PathBadCharacter PathProblem = "bad_character" // a control character, or invalid UTF-8
)

// PathError is ParsePath's error. It says what is wrong and where, and
// does not repeat the path: the caller adds it where that is safe.
type PathError struct {
	Problem PathProblem
	Offset  int    // byte offset in the path where the problem starts
	Detail  string // a sentence for a person
}

func (e *PathError) Error() string {
	return "cardscan: path: " + e.Detail + " (" + string(e.Problem) + " at byte " + strconv.Itoa(e.Offset) + ")"
}

func pathErr(p PathProblem, off int, detail string) *PathError {
	return &PathError{Problem: p, Offset: off, Detail: detail}
}

// ParsePath parses one path. Errors are *PathError.
func ParsePath(s string) (Path, error) {
	switch {
	case s == "":
		return Path{}, pathErr(PathEmpty, 0, "is empty")
	case len(s) > maxPathBytes:
		return Path{}, pathErr(PathTooLong, maxPathBytes, "is longer than "+strconv.Itoa(maxPathBytes)+" bytes")
	case !utf8.ValidString(s):
		return Path{}, pathErr(PathBadCharacter, 0, "is not valid UTF-8")
	}
	for i, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return Path{}, pathErr(PathBadCharacter, i, "holds a control character")
		}
	}
	var p Path
	var err *PathError
	switch {
	case s[0] == '$':
		p, err = parseJSONPath(s)
	case s[0] == '/':
		p, err = parseXMLPath(s)
	case strings.HasPrefix(s, "form:"):
		p, err = parseFormPath(s)
	default:
		return Path{}, pathErr(PathUnknownKind, 0, `must start with "$" (JSON), "/" (XML) or "form:" (form key)`)
	}
	if err != nil {
		return Path{}, err
	}
	if len(p.steps) > MaxPathDepth {
		return Path{}, pathErr(PathTooDeep, 0, "has more than "+strconv.Itoa(MaxPathDepth)+" steps")
	}
	p.src = s
	return p, nil
}

// MustParsePath is ParsePath that panics on an error, for tests and
// constants.
func MustParsePath(s string) Path {
	p, err := ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

func isKeyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

func parseJSONPath(s string) (Path, *PathError) {
	p := Path{kind: PathJSON}
	i := 1
	for i < len(s) {
		if len(p.steps) == MaxPathDepth {
			return Path{}, pathErr(PathTooDeep, i, "has more than "+strconv.Itoa(MaxPathDepth)+" steps")
		}
		switch s[i] {
		case '.':
			i++
			if i < len(s) && s[i] == '.' {
				return Path{}, pathErr(PathUnsupported, i-1, `recursive descent ("..") is not supported; name every step`)
			}
			j := i
			for j < len(s) && isKeyByte(s[j]) {
				j++
			}
			if j == i {
				if j < len(s) && s[j] == '*' {
					return Path{}, pathErr(PathUnsupported, j, `".*" is not supported; use [*] for array elements`)
				}
				return Path{}, pathErr(PathBadKey, j, `a ".key" step needs ASCII letters, digits, '_' or '-'; write other keys as ['key']`)
			}
			if j-i > maxKeyBytes {
				return Path{}, pathErr(PathBadKey, i, "a key is longer than "+strconv.Itoa(maxKeyBytes)+" bytes")
			}
			p.steps = append(p.steps, step{kind: stepKey, name: s[i:j]})
			i = j
		case '[':
			st, n, err := parseBracket(s, i)
			if err != nil {
				return Path{}, err
			}
			p.steps = append(p.steps, st)
			i = n
		default:
			return Path{}, pathErr(PathUnsupported, i, `expected ".key", "['key']", "[N]" or "[*]"`)
		}
	}
	if len(p.steps) == 0 {
		return Path{}, pathErr(PathNoSteps, 0, `"$" alone would select the whole body; name a field`)
	}
	return p, nil
}

// parseBracket parses the step at s[i] == '['; it returns the step and
// the offset after it.
func parseBracket(s string, i int) (step, int, *PathError) {
	rest := s[i+1:]
	switch {
	case strings.HasPrefix(rest, "*]"):
		return step{kind: stepAny}, i + 3, nil
	case strings.HasPrefix(rest, "'"):
		end := strings.IndexByte(rest[1:], '\'')
		if end < 0 {
			return step{}, 0, pathErr(PathBadKey, i, "a ['key'] step is not closed")
		}
		key := rest[1 : 1+end]
		if key == "" || len(key) > maxKeyBytes || strings.ContainsRune(key, '\\') {
			return step{}, 0, pathErr(PathBadKey, i, "a ['key'] key must be 1–128 bytes without a backslash (no escapes)")
		}
		after := i + 1 + 1 + end + 1
		if after >= len(s) || s[after] != ']' {
			return step{}, 0, pathErr(PathBadKey, after, `a ['key'] step must end with "']"`)
		}
		return step{kind: stepKey, name: key}, after + 1, nil
	}
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j == 0 || j >= len(rest) || rest[j] != ']' {
		return step{}, 0, pathErr(PathUnsupported, i, `a bracket step must be [N], [*] or ['key']: no filters, slices, unions or double quotes`)
	}
	digits := rest[:j]
	if (len(digits) > 1 && digits[0] == '0') || len(digits) > len(strconv.Itoa(maxIndex)) {
		return step{}, 0, pathErr(PathBadIndex, i+1, "an index must be 0 to 999999 without leading zeros")
	}
	n, _ := strconv.Atoi(digits) // digits only, at most 6: cannot fail
	return step{kind: stepIndex, index: n}, i + 1 + j + 1, nil
}

// xmlNameProblem says what is wrong with s as one step of an XML path:
// an ASCII name without a prefix. It returns "" when nothing is.
func xmlNameProblem(s string) (PathProblem, string) {
	if s == "" {
		return PathUnsupported, `an empty step ("//" or a trailing "/") is not supported; name every element from the root`
	}
	switch s {
	case "*", ".", "..":
		return PathUnsupported, `"*", "." and ".." steps are not supported; name every element`
	}
	if strings.ContainsRune(s, ':') {
		return PathNamespace, "names are local names: drop the namespace prefix (prefixes are ignored in the body)"
	}
	if strings.ContainsAny(s, "[]()=") {
		return PathUnsupported, "predicates and functions are not supported"
	}
	c := s[0]
	if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_') {
		return PathBadKey, "a name must start with an ASCII letter or '_'"
	}
	for i := 1; i < len(s); i++ {
		if !isKeyByte(s[i]) && s[i] != '.' {
			return PathBadKey, "a name may hold only ASCII letters, digits, '_', '-' and '.'"
		}
	}
	if len(s) > maxKeyBytes {
		return PathBadKey, "a name is longer than " + strconv.Itoa(maxKeyBytes) + " bytes"
	}
	return "", ""
}

func parseXMLPath(s string) (Path, *PathError) {
	p := Path{kind: PathXML}
	if s == "/" {
		return Path{}, pathErr(PathNoSteps, 0, `"/" alone would select the whole body; name an element`)
	}
	off := 1
	parts := strings.Split(s[1:], "/")
	if len(parts) > MaxPathDepth {
		return Path{}, pathErr(PathTooDeep, 0, "has more than "+strconv.Itoa(MaxPathDepth)+" steps")
	}
	for i, part := range parts {
		st := step{kind: stepElem, name: part}
		if name, ok := strings.CutPrefix(part, "@"); ok {
			if i != len(parts)-1 {
				return Path{}, pathErr(PathAttrNotLast, off, "an @attribute can only be the last step")
			}
			if i == 0 {
				return Path{}, pathErr(PathUnsupported, off, "an @attribute needs its element: /root/@name")
			}
			st = step{kind: stepAttr, name: name}
		}
		if prob, detail := xmlNameProblem(st.name); prob != "" {
			return Path{}, pathErr(prob, off, detail)
		}
		p.steps = append(p.steps, st)
		off += len(part) + 1
	}
	return p, nil
}

func parseFormPath(s string) (Path, *PathError) {
	key := s[len("form:"):]
	if key == "" {
		return Path{}, pathErr(PathNoSteps, len("form:"), "a form path needs a key: form:KEY")
	}
	if len(key) > maxKeyBytes {
		return Path{}, pathErr(PathBadKey, len("form:"), "a form key is longer than "+strconv.Itoa(maxKeyBytes)+" bytes")
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] >= 0x7f {
			return Path{}, pathErr(PathBadKey, len("form:")+i, "a form key is written decoded, in printable ASCII without spaces")
		}
	}
	return Path{kind: PathForm, key: key}, nil
}

// String returns the path as it was written.
func (p Path) String() string { return p.src }

// Kind returns the body type the path applies to.
func (p Path) Kind() PathKind { return p.kind }

// IsZero reports whether p is the zero Path.
func (p Path) IsZero() bool { return p.kind == 0 }

// Depth returns the number of steps (1 for a form path).
func (p Path) Depth() int {
	if p.kind == PathForm {
		return 1
	}
	return len(p.steps)
}

// Equal reports whether p and q select the same values, whatever their
// spelling: "$.a" and "$['a']" are equal.
func (p Path) Equal(q Path) bool {
	if p.kind != q.kind || p.key != q.key || len(p.steps) != len(q.steps) {
		return false
	}
	for i := range p.steps {
		if p.steps[i] != q.steps[i] {
			return false
		}
	}
	return true
}

// SameParent reports whether p and q are siblings: of one kind, and equal
// but for their last step. Every form path is a sibling of every other
// (a form is flat). A returned card's expiry paths must be siblings of
// its number path, so that each number pairs with the expiry of its own
// object or element.
func SameParent(p, q Path) bool {
	if p.kind != q.kind || p.kind == 0 {
		return false
	}
	if p.kind == PathForm {
		return true
	}
	if len(p.steps) != len(q.steps) || len(p.steps) == 0 {
		return false
	}
	for i := 0; i < len(p.steps)-1; i++ {
		if p.steps[i] != q.steps[i] {
			return false
		}
	}
	return true
}

// The line layout of a document: the checks that make what grep, diff and
// a reviewer's eye read the same as what the YAML parser reads.

package allowlist

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SyntaxCode names what a SyntaxError refused. Codes are stable strings
// for tests, logs and the CLI.
type SyntaxCode string

// Syntax codes.
const (
	SyntaxBOM             SyntaxCode = "byte_order_mark"
	SyntaxNotUTF8         SyntaxCode = "not_utf8"
	SyntaxCarriageReturn  SyntaxCode = "carriage_return"
	SyntaxTab             SyntaxCode = "tab"
	SyntaxControl         SyntaxCode = "control_character"
	SyntaxLineSeparator   SyntaxCode = "line_separator"
	SyntaxFormatCharacter SyntaxCode = "format_character"
	SyntaxYAML            SyntaxCode = "yaml"            // the YAML parser refused the text
	SyntaxSecondDocument  SyntaxCode = "second_document" // "---" or "..." then more
	SyntaxAlias           SyntaxCode = "alias"
	SyntaxAnchor          SyntaxCode = "anchor"
	SyntaxTag             SyntaxCode = "tag"
	SyntaxMergeKey        SyntaxCode = "merge_key"
	SyntaxKeyForm         SyntaxCode = "key_form" // a quoted, complex or non-scalar key
	SyntaxDuplicateKey    SyntaxCode = "duplicate_key"
	SyntaxNotMapping      SyntaxCode = "not_a_mapping"
	SyntaxFlowMapping     SyntaxCode = "flow_mapping"
	SyntaxValueNextLine   SyntaxCode = "value_on_next_line"
	SyntaxEmptyValue      SyntaxCode = "empty_value" // "key:" with nothing after it
	SyntaxBlockScalar     SyntaxCode = "block_scalar"
	SyntaxMultiLine       SyntaxCode = "multi_line_value" // a value that continues onto another line
	SyntaxTopLevelLine    SyntaxCode = "top_level_line"   // a column-0 line that is not exactly "key: value"
	SyntaxKeySpacing      SyntaxCode = "key_spacing"      // "key : value", "key:  value"
	SyntaxDocumentMarker  SyntaxCode = "document_marker"  // "---", "...", a %directive
)

// SyntaxError is ParseUnverified's refusal of a form that a reviewer
// reading the file with grep, diff or a terminal could read differently
// from the gateway. It matches ErrMalformed with errors.Is.
type SyntaxError struct {
	Line int // 1-based
	Code SyntaxCode
	Msg  string // what is wrong and how to write it instead
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("allowlist: line %d: %s: %v", e.Line, e.Msg, ErrMalformed)
}

func (e *SyntaxError) Unwrap() error { return ErrMalformed }

func syntaxErr(line int, code SyntaxCode, format string, args ...any) *SyntaxError {
	return &SyntaxError{Line: line, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// topLevelLine is the only form a column-0 line may take besides a
// comment: a lowercase key, a colon right after it, and either nothing
// (a block collection follows, indented), "[]", a double-quoted string
// without escapes, or a bare token; then a comment or trailing spaces at
// most. It is what AUDITING.md's `grep '^key:'` and its sed expression
// read.
var topLevelLine = regexp.MustCompile(`^[a-z][a-z0-9_]*:(?: (?:\[\]|"[^"\\]*"|[A-Za-z0-9][A-Za-z0-9._:/@+-]*))?(?: +#.*| *)$`)

// checkLayout ties the text to the node tree, line by line:
//   - every line at column 0 is a comment or a top-level "key: value"
//     line in the form topLevelLine allows, and it is where the tree has a
//     top-level key: no value continues onto a column-0 line, so grep
//     '^version:' finds the version and nothing else;
//   - every other line that is not blank or a comment starts a node: no
//     scalar or flow collection spans lines, so each line shows one
//     complete key or item;
//   - a quoted scalar closes on its own line (a blank or '#' line inside
//     one would otherwise pass the rule above);
//   - a key is followed directly by ':' and then one space or the end of
//     the line ("url : x" is the key url to YAML, but not to grep 'url:').
func checkLayout(raw []byte, root *yaml.Node) error {
	lines := strings.Split(string(raw), "\n")
	starts := map[int]bool{}
	if err := walkLayout(root, lines, starts); err != nil {
		return err
	}
	top := map[int]bool{}
	for i := 0; i < len(root.Content); i += 2 {
		top[root.Content[i].Line] = true
	}
	for i, l := range lines {
		n := i + 1
		body := strings.TrimLeft(l, " ")
		switch {
		case body == "" || body[0] == '#':
			continue
		case len(body) == len(l): // column 0
			if strings.HasPrefix(l, "---") || strings.HasPrefix(l, "...") || l[0] == '%' {
				return syntaxErr(n, SyntaxDocumentMarker, "document markers and directives (---, ..., %%) are not allowed")
			}
			if !topLevelLine.MatchString(l) {
				return syntaxErr(n, SyntaxTopLevelLine, "a line at column 0 must be a comment or exactly `key: value` (lowercase key, no space before the colon, one after, a bare or double-quoted value on this line)")
			}
			if !top[n] {
				return syntaxErr(n, SyntaxMultiLine, "this line at column 0 is inside a value, not a top-level key; write every value on its key's line")
			}
		case !starts[n]:
			return syntaxErr(n, SyntaxMultiLine, "this line continues a value or list from an earlier line; write each value and each [...] list on one line")
		}
	}
	return nil
}

// walkLayout records the line of every scalar and flow collection in
// starts, and checks keys and quoted scalars against the text.
func walkLayout(n *yaml.Node, lines []string, starts map[int]bool) error {
	switch n.Kind {
	case yaml.ScalarNode:
		starts[n.Line] = true
		if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			return syntaxErr(n.Line, SyntaxBlockScalar, "block scalars (| or >) are not allowed; write the value on one line")
		}
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 && !closesOnLine(lines, n) {
			return syntaxErr(n.Line, SyntaxMultiLine, "a quoted value must end on the line it starts")
		}
	case yaml.SequenceNode:
		if n.Style&yaml.FlowStyle != 0 {
			// […] is one line: its items start no lines of their own, so
			// a list that wraps leaves a line that starts nothing.
			if l := lastLine(n); l != n.Line {
				return syntaxErr(n.Line, SyntaxMultiLine, "a [...] list must end on the line it starts")
			}
			starts[n.Line] = true
			return nil
		}
	case yaml.MappingNode:
		if n.Style&yaml.FlowStyle != 0 {
			// grep '^ *key:' misses a key inside {…}.
			return syntaxErr(n.Line, SyntaxFlowMapping, "flow mappings ({…}) are not allowed; write one key per line")
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind == yaml.ScalarNode && v.Style == 0 && v.Value == "" {
				// "key:" alone is null to YAML; spelled out, the reader
				// sees the same empty value the gateway does.
				return syntaxErr(k.Line, SyntaxEmptyValue, "%s: has no value; write \"\" for an empty string or [] for an empty list", k.Value)
			}
			if err := checkKeySpacing(lines, k, v); err != nil {
				return err
			}
			if (v.Kind == yaml.ScalarNode || v.Style&yaml.FlowStyle != 0) && v.Line != k.Line {
				return syntaxErr(k.Line, SyntaxValueNextLine, "%s: write the value on the same line as the key", k.Value)
			}
		}
	}
	for _, c := range n.Content {
		if err := walkLayout(c, lines, starts); err != nil {
			return err
		}
	}
	return nil
}

// lastLine returns the last line on which n or a node under it starts.
func lastLine(n *yaml.Node) int {
	l := n.Line
	for _, c := range n.Content {
		l = max(l, lastLine(c))
	}
	return l
}

// lineRunes returns line n (1-based) as runes: yaml.v3 counts columns in
// characters, not bytes.
func lineRunes(lines []string, n int) []rune {
	if n < 1 || n > len(lines) {
		return nil
	}
	return []rune(lines[n-1])
}

// closesOnLine reports whether the quoted scalar n ends on its first line.
func closesOnLine(lines []string, n *yaml.Node) bool {
	l := lineRunes(lines, n.Line)
	start := n.Column - 1
	if start < 0 || start >= len(l) {
		return false
	}
	q := l[start]
	for i := start + 1; i < len(l); i++ {
		switch {
		case q == '"' && l[i] == '\\':
			i++
		case q == '\'' && l[i] == '\'' && i+1 < len(l) && l[i+1] == '\'':
			i++
		case l[i] == q:
			return true
		}
	}
	return false
}

// checkKeySpacing requires "key: value" or "key:" at the end of the line
// (a block collection follows): the colon right after the key and one
// space before a value on the same line.
func checkKeySpacing(lines []string, k, v *yaml.Node) error {
	l := lineRunes(lines, k.Line)
	end := k.Column - 1 + len([]rune(k.Value))
	if k.Column < 1 || end >= len(l) || string(l[k.Column-1:end]) != k.Value || l[end] != ':' {
		return syntaxErr(k.Line, SyntaxKeySpacing, "key %q: write the colon right after the key (`%s: value`)", k.Value, k.Value)
	}
	if v.Line == k.Line && v.Column != k.Column+len([]rune(k.Value))+2 {
		return syntaxErr(k.Line, SyntaxKeySpacing, "key %q: put exactly one space between the colon and the value", k.Value)
	}
	return nil
}

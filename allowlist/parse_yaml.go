// The YAML-level checks of ParseUnverified's first pass: the characters,
// node kinds and layout that a reviewer reading the file with grep or diff
// could misread.

package allowlist

import (
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

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
			// A tab shows as any width: the indentation a reviewer sees is
			// not the one YAML counts.
			return syntaxErr(line, SyntaxTab, "tab character; indent and separate with spaces")
		case r == '\r':
			return syntaxErr(line, SyntaxCarriageReturn, "carriage return; save the file with LF line ends")
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return syntaxErr(line, SyntaxControl, "control character U+%04X", r)
		case r == 0x2028 || r == 0x2029:
			return syntaxErr(line, SyntaxLineSeparator, "Unicode line or paragraph separator U+%04X, which YAML reads as a line break but diff and grep do not", r)
		case unicode.Is(unicode.Cf, r):
			return syntaxErr(line, SyntaxFormatCharacter, "invisible format character U+%04X", r)
		}
		i += size
	}
	return nil
}

// checkNode walks the tree refusing what a plain reading would not show.
func checkNode(n *yaml.Node, at string) error {
	if n.Kind == yaml.AliasNode {
		return syntaxErr(n.Line, SyntaxAlias, "%saliases are not allowed; write the value out", at)
	}
	if n.Anchor != "" {
		return syntaxErr(n.Line, SyntaxAnchor, "%sanchors are not allowed", at)
	}
	if n.Style&yaml.TaggedStyle != 0 {
		return syntaxErr(n.Line, SyntaxTag, "%sexplicit tags (%s) are not allowed", at, n.Tag)
	}
	if n.Kind == yaml.MappingNode {
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return syntaxErr(k.Line, SyntaxKeyForm, "%skeys must be plain strings", at)
			}
			if k.Style != 0 {
				// Quoted keys defeat `grep '^version:'`, which AUDITING.md
				// tells reviewers they can rely on.
				return syntaxErr(k.Line, SyntaxKeyForm, "%skey %q must not be quoted", at, k.Value)
			}
			if k.Value == "<<" {
				return syntaxErr(k.Line, SyntaxMergeKey, "%smerge keys are not allowed", at)
			}
			if first, dup := seen[k.Value]; dup {
				return syntaxErr(k.Line, SyntaxDuplicateKey, "%sduplicate key %q (first at line %d)", at, k.Value, first)
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
		return syntaxErr(m.Line, SyntaxFlowMapping, "the document must be a block mapping, not {…}")
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if v.Kind == yaml.ScalarNode && v.Line != k.Line {
			return syntaxErr(k.Line, SyntaxValueNextLine, "%s: write the value on the same line as the key", k.Value)
		}
		if v.Kind == yaml.ScalarNode && v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			return syntaxErr(k.Line, SyntaxBlockScalar, "%s: block scalars (| or >) are not allowed here", k.Value)
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

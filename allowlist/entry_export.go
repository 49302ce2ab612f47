// Export recipients: the age keys that `cardgate cards export` may
// encrypt the stored cards to. An export sends every card at once, so it
// is a destination like any other and needs the same signed review.

package allowlist

import (
	"fmt"

	"filippo.io/age"
	"go.yaml.in/yaml/v3"
)

// MaxExports caps the export recipients: a migration names one, and a
// long list is a review smell.
const MaxExports = 16

// Export is an age X25519 recipient that exports may be encrypted to.
type Export struct {
	// ID names the export in audit records (their destination field) and
	// on the command line; it is spelled like an entry id and is unique
	// among entries and exports.
	ID      string `yaml:"id"`
	Purpose string `yaml:"purpose"`
	Owner   string `yaml:"owner"`
	// Recipient is the age X25519 recipient ("age1…"), as age-keygen
	// prints it for the receiving vault's key.
	Recipient string `yaml:"recipient"`
	// Line is the entry's line in the file, for messages.
	Line int `yaml:"-"`
}

type rawExport struct {
	ID        *string `yaml:"id"`
	Purpose   *string `yaml:"purpose"`
	Owner     *string `yaml:"owner"`
	Recipient *string `yaml:"recipient"`
}

// exports checks the exports list. ids are the destination ids, which an
// export id must not repeat.
func exports(raw []rawExport, lines []int, ids map[string]int) ([]Export, error) {
	if raw != nil && len(raw) == 0 {
		return nil, malformed("field exports: an empty list allows nothing; remove the key")
	}
	if len(raw) > MaxExports {
		return nil, malformed("field exports: %d recipients, more than the limit of %d", len(raw), MaxExports)
	}
	var out []Export
	recipients := map[string]string{}
	for i, r := range raw {
		line := 0
		if i < len(lines) {
			line = lines[i]
		}
		at := fmt.Sprintf("line %d: exports[%d]", line, i)
		e := Export{Line: line}
		var err error
		if e.ID, err = required(r.ID, at+".id"); err != nil {
			return nil, err
		}
		if !ValidID(e.ID) {
			return nil, malformed("%s.id: %q must be lowercase letters, digits, '.', '-' or '_'", at, e.ID)
		}
		if first, dup := ids[e.ID]; dup {
			return nil, malformed("%s.id: duplicate id %q (first at line %d)", at, e.ID, first)
		}
		ids[e.ID] = line
		at = fmt.Sprintf("%s (id %q)", at, e.ID)
		if e.Purpose, err = required(r.Purpose, at+".purpose"); err != nil {
			return nil, err
		}
		if e.Owner, err = required(r.Owner, at+".owner"); err != nil {
			return nil, err
		}
		if e.Recipient, err = required(r.Recipient, at+".recipient"); err != nil {
			return nil, err
		}
		rcpt, err := age.ParseX25519Recipient(e.Recipient)
		if err != nil || rcpt.String() != e.Recipient {
			return nil, malformed("%s.recipient: not an age X25519 recipient (age1…, as age-keygen prints it)", at)
		}
		if other, dup := recipients[e.Recipient]; dup {
			return nil, malformed("%s.recipient: the same recipient as export %q", at, other)
		}
		recipients[e.Recipient] = e.ID
		out = append(out, e)
	}
	return out, nil
}

// ExportTo returns the export recipient named id, or nil when the
// document names none: the caller refuses the export.
func (d *Document) ExportTo(id string) *Export {
	for i := range d.Exports {
		if d.Exports[i].ID == id {
			return &d.Exports[i]
		}
	}
	return nil
}

// exportLines returns the line of each entry under "exports".
func exportLines(m *yaml.Node) []int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "exports" && m.Content[i+1].Kind == yaml.SequenceNode {
			var lines []int
			for _, e := range m.Content[i+1].Content {
				lines = append(lines, e.Line)
			}
			return lines
		}
	}
	return nil
}

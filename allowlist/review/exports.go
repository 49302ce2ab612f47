// Export recipients in "show" and "diff".

package review

import (
	"fmt"

	"github.com/cardgate/cardgate/allowlist"
)

// ExportLines lists a document's export recipients for "show", one line
// each, after a blank line; nothing when there are none.
func ExportLines(d *allowlist.Document) []string {
	if len(d.Exports) == 0 {
		return nil
	}
	out := []string{"", "EXPORT RECIPIENTS (cardgate cards export may encrypt every stored card to these)"}
	for _, e := range d.Exports {
		out = append(out, fmt.Sprintf("%s  %s  purpose %q  owner %q", e.ID, e.Recipient, e.Purpose, e.Owner))
	}
	return out
}

// diffExports lists the changes to the export recipients. A new
// recipient, or a new key under an existing id, widens risk: every stored
// card may then be exported to whoever holds its identity.
func diffExports(old, new *allowlist.Document) []Change {
	var c []Change
	oldByID := map[string]allowlist.Export{}
	for _, e := range old.Exports {
		oldByID[e.ID] = e
	}
	newIDs := map[string]bool{}
	for _, n := range new.Exports {
		newIDs[n.ID] = true
		o, ok := oldByID[n.ID]
		switch {
		case !ok:
			c = append(c, Change{Widens: true, Text: fmt.Sprintf("+ export recipient %s: %s (purpose %q, owner %q); every stored card may be exported to it", n.ID, n.Recipient, n.Purpose, n.Owner)})
		case o.Recipient != n.Recipient:
			c = append(c, Change{Widens: true, Text: fmt.Sprintf("~ export recipient %s: key %s -> %s", n.ID, o.Recipient, n.Recipient)})
		}
		if ok && (o.Purpose != n.Purpose || o.Owner != n.Owner) {
			c = append(c, Change{Text: fmt.Sprintf("~ export recipient %s: purpose %q owner %q -> purpose %q owner %q", n.ID, o.Purpose, o.Owner, n.Purpose, n.Owner)})
		}
	}
	for _, o := range old.Exports {
		if !newIDs[o.ID] {
			c = append(c, Change{Text: fmt.Sprintf("- export recipient %s: %s", o.ID, o.Recipient)})
		}
	}
	return c
}

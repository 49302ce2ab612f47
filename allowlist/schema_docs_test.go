package allowlist

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocsCoverEverySchemaKey: every key of the format, as the schema
// lists it, has a row in a table of docs/allowlist.md, either its own
// (first cell `key` or `parent.key`) or its parent's row naming it
// (`number`, `exp_month` and `exp_year` in the `response.returned_cards`
// row). A key added to the parser and the schema without a word in the
// reference fails here.
func TestDocsCoverEverySchemaKey(t *testing.T) {
	raw, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	defs, _ := root["$defs"].(map[string]any)
	type key struct{ parent, name string }
	var keys []key
	seen := map[key]bool{}
	var walk func(parent string, v any, followed map[string]bool)
	walk = func(parent string, v any, followed map[string]bool) {
		switch v := v.(type) {
		case []any:
			for _, x := range v {
				walk(parent, x, followed)
			}
		case map[string]any:
			for k, x := range v {
				switch k {
				case "$defs":
					// Reached through $ref, with the parent that uses it.
				case "properties":
					for name, sub := range x.(map[string]any) {
						if k := (key{parent, name}); !seen[k] {
							seen[k] = true
							keys = append(keys, k)
						}
						walk(name, sub, followed)
					}
				case "$ref":
					def, ok := strings.CutPrefix(x.(string), "#/$defs/")
					if !ok || defs[def] == nil {
						t.Fatalf("%s: $ref %v names no $defs entry", schemaFile, x)
					}
					if !followed[parent+"/"+def] {
						followed[parent+"/"+def] = true
						walk(parent, defs[def], followed)
					}
				default:
					walk(parent, x, followed)
				}
			}
		}
	}
	walk("", root, map[string]bool{})
	if len(keys) < 50 {
		t.Fatalf("found %d keys in %s; the walk missed some", len(keys), schemaFile)
	}

	md, err := os.ReadFile(filepath.Join("..", "docs", "allowlist.md"))
	if err != nil {
		t.Fatal(err)
	}
	var rows [][2]string // first cell, whole row
	for _, line := range strings.Split(string(md), "\n") {
		if cells := strings.Split(line, "|"); len(cells) > 3 && strings.HasPrefix(line, "| `") {
			rows = append(rows, [2]string{cells[1], line})
		}
	}
	names := func(cell, name string) bool {
		return strings.Contains(cell, "`"+name+"`") || strings.Contains(cell, "."+name+"`")
	}
	for _, k := range keys {
		documented := false
		for _, r := range rows {
			if names(r[0], k.name) || k.parent != "" && names(r[0], k.parent) && strings.Contains(r[1], "`"+k.name+"`") {
				documented = true
				break
			}
		}
		if !documented {
			where := "at the top level"
			if k.parent != "" {
				where = "under " + k.parent
			}
			t.Errorf("docs/allowlist.md has no table row for the key %q (%s)", k.name, where)
		}
	}
}

// TestDocsLimitsMatchCode: the rows of docs/allowlist.md's Limits table
// that have a constant here say its value.
func TestDocsLimitsMatchCode(t *testing.T) {
	md, err := os.ReadFile(filepath.Join("..", "docs", "allowlist.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, limits, ok := strings.Cut(string(md), "\n## Limits\n")
	if !ok {
		t.Fatal("docs/allowlist.md has no Limits section")
	}
	limits, _, _ = strings.Cut(limits, "\n## ")
	mib := func(n int) string { return fmt.Sprintf("%d MiB", n>>20) }
	want := []string{
		"| file size | " + mib(MaxDocumentBytes) + " |",
		fmt.Sprintf("| destinations | %d |", MaxDestinations),
		fmt.Sprintf("| `timeout` | %dm |", int(MaxTimeout.Minutes())),
		fmt.Sprintf("| `max_response_bytes` | %s (%d) |", mib(MaxResponseLimit), MaxResponseLimit),
		fmt.Sprintf("| `body.doctype` | %d bytes |", MaxDoctypeBytes),
		fmt.Sprintf("| `credentials` | %d names of 63 characters |", MaxCredentials),
		fmt.Sprintf("| `exports` | %d recipients |", MaxExports),
		fmt.Sprintf("| signature files | %d, of %d KiB each, in a directory of at most %d entries |", MaxSignatures, MaxSignatureBytes>>10, maxSignatureDirEntries),
		"| `allowed_signers` | " + mib(MaxAllowedSignersBytes) + " |",
	}
	for _, row := range want {
		if !strings.Contains(limits, "\n"+row+"\n") {
			t.Errorf("docs/allowlist.md's Limits table lacks the row %q, which the code's constants give", row)
		}
	}
}

package api

import (
	"os"
	"strings"
	"testing"
)

// TestErrorCodesDocumented keeps docs/errors.md in step with the code table.
func TestErrorCodesDocumented(t *testing.T) {
	raw, err := os.ReadFile("../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, code := range Codes() {
		if !strings.Contains(doc, "| `"+code+"` | ") {
			t.Errorf("docs/errors.md does not document %q", code)
		}
	}
}

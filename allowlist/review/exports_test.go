package review

import (
	"testing"

	"filippo.io/age"
	"github.com/google/go-cmp/cmp"
)

func TestDiffExports(t *testing.T) {
	var r [2]string
	for i := range r {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		r[i] = id.Recipient().String()
	}
	exp := func(id, rcpt, owner string) string {
		return "exports:\n  - id: " + id + "\n    purpose: migration\n    owner: " + owner + "\n    recipient: " + rcpt + "\n"
	}
	tests := []struct {
		name     string
		old, new string
		want     []string
	}{
		{"new recipient", "", exp("newvault", r[0], "o"), []string{
			`WIDENS + export recipient newvault: ` + r[0] + ` (purpose "migration", owner "o"); every stored card may be exported to it`}},
		{"key changed", exp("newvault", r[0], "o"), exp("newvault", r[1], "o"), []string{
			"WIDENS ~ export recipient newvault: key " + r[0] + " -> " + r[1]}},
		{"owner changed", exp("newvault", r[0], "o"), exp("newvault", r[0], "p"), []string{
			`       ~ export recipient newvault: purpose "migration" owner "o" -> purpose "migration" owner "p"`}},
		{"removed", exp("newvault", r[0], "o"), "", []string{
			"       - export recipient newvault: " + r[0]}},
		{"unchanged", exp("newvault", r[0], "o"), exp("newvault", r[0], "o"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, new := doc(t, "1", entry+tt.old), doc(t, "2", entry+tt.new)
			got := marked(diffExports(old, new))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("diffExports (-want +got):\n%s", diff)
			}
			// Diff reports them too, after the destinations.
			all := marked(Diff(old, new, prevSHA))
			if tail := all[len(all)-len(got):]; len(got) > 0 && !cmp.Equal(tail, got) {
				t.Errorf("Diff ends with %q, want the export changes %q", tail, got)
			}
		})
	}
}

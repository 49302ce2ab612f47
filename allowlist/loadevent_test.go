package allowlist

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// OnLoad hears every load: the accepted version with its counted
// signers, a refused edit by its sha256 and code, a read failure with no
// sha256.
func TestHolderOnLoad(t *testing.T) {
	s := newAttackSetup(t)
	c := &clock{t: testNow}
	h, dir := newTestHolder(t, s, c)
	var got []LoadEvent
	h.opts.OnLoad = func(_ context.Context, ev LoadEvent) { got = append(got, ev) }

	_ = h.Load() // nothing to read yet
	raw := docSpec{}.yaml()
	writeSet(t, dir, raw, s.signBoth(t, raw)...)
	if err := h.Load(); err != nil {
		t.Fatal(err)
	}
	edited := append(bytes.Clone(raw), "# edit\n"...)
	writeFile(t, filepath.Join(dir, "allowlist.yaml"), edited)
	_ = h.Load()

	a, _ := h.Current()
	want := []LoadEvent{
		{Problem: ProblemRead, Time: testNow},
		{Accepted: true, Version: 1, SHA256: SHA256Hex(raw), Signers: countedPrincipals(a), Time: testNow},
		{Problem: ProblemThreshold, SHA256: SHA256Hex(edited), Time: testNow},
	}
	if len(want[1].Signers) != 2 {
		t.Fatalf("counted principals = %v, want 2", want[1].Signers)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OnLoad events (-want +got):\n%s", diff)
	}
}

package forwarder

import (
	"context"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/canary"
	"github.com/cardgate/cardgate/internal/redistest"
)

// Found by mutation testing (docs/mutation.md): what the canary audit
// record names, and that it is not reported lost when it was written.

// A canary record names the allowlist in force when the canary was used
// (the forward has not reached the allowlist step yet), like every other
// record of a forward.
func TestCanaryRecordNamesTheAllowlist(t *testing.T) {
	srv := redistest.Start(t)
	set, err := canary.NewSet(srv.Client(), "canaries", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Add(context.Background(), testToken); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, echo, func(o *Options, _ *allowlist.Destination) { o.Canaries = set })
	forwardErr(t, e.f, e.jsonRequest(cardBody))

	var found bool
	for _, r := range e.auditRecords() {
		if r.Kind != audit.KindCanary {
			continue
		}
		found = true
		if r.AllowlistVersion != e.al.al.Doc.Version || r.AllowlistSHA256 != e.al.al.SHA256 {
			t.Errorf("canary record names allowlist %d/%q, want %d/%q", r.AllowlistVersion, r.AllowlistSHA256, e.al.al.Doc.Version, e.al.al.SHA256)
		}
	}
	if !found {
		t.Fatal("no canary audit record")
	}
	if logs := e.logText(); strings.Contains(logs, "audit canary record not written") {
		t.Errorf("a canary record that was written is logged as not written:\n%s", logs)
	}
}

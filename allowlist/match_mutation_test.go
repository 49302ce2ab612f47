package allowlist

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Found by mutation testing (docs/mutation.md): Match's clock, and how a
// denial's Detail bounds and sanitizes the caller's text it echoes.

func matchQuery(t *testing.T, caller string) Query {
	t.Helper()
	u, err := url.Parse("https://api.acme.example/v1/charges")
	if err != nil {
		t.Fatal(err)
	}
	return Query{DestinationID: "acme-charges", Caller: caller, Method: "POST", URL: u}
}

// A zero Query.Now means the Allowlist's own clock, which decides expiry;
// without one, the wall clock.
func TestMatchClock(t *testing.T) {
	expires := fixtureAllowlist(t).Doc.Expires
	t.Run("policy clock past expiry", func(t *testing.T) {
		a := fixtureAllowlist(t)
		a.now = func() time.Time { return expires }
		_, err := a.Match(matchQuery(t, "billing"))
		var de *DenyError
		if !errors.As(err, &de) || de.Reason != ReasonAllowlistExpired {
			t.Errorf("Match with the policy clock at expiry = %v, want %s", err, ReasonAllowlistExpired)
		}
	})
	t.Run("no policy clock", func(t *testing.T) {
		a := fixtureAllowlist(t)
		a.now = nil
		before := time.Now()
		d, err := a.Match(matchQuery(t, "billing"))
		after := time.Now()
		switch {
		case after.Before(expires) && (err != nil || d == nil):
			t.Errorf("Match with the wall clock before expiry = %v, %v, want acme-charges", d, err)
		case !before.Before(expires) && err == nil:
			t.Errorf("Match with the wall clock past expiry = %v, want %s", d, ReasonAllowlistExpired)
		}
	})
}

// A denial echoes the caller's name bounded to 64 bytes and with control
// characters replaced.
func TestMatchDetailEchoesCallerSafely(t *testing.T) {
	a := fixtureAllowlist(t)
	n64 := strings.Repeat("n", 64)
	tests := []struct {
		name, caller, echoed string
	}{
		{"64 bytes, whole", n64, `"` + n64 + `"`},
		{"65 bytes, cut", n64 + "x", `"` + n64 + `…"`},
		{"control characters", "a\x1fb\x7fc", `"a?b?c"`},
		{"printable edges", "a b~c", `"a b~c"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Match(matchQuery(t, tt.caller))
			var de *DenyError
			if !errors.As(err, &de) || de.Reason != ReasonCallerNotAllowed {
				t.Fatalf("Match(caller %q) = %v, want %s", tt.caller, err, ReasonCallerNotAllowed)
			}
			want := "caller " + tt.echoed + ` may not use destination "acme-charges"`
			if de.Detail != want {
				t.Errorf("Detail = %q, want %q", de.Detail, want)
			}
		})
	}
}

package forwarder

import (
	"strings"
	"testing"
)

// TestUnderscoreHeaderTwins: CGI and WSGI servers read '_' in a header
// name as '-', so "X_Http_Method_Override" overrides the method there as
// "X-Http-Method-Override" does, and "X_Forwarded_For" describes the
// network as "X-Forwarded-For" does. Each twin gets its original's
// treatment: a routing override is refused, a stripped header is dropped.
func TestUnderscoreHeaderTwins(t *testing.T) {
	for _, name := range []string{"X_Http_Method_Override", "X_HTTP_METHOD", "X_Original_Url", "X-Rewrite_Url", "x_method_override"} {
		t.Run("refused "+name, func(t *testing.T) {
			e := newEnv(t, echo)
			r := e.jsonRequest(cardBody)
			r.Headers[name] = []string{"DELETE"}
			fe := forwardErr(t, e.f, r)
			if fe.Code != CodeInvalidRequest || fe.Outcome != NotSent || !strings.Contains(fe.Message, "override") {
				t.Errorf("Forward = %s/%s %q, want invalid_request/not_sent about an override", fe.Code, fe.Outcome, fe.Message)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests, want none", n)
			}
		})
	}
	t.Run("stripped", func(t *testing.T) {
		e := newEnv(t, echo)
		r := e.jsonRequest(cardBody)
		stripped := []string{"X_Forwarded_For", "X_Forwarded_Host", "X_Real_Ip", "Proxy_Authorization", "X_Cardgate_Caller", "Transfer_Encoding", "Content_Length", "Keep_Alive"}
		for _, name := range stripped {
			r.Headers[name] = []string{"10.0.0.1"}
		}
		r.Headers["X_Request_Tag"] = []string{"kept"}
		if _, err := e.f.Forward(t.Context(), r); err != nil {
			t.Fatalf("Forward: %v", err)
		}
		got := e.p.requests()[0].header
		for _, name := range stripped {
			if v := got.Values(name); len(v) != 0 {
				t.Errorf("processor got %s = %q, want it dropped", name, v)
			}
		}
		if got.Get("X_Request_Tag") != "kept" {
			t.Errorf("processor got X_Request_Tag = %q, want kept", got.Get("X_Request_Tag"))
		}
	})
}

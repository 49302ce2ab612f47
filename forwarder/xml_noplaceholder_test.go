package forwarder

import (
	"context"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/allowlist"
)

// TestXMLRulesWithoutPlaceholders: an XML body is held to the template
// rules even when it has no placeholder (the card may travel in a header,
// or not at all). Otherwise entities declared in an internal subset spell
// a card that the literal check reads only in pieces, and a DOCTYPE the
// entry does not name reaches the processor's parser.
func TestXMLRulesWithoutPlaceholders(t *testing.T) {
	tests := []struct {
		name, body, msg string
		doctype         string // the entry's body.doctype
		code            string // "" means CodeInvalidTemplate
	}{
		// cardscan reads every digit of an entity declaration as card data.
		{"entities spelling a card", `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "4242424242"><!ENTITY b "424242">]><r>&a;&b;</r>`, "body", "", CodeLiteralCard},
		{"entity declaration", `<!DOCTYPE r [<!ENTITY a "x">]><r>&a;</r>`, "entity declarations", "", ""},
		{"internal subset", `<!DOCTYPE r [<!ELEMENT r ANY>]><r/>`, "internal subset", "", ""},
		{"external DTD the entry does not name", `<!DOCTYPE r SYSTEM "https://attacker.example/x.dtd"><r/>`, "allows no DOCTYPE", "", ""},
		{"another DOCTYPE than the entry's", `<!DOCTYPE r SYSTEM "https://attacker.example/x.dtd"><r/>`, "not the one", `<!DOCTYPE r SYSTEM "r.dtd">`, ""},
		{"processing instruction", `<r><?php system('id') ?></r>`, "processing instructions", "", ""},
		{"not well-formed", `<r>`, "not well-formed", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, echo, func(o *Options, d *allowlist.Destination) {
				if tt.doctype != "" {
					d.Body = &allowlist.Body{Doctype: tt.doctype}
				}
			})
			code := tt.code
			if code == "" {
				code = CodeInvalidTemplate
			}
			fe := forwardErr(t, e.f, e.xmlRequest("application/xml", tt.body))
			if fe.Code != code || fe.Outcome != NotSent || !strings.Contains(fe.Message, tt.msg) {
				t.Errorf("Forward = %s/%s %q, want %s/not_sent containing %q", fe.Code, fe.Outcome, fe.Message, code, tt.msg)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests, want none", n)
			}
		})
	}
	t.Run("plain XML is sent", func(t *testing.T) {
		e := newEnv(t, echo, func(o *Options, d *allowlist.Destination) {
			d.Body = &allowlist.Body{Doctype: `<!DOCTYPE r SYSTEM "r.dtd">`}
		})
		for _, body := range []string{`<r><amount>1000</amount></r>`, `<!DOCTYPE r SYSTEM "r.dtd"><r/>`} {
			if _, err := e.f.Forward(context.Background(), e.xmlRequest("text/xml", body)); err != nil {
				t.Errorf("Forward(%s): %v", body, err)
			}
		}
		if n := len(e.p.requests()); n != 2 {
			t.Errorf("processor got %d requests, want 2", n)
		}
	})
}

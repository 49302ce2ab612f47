package cardscan

import (
	"fmt"
	"strings"
	"testing"
)

// refs spells s as XML character references, decimal or hex.
func refs(s string, hex bool) string {
	var b strings.Builder
	for _, c := range s {
		if hex {
			b.WriteString("&#x" + strings.ToLower(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])) + ";")
		} else {
			b.WriteString("&#" + string(rune('0'+c/10)) + string(rune('0'+c%10)) + ";")
		}
	}
	return b.String()
}

// TestRedactXMLMarkup: an XML reader decodes character references and
// drops comments, processing instructions and CDATA delimiters from the
// text, so a hostile processor's answer must be masked as the caller's
// XML parser will read it.
func TestRedactXMLMarkup(t *testing.T) {
	const other = "4111111111111111" // not the forwarded card
	tests := []struct {
		name, in, want string
	}{
		{"decimal references", "<n>" + refs(other, false) + "</n>",
			"<n>" + strings.Repeat("&#42;", 12) + refs("1111", false) + "</n>"},
		{"hex references", "<n>" + refs(other, true) + "</n>",
			"<n>" + strings.Repeat("&#x2a;", 12) + refs("1111", true) + "</n>"},
		{"zero-padded upper-case hex reference", "<n>&#X0034;111111111111111</n>",
			"<n>&#X002a;***********1111</n>"},
		{"zero-padded decimal reference", "<n>&#00052;111111111111111</n>",
			"<n>&#00042;***********1111</n>"},
		{"fullwidth digit reference", "<n>&#65300;111111111111111</n>",
			"<n>&#00042;***********1111</n>"},
		{"one reference among digits", `<n a="&#52;111111111111111"/>`,
			`<n a="&#42;***********1111"/>`},
		{"space references join groups", "4111&#32;1111&#x20;1111&#xA0;1111",
			"****&#32;****&#x20;****&#xA0;1111"},
		{"nbsp joins groups", "4111&nbsp;1111&nbsp;1111&nbsp;1111",
			"****&nbsp;****&nbsp;****&nbsp;1111"},
		{"split by a comment", "<n>4111<!-- x -->111111111111</n>",
			"<n>****<!-- x -->********1111</n>"},
		{"split by an empty CDATA section", "<n>4111<![CDATA[]]>111111111111</n>",
			"<n>****<![CDATA[]]>********1111</n>"},
		{"split across CDATA sections", "<n><![CDATA[41111111]]><![CDATA[11111111]]></n>",
			"<n><![CDATA[********]]><![CDATA[****1111]]></n>"},
		{"split by a processing instruction", "<n>4111<?x y?>111111111111</n>",
			"<n>****<?x y?>********1111</n>"},
		{"markup does not use up the separators", "4111<!--a--><!--b--><!--c--><!--d-->111111111111",
			"****<!--a--><!--b--><!--c--><!--d-->********1111"},
		{"markup and three separators", "4111 <!--a-->-<!--b--> 1111 1111 1111",
			"**** <!--a-->-<!--b--> **** **** 1111"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Redact(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if !Contains([]byte(tt.in)) {
				t.Errorf("Contains(%q) = false, want true", tt.in)
			}
		})
	}
}

// TestRedactXMLMarkupSentCard: the forwarded card's own number, glued to
// other digits or spelled in references, is masked however it is split.
func TestRedactXMLMarkupSentCard(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"references glued to an expiry", "<n>" + refs(pan+"1230", false) + "</n>",
			"<n>" + strings.Repeat("&#42;", 20) + "</n>"},
		{"comment split glued to a cvc", "<n>42424242<!---->4242424273</n>",
			"<n>********<!---->****4242**</n>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSecrets(pan, "")
			if got := string(s.Redact(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("Secrets.Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	t.Run("kept identifier", func(t *testing.T) {
		body := "<r><id>4242<!---->" + refs("42424242", true) + "4242</id></r>"
		got := keep(t, body, BodyXML, fwd(""), "/r/id")
		if strings.Contains(got, "<!---->&#x34;") || strings.Count(got, "&#x2a;") != 8 {
			t.Errorf("RedactRules(%s) kept the sent card: %s", body, got)
		}
	})
}

// TestRedactXMLMarkupNegatives: markup that an XML reader does not turn
// into digits is left alone.
func TestRedactXMLMarkupNegatives(t *testing.T) {
	long := "<!--" + strings.Repeat("x", maxMarkup) + "-->"
	tests := []string{
		"<n>&#65;&#66;&#67;</n>",                         // letters
		"<n>&amp;#52;&amp;#50;</n>",                      // escaped ampersands are text
		"<n>&#52 4111 1111 1111</n>",                     // unterminated reference, 12 digits after it
		"<n>4111" + long + "111111111111</n>",            // a comment longer than maxMarkup
		"<n>4111<!-- unclosed 111111111111</n>",          // never closed
		"<n>4111<a>111111111111</a></n>",                 // elements are not dropped
		"<n>&#x;&#;&#xZZ;&#123456789;4111111</n>",        // malformed references
		"<n>" + refs("4111111111111112", false) + "</n>", // Luhn-invalid
	}
	for _, in := range tests {
		if got := string(Redact(nil, []byte(in))); got != in {
			t.Errorf("Redact(%q) = %q, want it unchanged", in, got)
		}
	}
}

// utf32 spells s as UTF-32, little- or big-endian.
func utf32(s string, big bool) string {
	var b []byte
	for _, c := range []byte(s) {
		if big {
			b = append(b, 0, 0, 0, c)
		} else {
			b = append(b, c, 0, 0, 0)
		}
	}
	return string(b)
}

// TestRedactUTF32: a UTF-32 answer is ASCII with NULs between the
// characters; it is masked as its ASCII text is, in place, and stays
// UTF-32.
func TestRedactUTF32(t *testing.T) {
	redact := func(in []byte, own bool) []byte {
		if !own {
			return Redact(nil, in)
		}
		s := NewSecrets(pan, "737")
		return s.Redact(nil, in)
	}
	for _, big := range []bool{false, true} {
		for _, tt := range []struct {
			name, in string
			own      bool
		}{
			{"a card", `{"n":"4111111111111111"}`, false},
			{"a card in groups", "4111 1111 1111 1111", false},
			{"the forwarded card and its cvc", "n=4242424242424242 cvc=737", true},
			{"the forwarded card glued to a cvc", "n=4242424242424242737", true},
		} {
			t.Run(fmt.Sprintf("%s big-endian %v", tt.name, big), func(t *testing.T) {
				ascii := redact([]byte(tt.in), tt.own)
				if string(ascii) == tt.in {
					t.Fatalf("Redact(%q) masks nothing; the case is broken", tt.in)
				}
				in, want := utf32(tt.in, big), utf32(string(ascii), big)
				if got := redact([]byte(in), tt.own); string(got) != want {
					t.Errorf("Redact(%q) = %q, want %q", in, got, want)
				}
			})
		}
	}
}

// TestRedactXMLEntityDeclarations: an internal subset can declare
// entities whose values an XML reader joins into a card ("&a;&b;"); every
// digit in an entity declaration is masked.
func TestRedactXMLEntityDeclarations(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"two halves", `<!DOCTYPE r [<!ENTITY a "41111111"><!ENTITY b '11111111'>]><r>&a;&b;</r>`,
			`<!DOCTYPE r [<!ENTITY a "********"><!ENTITY b '********'>]><r>&a;&b;</r>`},
		{"parameter entity with references", `<!DOCTYPE r [<!ENTITY % p "&#52;1 11">]><r/>`,
			`<!DOCTYPE r [<!ENTITY % p "&#42;* **">]><r/>`},
		{"system id is left alone", `<!DOCTYPE r [<!ENTITY e SYSTEM "x.xml">]><r>12</r>`,
			`<!DOCTYPE r [<!ENTITY e SYSTEM "x.xml">]><r>12</r>`},
		{"digits outside declarations are left alone", `<!DOCTYPE r [<!ENTITY a "x">]><r>4111 1111</r>`,
			`<!DOCTYPE r [<!ENTITY a "x">]><r>4111 1111</r>`},
		{"a quoted '>' does not end the declaration", `<!ENTITY a "<b>41111111"><r>&a;1111</r>`,
			`<!ENTITY a "<b>********"><r>&a;1111</r>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Redact(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

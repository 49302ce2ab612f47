package signing

import (
	"testing"
)

// Signature-Input values round-trip through the parser and the strict
// serializer; malformed ones are refused.
func TestParseDictionary(t *testing.T) {
	tests := []struct {
		in, want string // want: the first member re-serialized; "" means refused
	}{
		{`sig1=("@method" "@authority");created=1618884473;keyid="k"`, `("@method" "@authority");created=1618884473;keyid="k"`},
		{`sig1=();created=1;nonce="a\"b\\c"`, `();created=1;nonce="a\"b\\c"`},
		{`sig1=("a" "b");alg=tok/en:x;flag;off=?0`, `("a" "b");alg=tok/en:x;flag;off=?0`},
		{`sig1=("a")  ,  sig2=("b")`, `("a")`},
		{`sig1=( "a"  "b" );created=-5`, `("a" "b");created=-5`},
		{`sig1=("a");created=1.5`, ""},
		{`sig1=("a"`, ""},
		{`sig1=("a"),`, ""},
		{`Sig1=("a")`, ""},
		{`sig1=("a\q")`, ""},
		{`sig1=("a");created=1234567890123456`, ""},
		{"sig1=(\"caf\xc3\xa9\")", ""},
		{`sig1=:not base64:`, ""},
	}
	for _, tt := range tests {
		members, err := parseDictionary(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("parseDictionary(%q) = %v, want an error", tt.in, members)
			}
			continue
		}
		if err != nil || len(members) == 0 || !members[0].inner {
			t.Errorf("parseDictionary(%q) = %v, %v", tt.in, members, err)
			continue
		}
		if got := serializeInnerList(members[0].list, members[0].params); got != tt.want {
			t.Errorf("parseDictionary(%q) re-serialized = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The parsers never panic, whatever a peer sends.
func FuzzParsers(f *testing.F) {
	for _, s := range []string{
		`sig1=("@method" "@authority");created=1618884473;keyid="k"`,
		`sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:AA==:`,
		`keyid="a", algorithm="HmacSHA256", headers="host date", signature="c2ln"`,
		`a=?1;b="x\"";c=tok, d=(1 2 "s");e`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if members, err := parseDictionary(s); err == nil {
			for _, m := range members {
				_ = serializeInnerList(m.list, m.params)
			}
		}
		_, _ = cavageParams(s)
	})
}

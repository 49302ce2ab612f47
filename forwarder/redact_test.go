package forwarder

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name, in, cvc, want string
	}{
		{"empty", "", "", ""},
		{"no digits", "hello world", "", "hello world"},
		{"visa plain", "4242424242424242", "", "************4242"},
		{"visa in json", `{"number":"4242424242424242","ok":true}`, "", `{"number":"************4242","ok":true}`},
		{"spaces", "card 4242 4242 4242 4242 ok", "", "card **** **** **** 4242 ok"},
		{"dashes", "4242-4242-4242-4242", "", "****-****-****-4242"},
		{"mixed separators", "4242 4242-4242 4242", "", "**** ****-**** 4242"},
		{"amex 15", "378282246310005", "", "***********0005"},
		{"13 digits", "4222222222222", "", "*********2222"},
		{"19 digits", "6011000990139424000", "", "6011000990139424000"}, // not Luhn-valid as 19
		{"19 digits luhn", "4000000000000000006", "", "***************0006"},
		{"luhn invalid", "4242424242424241", "", "4242424242424241"},
		{"12 digits", "424242424242", "", "424242424242"},
		{"double space joins", "4242  4242 4242 4242", "", "****  **** **** 4242"},
		{"three separators join", "4242 - 4242 - 4242 - 4242", "", "**** - **** - **** - 4242"},
		{"four separators break run", "4242    4242 4242 4242", "", "4242    4242 4242 4242"},
		{"dots", "4242.4242.4242.4242", "", "****.****.****.4242"},
		{"slashes", "4242/4242/4242/4242", "", "****/****/****/4242"},
		{"underscores", "4242_4242_4242_4242", "", "****_****_****_4242"},
		{"tabs", "4242\t4242\t4242\t4242", "", "****\t****\t****\t4242"},
		{"newlines", "4242\r\n4242\n4242\n4242", "", "****\r\n****\n****\n4242"},
		{"nbsp", "4242\u00a04242\u00a04242\u00a04242", "", "****\u00a0****\u00a0****\u00a04242"},
		{"nbsp and space", "4242\u00a0 4242 \u00a04242\u00a04242", "", "****\u00a0 **** \u00a0****\u00a04242"},
		{"json escaped digit", `{"n":"\u0034242424242424242"}`, "", `{"n":"\u002a***********4242"}`},
		{"json escaped digits", strings.Repeat(`\u0034\u0032`, 8), "", strings.Repeat(`\u002a`, 12) + `\u0034\u0032\u0034\u0032`},
		{"json escaped uppercase hex", `\uFF14242424242424242`, "", `\u002a***********4242`},
		{"json escaped separators", `4242\u00204242\u002d4242\u00A04242`, "", `****\u0020****\u002d****\u00A04242`},
		{"json short escapes", `4242\/4242\t4242\n4242`, "", `****\/****\t****\n4242`},
		{"other escape is one token", `\u00414242424242424242`, "", `\u0041************4242`},
		{"escaped backslash is text", `\\u0031x`, "", `\\u0031x`},
		{"truncated escape", `4242424242424242\u003`, "", `************4242\u003`},
		{"fullwidth digits", "４２４２４２４２４２４２４２４２", "", "＊＊＊＊＊＊＊＊＊＊＊＊４２４２"},
		{"fullwidth and ascii", "４242 4242 4242 4242", "", "＊*** **** **** 4242"},
		{"escaped fullwidth digit", `\uff14242424242424242`, "", `\u002a***********4242`},
		{"fullwidth cvc", "cvc ７３７", "737", "cvc ＊＊＊"},
		{"version not card", "v1.2.3 build 2024.06.15", "", "v1.2.3 build 2024.06.15"},
		{"letters adjacent", "x4242424242424242y", "", "x************4242y"},
		{"card then cvc", "4242 4242 4242 4242 123", "", "**** **** **** 4242 123"},
		{"prefix group", "12-4242424242424242", "", "12-************4242"},
		{"two cards", "4242424242424242,5555555555554444", "", "************4242,************4444"},
		{"long group masked", "424242424242424212345", "", "*****************2345"},
		{"cvc standalone", `{"cvc":"123","n":1234}`, "123", `{"cvc":"***","n":1234}`},
		{"cvc inside number kept", "x1234 91230", "123", "x1234 91230"},
		{"cvc without used", `"123"`, "", `"123"`},
		{"trailing separator", "4242424242424242-", "", "************4242-"},
		{"leading separator", "-4242424242424242", "", "-************4242"},
		{"date not card", "2024-06-15 12:00", "", "2024-06-15 12:00"},
		{"timestamp luhn invalid", "1718000000001", "", "1718000000001"},
		{"utf8 around", "é4242424242424242é", "", "é************4242é"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cvc []byte
			if tt.cvc != "" {
				cvc = []byte(tt.cvc)
			}
			got := string(redact(nil, []byte(tt.in), cvc))
			if got != tt.want {
				t.Errorf("redact(%q, cvc %q) = %q, want %q", tt.in, tt.cvc, got, tt.want)
			}
			if tt.cvc == "" {
				if got2 := string(Redact([]byte("prefix:"), []byte(tt.in))); got2 != "prefix:"+tt.want {
					t.Errorf("Redact with prefix = %q, want %q", got2, "prefix:"+tt.want)
				}
			}
			if wantFound := tt.want != tt.in && tt.cvc == ""; containsCard([]byte(tt.in)) != wantFound {
				t.Errorf("containsCard(%q) = %v, want %v", tt.in, !wantFound, wantFound)
			}
		})
	}
}

func TestLuhn(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"4242424242424242", true}, {"4242424242424241", false}, {"378282246310005", true},
		{"5555555555554444", true}, {"0", true}, {"18", true}, {"19", false},
	} {
		if got := luhn([]byte(tt.in)); got != tt.want {
			t.Errorf("luhn(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// refToken is one token of the reference tokenizer: bytes [s, e), kind
// 'd' (digit, value v), 's' (separator) or 'o' (other).
type refToken struct {
	s, e int
	kind byte
	v    byte
}

// refTokens tokenizes in as the package comment in redact.go defines it,
// written out case by case rather than as the scanner does.
func refTokens(in []byte) []refToken {
	var out []refToken
	for i := 0; i < len(in); {
		rest := in[i:]
		t := refToken{s: i, e: i + 1, kind: 'o'}
		r, size := utf8.DecodeRune(rest)
		switch {
		case rest[0] >= '0' && rest[0] <= '9':
			t.kind, t.v = 'd', rest[0]
		case strings.IndexByte(" \t\r\n.-/_", rest[0]) >= 0:
			t.kind = 's'
		case r == '\u00a0' && size == 2:
			t.kind, t.e = 's', i+2
		case r >= '\uff10' && r <= '\uff19' && size == 3:
			t.kind, t.e, t.v = 'd', i+3, byte('0'+r-'\uff10')
		case rest[0] == '\\' && len(rest) >= 2 && strings.IndexByte("tnr/", rest[1]) >= 0:
			t.kind, t.e = 's', i+2
		case rest[0] == '\\' && len(rest) >= 2 && rest[1] == '\\':
			t.e = i + 2
		case rest[0] == '\\' && len(rest) >= 6 && rest[1] == 'u':
			v, err := strconv.ParseUint(string(rest[2:6]), 16, 32)
			if err != nil {
				break
			}
			t.e = i + 6
			switch r := rune(v); {
			case r >= '0' && r <= '9':
				t.kind, t.v = 'd', byte(r)
			case r >= '\uff10' && r <= '\uff19':
				t.kind, t.v = 'd', byte('0'+r-'\uff10')
			case strings.ContainsRune(" \t\r\n.-/_\u00a0", r):
				t.kind = 's'
			}
		}
		out = append(out, t)
		i = t.e
	}
	return out
}

// redactReference is a slow, obviously-correct statement of the masking
// rule in redact.go: tokenize, find every group-aligned candidate of every
// run and mask the union.
func redactReference(in, cvc []byte) []byte {
	toks := refTokens(in)
	type group struct{ a, b int } // token indexes [a, b)
	var groups []group
	for i := 0; i < len(toks); {
		if toks[i].kind != 'd' {
			i++
			continue
		}
		j := i
		for j < len(toks) && toks[j].kind == 'd' {
			j++
		}
		groups = append(groups, group{i, j})
		i = j
	}
	// joined reports whether groups x and x+1 are in the same run.
	joined := func(x int) bool {
		gap := groups[x+1].a - groups[x].b
		if gap < 1 || gap > 3 {
			return false
		}
		for k := groups[x].b; k < groups[x+1].a; k++ {
			if toks[k].kind != 's' {
				return false
			}
		}
		return true
	}
	mask := make([]bool, len(toks))
	markAllBut4 := func(gs []group) {
		var pos []int
		for _, g := range gs {
			for k := g.a; k < g.b; k++ {
				pos = append(pos, k)
			}
		}
		for _, k := range pos[:max(0, len(pos)-keepDigits)] {
			mask[k] = true
		}
	}
	digitsOf := func(g group) []byte {
		var d []byte
		for k := g.a; k < g.b; k++ {
			d = append(d, toks[k].v)
		}
		return d
	}
	for a := 0; a < len(groups); a++ {
		g := groups[a]
		if g.b-g.a > maxCardDigits {
			markAllBut4(groups[a : a+1])
		}
		if len(cvc) > 0 && bytes.Equal(digitsOf(g), cvc) {
			for k := g.a; k < g.b; k++ {
				mask[k] = true
			}
		}
		var digits []byte
		for b := a; b < len(groups); b++ {
			if b > a && !joined(b-1) {
				break
			}
			digits = append(digits, digitsOf(groups[b])...)
			if len(digits) > maxCardDigits {
				break
			}
			if len(digits) >= minCardDigits && luhn(digits) {
				markAllBut4(groups[a : b+1])
			}
		}
	}
	var out []byte
	for k, t := range toks {
		if !mask[k] {
			out = append(out, in[t.s:t.e]...)
			continue
		}
		switch t.e - t.s {
		case 1:
			out = append(out, '*')
		case 3:
			out = append(out, "＊"...)
		case 6:
			out = append(out, `\u002a`...)
		}
	}
	return out
}

// FuzzRedact checks redact against the reference rule, and the invariants
// that matter whatever the input: the output has the input's length, and
// is valid UTF-8 when the input is.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{"", "4242424242424242", "4242 4242 4242 4242 123", "a-1-2-3", "12-4242424242424242",
		"4242-4242-4242-4242-4242-4242-4242", strings.Repeat("1 ", 40), "42424242424242424242424242",
		"0000000000000 000000000", "4224242424242 4242", "4242 - 4242\u00a04242.4242", `\u0034242424242424242`,
		"４２４２４２４２４２４２４２４２", `\\u0034\u0032\/4242\t424242424242`, "1.2.3.4  5/6/7_8\r\n9"} {
		f.Add([]byte(s), []byte("123"))
		f.Add([]byte(s), []byte(nil))
	}
	f.Fuzz(func(t *testing.T, in, cvc []byte) {
		if len(cvc) == 0 {
			cvc = nil
		}
		out := redact(nil, in, cvc)
		if len(out) != len(in) {
			t.Fatalf("len(redact(%q)) = %d, want %d", in, len(out), len(in))
		}
		if utf8.Valid(in) && !utf8.Valid(out) {
			t.Fatalf("redact(%q) = %q, not valid UTF-8", in, out)
		}
		if want := redactReference(in, cvc); !bytes.Equal(out, want) {
			t.Fatalf("redact(%q, %q) = %q, want %q", in, cvc, out, want)
		}
		if containsCard(in) != !bytes.Equal(redact(nil, in, nil), in) {
			t.Fatalf("containsCard(%q) = %v disagrees with Redact", in, containsCard(in))
		}
	})
}

// benchInput is n bytes of a JSON-ish processor response: mostly text, some
// amounts, one card number in ten fields. With spelled, the cards are
// written in the forms the scanner also reads (separators, NBSP, JSON
// escapes, fullwidth digits) and dates and decimals are mixed in.
func benchInput(n int, spelled bool) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	cards := []string{"4242424242424242"}
	if spelled {
		cards = []string{"4242 - 4242.4242/4242", "4242\u00a04242\u00a04242\u00a04242", `\u0034242424242424242`,
			"４２４２４２４２４２４２４２４２", "4242\\/4242\\/4242\\/4242"}
	}
	var b bytes.Buffer
	for b.Len() < n {
		switch k := r.IntN(10); {
		case k == 0:
			fmt.Fprintf(&b, `"number":"%s",`, cards[r.IntN(len(cards))])
		case k == 1:
			fmt.Fprintf(&b, `"amount":%d,`, r.IntN(100000))
		case k == 2 && spelled:
			fmt.Fprintf(&b, `"created":"2024-06-%02d 12:00:00.%06d","rate":%d.%04d,`, r.IntN(28)+1, r.IntN(1e6), r.IntN(100), r.IntN(1e4))
		default:
			b.WriteString(`"description":"an ordinary processor response field",`)
		}
	}
	return b.Bytes()[:n]
}

func BenchmarkRedact(b *testing.B) {
	for _, spelled := range []bool{false, true} {
		for _, n := range []int{1 << 10, 64 << 10, 1 << 20} {
			in := benchInput(n, spelled)
			dst := make([]byte, 0, n)
			name := fmt.Sprintf("%dKB", n>>10)
			if spelled {
				name += "/spelled"
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					dst = Redact(dst[:0], in)
				}
			})
		}
	}
}

package forwarder

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
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
		{"double space breaks run", "4242  4242 4242 4242", "", "4242  4242 4242 4242"},
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

// redactReference is a slow, obviously-correct statement of the masking
// rule in redact.go: find every group-aligned candidate and mask the union.
func redactReference(in, cvc []byte) []byte {
	type group struct{ s, e int }
	var groups []group
	for i := 0; i < len(in); {
		if !isDigit(in[i]) {
			i++
			continue
		}
		j := i
		for j < len(in) && isDigit(in[j]) {
			j++
		}
		groups = append(groups, group{i, j})
		i = j
	}
	mask := make([]bool, len(in))
	markAllBut4 := func(gs []group) {
		var pos []int
		for _, g := range gs {
			for k := g.s; k < g.e; k++ {
				pos = append(pos, k)
			}
		}
		for _, k := range pos[:max(0, len(pos)-keepDigits)] {
			mask[k] = true
		}
	}
	for a := 0; a < len(groups); a++ {
		g := groups[a]
		if g.e-g.s > maxCardDigits {
			markAllBut4(groups[a : a+1])
		}
		if len(cvc) > 0 && bytes.Equal(in[g.s:g.e], cvc) {
			for k := g.s; k < g.e; k++ {
				mask[k] = true
			}
		}
		var digits []byte
		for b := a; b < len(groups); b++ {
			if b > a && !(groups[b].s == groups[b-1].e+1 && isSep(in[groups[b-1].e])) {
				break // not in the same run
			}
			digits = append(digits, in[groups[b].s:groups[b].e]...)
			if len(digits) > maxCardDigits {
				break
			}
			if len(digits) >= minCardDigits && luhn(digits) {
				markAllBut4(groups[a : b+1])
			}
		}
	}
	out := bytes.Clone(in)
	for k, m := range mask {
		if m {
			out[k] = maskByte
		}
	}
	return out
}

// FuzzRedact checks redact against the reference rule, and the invariants
// that matter whatever the input: the output has the input's length and
// non-digit bytes, only digits turn into '*'.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{"", "4242424242424242", "4242 4242 4242 4242 123", "a-1-2-3", "12-4242424242424242",
		"4242-4242-4242-4242-4242-4242-4242", strings.Repeat("1 ", 40), "42424242424242424242424242",
		"0000000000000 000000000", "4224242424242 4242"} {
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
		for i := range in {
			if out[i] != in[i] && !(isDigit(in[i]) && out[i] == maskByte) {
				t.Fatalf("redact(%q)[%d] = %q, want %q or '*'", in, i, out[i], in[i])
			}
		}
		if want := redactReference(in, cvc); !bytes.Equal(out, want) {
			t.Fatalf("redact(%q, %q) = %q, want %q", in, cvc, out, want)
		}
		if containsCard(in) != !bytes.Equal(redact(nil, in, nil), in) {
			t.Fatalf("containsCard(%q) = %v disagrees with Redact", in, containsCard(in))
		}
	})
}

func benchInput(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for b.Len() < n {
		switch r.IntN(10) {
		case 0:
			b.WriteString(`"number":"4242424242424242",`)
		case 1:
			fmt.Fprintf(&b, `"amount":%d,`, r.IntN(100000))
		default:
			b.WriteString(`"description":"an ordinary processor response field",`)
		}
	}
	return b.Bytes()[:n]
}

func BenchmarkRedact(b *testing.B) {
	for _, n := range []int{1 << 10, 64 << 10, 1 << 20} {
		in := benchInput(n)
		dst := make([]byte, 0, n)
		b.Run(fmt.Sprintf("%dKB", n>>10), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				dst = Redact(dst[:0], in)
			}
		})
	}
}

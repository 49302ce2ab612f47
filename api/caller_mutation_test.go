package api

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
)

// The caller grammar at its edges, through CallerFromTLS: every boundary
// of the length bound and of each character class, at the first position
// and after it. Found by mutation testing (docs/mutation.md): no test held
// a name of exactly MaxCallerBytes, a bad character after the first, or
// the letters and digits at the ends of their ranges.
func TestCallerGrammarEdges(t *testing.T) {
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{"at the length bound", strings.Repeat("a", MaxCallerBytes), true},
		{"one past the length bound", strings.Repeat("a", MaxCallerBytes+1), false},
		{"one character", "b", true},
		{"every class edge first", "a", true},
		{"z first", "z", true},
		{"A first", "A", true},
		{"Z first", "Z", true},
		{"0 first", "0", true},
		{"9 first", "9", true},
		{"every class edge after the first", "xazAZ09", true},
		{"punctuation after the first", "x._:/@-", true},
		{"backquote first (below a)", "`x", false},
		{"brace first (above z)", "{x", false},
		{"at sign first (below A)", "@x", false},
		{"bracket first (above Z)", "[x", false},
		{"slash first (below 0)", "/x", false},
		{"colon first (above 9)", ":x", false},
		{"space after the first", "billing svc", false},
		{"bang after the first", "billing!", false},
		{"star after the first", "dev:****4242", false},
		{"backquote after the first", "x`", false},
		{"brace after the first", "x{", false},
		{"bracket after the first", "x[", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf := &x509.Certificate{DNSNames: []string{tt.id}}
			cs := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf}}}
			got, err := CallerFromTLS(cs)
			if tt.ok && (err != nil || got != tt.id) {
				t.Errorf("CallerFromTLS(DNS SAN %q) = %q, %v; want the name", tt.id, got, err)
			}
			if !tt.ok && err == nil {
				t.Errorf("CallerFromTLS(DNS SAN %q) = %q; want it refused", tt.id, got)
			}
		})
	}
}

// A card glued to other digits is masked digit by digit, the 0s and 9s
// (the ends of the digit range) included.
func TestMaskCallerEveryDigit(t *testing.T) {
	// 18 digits, not Luhn-valid as a whole, around 4242424242424242.
	in := "svc-0" + "4242424242424242" + "9"
	got := MaskCaller(in)
	if want := "svc-******************"; got != want {
		t.Errorf("MaskCaller(%q) = %q, want %q", in, got, want)
	}
}

// The development caller name at its length bound: 64 bytes pass, 65 are
// refused.
func TestDevCallerNameLengthBound(t *testing.T) {
	for _, n := range []int{64, 65} {
		rec := &recorder{}
		h := newHandler(t, rec, Options{DevCallers: true})
		name := strings.Repeat("b", n)
		w, _ := do(h, "POST", "/v1/forward", `{"destination":"d"}`, map[string]string{DevCallerHeader: name})
		switch {
		case n <= 64 && rec.caller != DevCallerPrefix+name:
			t.Errorf("%d-byte dev caller name: forwarder got %q (answer %d), want %q", n, rec.caller, w.Code, DevCallerPrefix+name)
		case n > 64 && (w.Code != http.StatusUnauthorized || rec.calls != 0):
			t.Errorf("%d-byte dev caller name: answer %d, %d forwards; want 401 and none", n, w.Code, rec.calls)
		}
	}
}

// The development caller name's characters at the edges of each class.
// (gremlins counts a switch case's condition as not covered, since Go's
// coverage blocks start after the colon; these were checked by hand.)
func TestDevCallerNameCharacters(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"azAZ09._-", true},
		{"a`", false}, {"a{", false}, {"a@", false}, {"a[", false}, {"a/", false}, {"a:", false},
		{"a,", false}, {"a^", false}, {"a ", false},
	}
	for _, tt := range tests {
		rec := &recorder{}
		h := newHandler(t, rec, Options{DevCallers: true})
		w, _ := do(h, "POST", "/v1/forward", `{"destination":"d"}`, map[string]string{DevCallerHeader: tt.name})
		if tt.ok && rec.caller != DevCallerPrefix+tt.name {
			t.Errorf("dev caller name %q: forwarder got %q (answer %d), want it accepted", tt.name, rec.caller, w.Code)
		}
		if !tt.ok && (w.Code != http.StatusUnauthorized || rec.calls != 0) {
			t.Errorf("dev caller name %q: answer %d, %d forwards; want 401 and none", tt.name, w.Code, rec.calls)
		}
	}
}

package hopbyhop

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestIs(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"Connection", true},
		{"Proxy-Connection", true},
		{"Keep-Alive", true},
		{"Proxy-Authenticate", true},
		{"Proxy-Authorization", true},
		{"Te", true},
		{"Trailer", true},
		{"Transfer-Encoding", true},
		{"Upgrade", true},
		{"Http2-Settings", true},
		// Canonical names only: callers canonicalize first.
		{"connection", false},
		{"TE", false},
		{"Content-Type", false},
		{"Content-Length", false},
		{"Authorization", false},
		{"Trailers", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := Is(tt.name); got != tt.want {
			t.Errorf("Is(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNamed(t *testing.T) {
	tests := []struct {
		name string
		h    map[string][]string
		want map[string]bool
	}{
		{"no connection header", map[string][]string{"X-Foo": {"close"}}, nil},
		{"only close", map[string][]string{"Connection": {"close"}}, map[string]bool{"Close": true}},
		{"a list, spaces and case", map[string][]string{"Connection": {"close,  x-foo ,AUTHORIZATION"}},
			map[string]bool{"Close": true, "X-Foo": true, "Authorization": true}},
		{"several values", map[string][]string{"Connection": {"X-A", "x-b"}}, map[string]bool{"X-A": true, "X-B": true}},
		{"a non-canonical key", map[string][]string{"connection": {"x-foo"}}, map[string]bool{"X-Foo": true}},
		{"two spellings of the key", map[string][]string{"connection": {"x-a"}, "CONNECTION": {"x-b"}},
			map[string]bool{"X-A": true, "X-B": true}},
		{"empty items", map[string][]string{"Connection": {" , ,x-a,,"}}, map[string]bool{"X-A": true}},
		{"empty", map[string][]string{"Connection": {""}}, nil},
		{"a key of the same length", map[string][]string{"Connectiom": {"x-a"}}, nil},
		{"a longer key", map[string][]string{"Connection-X": {"x-a"}, "Proxy-Connection": {"x-b"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Named(tt.h)); diff != "" {
				t.Errorf("Named(%v) (-want +got):\n%s", tt.h, diff)
			}
		})
	}
}

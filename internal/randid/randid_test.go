package randid

import (
	"regexp"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		prefix string
		shape  *regexp.Regexp
	}{
		{"req_", regexp.MustCompile(`^req_[a-z2-7]{24}$`)},
		{"fwd_", regexp.MustCompile(`^fwd_[a-z2-7]{24}$`)},
		{"", regexp.MustCompile(`^[a-z2-7]{24}$`)},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			seen := map[string]bool{}
			for range 2000 {
				id := New(tt.prefix)
				if !tt.shape.MatchString(id) {
					t.Fatalf("New(%q) = %q, want %s", tt.prefix, id, tt.shape)
				}
				if seen[id] {
					t.Fatalf("New(%q) repeated %q", tt.prefix, id)
				}
				seen[id] = true
			}
		})
	}
	if BodyLen != 24 {
		t.Errorf("BodyLen = %d, want 24", BodyLen)
	}
}

// TestNewUsesEveryCharacter checks that the body is base32 over the whole
// alphabet, not a narrower one (which would cut the ids' entropy): over
// 12,000 characters drawn, every one of the 32 appears.
func TestNewUsesEveryCharacter(t *testing.T) {
	seen := map[rune]bool{}
	for range 500 {
		for _, c := range New("") {
			seen[c] = true
		}
	}
	if len(seen) != 32 {
		t.Errorf("New used %d distinct characters, want 32", len(seen))
	}
}

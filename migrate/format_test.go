package migrate

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReader reads the spellings of lines a sender's tools write, and
// refuses what is not the format, by line number.
func TestReader(t *testing.T) {
	const card = `{"id":"a","number":"4242424242424242","exp_month":12,"exp_year":2030}`
	tests := []struct {
		name  string
		input string
		want  []string // per card read: its id, or "line N: CODE"
	}{
		{"lf", card + "\n" + card + "\n", []string{"a", "a"}},
		{"crlf", card + "\r\n" + card + "\r\n", []string{"a", "a"}},
		{"byte order mark", "\xef\xbb\xbf" + card + "\n", []string{"a"}},
		{"no final newline", card, []string{"a"}},
		{"blank lines keep numbers", "\n  \n" + card + "\n{}\n", []string{"a", "line 4: invalid_id"}},
		{"two objects on a line", card + card + "\n", []string{"line 1: malformed_line"}},
		{"an array", "[" + card + "]\n", []string{"line 1: malformed_line"}},
		{"a string id with a card", `{"id":"cus 4242 4242 4242 4242","number":"4242424242424242","exp_month":12,"exp_year":2030}` + "\n", []string{"line 1: invalid_id"}},
		{"a control character in the id", `{"id":"a\u0007b","number":"4242424242424242","exp_month":12,"exp_year":2030}` + "\n", []string{"line 1: invalid_id"}},
		{"a repeated key", `{"id":"a","number":"4111111111111111","number":"4242424242424242","exp_month":12,"exp_year":2030}` + "\n", []string{"line 1: malformed_line"}},
		{"a key in another case", `{"id":"a","Number":"4242424242424242","exp_month":12,"exp_year":2030}` + "\n", []string{"line 1: malformed_line"}},
		{"a repeated key in another case", `{"id":"a","number":"4111111111111111","NUMBER":"4242424242424242","exp_month":12,"exp_year":2030}` + "\n", []string{"line 1: malformed_line"}},
		{"not UTF-8", `{"id":"a","number":"4242424242424242","exp_month":12,"exp_year":2030,"name":"Jos` + "\xe9" + `"}` + "\n", []string{"line 1: malformed_line"}},
		{"a closing bracket after the object", card + "}\n", []string{"line 1: malformed_line"}},
		{"too long, then a card", `{"id":"` + strings.Repeat("x", MaxLineBytes) + `"}` + "\n" + card + "\n", []string{"line 1: line_too_long", "a"}},
		{"too long at the end", strings.Repeat("x", 3*MaxLineBytes), []string{"line 1: line_too_long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.input))
			var got []string
			for {
				var c Card
				err := r.Next(&c)
				if errors.Is(err, io.EOF) {
					break
				}
				var le *LineError
				switch {
				case errors.As(err, &le):
					got = append(got, strings.TrimPrefix(le.Error(), "migrate: "))
				case err != nil:
					t.Fatalf("Next: %v", err)
				default:
					got = append(got, c.ID)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("read (-want +got):\n%s", diff)
			}
		})
	}
}

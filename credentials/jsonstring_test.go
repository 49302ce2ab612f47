package credentials

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestJSONString(t *testing.T) {
	for _, raw := range []string{
		`""`, `"plain"`, `"a\"b"`, `"back\\slash"`, `"\/"`, `"\b\f\n\r\t"`,
		`"\u00e9"`, `"\u00E9t\u00e9"`, `"é"`, `"\ud83d\ude00"`, `"😀"`,
		`"\ud83d"`, `"\ude00"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\u0000"`, `"<\u003e&"`,
	} {
		t.Run(raw, func(t *testing.T) {
			var want string
			if err := json.Unmarshal([]byte(raw), &want); err != nil {
				t.Fatal(err)
			}
			got, ok := jsonString([]byte(raw))
			if !ok || string(got) != want {
				t.Errorf("jsonString(%s) = %q, %v; want %q", raw, got, ok, want)
			}
		})
	}
	for _, raw := range []string{`42`, `{"a":"b"}`, `null`, `true`, `"`, `"\x"`, `"\u12"`, `["a"]`} {
		if got, ok := jsonString([]byte(raw)); ok {
			t.Errorf("jsonString(%s) = %q, want not a string", raw, got)
		}
	}
}

// FuzzJSONString checks jsonString against encoding/json on every valid
// JSON string with valid UTF-8 (encoding/json replaces invalid UTF-8;
// jsonString keeps bytes as Vault sent them).
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"a", "é\"\\\n", "\U0001F600", "\x00\x1f", "</script>"} {
		b, _ := json.Marshal(s)
		f.Add(string(b))
	}
	f.Add(`"\ud83d\u0041"`)
	f.Fuzz(func(t *testing.T, raw string) {
		var want string
		if json.Unmarshal([]byte(raw), &want) != nil || !utf8.ValidString(raw) {
			return
		}
		got, ok := jsonString([]byte(raw))
		if !ok || string(got) != want {
			t.Errorf("jsonString(%q) = %q, %v; want %q", raw, got, ok, want)
		}
	})
}

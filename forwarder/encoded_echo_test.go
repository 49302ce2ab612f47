package forwarder

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"unicode/utf16"
)

// TestForwardMasksEncodedEcho: a processor that echoes the forwarded card
// and CVC base64-encoded in a header, as hex, base64 and glued digits in a
// JSON body, or as a UTF-16 body, shows the caller neither. The forwarder
// hands cardscan the card it sent, so the card's own number is masked in
// every encoding it can take.
func TestForwardMasksEncodedEcho(t *testing.T) {
	echoJSON := `{"number":"` + testPAN + `","cvc":"` + testCVC + `"}`
	tests := []struct {
		name    string
		ctype   string
		body    []byte
		headers map[string]string
	}{
		{"base64 json in a header", "application/json", []byte(`{"ok":true}`),
			map[string]string{"X-Debug": base64.StdEncoding.EncodeToString([]byte(echoJSON)), "X-Debug-Url": base64.RawURLEncoding.EncodeToString([]byte("x" + echoJSON))}},
		{"encoded fields in json", "application/json", []byte(`{"hex":"` + hex.EncodeToString([]byte(testPAN)) +
			`","b64":"` + base64.StdEncoding.EncodeToString([]byte("ab"+testPAN)) +
			`","glued":"` + testPAN + testCVC + `","cvc_b64":"` + base64.StdEncoding.EncodeToString([]byte(testCVC)) + `"}`), nil},
		{"utf-16le body", "application/json; charset=utf-16", utf16LE("\ufeff" + echoJSON), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.headers {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", tt.ctype)
				w.Write(tt.body)
			})
			resp, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}","c":"{{card.cvc}}"}`))
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			body := resp.Body
			if resp.BodyEncoding == "base64" {
				b, _ := base64.StdEncoding.DecodeString(resp.Body)
				body = string(b)
			}
			if len(body) != len(tt.body) {
				t.Errorf("caller body has %d bytes, want %d (masking keeps the length)", len(body), len(tt.body))
			}
			texts := []string{body}
			for k := range tt.headers {
				texts = append(texts, resp.Headers.Get(k))
			}
			for _, text := range texts {
				if form := shownCard(text); form != "" {
					t.Errorf("caller sees the card (%s) in %q", form, text)
				}
			}
		})
	}
}

func utf16LE(s string) []byte {
	var out []byte
	for _, u := range utf16.Encode([]rune(s)) {
		out = binary.LittleEndian.AppendUint16(out, u)
	}
	return out
}

// shownCard returns how text still shows testPAN or testCVC, or "": in
// clear, as hex, as UTF-16, or decoded from any base64 in it.
func shownCard(text string) string {
	forms := map[string]string{
		"clear":    testPAN,
		"hex":      hex.EncodeToString([]byte(testPAN)),
		"utf-16le": string(utf16LE(testPAN)),
		"cvc":      `"` + testCVC + `"`,
		"cvc16":    string(utf16LE(`"` + testCVC + `"`)),
		"glued":    testPAN[12:] + testCVC,
	}
	for name, f := range forms {
		if strings.Contains(text, f) {
			return name
		}
	}
	for _, field := range strings.FieldsFunc(text, func(r rune) bool { return strings.ContainsRune(`"{}:, `, r) }) {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(field); err == nil && (strings.Contains(string(b), testPAN) || strings.Contains(string(b), testCVC)) {
				return "base64"
			}
		}
	}
	return ""
}

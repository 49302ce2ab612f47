package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/internal/redistest"
)

func TestMask(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"visa", `{"n":"4242424242424242"}`, `{"n":"************4242"}`},
		{"spaced", "card 4111 1111 1111 1111 ok", "card ************1111 ok"},
		{"amex", "378282246310005", "***********0005"},
		{"not luhn", "4242424242424241", "4242424242424241"},
		{"short", "424242424242", "424242424242"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mask(tt.in); got != tt.want {
				t.Errorf("mask(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestForward runs the peer against a real Redis and a TLS upstream that
// echoes what it received: the card arrives rendered, the intent line is on
// disk before the upstream sees the request, and the answer comes back
// masked in the envelope.
func TestForward(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client()
	key := bytes.Repeat([]byte{7}, 32)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	if err := store(context.Background(), rdb, aead, "tok_1", "4242424242424242"); err != nil {
		t.Fatal(err)
	}
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	af, err := os.OpenFile(auditPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer af.Close()

	var intentFirst bool
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := os.ReadFile(auditPath)
		intentFirst = strings.Contains(string(b), `"type":"intent"`)
		io.Copy(w, r.Body)
	}))
	defer up.Close()
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	u, _ := url.Parse(up.URL)
	s := newServer(rdb, aead, roots, []string{u.Host}, af, true)
	gw := httptest.NewServer(s.handler())
	defer gw.Close()

	post := func(token, target string) (int, string) {
		t.Helper()
		in, _ := json.Marshal(forwardRequest{Token: token, URL: target, Body: `{"number":"{{card.number}}","exp":"{{card.exp_month}}/{{card.exp_year}}"}`})
		resp, err := http.Post(gw.URL+"/forward", "application/json", bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := post("tok_1", up.URL+"/v1/charges")
	if code != http.StatusOK {
		t.Fatalf("forward = %d %s, want 200", code, body)
	}
	var env struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatal(err)
	}
	want := struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}{200, `{"number":"************4242","exp":"12/2030"}`}
	if diff := cmp.Diff(want, env); diff != "" {
		t.Errorf("envelope (-want +got):\n%s", diff)
	}
	if !intentFirst {
		t.Error("the upstream got the request before the intent line was written")
	}
	var types []string
	f, _ := os.Open(auditPath)
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var l struct{ Type string }
		json.Unmarshal(sc.Bytes(), &l)
		types = append(types, l.Type)
	}
	if diff := cmp.Diff([]string{"intent", "result"}, types); diff != "" {
		t.Errorf("audit lines (-want +got):\n%s", diff)
	}

	for _, tt := range []struct{ name, token, url string }{
		{"unlisted host", "tok_1", "https://example.com/v1/charges"},
		{"plain http", "tok_1", strings.Replace(up.URL, "https", "http", 1)},
		{"unknown token", "tok_2", up.URL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := post(tt.token, tt.url); code < 400 {
				t.Errorf("forward = %d %s, want a refusal", code, body)
			}
		})
	}
}

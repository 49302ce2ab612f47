package main

import (
	"bytes"
	"encoding/json"
	stdlog "log"
	"log/slog"
	"strings"
	"testing"
)

// TestStdLogWithholdsValues: a line net/http writes to the standard
// logger about a processor's stray bytes reaches the JSON log as its
// fixed words and length only: no card number, CVC, expiry or name.
func TestStdLogWithholdsValues(t *testing.T) {
	var buf bytes.Buffer
	l := stdlog.New(stdLog{log: slog.New(slog.NewJSONHandler(&buf, noTime))}, "", 0)
	l.Printf("Unsolicited response received on idle HTTP channel starting with %q; err=%v",
		"HTTP/1.1 200 OK\r\nX-Echo: number=4111111111111111 cvc=987 exp=11/2031 name=Jane Q Cardholder\r\n", nil)
	l.Printf("%s", "Jane Q Cardholder 987")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(lines), &buf)
	}
	for _, s := range []string{"4111", "987", "2031", "Cardholder"} {
		if strings.Contains(buf.String(), s) {
			t.Errorf("log holds %q:\n%s", s, &buf)
		}
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("log line %q is not JSON: %v", lines[0], err)
	}
	if m["level"] != "WARN" || m["prefix"] != "Unsolicited response received on idle HTTP channel starting with" {
		t.Errorf("log line = %v, want a WARN line naming the library's words", m)
	}
	// A line that starts with a value keeps nothing of it.
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil || m["prefix"] != "unknown" {
		t.Errorf("log line = %v (%v), want prefix unknown", m, err)
	}
}

// TestServerLogWithholdsClientBytes: net/http's server lines keep their
// words, never a client's quoted bytes or a panic's value.
func TestServerLogWithholdsClientBytes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http2: server: error reading preface from client 127.0.0.1:4000: bogus greeting \"4111111111111111 cvc=987\"",
			"http2: server: error reading preface from client 127.0.0.1:4000: bogus greeting [rest withheld]"},
		{"http: TLS handshake error from 127.0.0.1:4000: remote error: tls: bad certificate",
			"http: TLS handshake error from 127.0.0.1:4000: remote error: tls: bad certificate"},
		{"http: panic serving 127.0.0.1:4000: card 4111111111111111 cvc 987\ngoroutine 1 [running]:\n…",
			"http: panic serving [rest withheld]"},
		{"http: odd 4111 1111 1111 1111", "http: odd **** **** **** 1111"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		l := stdlog.New(serverLog{log: slog.New(slog.NewJSONHandler(&buf, noTime))}, "", 0)
		l.Print(tt.in)
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", buf.String(), err)
		}
		if m["msg"] != tt.want || m["level"] != "WARN" {
			t.Errorf("serverLog(%q) = %v, want a WARN line %q", tt.in, m["msg"], tt.want)
		}
	}
}

// noTime drops the record's time: its digits ("…08:46:49.371298742Z") can
// spell the test CVC, which the leak checks look for.
var noTime = &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}}

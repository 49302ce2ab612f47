package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"

	"github.com/cardgate/cardgate/cardscan"
)

// stdLog takes the place of the standard library's process-wide logger
// (package log) in serve. net/http's Transport writes to that logger when
// a processor sends bytes after its answer ("Unsolicited response
// received on idle HTTP channel starting with %q"), quoting up to a few
// hundred of those bytes: a processor that echoes the request there would
// put the card number, CVC, expiry and cardholder name into the log in
// plain text, outside the JSON log and every mask. So no value from such
// a line is kept: only the library's own words before the first value,
// and the line's length.
//
// Like redisLog, it is process-wide, so main's wiring sets it once.
type stdLog struct{ log *slog.Logger }

// maxStdLogPrefix bounds the words kept from one line.
const maxStdLogPrefix = 80

func (l stdLog) Write(p []byte) (int, error) {
	l.log.LogAttrs(context.Background(), slog.LevelWarn, "go library log line withheld",
		slog.String("prefix", stdLogPrefix(p)), slog.Int("bytes", len(p)))
	return len(p), nil
}

// stdLogPrefix returns the letters and spaces p starts with, a format
// string's fixed words up to its first value, when they are words a
// library is known to write; "unknown" otherwise, since a line that starts
// with a value (a name, say) would keep it.
func stdLogPrefix(p []byte) string {
	n := 0
	for n < len(p) && n < maxStdLogPrefix {
		c := p[n]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == ' ') {
			break
		}
		n++
	}
	if w := strings.TrimSpace(string(p[:n])); knownStdLogWords[w] {
		return w
	}
	return "unknown"
}

// knownStdLogWords are the fixed words that start the standard library's
// log lines the gateway can provoke: net/http's Transport and servers
// ("http: …", "http2: …").
var knownStdLogWords = map[string]bool{
	"Unsolicited response received on idle HTTP channel starting with": true,
	"http": true,
}

// serverLog is the ErrorLog of the API and admin servers. net/http
// writes a client's bytes into some of its lines: http2's "bogus greeting
// %q" quotes the first 24 bytes a client sent, room for a card number and
// a CVC. So a line keeps its first line only up to its first quote, a
// panic line only its first words (a panic value and its stack can hold
// anything), and what is kept is masked for card numbers and bounded.
// TLS handshake errors, which operators need, keep their text.
type serverLog struct{ log *slog.Logger }

// maxServerLogBytes bounds one server message in the log.
const maxServerLogBytes = 512

func (l serverLog) Write(p []byte) (int, error) {
	line, _, _ := bytes.Cut(p, []byte("\n"))
	withheld := false
	if i := bytes.IndexByte(line, '"'); i >= 0 {
		line, withheld = line[:i], true
	}
	if bytes.HasPrefix(line, []byte("http: panic serving")) {
		line, withheld = []byte("http: panic serving"), true
	}
	msg := string(cardscan.Redact(nil, bytes.TrimSpace(line)))
	if len(msg) > maxServerLogBytes {
		msg, withheld = strings.ToValidUTF8(msg[:maxServerLogBytes], ""), true
	}
	if withheld {
		msg += " [rest withheld]"
	}
	l.log.LogAttrs(context.Background(), slog.LevelWarn, msg)
	return len(p), nil
}

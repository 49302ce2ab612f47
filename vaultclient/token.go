package vaultclient

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"strings"
)

// Tokens are "tok_" and 160 random bits in lowercase base32 (32 characters,
// no padding). 160 bits rather than the 128 minimum because 160 is a
// multiple of 5, so every token has exactly one spelling: a token cannot be
// varied in trailing bits to look new.
const (
	tokenPrefix     = "tok_"
	tokenRandBytes  = 20
	tokenBodyLen    = 32 // base32 of 20 bytes
	tokenLen        = len(tokenPrefix) + tokenBodyLen
	tokenBodyDigits = "abcdefghijklmnopqrstuvwxyz234567"
)

// newToken returns a fresh token. crypto/rand.Read never fails on the
// platforms Go supports (it crashes the program instead), so there is no
// error to handle.
func newToken() string {
	enc := base32.NewEncoding(tokenBodyDigits).WithPadding(base32.NoPadding)
	for {
		var b [tokenRandBytes]byte
		rand.Read(b[:])
		// A draw with a long digit run (about 1 in 10^8) is drawn again:
		// ValidToken refuses such runs.
		if t := tokenPrefix + enc.EncodeToString(b[:]); ValidToken(t) {
			return t
		}
	}
}

// maxTokenDigitRun is the longest run of digits a token may hold: shorter
// than any card number, so that a card typed into a token-shaped value can
// never pass for a token and be echoed in a log as one.
const maxTokenDigitRun = 12

// ValidToken reports whether s is spelled like a token: "tok_" and 32
// characters of a-z and 2-7, with no run of more than 12 digits. Stores
// check it before they are touched, so that a caller cannot use the
// store's key space (other prefixes, glob characters, huge keys) through
// the token; other packages check it before they log or record a token.
func ValidToken(s string) bool {
	if len(s) != tokenLen || !strings.HasPrefix(s, tokenPrefix) {
		return false
	}
	run := 0
	for i := len(tokenPrefix); i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '2' && c <= '7':
			if run++; run > maxTokenDigitRun {
				return false
			}
		case c >= 'a' && c <= 'z':
			run = 0
		default:
			return false
		}
	}
	return true
}

// tokenNotFound is returned both for unknown and for malformed tokens,
// with the same public message, so that callers cannot learn which tokens
// are well formed. The cause goes only to logs: the store's error, which
// names a well-formed token; a malformed one is caller input of any size
// and content, so it is not repeated.
func tokenNotFound(token string, cause error) *Error {
	if !ValidToken(token) {
		return newError(CodeTokenNotFound, "token not found", errMalformedToken)
	}
	return newError(CodeTokenNotFound, "token not found", cause)
}

// errMalformedToken is never returned alone; it is the cause inside a
// token_not_found *Error.
var errMalformedToken = errors.New("malformed token")

package randid

import (
	"crypto/rand"
	"encoding/base32"
)

// Bytes is the number of random bytes in an id; a multiple of 5, so that
// the base32 body has exactly one spelling and no padding.
const Bytes = 15

// BodyLen is the length of an id after its prefix.
const BodyLen = Bytes * 8 / 5

// encoding is lowercase base32 with the digits 2-7 only.
var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// New returns prefix followed by Bytes random bytes in lowercase base32.
// crypto/rand.Read never fails on the platforms Go supports (it crashes
// the program instead), so there is no error to return.
func New(prefix string) string {
	var b [Bytes]byte
	rand.Read(b[:])
	return prefix + encoding.EncodeToString(b[:])
}

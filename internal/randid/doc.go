// Package randid makes the gateway's random identifiers, the API's
// request ids ("req_…") and the forwarder's forward ids ("fwd_…"): a
// prefix and 120 random bits in lowercase base32 over a-z and 2-7.
//
// The alphabet is chosen for the audit log: every record names these ids,
// and the log refuses an identifier holding a Luhn-valid run of 13-19
// digits. Hex ids would hold one every few thousand ids; with only six
// digits among 32 characters such a run is too rare to matter.
//
// This package must never:
//   - take an id, or any part of one, from a caller: a caller-chosen id
//     could forge or collide audit records;
//   - draw from anything but crypto/rand.
package randid

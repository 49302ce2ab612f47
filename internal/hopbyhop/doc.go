// Package hopbyhop names the HTTP header fields that belong to one
// connection (RFC 9110 §7.6.1): the fixed set, and those a message's
// Connection header lists. The gateway drops them in both directions,
// from a caller's request before it is sent and from a processor's
// response before the caller sees it, by this one rule.
//
// This package must never:
//   - keep state or read anything but the header map it is given;
//   - let a header through that either list names.
package hopbyhop

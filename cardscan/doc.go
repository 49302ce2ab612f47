// Package cardscan finds card numbers in bytes: detection and masking. It
// must never allocate per byte or echo what it finds.
//
// One definition of "card number" serves every check in the gateway, so
// that what the forwarder refuses to send, what it refuses to show a
// caller and what the audit log refuses to record cannot drift apart:
//
//   - Redact masks card numbers in a processor's response;
//   - Contains refuses a card number a caller typed into a request;
//   - IsCardNumber tells a token field holding a card from a token;
//   - ContainsAnyWindow guards identifiers (audit record fields), where
//     any long digit run is suspect;
//   - Luhn is the checksum itself, for code that already holds digits.
//
// The package imports nothing outside the standard library, so that any
// package, however low, can use it.
package cardscan

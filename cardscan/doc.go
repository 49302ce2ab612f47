// Package cardscan finds card numbers in bytes: detection and masking. It
// must never echo what it finds, and never allocate per byte.
//
// One definition of "card number" serves every check in the gateway, so
// that what the forwarder refuses to send, what it refuses to show a
// caller and what the audit log refuses to record cannot drift apart:
//
//   - Redact masks card numbers in a processor's response;
//   - Secrets.Redact is Redact that also masks the forwarded card's own
//     number and CVC in every encoding the gateway can produce;
//   - Contains refuses a card number a caller typed into a request;
//   - IsCardNumber tells a token field holding a card from a token;
//   - ContainsAnyWindow guards identifiers (audit record fields), where
//     any long digit run is suspect;
//   - Luhn is the checksum itself, for code that already holds digits.
//
// # Masking policy
//
// Masking keeps the input's length and position of every byte (the
// forwarder sizes its buffers on it), and is applied in stages. Each stage
// after the first writes over the first one's output and only ever writes
// a mask where the input had something else, so no stage undoes another.
//
//  1. Text (scan.go). Any Luhn-valid run of 13–19 digits, raw, percent-
//     or JSON-escaped or fullwidth, with or without separators, keeps its
//     last four digits; the forwarded card's number is masked wherever its
//     digits stand in order, glued to other digits or not; its CVC as a
//     whole digit group.
//  2. The forwarded card's number in fixed encodings (own.go): read byte
//     by byte with separators (how a person reads "100%4242…"), every
//     digit percent-escaped (%3X), every digit JSON-escaped (\u003X) and
//     as UTF-16LE and UTF-16BE (all but the last four masked), and as hex
//     and as base64 at each of the three alignments of the number in a
//     3-byte group (the whole encoded number masked with '*'). Digits hex-
//     and base64-encode to the same characters in upper and lower case and
//     in the standard and URL alphabets. The CVC as hex, where it starts
//     at an even offset of a hex run.
//  3. Base64 and hex runs (encoded.go). A run of base64 characters
//     (either alphabet, line breaks allowed) of at least 16 characters (4
//     when the forward used the CVC and the run holds the CVC's base64 at
//     one of its three alignments) is decoded from each of its first
//     four characters, and each stretch of hex digits in it from its first
//     and second; if the decoded bytes hold a card number, the forwarded
//     number or CVC by the rules of stage 1, every character of the run is
//     masked with '*'. A run of decimal digits alone is left to stage 1.
//  4. UTF-16 and UTF-32 (encoded.go). A body that starts with a byte
//     order mark or holds a NUL byte is also read as UTF-16, in both byte
//     orders at both byte parities, and as UTF-32 at all four, by the
//     rules of stage 1 (and stage 2's byte-by-byte reading); each code
//     unit stage 1 masks is written back as its mask in the same byte
//     order ("*\x00"), so a UTF-16 body stays UTF-16 and
//     keeps the last four digits.
//  5. XML entity declarations (markup.go). Every digit of an
//     <!ENTITY …> declaration is masked, since a reader joins entity
//     values wherever they are referenced.
//
// Decoded text is checked in a fixed buffer of 4 KB, cut where no run or
// escape can span the cut, or with a 512-byte overlap when there is no
// such place; only a UTF-16 body found to hold card data is copied whole
// (once, zeroed before Redact returns).
//
// Known gaps: text nested in two encodings (base64 in UTF-16, base64 of
// base64, percent-encoded base64 split by escapes), other card numbers in
// hex split by letters outside a run of 16 hex digits, a base64 run split
// by a JSON-escaped line break (\n inside a JSON string), and encodings
// the gateway does not produce (quoted-printable, named HTML entities, EBCDIC,
// compressed bodies, which the forwarder refuses). Stage 3 masks a whole
// run, not only the card's characters: a caller cannot decode it.
//
// The package imports nothing outside the standard library, so that any
// package, however low, can use it.
package cardscan

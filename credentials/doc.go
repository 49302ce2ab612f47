// Package credentials owns the processor credentials the gateway holds on
// its callers' behalf: named secrets and signing keys read from a file,
// an environment variable or a HashiCorp Vault KV version 2 secret,
// decoded (raw, base64, hex) and checked by kind (a header-safe secret,
// an HMAC key, an Ed25519 or ECDSA P-256 private key) when they load, so
// a bad key stops the gateway at start rather than at the first forward.
//
// The life of a credential:
//
//	Spec{Name, Source, Encoding, Kind} ──New──▶ Store ──Reload──▶ live set (atomic swap)
//	                                                   Store.Get(name) ──▶ Secret ──Reveal/Signer──▶ the request being sent
//
// Reload is all or nothing: one credential that fails to read or decode
// keeps the whole last good set live and returns an error naming the
// credential and its source kind. Watch reloads on a file change and, for
// Vault credentials that follow the latest version, on a timer; SIGHUP is
// the caller's to wire to Reload.
//
// Which allowlist entry may use which credential is the signed
// allowlist's business, and writing one into a request is the
// forwarder's; this package only holds them and hands them out by name.
//
// This package must never:
//   - put a credential's value in a log, metric, span, error text,
//     Status or any encoding of a Secret: they all print the mask
//     "[secret.NAME]", and errors name the credential, its source and
//     where it was read from, never its bytes or a decoder's cause text;
//   - keep a partly loaded set, or a zero Secret that means "no
//     credential needed": Get answers a typed error instead;
//   - block on a FIFO or device named as a file source, or follow the
//     process environment's VAULT_* variables (the Vault client is
//     built from the gateway's configuration alone).
//
// Values are copied as little as Go allows: file and Vault bytes never
// become Go strings, buffers are cleared after decoding, and a value
// that a reload replaced is zeroed once no Secret refers to it.
package credentials

// Package allowlist owns cardgate's signed allowlist: the document model,
// verification of detached OpenSSH SSHSIG signatures over the exact file
// bytes against a pinned allowed_signers file with an M-of-N threshold
// over distinct keys and distinct principals, the rollback and freeze
// policy (version high-water mark, prev_sha256 chain, expiry, maximum
// validity, environment), and matching a forward request to an entry or a
// typed deny reason.
//
// The life of a document:
//
//	raw bytes + *.sig ──Verify──▶ *Allowlist ──StateStore.Advance──▶ Holder (atomic swap)
//	                                                     Holder.Current ──▶ (*Allowlist).Match(Query)
//
// Verify checks signatures first and only then parses those same bytes;
// nothing is ever re-serialized before it is verified. Any failure keeps
// the previous allowlist in the Holder; an expired allowlist denies every
// request with ReasonAllowlistExpired.
//
// This package must never:
//   - know about cards, card numbers or HTTP servers: it deals in field
//     names, destinations and deny reasons only;
//   - parse, canonicalize or re-serialize a document before its bytes have
//     verified, or verify bytes other than the ones it then parses;
//   - treat a zero value as allow: an empty Policy, a nil Holder state, a
//     zero Query.Now or an unloaded Holder all refuse or fall back to a
//     documented safe default.
//
// Auditors can re-check every signature with stock ssh-keygen -Y verify;
// AUDITING.md at the repository root lists what this package enforces
// beyond ssh-keygen (threshold over signer groups, security-key user
// presence, key types, rollback, freeze and environment).
package allowlist

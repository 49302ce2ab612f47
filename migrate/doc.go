// Package migrate owns moving cards between vaults: the JSON-lines
// migration format, the import that tokenizes a sender's file through
// vaultclient and writes a mapping from the sender's ids to tokens, and
// the export that writes stored cards, age-encrypted, to a recipient the
// signed allowlist names. docs/migration.md is the operator's guide.
//
// # Import
//
// The input is an age file (filippo.io/age) encrypted to the gateway's
// import identity, which NewSealedIdentity keeps sealed under the key
// backend (LoadIdentity reads a plain age-keygen file, for development).
// OpenInput hashes the encrypted file and decrypts it as
// a stream; Reader reads it a line at a time (MaxLineBytes at most), so
// memory does not grow with the file, apart from 8 bytes and map overhead
// per id for the duplicate-id check. Each line is checked by vaultclient
// exactly as POST /v1/cards is; a refused line is reported by its number
// and a code (never its bytes) and the import goes on.
//
// Resuming: each line's token is derived (vaultclient.DeriveToken) from a
// key that TokenKey derives from the identity and the input's sha256, and
// the line number. The card is stored with Vault.TokenizeAs, which never
// overwrites; then audited (audit.KindImported); then its mapping is
// appended; the mapping file is fsynced after each batch. A run cut off
// anywhere leaves at most one batch stored but not mapped. The next run
// over the same file and mapping file skips the lines up to the mapping's
// last one, and for the rest derives the same tokens: a card that is
// already stored under its token (ErrExists) is "recovered" and mapped,
// not stored twice. An import of the same file with a new mapping file
// recovers every card, except one deleted (or expired by retention) since
// it was stored: TokenizeAs refuses its tombstoned token (ErrDeleted), and
// the line is counted as deleted before, not stored again and not mapped. No intent log is needed, and no card data, digest
// of a card or key is ever written to disk.
//
// # Export
//
// Export scans the store, detokenizes each card (without its CVC, which
// is transient and never exported), audits it (audit.KindExported) and
// writes it in the migration format, with the token as its id, to an age
// writer; the caller encrypts to a recipient only after the signed
// allowlist named it.
//
// This package must never write a card number, expiry, name or CVC in
// clear to a file, a log, an error or a report, nor anything derived from
// one; refusals name a line number and a code only.
package migrate

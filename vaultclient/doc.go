// Package vaultclient owns cards at rest: tokenizing and detokenizing, the
// encrypted record format, the key backends that seal records, and the
// card stores that hold them.
//
// A Vault validates a card, seals it with AES-256-GCM through a Keyer,
// bound to its token and field, and keeps the sealed record in a Store
// under a token of 160 random bits:
//
//	keys, err := vaultclient.OpenLocalKeyring("dev-keyring.json") // development only
//	store, err := vaultclient.OpenBoltStore("cards.db")
//	v, err := vaultclient.New(store, keys, vaultclient.Options{})
//	info, err := v.Tokenize(ctx, vaultclient.CardInput{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2030, CVC: "123"})
//	card, err := v.Detokenize(ctx, info.Token) // card.Number prints as ****4242; no CVC
//	card, err = v.DetokenizeConsumingCVC(ctx, info.Token) // with the CVC, deleted by this read
//
// Records: each stored record names its format version and the backend,
// key name and key version that sealed it. The number, expiry and name are
// sealed together; last4, brand, a keyed fingerprint and the creation time
// are kept in clear. The CVC is sealed separately under its own binding
// and stored under its own key with a TTL. Detokenize never reads it: it
// returns the card without a CVC. DetokenizeConsumingCVC is the only way
// to get a CVC back, and it deletes the CVC in the same store operation as
// the read, so a CVC is decrypted only when it is about to be sent, and at
// most once. ConsumeCVC deletes one without reading it.
//
// Key backends implement Keyer. PKCS11 keeps non-extractable keys in an
// HSM (it needs cgo; see PKCS11Available) and Transit uses HashiCorp
// Vault's or OpenBao's Transit engine with derived keys; with both, no
// key-encryption key enters this process. LocalKeyring keeps keys in a
// local file and is for development only. Key versions rotate; Rewrap
// moves every record to the primary version (with Transit, without the
// plaintext leaving Vault), after which old versions can be retired and
// records still under them fail with key_retired.
// Stores implement Store: RedisStore, and BoltStore for one node and the
// demo.
//
// The card lifecycle (lifecycle.go, retention.go) needs a LifecycleStore,
// which both stores are: Metadata (never the number), Update (a new
// expiry or name, re-sealed with the same number), CollectCVC, and Delete,
// after which the token answers exactly as one that never existed. Each
// store keeps a last-use marker beside the record; a forward marks it at
// most once per TouchInterval per token, so the hot path pays one small
// store write a minute per token at most. Redis expires unused records by
// key TTL (RedisStore.SetRetention); bolt by RetentionSweeper.
//
// Metrics (Options.MeterProvider): MetricKeyDuration and
// MetricStoreDuration, labelled only by backend kind, operation and
// outcome.
//
// This package must never store, log, trace, put into a metric label or
// put into an error message a card number or CVC in clear, nor put a token
// into a metric label; never hold a key-encryption key in memory when the
// HSM or Vault backend is used; never overwrite an existing token; and
// never leave half a record behind. Errors from Vault methods are
// *Error, with a stable code and a message safe to show a caller.
package vaultclient

// Package canary owns the set of canary tokens: real-looking tokens that no
// legitimate caller ever uses, planted where a thief would find them (a
// test database, a log sample, a backup). The forwarder asks IsCanary on
// every forward; a canary is refused exactly as an unknown token would be
// (token_not_found), so its holder cannot tell, and its use raises an
// alert (an error log line, a metric and an audit record).
//
// The set is a Redis set shared by every replica, keyed by token id. It
// holds token ids only, never card data. To make a canary, tokenize a test
// card through POST /v1/cards (so that a real record exists under the
// token, indistinguishable from any other), then mark the token with
// `cardgate canary add TOKEN`.
//
// It must never answer "not a canary" when it could not look: IsCanary
// returns an error, and the forward is refused.
package canary

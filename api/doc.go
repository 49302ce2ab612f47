// Package api owns cardgate's HTTP surface: the routes, strict request
// decoding, caller identity, the error envelope and its stable codes, and the
// health endpoints. It holds no card logic of its own: tokenizing belongs to
// vaultclient and forwarding to forwarder. It must never put a request or
// response body, a card field or an upstream error's text into a log line,
// and it masks a card-like digit run in a caller identity before the
// identity is used anywhere. Every answer it gives, errors from routing and
// header limits included, is JSON.
package api

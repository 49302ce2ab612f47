package vaultclient

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
)

// MinTokenKeyLen is the shortest key DeriveToken accepts: 256 bits, so
// that derived tokens are as unguessable as drawn ones.
const MinTokenKeyLen = 32

// DeriveToken returns the token that key derives for name: "tok_" and the
// first 160 bits of HMAC-SHA256(key, name), spelled like a drawn token. A
// draw that ValidToken refuses (a long digit run, about 1 in 10^8) is
// derived again with a counter, so the result is always valid and always
// the same for the same key and name. Without key, the tokens cannot be
// told from drawn ones or predicted. An import uses it to name each line's
// card before it is stored, so that a run that resumes after a crash finds
// the cards it stored but did not yet record (see TokenizeAs).
func DeriveToken(key, name []byte) (string, error) {
	if len(key) < MinTokenKeyLen {
		return "", errors.New("vaultclient: derive token: key is shorter than 32 bytes")
	}
	enc := base32.NewEncoding(tokenBodyDigits).WithPadding(base32.NoPadding)
	for i := uint32(0); ; i++ {
		m := hmac.New(sha256.New, key)
		var ctr [4]byte
		binary.BigEndian.PutUint32(ctr[:], i)
		m.Write(ctr[:])
		m.Write(name)
		if t := tokenPrefix + enc.EncodeToString(m.Sum(nil)[:tokenRandBytes]); ValidToken(t) {
			return t, nil
		}
	}
}

// TokenizeAs is Tokenize under a token the caller chose, which must come
// from DeriveToken with a secret key: a guessable token would let anyone
// who guesses it use the card. It never overwrites: when a record is
// already held under token, nothing is written and the error is an *Error
// (internal_error) that wraps ErrExists; errors.Is(err, ErrExists) tells
// it apart. It is not logged, unlike a collision of drawn tokens: for an
// import that resumes, it means the card was stored by the run that was
// cut off. When no record is held but the token is tombstoned (its card
// was stored once, then deleted or expired by retention), it writes
// nothing either and the error wraps ErrDeleted: a deleted card is never
// brought back under its old token. The store must be a TombstoneStore;
// with any other store TokenizeAs refuses every token (internal_error),
// since it could not tell. Tombstones are read only
// here: Tokenize draws random tokens, which are never drawn again, and
// every other method answers a tombstoned token like one never issued.
// Other errors are those of Tokenize; a token that is not ValidToken is
// internal_error.
func (v *Vault) TokenizeAs(ctx context.Context, token string, in CardInput) (*TokenInfo, error) {
	ctx, span := v.tracer.Start(ctx, "vaultclient.TokenizeAs")
	defer span.End()
	var info *TokenInfo
	var err error
	if !ValidToken(token) {
		err = newError(CodeInternal, "internal error", errMalformedToken)
	} else {
		info, err = v.tokenizeAs(ctx, in, token, true)
	}
	if !errors.Is(err, ErrExists) && !errors.Is(err, ErrDeleted) {
		endSpan(span, err)
	}
	return info, err
}

// errNoTombstones: TokenizeAs over a store that keeps no tombstones, which
// could re-create a deleted card. It stops an import.
var errNoTombstones = errors.New("vaultclient: store keeps no tombstones")

func (v *Vault) putNew(ctx context.Context, token string, e Entry) error {
	ts, ok := v.store.(TombstoneStore)
	if !ok {
		return errNoTombstones
	}
	_, err := storeCall(ctx, v, "vaultclient.store.PutNew", "put", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, ts.PutNew(ctx, token, e, v.cvcTTL)
	})
	return err
}

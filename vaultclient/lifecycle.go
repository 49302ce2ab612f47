package vaultclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CodeInvalidUpdate: an update names nothing to change, only half of an
// expiry, or a field that never changes (the number, the CVC). [422]
const CodeInvalidUpdate = "invalid_update"

// CardMeta is a card's metadata: what GET /v1/cards/{token} answers. It
// never holds the number, the CVC or the name. Expiry is personal data
// the owner of the token may read; it is never logged.
type CardMeta struct {
	Token       string    `json:"token"`
	Brand       string    `json:"brand"`
	Last4       string    `json:"last4"`
	ExpMonth    int       `json:"exp_month"`
	ExpYear     int       `json:"exp_year"`
	Fingerprint string    `json:"fingerprint"`
	CreatedAt   time.Time `json:"created_at"`
	// LastUsedAt is the last tokenize, forward, update or CVC collection,
	// to within TouchInterval for forwards (see noteUse).
	LastUsedAt time.Time `json:"last_used_at"`
	CVCHeld    bool      `json:"cvc_held"`
}

// CardUpdate is a change to a stored card: a new expiry (both fields), a
// new name, or both. A nil field is left as it is; an empty Name removes
// the name. The number never changes: a new number is a new token.
type CardUpdate struct {
	ExpMonth *int    `json:"exp_month,omitempty"`
	ExpYear  *int    `json:"exp_year,omitempty"`
	Name     *string `json:"name,omitempty"`
}

// CVCInfo is what CollectCVC returns.
type CVCInfo struct {
	Token        string    `json:"token"`
	CVCHeld      bool      `json:"cvc_held"`
	CVCExpiresAt time.Time `json:"cvc_expires_at"`
}

// updateAttempts bounds Update's read-seal-swap loop when the record
// changes underneath (a concurrent update or rewrap).
const updateAttempts = 3

// errNoLifecycle is the cause when the store cannot serve the lifecycle.
var errNoLifecycle = errors.New("store does not support the card lifecycle")

func (v *Vault) lifecycleStore() (LifecycleStore, error) {
	ls, ok := v.store.(LifecycleStore)
	if !ok {
		return nil, newError(CodeInternal, "internal error", errNoLifecycle)
	}
	return ls, nil
}

// Metadata returns the card's metadata. It opens the sealed record (the
// expiry is sealed with the number) and wipes the plaintext at once. It
// is not a use: reading metadata does not restart retention. An expired
// card is answered all the same, so that an account updater can find and
// fix it. Errors are *Error: token_not_found (also for a malformed or
// deleted token), store_unavailable, key_backend_unavailable,
// key_retired, record_corrupt.
func (v *Vault) Metadata(ctx context.Context, token string) (*CardMeta, error) {
	ctx, span := v.tracer.Start(ctx, "vaultclient.Metadata")
	defer span.End()
	m, _, err := v.metadata(ctx, token)
	endSpan(span, err)
	return m, err
}

// metadata also returns the record bytes it read, for Update's swap.
func (v *Vault) metadata(ctx context.Context, token string) (*CardMeta, []byte, error) {
	if !ValidToken(token) {
		return nil, nil, tokenNotFound(token, nil)
	}
	ls, err := v.lifecycleStore()
	if err != nil {
		return nil, nil, err
	}
	sm, err := storeCall(ctx, v, "vaultclient.store.Meta", "meta", func(ctx context.Context) (StoreMeta, error) {
		return ls.Meta(ctx, token)
	})
	if err != nil {
		return nil, nil, v.storeError(token, err)
	}
	rec, p, pt, err := v.open(ctx, token, sm.Record)
	if err != nil {
		return nil, nil, err
	}
	defer clear(pt)
	m := &CardMeta{
		Token:       token,
		Brand:       rec.Brand,
		Last4:       rec.Last4,
		ExpMonth:    p.expMonth,
		ExpYear:     p.expYear,
		Fingerprint: rec.Fingerprint,
		CreatedAt:   time.Unix(rec.CreatedAt, 0).UTC(),
		LastUsedAt:  sm.LastUsed.UTC(),
		CVCHeld:     sm.CVCHeld,
	}
	if sm.LastUsed.IsZero() {
		m.LastUsedAt = m.CreatedAt // no marker yet: tokenizing was the last use
	}
	return m, sm.Record, nil
}

// open decodes a card record and opens its sealed payload, checking the
// clear last4 and brand against the number as Detokenize does. The caller
// clears pt, which p aliases.
func (v *Vault) open(ctx context.Context, token string, data []byte) (*cardRecord, *cardPayload, []byte, error) {
	rec, err := decodeCardRecord(data)
	if err != nil {
		return nil, nil, nil, v.corrupt(ctx, token, err)
	}
	pts, err := v.decrypt(ctx, []DecryptItem{{Binding: Binding{Token: token, Field: FieldCard}, Sealed: Sealed{Key: rec.Key, Blob: rec.Card}}})
	if err != nil {
		return nil, nil, nil, v.keyError(ctx, "open", token, err)
	}
	if len(pts) != 1 {
		for _, pt := range pts {
			clear(pt)
		}
		return nil, nil, nil, newError(CodeInternal, "internal error", fmt.Errorf("open %s: key backend returned %d plaintexts for 1 item", token, len(pts)))
	}
	p, err := decodeCardPayload(pts[0])
	if err != nil {
		clear(pts[0])
		return nil, nil, nil, v.corrupt(ctx, token, err)
	}
	if string(p.number[len(p.number)-4:]) != rec.Last4 || detectBrand(p.number) != rec.Brand {
		clear(pts[0])
		return nil, nil, nil, v.corrupt(ctx, token, errors.New("clear last4 or brand does not match the sealed number"))
	}
	return rec, p, pts[0], nil
}

// storeError maps a store error: ErrNotFound to token_not_found, anything
// else to store_unavailable. err names the token, never record bytes.
func (v *Vault) storeError(token string, err error) *Error {
	if errors.Is(err, ErrNotFound) {
		return tokenNotFound(token, err)
	}
	return newError(CodeStoreUnavailable, "card store unavailable", err)
}

// checkUpdate validates u as Tokenize validates the same fields, and
// returns the trimmed name. Messages name the field, never the value.
func checkUpdate(u CardUpdate, now time.Time) (name string, err error) {
	if u.ExpMonth == nil && u.ExpYear == nil && u.Name == nil {
		return "", newError(CodeInvalidUpdate, "give a new expiry (exp_month and exp_year), a name, or both", nil)
	}
	if (u.ExpMonth == nil) != (u.ExpYear == nil) {
		return "", newError(CodeInvalidUpdate, "exp_month and exp_year must be given together", nil)
	}
	if u.ExpMonth != nil {
		m, y := *u.ExpMonth, *u.ExpYear
		switch {
		case m < 1 || m > 12:
			return "", newError(CodeInvalidExpiry, "exp_month must be 1 to 12", nil)
		case y < 1000 || y > 9999:
			return "", newError(CodeInvalidExpiry, "exp_year must have four digits", nil)
		case y > now.UTC().Year()+maxExpiryYears:
			return "", newError(CodeInvalidExpiry, "exp_year is too far in the future", nil)
		case expired(m, y, now):
			return "", newError(CodeCardExpired, "the card has expired (exp_month, exp_year)", nil)
		}
	}
	if u.Name != nil {
		name = strings.TrimSpace(*u.Name)
		if err := checkName(name); err != nil {
			return "", err
		}
		if err := checkFreeText(name, CodeInvalidName, "name"); err != nil {
			return "", err
		}
	}
	return name, nil
}

// ValidateUpdate checks u as Update does, as of the Vault's clock, without
// reading the store: the API checks an update before it writes the audit
// record, so that a refused update leaves none. Errors are those of
// Update's validation.
func (v *Vault) ValidateUpdate(u CardUpdate) error {
	_, err := checkUpdate(u, v.now())
	return err
}

// ValidateCVC checks that cvc is 3 or 4 digits, the shape of a CVC of some
// brand; CollectCVC then checks its length against the card's brand.
// Errors are *Error with code invalid_cvc.
func ValidateCVC(cvc string) error {
	if cvc == "" {
		return newError(CodeInvalidCVC, "cvc is required", nil)
	}
	return checkCVC(cvc, BrandUnknown)
}

// Update changes a stored card's expiry, name or both, as an account
// updater does. It validates the new values as Tokenize does (including
// the refusal of a card-like number in the name), opens the record, seals
// a new payload with the same number under the key backend's current key,
// and replaces the record only if it has not changed since it was read
// (retrying a few times if it has). The token, number, last4, brand,
// fingerprint and creation time stay; a CVC held stays. An update is a
// use. Errors are *Error: invalid_update, invalid_expiry, card_expired,
// invalid_name, and those of Metadata.
func (v *Vault) Update(ctx context.Context, token string, u CardUpdate) (*CardMeta, error) {
	ctx, span := v.tracer.Start(ctx, "vaultclient.Update")
	defer span.End()
	m, err := v.update(ctx, token, u)
	endSpan(span, err)
	return m, err
}

func (v *Vault) update(ctx context.Context, token string, u CardUpdate) (*CardMeta, error) {
	if !ValidToken(token) {
		return nil, tokenNotFound(token, nil)
	}
	now := v.now()
	name, err := checkUpdate(u, now)
	if err != nil {
		return nil, err
	}
	ls, err := v.lifecycleStore()
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		m, err := v.updateOnce(ctx, ls, token, u, name, now)
		if err == nil || !errors.Is(err, ErrConflict) {
			return m, err
		}
		if attempt == updateAttempts {
			return nil, newError(CodeStoreUnavailable, "card store busy: the card kept changing; retry", err)
		}
	}
}

// updateOnce is one read-seal-swap. A conflict is returned as a bare
// error wrapping ErrConflict, for update to retry.
func (v *Vault) updateOnce(ctx context.Context, ls LifecycleStore, token string, u CardUpdate, name string, now time.Time) (*CardMeta, error) {
	sm, err := storeCall(ctx, v, "vaultclient.store.Meta", "meta", func(ctx context.Context) (StoreMeta, error) {
		return ls.Meta(ctx, token)
	})
	if err != nil {
		return nil, v.storeError(token, err)
	}
	rec, p, pt, err := v.open(ctx, token, sm.Record)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	c := &validCard{number: p.number, expMonth: p.expMonth, expYear: p.expYear, name: string(p.name), brand: rec.Brand}
	if u.ExpMonth != nil {
		c.expMonth, c.expYear = *u.ExpMonth, *u.ExpYear
	}
	if u.Name != nil {
		c.name = name
	}
	payload := encodeCardPayload(c)
	defer clear(payload)
	sealed, err := v.encrypt(ctx, []EncryptItem{{Binding: Binding{Token: token, Field: FieldCard}, Plaintext: payload}})
	if err != nil {
		return nil, v.keyError(ctx, "seal", token, err)
	}
	if len(sealed) != 1 {
		return nil, newError(CodeInternal, "internal error", fmt.Errorf("seal %s: key backend returned %d blobs for 1 item", token, len(sealed)))
	}
	next := *rec
	next.Key, next.Card = sealed[0].Key, sealed[0].Blob
	data, err := json.Marshal(next)
	if err != nil {
		return nil, newError(CodeInternal, "internal error", fmt.Errorf("encode record %s: %w", token, err))
	}
	_, err = storeCall(ctx, v, "vaultclient.store.Replace", "replace", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, ls.Replace(ctx, token, sm.Record, data, now)
	})
	if errors.Is(err, ErrConflict) {
		return nil, err
	}
	if err != nil {
		return nil, v.storeError(token, err)
	}
	v.touched.mark(token, now)
	// The values are the caller's own and are not logged.
	v.log.DebugContext(ctx, "card updated", "token", token, "expiry", u.ExpMonth != nil, "name", u.Name != nil)
	return &CardMeta{
		Token:       token,
		Brand:       rec.Brand,
		Last4:       rec.Last4,
		ExpMonth:    c.expMonth,
		ExpYear:     c.expYear,
		Fingerprint: rec.Fingerprint,
		CreatedAt:   time.Unix(rec.CreatedAt, 0).UTC(),
		LastUsedAt:  time.UnixMilli(now.UnixMilli()).UTC(),
		CVCHeld:     sm.CVCHeld,
	}, nil
}

// CollectCVC stores a freshly collected CVC for a stored card, under the
// same rules as at tokenization: validated against the card's brand,
// sealed under its own binding, held for the Vault's CVC TTL, and deleted
// by the first forward that reads it. It replaces any CVC still held. It
// is a use. Errors are *Error: token_not_found, invalid_cvc,
// store_unavailable, key_backend_unavailable, record_corrupt.
func (v *Vault) CollectCVC(ctx context.Context, token, cvc string) (*CVCInfo, error) {
	ctx, span := v.tracer.Start(ctx, "vaultclient.CollectCVC")
	defer span.End()
	info, err := v.collectCVC(ctx, token, cvc)
	endSpan(span, err)
	return info, err
}

func (v *Vault) collectCVC(ctx context.Context, token, cvc string) (*CVCInfo, error) {
	if !ValidToken(token) {
		return nil, tokenNotFound(token, nil)
	}
	ls, err := v.lifecycleStore()
	if err != nil {
		return nil, err
	}
	// The brand decides the length; it is in the record's clear fields.
	data, err := v.getRecord(ctx, token)
	if err != nil {
		return nil, v.storeError(token, err)
	}
	rec, err := decodeCardRecord(data)
	if err != nil {
		return nil, v.corrupt(ctx, token, err)
	}
	if cvc == "" {
		return nil, newError(CodeInvalidCVC, "cvc is required", nil)
	}
	if err := checkCVC(cvc, rec.Brand); err != nil {
		return nil, err
	}
	now := v.now()
	exp := now.Add(v.cvcTTL)
	raw := []byte(cvc)
	defer clear(raw)
	payload := encodeCVCPayload(raw, exp)
	defer clear(payload)
	sealed, err := v.encrypt(ctx, []EncryptItem{{Binding: Binding{Token: token, Field: FieldCVC}, Plaintext: payload}})
	if err != nil {
		return nil, v.keyError(ctx, "seal", token, err)
	}
	if len(sealed) != 1 {
		return nil, newError(CodeInternal, "internal error", fmt.Errorf("seal cvc %s: key backend returned %d blobs for 1 item", token, len(sealed)))
	}
	cr, err := json.Marshal(cvcRecord{Format: recordFormat, Key: sealed[0].Key, CVC: sealed[0].Blob})
	if err != nil {
		return nil, newError(CodeInternal, "internal error", fmt.Errorf("encode cvc record %s: %w", token, err))
	}
	_, err = storeCall(ctx, v, "vaultclient.store.PutCVC", "put_cvc", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, ls.PutCVC(ctx, token, cr, v.cvcTTL, now)
	})
	if err != nil {
		return nil, v.storeError(token, err)
	}
	v.touched.mark(token, now)
	v.log.DebugContext(ctx, "cvc collected", "token", token)
	return &CVCInfo{Token: token, CVCHeld: true, CVCExpiresAt: time.UnixMilli(exp.UnixMilli()).UTC()}, nil
}

// Delete removes the card, any CVC and its last-use marker from the store,
// in one store operation. Afterwards the token answers every call exactly
// as a token that never existed: token_not_found, from the same code path
// (one store read that finds nothing, no key-backend call). Deleting a
// token that is not there is token_not_found too, so a caller cannot tell
// "deleted" from "never existed". Errors are *Error: token_not_found or
// store_unavailable.
func (v *Vault) Delete(ctx context.Context, token string) error {
	ctx, span := v.tracer.Start(ctx, "vaultclient.Delete")
	defer span.End()
	err := v.delete(ctx, token)
	endSpan(span, err)
	return err
}

func (v *Vault) delete(ctx context.Context, token string) error {
	if !ValidToken(token) {
		return tokenNotFound(token, nil)
	}
	ls, err := v.lifecycleStore()
	if err != nil {
		return err
	}
	_, err = storeCall(ctx, v, "vaultclient.store.Delete", "delete", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, ls.Delete(ctx, token)
	})
	// Forgotten whatever the outcome: a marker must not outlive the card,
	// and a token unknown to the cache costs at most one touch.
	v.touched.forget(token)
	if err != nil {
		return v.storeError(token, err)
	}
	v.log.DebugContext(ctx, "card deleted", "token", token)
	return nil
}

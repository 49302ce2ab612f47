package vaultclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// CardInput is what POST /v1/cards accepts.
type CardInput struct {
	Number   string `json:"number"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
	CVC      string `json:"cvc,omitempty"`
	Name     string `json:"name,omitempty"`
}

// TokenInfo is what tokenizing returns: never the number or the CVC.
type TokenInfo struct {
	Token       string `json:"token"`
	Last4       string `json:"last4"`
	Brand       string `json:"brand"`
	ExpMonth    int    `json:"exp_month"`
	ExpYear     int    `json:"exp_year"`
	Fingerprint string `json:"fingerprint"` // base64url HMAC-SHA256, no padding
}

// Defaults and limits for Options.
const (
	// DefaultCVCTTL is how long a CVC is held when Options.CVCTTL is 0: long
	// enough for a checkout to forward it, short enough that a CVC is never
	// kept for later.
	DefaultCVCTTL = time.Hour
	// MaxCVCTTL is the longest Options.CVCTTL accepted.
	MaxCVCTTL = 24 * time.Hour
	// DefaultStoreTimeout bounds each store call when Options.StoreTimeout
	// is 0.
	DefaultStoreTimeout = 2 * time.Second
	// DefaultKeyTimeout bounds each key-backend call when Options.KeyTimeout
	// is 0.
	DefaultKeyTimeout = 2 * time.Second
)

// tracerName is the instrumentation scope of the spans.
const tracerName = "github.com/cardgate/cardgate/vaultclient"

// Options tunes a Vault. The zero value is valid: every zero field means
// the documented default.
type Options struct {
	// CVCTTL is how long a CVC is held after tokenizing. 0 means
	// DefaultCVCTTL; at most MaxCVCTTL.
	CVCTTL time.Duration
	// StoreTimeout bounds each store call; the deadline is derived from the
	// caller's context, so the earlier of the two wins. 0 means
	// DefaultStoreTimeout.
	StoreTimeout time.Duration
	// KeyTimeout bounds each key-backend call, like StoreTimeout. 0 means
	// DefaultKeyTimeout.
	KeyTimeout time.Duration
	// Now is the clock for expiry checks. nil means time.Now.
	Now func() time.Time
	// Logger receives security events (records that fail authentication)
	// and debug traces of operations. It is never given card data. nil
	// discards.
	Logger *slog.Logger
	// TracerProvider makes spans for each operation and each store and key
	// backend call. nil means a no-op provider.
	TracerProvider trace.TracerProvider
	// MeterProvider records the duration of each key-backend and store
	// call (MetricKeyDuration, MetricStoreDuration). nil means a no-op
	// provider.
	MeterProvider metric.MeterProvider
}

// Vault tokenizes and detokenizes cards. It is safe for concurrent use.
type Vault struct {
	store        Store
	keys         Keyer
	cvcTTL       time.Duration
	storeTimeout time.Duration
	keyTimeout   time.Duration
	now          func() time.Time
	log          *slog.Logger
	tracer       trace.Tracer
	metrics      *metrics
	touched      *touchCache // forwards' last-use marks (retention.go)
}

// New returns a Vault that seals cards with keys and keeps them in store.
// It does not take ownership: the caller closes store and keys after the
// Vault is no longer used.
func New(store Store, keys Keyer, o Options) (*Vault, error) {
	if store == nil {
		return nil, errors.New("vaultclient: new: store is nil")
	}
	if keys == nil {
		return nil, errors.New("vaultclient: new: key backend is nil")
	}
	v := &Vault{
		store:        store,
		keys:         keys,
		cvcTTL:       o.CVCTTL,
		storeTimeout: o.StoreTimeout,
		keyTimeout:   o.KeyTimeout,
		now:          o.Now,
		log:          o.Logger,
	}
	switch {
	case v.cvcTTL == 0:
		v.cvcTTL = DefaultCVCTTL
	case v.cvcTTL < time.Second || v.cvcTTL > MaxCVCTTL:
		return nil, fmt.Errorf("vaultclient: new: cvc ttl %v is not between 1s and %v", v.cvcTTL, MaxCVCTTL)
	}
	switch {
	case v.storeTimeout == 0:
		v.storeTimeout = DefaultStoreTimeout
	case v.storeTimeout < 0:
		return nil, fmt.Errorf("vaultclient: new: store timeout %v is negative", v.storeTimeout)
	}
	switch {
	case v.keyTimeout == 0:
		v.keyTimeout = DefaultKeyTimeout
	case v.keyTimeout < 0:
		return nil, fmt.Errorf("vaultclient: new: key timeout %v is negative", v.keyTimeout)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tp := o.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	v.tracer = tp.Tracer(tracerName)
	m, err := newMetrics(o.MeterProvider, keys, store)
	if err != nil {
		return nil, err
	}
	v.metrics = m
	if v.touched, err = newTouchCache(o.MeterProvider); err != nil {
		return nil, err
	}
	return v, nil
}

// Tokenize validates in, seals it and stores it under a new token. The
// card and its CVC are written together or not at all. Errors are *Error:
// a validation code naming the field, or store_unavailable /
// key_backend_unavailable (nothing was written).
func (v *Vault) Tokenize(ctx context.Context, in CardInput) (*TokenInfo, error) {
	ctx, span := v.tracer.Start(ctx, "vaultclient.Tokenize")
	defer span.End()
	info, err := v.tokenize(ctx, in)
	endSpan(span, err)
	return info, err
}

func (v *Vault) tokenize(ctx context.Context, in CardInput) (*TokenInfo, error) {
	return v.tokenizeAs(ctx, in, newToken(), false)
}

// tokenizeAs is tokenize under token; derived says that the caller chose
// it (TokenizeAs), so that a record already under it is an answer for the
// caller, not a collision of random tokens.
func (v *Vault) tokenizeAs(ctx context.Context, in CardInput, token string, derived bool) (*TokenInfo, error) {
	now := v.now()
	c, err := validate(in, now)
	if err != nil {
		return nil, err
	}
	defer c.wipe()

	mac, fpKey, err := v.fingerprint(ctx, c.number)
	if err != nil {
		return nil, v.keyError(ctx, "fingerprint", token, err)
	}

	payload := encodeCardPayload(c)
	defer clear(payload)
	items := []EncryptItem{{Binding: Binding{Token: token, Field: FieldCard}, Plaintext: payload}}
	if c.cvc != nil {
		cvcPayload := encodeCVCPayload(c.cvc, now.Add(v.cvcTTL))
		defer clear(cvcPayload)
		items = append(items, EncryptItem{Binding: Binding{Token: token, Field: FieldCVC}, Plaintext: cvcPayload})
	}
	sealed, err := v.encrypt(ctx, items)
	if err != nil {
		return nil, v.keyError(ctx, "seal", token, err)
	}
	if len(sealed) != len(items) {
		return nil, newError(CodeInternal, "internal error", fmt.Errorf("seal %s: key backend returned %d blobs for %d items", token, len(sealed), len(items)))
	}

	last4 := string(c.number[len(c.number)-4:])
	info := &TokenInfo{
		Token:       token,
		Last4:       last4,
		Brand:       c.brand,
		ExpMonth:    c.expMonth,
		ExpYear:     c.expYear,
		Fingerprint: base64.RawURLEncoding.EncodeToString(mac),
	}
	rec, err := json.Marshal(cardRecord{
		Format:         recordFormat,
		Key:            sealed[0].Key,
		Card:           sealed[0].Blob,
		Last4:          last4,
		Brand:          c.brand,
		Fingerprint:    info.Fingerprint,
		FingerprintKey: fpKey,
		CreatedAt:      now.Unix(),
	})
	if err != nil {
		return nil, newError(CodeInternal, "internal error", fmt.Errorf("encode record %s: %w", token, err))
	}
	e := Entry{Record: rec}
	if c.cvc != nil {
		e.CVC, err = json.Marshal(cvcRecord{Format: recordFormat, Key: sealed[1].Key, CVC: sealed[1].Blob})
		if err != nil {
			return nil, newError(CodeInternal, "internal error", fmt.Errorf("encode cvc record %s: %w", token, err))
		}
	}

	put := v.put
	if derived {
		put = v.putNew
	}
	if err := put(ctx, token, e); err != nil {
		if errors.Is(err, ErrExists) && derived {
			return nil, newError(CodeInternal, "a card is already held under the token", err)
		}
		if errors.Is(err, ErrDeleted) {
			return nil, newError(CodeInternal, "the token's card was deleted", err)
		}
		if errors.Is(err, errNoTombstones) {
			return nil, newError(CodeInternal, "internal error", err)
		}
		if errors.Is(err, ErrExists) {
			// 160 random bits do not collide; if they did, crypto/rand is
			// broken and no new token should be trusted either.
			v.log.ErrorContext(ctx, "token collision", "token", token)
			return nil, newError(CodeInternal, "internal error", err)
		}
		return nil, newError(CodeStoreUnavailable, "card store unavailable", err) // err names the token
	}
	v.touched.mark(token, now) // Put marked the use; spare the first forward a touch
	v.log.DebugContext(ctx, "card tokenized", "token", token, "brand", c.brand, "cvc", c.cvc != nil)
	return info, nil
}

// Detokenize returns the card behind token without its CVC: Card.CVC is
// always empty. It reads only the card record from the store, never the
// CVC's, so it neither decrypts nor deletes a CVC; one still held stays
// there, for DetokenizeConsumingCVC, until its TTL. Use Detokenize when
// the CVC will not be sent. It refuses a card whose expiry month has ended
// (card_expired). Errors are *Error: token_not_found (also for a malformed
// token), card_expired, store_unavailable, key_backend_unavailable,
// key_retired or record_corrupt.
func (v *Vault) Detokenize(ctx context.Context, token string) (*Card, error) {
	ctx, span := v.tracer.Start(ctx, "vaultclient.Detokenize")
	defer span.End()
	card, err := v.detokenize(ctx, token, false, true)
	endSpan(span, err)
	return card, err
}

// DetokenizeForExport is Detokenize that does not mark the card used: an
// export reads every card, and must not restart every card's retention
// (nor, on Redis, change any record's TTL). Errors are those of
// Detokenize.
func (v *Vault) DetokenizeForExport(ctx context.Context, token string) (*Card, error) {
	ctx, span := v.tracer.Start(ctx, "vaultclient.DetokenizeForExport")
	defer span.End()
	card, err := v.detokenize(ctx, token, false, false)
	endSpan(span, err)
	return card, err
}

// DetokenizeConsumingCVC returns the card behind token with its CVC, if one
// is still held, and deletes the CVC in the same store operation as the
// read. It is the only way to get a CVC back: call it only when the CVC is
// about to be sent. Of two concurrent calls for one token, at most one
// gets the CVC, so a CVC is sent at most once. The CVC is gone from the
// moment it is read, whatever happens next (a key backend error, a refused
// or failed send): the caller collects it again from the cardholder. A
// card without a CVC (none held, expired or consumed) is returned with an
// empty CVC. Errors are those of Detokenize.
func (v *Vault) DetokenizeConsumingCVC(ctx context.Context, token string) (*Card, error) {
	ctx, span := v.tracer.Start(ctx, "vaultclient.DetokenizeConsumingCVC")
	defer span.End()
	card, err := v.detokenize(ctx, token, true, true)
	endSpan(span, err)
	return card, err
}

// detokenize reads the card; markUse says whether the read is a use
// (retention.go).
func (v *Vault) detokenize(ctx context.Context, token string, consumeCVC, markUse bool) (*Card, error) {
	if !ValidToken(token) {
		return nil, tokenNotFound(token, nil)
	}
	// Only the consuming read fetches the CVC: a plain Detokenize reads the
	// card record alone, so e.CVC stays nil and no CVC is decoded or
	// decrypted below.
	var e Entry
	var err error
	if consumeCVC {
		e, err = v.getAndDeleteCVC(ctx, token)
	} else {
		e.Record, err = v.getRecord(ctx, token)
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, tokenNotFound(token, err)
		}
		return nil, newError(CodeStoreUnavailable, "card store unavailable", err) // err names the token
	}
	rec, err := decodeCardRecord(e.Record)
	if err != nil {
		return nil, v.corrupt(ctx, token, err)
	}
	n := 1
	if e.CVC != nil {
		n = 2 // room for the CVC: one allocation, not two
	}
	items := make([]DecryptItem, 1, n)
	items[0] = DecryptItem{Binding: Binding{Token: token, Field: FieldCard}, Sealed: Sealed{Key: rec.Key, Blob: rec.Card}}
	if e.CVC != nil {
		cr, err := decodeCVCRecord(e.CVC)
		if err != nil {
			return nil, v.corrupt(ctx, token, err)
		}
		items = append(items, DecryptItem{Binding: Binding{Token: token, Field: FieldCVC}, Sealed: Sealed{Key: cr.Key, Blob: cr.CVC}})
	}

	pts, err := v.decrypt(ctx, items)
	if err != nil {
		return nil, v.keyError(ctx, "open", token, err)
	}
	defer func() {
		for _, pt := range pts {
			clear(pt)
		}
	}()
	if len(pts) != len(items) {
		return nil, newError(CodeInternal, "internal error", fmt.Errorf("open %s: key backend returned %d plaintexts for %d items", token, len(pts), len(items)))
	}
	p, err := decodeCardPayload(pts[0])
	if err != nil {
		return nil, v.corrupt(ctx, token, err)
	}
	last4 := string(p.number[len(p.number)-4:])
	if brand := detectBrand(p.number); last4 != rec.Last4 || brand != rec.Brand {
		return nil, v.corrupt(ctx, token, errors.New("clear last4 or brand does not match the sealed number"))
	}
	now := v.now()
	if expired(p.expMonth, p.expYear, now) {
		return nil, newError(CodeCardExpired, "the card has expired", fmt.Errorf("card %s", token))
	}
	card := &Card{
		Token:    token,
		Number:   PAN{v: string(p.number)},
		ExpMonth: p.expMonth,
		ExpYear:  p.expYear,
		Name:     Name{v: string(p.name)},
		Brand:    rec.Brand,
		Last4:    last4,
	}
	if len(pts) == 2 {
		cvc, expires, err := decodeCVCPayload(pts[1])
		if err != nil {
			return nil, v.corrupt(ctx, token, err)
		}
		// The store expires CVCs too; this check holds even if its TTL
		// did not (a restored backup, a clock step on a bolt host).
		if now.Before(expires) {
			card.CVC = CVC{v: string(cvc)}
		}
	}
	if markUse {
		v.noteUse(ctx, token) // retention.go: at most once per TouchInterval
	}
	return card, nil
}

// ConsumeCVC deletes the transient CVC held for token without reading it,
// for a caller that will not send it after all. (The forwarder uses
// DetokenizeConsumingCVC, which deletes it with the read.) It is
// idempotent: a CVC already gone is not an error. Errors are *Error:
// token_not_found for a malformed token, or store_unavailable.
func (v *Vault) ConsumeCVC(ctx context.Context, token string) error {
	ctx, span := v.tracer.Start(ctx, "vaultclient.ConsumeCVC")
	defer span.End()
	var err error
	if !ValidToken(token) {
		err = tokenNotFound(token, nil)
	} else if derr := v.deleteCVC(ctx, token); derr != nil {
		err = newError(CodeStoreUnavailable, "card store unavailable", derr) // derr names the token
	}
	endSpan(span, err)
	return err
}

// Ping checks the store and the key backend, for /readyz. Errors are
// *Error: store_unavailable or key_backend_unavailable.
func (v *Vault) Ping(ctx context.Context) error {
	ctx, span := v.tracer.Start(ctx, "vaultclient.Ping")
	defer span.End()
	err := v.ping(ctx)
	endSpan(span, err)
	return err
}

func (v *Vault) ping(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, v.storeTimeout)
	err := v.store.Ping(sctx)
	cancel()
	if err != nil {
		return newError(CodeStoreUnavailable, "card store unavailable", err)
	}
	kctx, cancel := context.WithTimeout(ctx, v.keyTimeout)
	defer cancel()
	if err := v.keys.Ping(kctx); err != nil {
		return newError(CodeKeyBackendUnavailable, "key backend unavailable", err)
	}
	return nil
}

// The calls below each get their own deadline and span.

func (v *Vault) fingerprint(ctx context.Context, pan []byte) ([]byte, KeyID, error) {
	ctx, cancel := context.WithTimeout(ctx, v.keyTimeout)
	defer cancel()
	ctx, span := v.tracer.Start(ctx, "vaultclient.keys.Fingerprint", trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	start := time.Now()
	mac, id, err := v.keys.Fingerprint(ctx, pan)
	v.metrics.recordKey(ctx, "fingerprint", start, err)
	spanKey(span, id)
	spanErr(span, err)
	return mac, id, err
}

func (v *Vault) encrypt(ctx context.Context, items []EncryptItem) ([]Sealed, error) {
	ctx, cancel := context.WithTimeout(ctx, v.keyTimeout)
	defer cancel()
	ctx, span := v.tracer.Start(ctx, "vaultclient.keys.Encrypt", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int("cardgate.key.items", len(items))))
	defer span.End()
	start := time.Now()
	sealed, err := v.keys.Encrypt(ctx, items)
	v.metrics.recordKey(ctx, "encrypt", start, err)
	if len(sealed) > 0 {
		spanKey(span, sealed[0].Key)
	}
	spanErr(span, err)
	return sealed, err
}

func (v *Vault) decrypt(ctx context.Context, items []DecryptItem) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, v.keyTimeout)
	defer cancel()
	ctx, span := v.tracer.Start(ctx, "vaultclient.keys.Decrypt", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int("cardgate.key.items", len(items))))
	defer span.End()
	spanKey(span, items[0].Sealed.Key)
	start := time.Now()
	pts, err := v.keys.Decrypt(ctx, items)
	v.metrics.recordKey(ctx, "decrypt", start, err)
	spanErr(span, err)
	return pts, err
}

// storeCall runs one store operation under the store timeout, in its own
// span (named span), timed in the store histogram (labelled op). A token
// that is not there is an answer, not a failed span.
func storeCall[T any](ctx context.Context, v *Vault, span, op string, call func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, v.storeTimeout)
	defer cancel()
	ctx, sp := v.tracer.Start(ctx, span, trace.WithSpanKind(trace.SpanKindClient))
	defer sp.End()
	start := time.Now()
	out, err := call(ctx)
	v.metrics.recordStore(ctx, op, start, err)
	if err != nil && !errors.Is(err, ErrNotFound) {
		spanErr(sp, err)
	}
	return out, err
}

func (v *Vault) put(ctx context.Context, token string, e Entry) error {
	_, err := storeCall(ctx, v, "vaultclient.store.Put", "put", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, v.store.Put(ctx, token, e, v.cvcTTL)
	})
	return err
}

func (v *Vault) getRecord(ctx context.Context, token string) ([]byte, error) {
	return storeCall(ctx, v, "vaultclient.store.GetRecord", "get_record", func(ctx context.Context) ([]byte, error) {
		return v.store.GetRecord(ctx, token)
	})
}

func (v *Vault) get(ctx context.Context, token string) (Entry, error) {
	return storeCall(ctx, v, "vaultclient.store.Get", "get", func(ctx context.Context) (Entry, error) {
		return v.store.Get(ctx, token)
	})
}

func (v *Vault) getAndDeleteCVC(ctx context.Context, token string) (Entry, error) {
	return storeCall(ctx, v, "vaultclient.store.GetAndDeleteCVC", "get_and_delete_cvc", func(ctx context.Context) (Entry, error) {
		return v.store.GetAndDeleteCVC(ctx, token)
	})
}

func (v *Vault) deleteCVC(ctx context.Context, token string) error {
	_, err := storeCall(ctx, v, "vaultclient.store.DeleteCVC", "delete_cvc", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, v.store.DeleteCVC(ctx, token)
	})
	return err
}

// keyError classifies a Keyer error. Integrity failures are security
// events and are logged; the log names the token, never the blob.
func (v *Vault) keyError(ctx context.Context, op, token string, err error) *Error {
	cause := fmt.Errorf("%s %s: %w", op, token, err)
	switch {
	case errors.Is(err, ErrIntegrity):
		return v.corrupt(ctx, token, cause)
	case errors.Is(err, ErrKeyRetired):
		v.log.WarnContext(ctx, "card record sealed under a key version the backend does not hold", "token", token)
		return newError(CodeKeyRetired, "card sealed under a retired key", cause)
	default:
		return newError(CodeKeyBackendUnavailable, "key backend unavailable", cause)
	}
}

// corrupt reports a record that failed authentication or parsing.
func (v *Vault) corrupt(ctx context.Context, token string, cause error) *Error {
	v.log.ErrorContext(ctx, "card record failed integrity check", "token", token, "error", cause.Error())
	return newError(CodeRecordCorrupt, "card record failed integrity check", cause)
}

// endSpan records an operation's outcome on its span: the error code
// only, since the code is what dashboards group by.
func endSpan(span trace.Span, err error) {
	if err == nil {
		return
	}
	code := CodeInternal
	var e *Error
	if errors.As(err, &e) {
		code = e.Code
	}
	span.SetAttributes(attribute.String("cardgate.error.code", code))
	span.SetStatus(codes.Error, code)
}

func spanErr(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "failed")
	}
}

func spanKey(span trace.Span, id KeyID) {
	if !span.IsRecording() {
		return // spare the attribute slice
	}
	span.SetAttributes(
		attribute.String("cardgate.key.backend", id.Backend),
		attribute.String("cardgate.key.name", id.Name),
		attribute.Int64("cardgate.key.version", int64(id.Version)),
	)
}

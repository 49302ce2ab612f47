package vaultclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrConflict: RewrapStore.Swap found the record changed or gone and
// wrote nothing.
var ErrConflict = errors.New("vaultclient: record changed underneath")

// RewrapStore is a Store that can list its records and replace one that
// has not changed. RedisStore (standalone or Sentinel) and BoltStore are
// RewrapStores.
type RewrapStore interface {
	Store
	// Scan returns up to about limit tokens from cursor on ("" starts) and
	// the cursor to continue from ("" when the scan is complete). A token
	// may be returned more than once.
	Scan(ctx context.Context, cursor string, limit int) (tokens []string, next string, err error)
	// Swap replaces old with new under token if the record still holds
	// old.Record, else it writes nothing and returns an error wrapping
	// ErrConflict. The CVC is replaced only if it is still there and holds
	// old.CVC, and it keeps its expiry.
	Swap(ctx context.Context, token string, old, new Entry) error
}

// DefaultRewrapBatch is how many records Rewrap sends to the key backend
// in one call when RewrapOptions.BatchSize is 0.
const DefaultRewrapBatch = 100

// RewrapOptions tunes Rewrap.
type RewrapOptions struct {
	// Cursor resumes a scan where a RewrapProgress.Cursor left it. ""
	// starts from the beginning. Starting over is also safe: records
	// already under the primary are counted and skipped without a key
	// backend call.
	Cursor string
	// BatchSize is the number of records per key-backend call. 0 means
	// DefaultRewrapBatch.
	BatchSize int
	// Progress, if set, is called after every batch.
	Progress func(RewrapProgress)
}

// RewrapProgress counts what Rewrap has done so far.
type RewrapProgress struct {
	Primary   KeyID  // the version records are moved to
	Scanned   int    // records looked at
	Rewrapped int    // records moved to Primary
	Current   int    // records already under Primary
	Conflicts int    // records that changed or vanished while moving; run again
	Retired   int    // records under a key version the backend no longer has
	Corrupt   int    // records that failed authentication or do not parse
	Cursor    string // every record before this was handled; "" when done
}

// Rewrap re-seals every record (and CVC still held) that is not under
// the key backend's primary version, a batch at a time, so that old
// versions can be retired. With Vault Transit it uses transit/rewrap and
// no plaintext leaves Vault. Each record is replaced only if it has not
// changed since it was read. It stops at the first key-backend or store
// outage and returns the progress so far, whose Cursor resumes it;
// records it cannot open are counted, logged by token, and left as they
// are.
func (v *Vault) Rewrap(ctx context.Context, o RewrapOptions) (RewrapProgress, error) {
	rs, ok := v.store.(RewrapStore)
	if !ok {
		return RewrapProgress{}, errors.New("vaultclient: rewrap: this store cannot list its records")
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultRewrapBatch
	}
	kctx, cancel := context.WithTimeout(ctx, v.keyTimeout)
	primary, err := v.keys.Primary(kctx)
	cancel()
	if err != nil {
		return RewrapProgress{}, fmt.Errorf("vaultclient: rewrap: primary key version: %w", err)
	}
	p := RewrapProgress{Primary: primary, Cursor: o.Cursor}
	for {
		sctx, cancel := context.WithTimeout(ctx, v.storeTimeout)
		tokens, next, err := rs.Scan(sctx, p.Cursor, o.BatchSize)
		cancel()
		if err != nil {
			return p, err
		}
		if err := v.rewrapBatch(ctx, rs, primary, tokens, &p); err != nil {
			return p, err
		}
		p.Cursor = next
		if o.Progress != nil {
			o.Progress(p)
		}
		if next == "" {
			return p, nil
		}
	}
}

// pendingRewrap is one record being moved.
type pendingRewrap struct {
	token    string
	old      Entry
	rec      *cardRecord
	cvc      *cvcRecord
	card, cv int // indexes into the batch's items, -1 if not moved
}

func (v *Vault) rewrapBatch(ctx context.Context, rs RewrapStore, primary KeyID, tokens []string, p *RewrapProgress) error {
	var pending []*pendingRewrap
	var items []DecryptItem
	for _, tok := range tokens {
		e, err := v.get(ctx, tok)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since the scan
		}
		if err != nil {
			return err
		}
		p.Scanned++
		rec, err := decodeCardRecord(e.Record)
		if err != nil {
			p.Corrupt++
			v.corrupt(ctx, tok, err)
			continue
		}
		pr := &pendingRewrap{token: tok, old: e, rec: rec, card: -1, cv: -1}
		if rec.Key != primary {
			pr.card = len(items)
			items = append(items, DecryptItem{Binding: Binding{Token: tok, Field: FieldCard}, Sealed: Sealed{Key: rec.Key, Blob: rec.Card}})
		}
		if e.CVC != nil {
			cr, err := decodeCVCRecord(e.CVC)
			if err != nil {
				p.Corrupt++
				v.corrupt(ctx, tok, err)
				continue
			}
			pr.cvc = cr
			if cr.Key != primary {
				pr.cv = len(items)
				items = append(items, DecryptItem{Binding: Binding{Token: tok, Field: FieldCVC}, Sealed: Sealed{Key: cr.Key, Blob: cr.CVC}})
			}
		}
		if pr.card < 0 && pr.cv < 0 {
			p.Current++
			continue
		}
		pending = append(pending, pr)
	}
	if len(items) == 0 {
		return nil
	}
	sealed, err := v.rewrapItems(ctx, items)
	if err != nil {
		if !errors.Is(err, ErrIntegrity) && !errors.Is(err, ErrKeyRetired) {
			return newError(CodeKeyBackendUnavailable, "key backend unavailable", err)
		}
		// A batch fails as a whole; find the records that fail alone.
		sealed = make([]Sealed, len(items))
		for _, pr := range pending {
			var one []DecryptItem
			for _, i := range []int{pr.card, pr.cv} {
				if i >= 0 {
					one = append(one, items[i])
				}
			}
			s, err := v.rewrapItems(ctx, one)
			switch {
			case err == nil && len(s) == len(one):
				k := 0
				for _, i := range []int{pr.card, pr.cv} {
					if i >= 0 {
						sealed[i] = s[k]
						k++
					}
				}
			case err == nil:
				return newError(CodeInternal, "internal error", fmt.Errorf("rewrap %s: key backend returned %d blobs for %d items", pr.token, len(s), len(one)))
			case errors.Is(err, ErrKeyRetired):
				p.Retired++
				v.log.WarnContext(ctx, "rewrap: card sealed under a key version the backend does not hold", "token", pr.token)
				pr.card, pr.cv = -2, -2
			case errors.Is(err, ErrIntegrity):
				p.Corrupt++
				v.corrupt(ctx, pr.token, err)
				pr.card, pr.cv = -2, -2
			default:
				return newError(CodeKeyBackendUnavailable, "key backend unavailable", err)
			}
		}
	}
	if len(sealed) != len(items) {
		return newError(CodeInternal, "internal error", fmt.Errorf("rewrap: key backend returned %d blobs for %d items", len(sealed), len(items)))
	}
	for _, pr := range pending {
		if pr.card == -2 {
			continue
		}
		next := Entry{Record: pr.old.Record, CVC: pr.old.CVC}
		if pr.card >= 0 {
			r := *pr.rec
			r.Key, r.Card = sealed[pr.card].Key, sealed[pr.card].Blob
			if next.Record, err = json.Marshal(r); err != nil {
				return newError(CodeInternal, "internal error", fmt.Errorf("encode record %s: %w", pr.token, err))
			}
		}
		if pr.cv >= 0 {
			c := *pr.cvc
			c.Key, c.CVC = sealed[pr.cv].Key, sealed[pr.cv].Blob
			if next.CVC, err = json.Marshal(c); err != nil {
				return newError(CodeInternal, "internal error", fmt.Errorf("encode cvc record %s: %w", pr.token, err))
			}
		}
		sctx, cancel := context.WithTimeout(ctx, v.storeTimeout)
		err := rs.Swap(sctx, pr.token, pr.old, next)
		cancel()
		switch {
		case err == nil:
			p.Rewrapped++
		case errors.Is(err, ErrConflict):
			p.Conflicts++
		default:
			return newError(CodeStoreUnavailable, "card store unavailable", err)
		}
	}
	return nil
}

func (v *Vault) rewrapItems(ctx context.Context, items []DecryptItem) ([]Sealed, error) {
	ctx, cancel := context.WithTimeout(ctx, v.keyTimeout)
	defer cancel()
	start := time.Now()
	sealed, err := v.keys.Rewrap(ctx, items)
	v.metrics.recordKey(ctx, "rewrap", start, err)
	return sealed, err
}

// KeyCensus counts stored records and held CVCs by the key that sealed
// them. Unreadable records count under the zero KeyID.
func (v *Vault) KeyCensus(ctx context.Context) (map[KeyID]int, error) {
	rs, ok := v.store.(RewrapStore)
	if !ok {
		return nil, errors.New("vaultclient: census: this store cannot list its records")
	}
	out := map[KeyID]int{}
	cursor := ""
	for {
		sctx, cancel := context.WithTimeout(ctx, v.storeTimeout)
		tokens, next, err := rs.Scan(sctx, cursor, DefaultRewrapBatch)
		cancel()
		if err != nil {
			return nil, err
		}
		for _, tok := range tokens {
			e, err := v.get(ctx, tok)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if rec, err := decodeCardRecord(e.Record); err == nil {
				out[rec.Key]++
			} else {
				out[KeyID{}]++
			}
			if e.CVC != nil {
				if cr, err := decodeCVCRecord(e.CVC); err == nil {
					out[cr.Key]++
				} else {
					out[KeyID{}]++
				}
			}
		}
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

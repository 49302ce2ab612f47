package vaultclient

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
)

// BoltStore is a Store in one bbolt file, for a single node and the demo.
//
// Buckets:
//
//	meta        "format" → boltFormat
//	cards       token → card record
//	cvcs        token → expires_at (8 bytes, Unix ms) ‖ sealed CVC record
//	cvc_expiry  expires_at ‖ token → "" (an index, so sweeping expired
//	            CVCs costs only what it deletes)
//	used        token → last use (8 bytes, Unix ms); see boltstore_lifecycle.go
//	used_index  last use ‖ token → "" (an index, for the retention sweep)
//	tombstones  token → "1" (TombstoneStore; see boltstore_lifecycle.go)
//
// bbolt has no TTL, so a CVC's expiry is checked on every read, and
// expired CVCs are swept when the store opens, on every Put, and when a
// read finds one. bbolt does not zero freed pages: a deleted CVC's sealed
// bytes can remain in the file until the page is reused. They are sealed,
// so reading them needs the key backend too.
type BoltStore struct {
	db  *bolt.DB
	now func() time.Time // time.Now; tests replace it

	log           *slog.Logger
	sweepFailures metric.Int64Counter
}

// BoltOptions configures a BoltStore. Every zero field means its
// documented default.
type BoltOptions struct {
	// Logger receives the sweep failures that no call returns (see Get),
	// as an error class only. Nil discards.
	Logger *slog.Logger
	// MeterProvider counts those failures in MetricBoltSweepFailures. Nil
	// means an OpenTelemetry no-op.
	MeterProvider metric.MeterProvider
}

// MetricBoltSweepFailures counts failed sweeps of expired CVCs that no
// call returned, by class (closed, read_only, corrupt_index, other). The
// expired CVCs stay in the file, sealed and never returned, until a later
// sweep succeeds.
const MetricBoltSweepFailures = "cardgate.vaultclient.bolt_sweep_failures"

const (
	boltFormat = "cardgate-bolt/v1"
	// boltOpenTimeout bounds the wait for the file lock, so a second
	// process on the same file fails instead of hanging.
	boltOpenTimeout = time.Second
)

// Bucket and key names. Constants, converted at each use, so that no
// package-level []byte can be changed under the store.
const (
	bucketMeta      = "meta"
	bucketCards     = "cards"
	bucketCVCs      = "cvcs"
	bucketCVCExpiry = "cvc_expiry"
	keyFormat       = "format"
)

// OpenBoltStore opens or creates the store at path, with mode 0600. It is
// OpenBoltStoreWith with no logger and no meter.
func OpenBoltStore(path string) (*BoltStore, error) {
	return OpenBoltStoreWith(path, BoltOptions{})
}

// OpenBoltStoreWith is OpenBoltStore with options.
func OpenBoltStoreWith(path string, o BoltOptions) (*BoltStore, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.MeterProvider == nil {
		o.MeterProvider = metricnoop.NewMeterProvider()
	}
	failures, err := o.MeterProvider.Meter(tracerName).Int64Counter(MetricBoltSweepFailures,
		metric.WithDescription("Failed sweeps of expired CVCs in the bolt store, by class."))
	if err != nil {
		return nil, fmt.Errorf("vaultclient: open bolt store %s: counter: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: boltOpenTimeout})
	if err != nil {
		return nil, fmt.Errorf("vaultclient: open bolt store %s: %w", path, err)
	}
	s := &BoltStore{db: db, now: time.Now, log: o.Logger, sweepFailures: failures}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
		if err != nil {
			return err
		}
		switch f := meta.Get([]byte(keyFormat)); {
		case f == nil:
			if err := meta.Put([]byte(keyFormat), []byte(boltFormat)); err != nil {
				return err
			}
		case string(f) != boltFormat:
			return fmt.Errorf("store format %q is not %q", f, boltFormat)
		}
		for _, b := range []string{bucketCards, bucketCVCs, bucketCVCExpiry, bucketUsed, bucketUsedIndex, bucketTombstones} {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return sweepCVCs(tx, s.now())
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("vaultclient: open bolt store %s: %w", path, err)
	}
	return s, nil
}

// Close closes the file.
func (s *BoltStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("vaultclient: close bolt store: %w", err)
	}
	return nil
}

// Put implements Store, in one transaction: bbolt rolls it back whole if
// any write fails.
func (s *BoltStore) Put(ctx context.Context, token string, e Entry, cvcTTL time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vaultclient: bolt put %s: %w", token, err)
	}
	if len(e.Record) == 0 {
		return fmt.Errorf("vaultclient: bolt put %s: empty record", token)
	}
	if e.CVC != nil && cvcTTL <= 0 {
		return fmt.Errorf("vaultclient: bolt put %s: cvc ttl %v is not positive", token, cvcTTL)
	}
	now := s.now()
	err := s.db.Update(func(tx *bolt.Tx) error { return putTx(tx, []byte(token), e, cvcTTL, now) })
	if err != nil {
		return fmt.Errorf("vaultclient: bolt put %s: %w", token, err)
	}
	return nil
}

// putTx is Put's transaction: it writes e under tok unless a record is
// held there (ErrExists).
func putTx(tx *bolt.Tx, tok []byte, e Entry, cvcTTL time.Duration, now time.Time) error {
	cards := tx.Bucket([]byte(bucketCards))
	if cards.Get(tok) != nil {
		return ErrExists
	}
	if err := sweepCVCs(tx, now); err != nil {
		return err
	}
	if e.CVC != nil {
		var exp [8]byte
		binary.BigEndian.PutUint64(exp[:], uint64(now.Add(cvcTTL).UnixMilli()))
		val := append(exp[:len(exp):len(exp)], e.CVC...) // a new slice: exp is not shared
		idx := append(exp[:len(exp):len(exp)], tok...)
		if err := tx.Bucket([]byte(bucketCVCs)).Put(tok, val); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketCVCExpiry)).Put(idx, []byte{}); err != nil {
			return err
		}
	}
	if err := markUsed(tx, tok, now); err != nil {
		return err
	}
	return cards.Put(tok, bytes.Clone(e.Record))
}

// GetRecord implements Store, reading the cards bucket only.
func (s *BoltStore) GetRecord(ctx context.Context, token string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("vaultclient: bolt get record %s: %w", token, err)
	}
	var rec []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket([]byte(bucketCards)).Get([]byte(token))
		if v == nil {
			return ErrNotFound
		}
		// bbolt's slices point into the mmap and die with the transaction.
		rec = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vaultclient: bolt get record %s: %w", token, err)
	}
	return rec, nil
}

// Get implements Store.
func (s *BoltStore) Get(ctx context.Context, token string) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, fmt.Errorf("vaultclient: bolt get %s: %w", token, err)
	}
	now := s.now()
	var e Entry
	expired := false
	err := s.db.View(func(tx *bolt.Tx) error {
		tok := []byte(token)
		rec := tx.Bucket([]byte(bucketCards)).Get(tok)
		if rec == nil {
			return ErrNotFound
		}
		// bbolt's slices point into the mmap and die with the transaction.
		e.Record = bytes.Clone(rec)
		if v := tx.Bucket([]byte(bucketCVCs)).Get(tok); v != nil {
			if len(v) < 8 {
				return fmt.Errorf("cvc entry is %d bytes", len(v))
			}
			if now.UnixMilli() < int64(binary.BigEndian.Uint64(v[:8])) {
				e.CVC = bytes.Clone(v[8:])
			} else {
				expired = true
			}
		}
		return nil
	})
	if err != nil {
		return Entry{}, fmt.Errorf("vaultclient: bolt get %s: %w", token, err)
	}
	if expired {
		// The read has its answer; a failed sweep is retried by the next
		// Put or open, so its error does not fail the read. It is logged
		// and counted by class: bbolt's texts can name keys (tokens).
		if err := s.db.Update(func(tx *bolt.Tx) error { return sweepCVCs(tx, now) }); err != nil {
			class := sweepErrorClass(err)
			s.sweepFailures.Add(ctx, 1, metric.WithAttributes(attribute.String("class", class)))
			s.log.LogAttrs(ctx, slog.LevelError, "vaultclient: bolt store: sweeping expired cvcs failed; they stay sealed in the file until a later sweep",
				slog.String("class", class))
		}
	}
	return e, nil
}

// errSweepIndex: an entry of the CVC expiry index is too short to hold an
// expiry, so the index cannot be walked.
var errSweepIndex = errors.New("cvc expiry index entry too short")

// sweepErrorClass names a sweep error by a closed set of words.
func sweepErrorClass(err error) string {
	switch {
	case errors.Is(err, berrors.ErrDatabaseNotOpen), errors.Is(err, berrors.ErrTxClosed):
		return "closed"
	case errors.Is(err, berrors.ErrDatabaseReadOnly), errors.Is(err, berrors.ErrTxNotWritable):
		return "read_only"
	case errors.Is(err, errSweepIndex):
		return "corrupt_index"
	}
	return "other"
}

// GetAndDeleteCVC implements Store, in one Update transaction: bbolt
// serializes writers, so two calls cannot both see the CVC.
func (s *BoltStore) GetAndDeleteCVC(ctx context.Context, token string) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, fmt.Errorf("vaultclient: bolt take cvc %s: %w", token, err)
	}
	now := s.now()
	var e Entry
	err := s.db.Update(func(tx *bolt.Tx) error {
		tok := []byte(token)
		rec := tx.Bucket([]byte(bucketCards)).Get(tok)
		if rec == nil {
			return ErrNotFound
		}
		e.Record = bytes.Clone(rec)
		cvcs := tx.Bucket([]byte(bucketCVCs))
		v := cvcs.Get(tok)
		if v == nil {
			return nil
		}
		if len(v) < 8 {
			return fmt.Errorf("cvc entry is %d bytes", len(v))
		}
		if now.UnixMilli() < int64(binary.BigEndian.Uint64(v[:8])) {
			e.CVC = bytes.Clone(v[8:])
		}
		idx := append(bytes.Clone(v[:8]), tok...)
		if err := tx.Bucket([]byte(bucketCVCExpiry)).Delete(idx); err != nil {
			return err
		}
		return cvcs.Delete(tok)
	})
	if err != nil {
		return Entry{}, fmt.Errorf("vaultclient: bolt take cvc %s: %w", token, err)
	}
	return e, nil
}

// DeleteCVC implements Store.
func (s *BoltStore) DeleteCVC(ctx context.Context, token string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vaultclient: bolt delete cvc %s: %w", token, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		tok := []byte(token)
		cvcs := tx.Bucket([]byte(bucketCVCs))
		v := cvcs.Get(tok)
		if v == nil {
			return nil
		}
		if len(v) >= 8 {
			idx := append(bytes.Clone(v[:8]), tok...)
			if err := tx.Bucket([]byte(bucketCVCExpiry)).Delete(idx); err != nil {
				return err
			}
		}
		return cvcs.Delete(tok)
	})
	if err != nil {
		return fmt.Errorf("vaultclient: bolt delete cvc %s: %w", token, err)
	}
	return nil
}

// Ping implements Store: it fails once the store is closed.
func (s *BoltStore) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vaultclient: bolt ping: %w", err)
	}
	if err := s.db.View(func(*bolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("vaultclient: bolt ping: %w", err)
	}
	return nil
}

// sweepCVCs deletes every CVC whose expiry is at or before now, walking
// the expiry index in order and stopping at the first live one.
func sweepCVCs(tx *bolt.Tx, now time.Time) error {
	cvcs, idx := tx.Bucket([]byte(bucketCVCs)), tx.Bucket([]byte(bucketCVCExpiry))
	nowMS := now.UnixMilli()
	c := idx.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.First() {
		if len(k) < 8 {
			return errSweepIndex
		}
		if int64(binary.BigEndian.Uint64(k[:8])) > nowMS {
			return nil
		}
		tok := bytes.Clone(k[8:])
		// Delete the CVC only if it is the one this index entry is for;
		// DeleteCVC keeps the two in step, but be strict.
		if v := cvcs.Get(tok); v != nil && len(v) >= 8 && bytes.Equal(v[:8], k[:8]) {
			if err := cvcs.Delete(tok); err != nil {
				return err
			}
		}
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// Scan implements RewrapStore in token order; the cursor is the last
// token returned.
func (s *BoltStore) Scan(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("vaultclient: bolt scan: %w", err)
	}
	var tokens []string
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucketCards)).Cursor()
		k, _ := c.First()
		if cursor != "" {
			k, _ = c.Seek([]byte(cursor))
			if k != nil && string(k) == cursor {
				k, _ = c.Next()
			}
		}
		for ; k != nil && len(tokens) < limit; k, _ = c.Next() {
			tokens = append(tokens, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("vaultclient: bolt scan: %w", err)
	}
	if len(tokens) < limit {
		return tokens, "", nil
	}
	return tokens, tokens[len(tokens)-1], nil
}

// Swap implements RewrapStore in one transaction. The CVC keeps its
// expiry.
func (s *BoltStore) Swap(ctx context.Context, token string, old, new Entry) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vaultclient: bolt swap %s: %w", token, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		tok := []byte(token)
		cards := tx.Bucket([]byte(bucketCards))
		if cur := cards.Get(tok); cur == nil || !bytes.Equal(cur, old.Record) {
			return ErrConflict
		}
		if old.CVC != nil {
			cvcs := tx.Bucket([]byte(bucketCVCs))
			if v := cvcs.Get(tok); len(v) >= 8 && bytes.Equal(v[8:], old.CVC) {
				val := append(bytes.Clone(v[:8]), new.CVC...)
				if err := cvcs.Put(tok, val); err != nil {
					return err
				}
			}
		}
		return cards.Put(tok, bytes.Clone(new.Record))
	})
	if err != nil {
		return fmt.Errorf("vaultclient: bolt swap %s: %w", token, err)
	}
	return nil
}

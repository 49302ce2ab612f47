package vaultclient

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The bolt side of LifecycleStore. bbolt has no TTL, so retention is a
// sweep (SweepRetention, run by RunRetention) over the used_index bucket,
// which orders tokens by last use: the sweep reads only what it deletes,
// plus one entry.
const (
	bucketUsed      = "used"
	bucketUsedIndex = "used_index"
	// bucketTombstones holds a tombstone for every token PutNew stored,
	// written in the same transaction as the record; nothing removes it.
	bucketTombstones = "tombstones"
)

// markUsed sets token's last use to now, keeping used and used_index in
// step. The caller has checked that a record exists.
func markUsed(tx *bolt.Tx, tok []byte, now time.Time) error {
	used, idx := tx.Bucket([]byte(bucketUsed)), tx.Bucket([]byte(bucketUsedIndex))
	if old := used.Get(tok); len(old) == 8 {
		if err := idx.Delete(append(bytes.Clone(old), tok...)); err != nil {
			return err
		}
	}
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(max(now.UnixMilli(), 0)))
	if err := used.Put(tok, bytes.Clone(ms[:])); err != nil {
		return err
	}
	return idx.Put(append(ms[:len(ms):len(ms)], tok...), []byte{})
}

// deleteAll removes token's record, CVC, marker and their index entries.
// It reports whether a record was there. It leaves a tombstone in place.
func deleteAll(tx *bolt.Tx, tok []byte) (bool, error) {
	cards := tx.Bucket([]byte(bucketCards))
	had := cards.Get(tok) != nil
	if err := cards.Delete(tok); err != nil {
		return false, err
	}
	cvcs := tx.Bucket([]byte(bucketCVCs))
	if v := cvcs.Get(tok); v != nil {
		if len(v) >= 8 {
			if err := tx.Bucket([]byte(bucketCVCExpiry)).Delete(append(bytes.Clone(v[:8]), tok...)); err != nil {
				return false, err
			}
		}
		if err := cvcs.Delete(tok); err != nil {
			return false, err
		}
	}
	used := tx.Bucket([]byte(bucketUsed))
	if v := used.Get(tok); v != nil {
		if len(v) == 8 {
			if err := tx.Bucket([]byte(bucketUsedIndex)).Delete(append(bytes.Clone(v), tok...)); err != nil {
				return false, err
			}
		}
		if err := used.Delete(tok); err != nil {
			return false, err
		}
	}
	return had, nil
}

// putCVCTx replaces token's CVC with cvc, expiring at exp.
func putCVCTx(tx *bolt.Tx, tok, cvc []byte, exp time.Time) error {
	cvcs, idx := tx.Bucket([]byte(bucketCVCs)), tx.Bucket([]byte(bucketCVCExpiry))
	if v := cvcs.Get(tok); len(v) >= 8 {
		if err := idx.Delete(append(bytes.Clone(v[:8]), tok...)); err != nil {
			return err
		}
	}
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(exp.UnixMilli()))
	if err := cvcs.Put(tok, append(ms[:len(ms):len(ms)], cvc...)); err != nil {
		return err
	}
	return idx.Put(append(ms[:len(ms):len(ms)], tok...), []byte{})
}

// Meta implements LifecycleStore, in one read transaction. A CVC past its
// expiry reads as not held.
func (s *BoltStore) Meta(ctx context.Context, token string) (StoreMeta, error) {
	if err := ctx.Err(); err != nil {
		return StoreMeta{}, fmt.Errorf("vaultclient: bolt meta %s: %w", token, err)
	}
	nowMS := s.now().UnixMilli()
	var m StoreMeta
	err := s.db.View(func(tx *bolt.Tx) error {
		tok := []byte(token)
		rec := tx.Bucket([]byte(bucketCards)).Get(tok)
		if rec == nil {
			return ErrNotFound
		}
		m.Record = bytes.Clone(rec)
		if v := tx.Bucket([]byte(bucketCVCs)).Get(tok); len(v) >= 8 {
			m.CVCHeld = nowMS < int64(binary.BigEndian.Uint64(v[:8]))
		}
		if v := tx.Bucket([]byte(bucketUsed)).Get(tok); len(v) == 8 {
			m.LastUsed = time.UnixMilli(int64(binary.BigEndian.Uint64(v)))
		}
		return nil
	})
	if err != nil {
		return StoreMeta{}, fmt.Errorf("vaultclient: bolt meta %s: %w", token, err)
	}
	return m, nil
}

// Replace implements LifecycleStore, in one transaction.
func (s *BoltStore) Replace(ctx context.Context, token string, old, new []byte, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vaultclient: bolt replace %s: %w", token, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		tok := []byte(token)
		cards := tx.Bucket([]byte(bucketCards))
		switch cur := cards.Get(tok); {
		case cur == nil:
			return ErrNotFound
		case !bytes.Equal(cur, old):
			return ErrConflict
		}
		if err := cards.Put(tok, bytes.Clone(new)); err != nil {
			return err
		}
		return markUsed(tx, tok, now)
	})
	if err != nil {
		return fmt.Errorf("vaultclient: bolt replace %s: %w", token, err)
	}
	return nil
}

// PutCVC implements LifecycleStore, in one transaction. Expired CVCs are
// swept in the same transaction, as Put does.
func (s *BoltStore) PutCVC(ctx context.Context, token string, cvc []byte, ttl time.Duration, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vaultclient: bolt put cvc %s: %w", token, err)
	}
	if ttl <= 0 {
		return fmt.Errorf("vaultclient: bolt put cvc %s: cvc ttl %v is not positive", token, ttl)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		tok := []byte(token)
		if tx.Bucket([]byte(bucketCards)).Get(tok) == nil {
			return ErrNotFound
		}
		if err := sweepCVCs(tx, now); err != nil {
			return err
		}
		if err := putCVCTx(tx, tok, cvc, now.Add(ttl)); err != nil {
			return err
		}
		return markUsed(tx, tok, now)
	})
	if err != nil {
		return fmt.Errorf("vaultclient: bolt put cvc %s: %w", token, err)
	}
	return nil
}

// Touch implements LifecycleStore, in one transaction: a write and an
// fsync, which is why the Vault touches a token at most once per
// TouchInterval.
func (s *BoltStore) Touch(ctx context.Context, token string, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vaultclient: bolt touch %s: %w", token, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		tok := []byte(token)
		if tx.Bucket([]byte(bucketCards)).Get(tok) == nil {
			return ErrNotFound
		}
		return markUsed(tx, tok, now)
	})
	if err != nil {
		return fmt.Errorf("vaultclient: bolt touch %s: %w", token, err)
	}
	return nil
}

// Delete implements LifecycleStore, in one transaction. bbolt does not
// zero freed pages: the deleted record's sealed bytes can stay in the file
// until the page is reused (see BoltStore). They are sealed; with the
// local keyring, retiring the key version makes them unreadable for good.
func (s *BoltStore) Delete(ctx context.Context, token string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vaultclient: bolt delete %s: %w", token, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		had, err := deleteAll(tx, []byte(token))
		if err != nil {
			return err
		}
		if !had {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("vaultclient: bolt delete %s: %w", token, err)
	}
	return nil
}

// PutNew implements TombstoneStore, in one transaction.
func (s *BoltStore) PutNew(ctx context.Context, token string, e Entry, cvcTTL time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vaultclient: bolt put new %s: %w", token, err)
	}
	if len(e.Record) == 0 {
		return fmt.Errorf("vaultclient: bolt put new %s: empty record", token)
	}
	if e.CVC != nil && cvcTTL <= 0 {
		return fmt.Errorf("vaultclient: bolt put new %s: cvc ttl %v is not positive", token, cvcTTL)
	}
	now := s.now()
	err := s.db.Update(func(tx *bolt.Tx) error {
		tok := []byte(token)
		if tx.Bucket([]byte(bucketCards)).Get(tok) != nil {
			return ErrExists
		}
		tombs := tx.Bucket([]byte(bucketTombstones))
		if tombs.Get(tok) != nil {
			return ErrDeleted
		}
		if err := tombs.Put(bytes.Clone(tok), []byte("1")); err != nil {
			return err
		}
		return putTx(tx, tok, e, cvcTTL, now)
	})
	if err != nil {
		return fmt.Errorf("vaultclient: bolt put new %s: %w", token, err)
	}
	return nil
}

// LastUses implements LifecycleStore in one read transaction (bbolt reads
// from its memory map and does not block writers).
func (s *BoltStore) LastUses(ctx context.Context, fn func(time.Time)) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vaultclient: bolt last uses: %w", err)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		used := tx.Bucket([]byte(bucketUsed))
		c := tx.Bucket([]byte(bucketCards)).Cursor()
		i := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if i++; i%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if u := used.Get(k); len(u) == 8 {
				fn(time.UnixMilli(int64(binary.BigEndian.Uint64(u))))
			} else {
				fn(createdAt(v))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("vaultclient: bolt last uses: %w", err)
	}
	return nil
}

// SweepRetention deletes, in one transaction, up to limit records (with
// their CVCs and markers) last used at or before cutoff, oldest first. It
// reports how many it deleted and whether more are due. Records written
// before markers existed have none and are not seen here until
// BackfillUsed gives them one.
func (s *BoltStore) SweepRetention(ctx context.Context, cutoff time.Time, limit int) (deleted int, more bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, false, fmt.Errorf("vaultclient: bolt retention sweep: %w", err)
	}
	cut := cutoff.UnixMilli()
	err = s.db.Update(func(tx *bolt.Tx) error {
		deleted, more = 0, false
		c := tx.Bucket([]byte(bucketUsedIndex)).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.First() {
			if len(k) < 8 {
				return errSweepIndex
			}
			if int64(binary.BigEndian.Uint64(k[:8])) > cut {
				return nil
			}
			if deleted == limit {
				more = true
				return nil
			}
			tok := bytes.Clone(k[8:])
			// Only if the marker is the one this entry indexes; markUsed
			// keeps them in step, but be strict: a stale entry alone goes.
			// deleteAll removes this entry with the marker, through the
			// bucket, so the loop seeks afresh with First.
			if u := tx.Bucket([]byte(bucketUsed)).Get(tok); !bytes.Equal(u, k[:8]) {
				if err := c.Delete(); err != nil {
					return err
				}
				continue
			}
			had, err := deleteAll(tx, tok)
			if err != nil {
				return err
			}
			if had {
				deleted++
			}
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("vaultclient: bolt retention sweep: %w", err)
	}
	return deleted, more, nil
}

// BackfillUsed gives up to limit records that have no last-use marker one
// at their creation time (or at now when that cannot be read), in one
// transaction, from cursor on ("" starts). It returns the cursor to
// continue from ("" when done) and how many it marked.
func (s *BoltStore) BackfillUsed(ctx context.Context, cursor string, limit int, now time.Time) (next string, marked int, err error) {
	if err := ctx.Err(); err != nil {
		return "", 0, fmt.Errorf("vaultclient: bolt backfill: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		next, marked = "", 0
		used := tx.Bucket([]byte(bucketUsed))
		c := tx.Bucket([]byte(bucketCards)).Cursor()
		k, v := c.First()
		if cursor != "" {
			k, v = c.Seek([]byte(cursor))
		}
		for seen := 0; k != nil; k, v = c.Next() {
			if seen == limit {
				next = string(k)
				return nil
			}
			seen++
			if used.Get(k) != nil {
				continue
			}
			at := createdAt(v)
			if at.IsZero() {
				at = now
			}
			if err := markUsed(tx, bytes.Clone(k), at); err != nil {
				return err
			}
			marked++
		}
		return nil
	})
	if err != nil {
		return "", 0, fmt.Errorf("vaultclient: bolt backfill: %w", err)
	}
	return next, marked, nil
}

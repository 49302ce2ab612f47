package vaultclient

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/redistest"
)

// testNow is the fixed clock of most tests: cards expiring in 2030 are
// valid, cards that expired in February 2026 are not.
var testNow = time.Date(2026, time.March, 10, 12, 0, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// testCard is a standard test card from the networks' published lists.
type testCard struct {
	name   string
	number string // as a client might send it
	digits string // normalised
	brand  string
	cvc    string
}

var testCards = []testCard{
	{"visa", "4242424242424242", "4242424242424242", BrandVisa, "123"},
	{"visa spaced", "4111 1111 1111 1111", "4111111111111111", BrandVisa, "321"},
	{"mastercard dashed", "5555-5555-5555-4444", "5555555555554444", BrandMastercard, "456"},
	{"mastercard 2-series", "2223003122003222", "2223003122003222", BrandMastercard, "654"},
	{"amex", "378282246310005", "378282246310005", BrandAmex, "7890"},
	{"discover", "6011111111111117", "6011111111111117", BrandDiscover, "789"},
	{"jcb", "3566002020360505", "3566002020360505", BrandJCB, "987"},
	{"diners 14", "36227206271667", "36227206271667", BrandDiners, "135"},
	{"diners 16", "3056930009020004", "3056930009020004", BrandDiners, "246"},
	{"unionpay", "6200000000000005", "6200000000000005", BrandUnionPay, "579"},
}

func (c testCard) input() CardInput {
	return CardInput{Number: c.number, ExpMonth: 12, ExpYear: 2030, CVC: c.cvc, Name: "Jane Q. Cardholder"}
}

// newTestKeyring creates a keyring file in a temp dir and opens it.
func newTestKeyring(t testing.TB) (*LocalKeyring, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyring.json")
	if err := CreateLocalKeyring(path); err != nil {
		t.Fatalf("CreateLocalKeyring: %v", err)
	}
	k, err := OpenLocalKeyring(path)
	if err != nil {
		t.Fatalf("OpenLocalKeyring: %v", err)
	}
	t.Cleanup(func() { k.Close() })
	return k, path
}

func newTestBolt(t testing.TB) *BoltStore {
	t.Helper()
	s, err := OpenBoltStore(filepath.Join(t.TempDir(), "cards.db"))
	if err != nil {
		t.Fatalf("OpenBoltStore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newTestRedis(t testing.TB) (*RedisStore, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	return NewRedisStore(srv.Client(), "cardgate:"), srv
}

// storeKinds are the stores every Vault test runs against.
var storeKinds = []struct {
	name string
	new  func(t testing.TB) Store
}{
	{"bolt", func(t testing.TB) Store { return newTestBolt(t) }},
	{"redis", func(t testing.TB) Store { s, _ := newTestRedis(t); return s }},
}

func newTestVault(t testing.TB, s Store, k Keyer, o Options) *Vault {
	t.Helper()
	if o.Now == nil {
		o.Now = fixedClock(testNow)
	}
	v, err := New(s, k, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

// code returns the *Error code of err, or "" if err is not one.
func code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// tamperStore passes calls through to Store and lets a test change what
// each read returns, as an attacker with write access to the store could.
// mutate always sees the whole entry, record and CVC, so that one case
// can move bytes between the two; GetRecord returns only the (mutated)
// record, as a real store would.
type tamperStore struct {
	Store
	mutate func(*Entry)
}

func (s tamperStore) GetRecord(ctx context.Context, token string) ([]byte, error) {
	e, err := s.Get(ctx, token)
	return e.Record, err
}

func (s tamperStore) Get(ctx context.Context, token string) (Entry, error) {
	e, err := s.Store.Get(ctx, token)
	if err == nil && s.mutate != nil {
		s.mutate(&e)
	}
	return e, err
}

func (s tamperStore) GetAndDeleteCVC(ctx context.Context, token string) (Entry, error) {
	e, err := s.Store.GetAndDeleteCVC(ctx, token)
	if err == nil && s.mutate != nil {
		s.mutate(&e)
	}
	return e, err
}

// blockingStore never answers: each call waits for its context.
type blockingStore struct{}

func (blockingStore) Put(ctx context.Context, _ string, _ Entry, _ time.Duration) error {
	<-ctx.Done()
	return ctx.Err()
}
func (blockingStore) GetRecord(ctx context.Context, _ string) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (blockingStore) Get(ctx context.Context, _ string) (Entry, error) {
	<-ctx.Done()
	return Entry{}, ctx.Err()
}
func (blockingStore) GetAndDeleteCVC(ctx context.Context, _ string) (Entry, error) {
	<-ctx.Done()
	return Entry{}, ctx.Err()
}
func (blockingStore) DeleteCVC(ctx context.Context, _ string) error { <-ctx.Done(); return ctx.Err() }
func (blockingStore) Ping(ctx context.Context) error                { <-ctx.Done(); return ctx.Err() }

// faultyKeyer wraps a Keyer and fails the calls a test chooses.
type faultyKeyer struct {
	Keyer
	encryptErr, decryptErr, fingerprintErr error
	block                                  bool // wait for the context instead
}

func (k faultyKeyer) Encrypt(ctx context.Context, items []EncryptItem) ([]Sealed, error) {
	if k.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if k.encryptErr != nil {
		return nil, k.encryptErr
	}
	return k.Keyer.Encrypt(ctx, items)
}

func (k faultyKeyer) Decrypt(ctx context.Context, items []DecryptItem) ([][]byte, error) {
	if k.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if k.decryptErr != nil {
		return nil, k.decryptErr
	}
	return k.Keyer.Decrypt(ctx, items)
}

func (k faultyKeyer) Fingerprint(ctx context.Context, pan []byte) ([]byte, KeyID, error) {
	if k.block {
		<-ctx.Done()
		return nil, KeyID{}, ctx.Err()
	}
	if k.fingerprintErr != nil {
		return nil, KeyID{}, k.fingerprintErr
	}
	return k.Keyer.Fingerprint(ctx, pan)
}

func mustPrimary(t testing.TB, k Keyer) KeyID {
	t.Helper()
	id, err := k.Primary(context.Background())
	if err != nil {
		t.Fatalf("Primary: %v", err)
	}
	return id
}

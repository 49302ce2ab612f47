package audit

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/cardscan"
)

// checkCanonical compares appendCanonical with canonicalJSON, the
// encoding/json definition of the canonical form, and reports whether the
// record took the hand-written path.
func checkCanonical(t *testing.T, r Record) bool {
	t.Helper()
	want, wantErr := r.canonicalJSON(nil)
	prefix := []byte("prefix")
	got, gotErr := r.appendCanonical(append([]byte(nil), prefix...))
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("appendCanonical(%#v) error = %v, canonicalJSON error = %v", r, gotErr, wantErr)
	}
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("appendCanonical(%#v) dropped what dst held: %q", r, got)
	}
	if gotErr != nil {
		if len(got) != len(prefix) {
			t.Fatalf("appendCanonical(%#v) = %q on an error, want dst unchanged", r, got)
		}
		return r.plain()
	}
	if got := got[len(prefix):]; !bytes.Equal(got, want) {
		t.Fatalf("appendCanonical(%#v)\n = %s\nwant %s", r, got, want)
	}
	return r.plain()
}

// fullRecord has every field set to a value encoding/json spells without
// escapes.
func fullRecord() Record {
	r := result(3)
	r.Chain = strings.Repeat("ab", 12)
	r.Seq = 12
	r.Prev = testSHA
	r.Time = time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	r.Reason = "upstream.timeout"
	r.Hash = testSHA // ignored by the canonical form
	return r
}

// TestCanonicalMatchesJSON checks the hand-written canonical encoder against
// encoding/json on edge cases: every field set and empty, extreme numbers,
// times, and every byte in every string field.
func TestCanonicalMatchesJSON(t *testing.T) {
	var recs []Record
	recs = append(recs, Record{}, fullRecord(), intent(1), result(2))

	// Every field set, then each field alone left at its zero value:
	// catches a field the hand-written encoder forgot or misplaced.
	full := fullRecord()
	v := reflect.ValueOf(&full).Elem()
	for i := range v.NumField() {
		r := full
		reflect.ValueOf(&r).Elem().Field(i).SetZero()
		recs = append(recs, r)
	}
	// Each field alone set.
	for i := range v.NumField() {
		var r Record
		reflect.ValueOf(&r).Elem().Field(i).Set(v.Field(i))
		recs = append(recs, r)
	}

	// Numbers.
	for _, n := range []struct {
		u uint64
		i int64
	}{{0, 0}, {1, -1}, {9, 10}, {maxSafeInteger, maxSafeInteger + 1}, {math.MaxUint64, math.MaxInt64}, {math.MaxUint32, math.MinInt64}} {
		r := fullRecord()
		r.Seq, r.AllowlistVersion, r.DurationMS = n.u, n.u-1, n.i
		r.UpstreamStatus = int(n.i)
		recs = append(recs, r)
	}

	// Times: fractions of every length, the ends of the years encoding/json
	// accepts and beyond them (an error either way), other zones.
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	times := []time.Time{{}, base, base.Add(time.Nanosecond), base.Add(10 * time.Nanosecond), base.Add(100 * time.Millisecond),
		base.Add(120 * time.Millisecond), base.Add(999999999), time.Unix(0, 0).UTC(),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		base.In(time.FixedZone("CEST", 2*3600)), base.In(time.FixedZone("UTC", 0)), base.In(time.FixedZone("odd", -(3*3600 + 30*60 + 15))),
		base.In(time.FixedZone("far", 25*3600)), base.Local(), time.Now(), time.Now().UTC()}
	for _, tm := range times {
		r := fullRecord()
		r.Time = tm
		recs = append(recs, r)
	}

	// Every byte, and some runes, in every string field.
	var specials []string
	for c := range 256 {
		specials = append(specials, string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"z")
	}
	specials = append(specials, "\u2028", "\u2029", "é", "\ufffd", "<script>&amp;", `\"`, "\xed\xa0\x80", "\U0001F600")
	strs := stringFields(&full)
	for f := range strs {
		for _, s := range specials {
			r := fullRecord()
			*stringFields(&r)[f] = s
			recs = append(recs, r)
		}
	}

	// Random records, half of them over an alphabet with characters that
	// need escaping.
	rng := rand.New(rand.NewPCG(3, 4))
	const plain, escaped = "az09_-.:/@ <>&~", "az09_-.:/@ <>&\"\\\x00\x1f\x7f\xc3\xa9\xe2\x80\xa8\xff"
	for i := range 10000 {
		alphabet := plain
		if i%2 == 1 {
			alphabet = escaped
		}
		r := fullRecord()
		for _, p := range stringFields(&r) {
			b := make([]byte, rng.IntN(8))
			for i := range b {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
			*p = string(b)
		}
		r.Seq, r.AllowlistVersion = rng.Uint64(), rng.Uint64()>>rng.IntN(64)
		r.UpstreamStatus, r.DurationMS = rng.IntN(1200)-100, rng.Int64()-rng.Int64()
		r.Time = time.Unix(rng.Int64N(253402300800), rng.Int64N(1e9)).UTC()
		recs = append(recs, r)
	}

	fast := 0
	for _, r := range recs {
		if checkCanonical(t, r) {
			fast++
		}
	}
	if fast < len(recs)/4 {
		t.Errorf("only %d of %d records took the hand-written path", fast, len(recs))
	}
}

// stringFields returns pointers to every string-typed field of r but Hash.
func stringFields(r *Record) []*string {
	var out []*string
	v := reflect.ValueOf(r).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.String && v.Type().Field(i).Name != "Hash" {
			out = append(out, (*string)(f.Addr().UnsafePointer()))
		}
	}
	return out
}

// TestAppendedRecordsArePlain checks that what Append writes takes the
// hand-written path: the fallback is for records Verify reads.
func TestAppendedRecordsArePlain(t *testing.T) {
	sink := &memSink{}
	l := newTestLog(t, sink)
	for i, r := range []Record{intent(1), result(2), {Kind: KindCanary, RequestID: "req_1", Caller: "spiffe://corp/billing@x:1",
		Token: testToken, Decision: DecisionDeny, Reason: "canary_token"}} {
		got := mustAppend(t, l, r)
		if !got.plain() {
			t.Errorf("record %d: Append wrote a record that is not plain: %#v", i, got)
		}
	}
}

// FuzzCanonical compares the hand-written canonical encoder with
// encoding/json on arbitrary field values.
func FuzzCanonical(f *testing.F) {
	f.Add("req_1", "billing", uint64(1), int64(0), 200, int64(1748779200), int64(123456789))
	f.Add("a\"b\\c\x00", "\u2028é\xff", uint64(math.MaxUint64), int64(math.MinInt64), -1, int64(-62167219200), int64(0))
	f.Add("", "<&>", uint64(0), int64(math.MaxInt64), math.MaxInt32, int64(253402300799), int64(999999999))
	f.Fuzz(func(t *testing.T, s1, s2 string, u uint64, n int64, status int, sec, nsec int64) {
		r := fullRecord()
		for i, p := range stringFields(&r) {
			switch i % 3 {
			case 0:
				*p = s1
			case 1:
				*p = s2
			}
		}
		r.Seq, r.AllowlistVersion, r.DurationMS, r.UpstreamStatus = u, u/3, n, status
		r.Time = time.Unix(sec, nsec).UTC()
		checkCanonical(t, r)
	})
}

// TestStoredLenBound checks that a group's line buffer never needs to grow
// for plain records: the longest numbers, time and identifiers fit.
func TestStoredLenBound(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	recs := []Record{{}, intent(1), result(2), fullRecord(), {
		Kind: KindCanary, RequestID: long(64), ForwardID: long(64), Caller: long(128), Token: "tok_" + long(124),
		Destination: long(63), ResolvedIP: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%" + long(200), TLSVersion: "TLS 1.3",
		PeerCertSHA256: testSHA, AllowlistVersion: math.MaxUint64, AllowlistSHA256: testSHA, Decision: DecisionAllow,
		Reason: long(64), Outcome: OutcomeSentNoResponse, UpstreamStatus: math.MinInt64, DurationMS: math.MinInt64,
	}}
	for i, r := range recs {
		bound := r.storedLenBound()
		r.Chain, r.Seq, r.Prev = strings.Repeat("f", 24), math.MaxUint64, testSHA
		r.Time = time.Date(2025, 12, 31, 23, 59, 59, 123456789, time.UTC)
		line, _, err := r.appendSealed(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(line) > bound {
			t.Errorf("record %d: stored line is %d bytes, storedLenBound = %d", i, len(line), bound)
		}
	}
}

// TestSealedLine checks that the line Append writes is the stored form
// Verify expects: storedLine of the canonical bytes and their hash.
func TestSealedLine(t *testing.T) {
	r := fullRecord()
	line, hash, err := r.appendSealed([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	canon, wantHash, err := r.seal()
	if err != nil {
		t.Fatal(err)
	}
	if string(hash[:]) != wantHash {
		t.Errorf("appendSealed hash = %s, want %s", hash, wantHash)
	}
	if want := "x" + string(storedLine(canon, wantHash)); string(line) != want {
		t.Errorf("appendSealed = %s, want %s", line, want)
	}
}

// TestMayHoldCardIsConservative checks that skipping the card scan for
// identifiers with fewer than 13 digits skips no card: over each shape's
// alphabet, digit-heavy strings that cardscan flags all have 13 digits.
func TestMayHoldCardIsConservative(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	found := 0
	for _, alphabet := range []string{alnum + "_-", alnum + "._:/@-", lowerDigit + "._-", lowerDigit + "_."} {
		var digitsFirst []byte
		for i := range len(alphabet) {
			if c := alphabet[i]; c < '0' || c > '9' {
				digitsFirst = append(digitsFirst, c)
			}
		}
		for range 50000 {
			b := make([]byte, rng.IntN(40))
			for i := range b {
				if rng.IntN(4) > 0 {
					b[i] = byte('0' + rng.IntN(10))
				} else {
					b[i] = digitsFirst[rng.IntN(len(digitsFirst))]
				}
			}
			s := string(b)
			if cardscan.ContainsAnyWindow(s) {
				found++
				if !mayHoldCard(s) {
					t.Fatalf("mayHoldCard(%q) = false, but cardscan finds a card", s)
				}
			}
		}
	}
	if found < 1000 {
		t.Errorf("only %d strings held a card: the test checks too little", found)
	}
}

// TestZoneRefusedFallbackSpelled checks that Append refuses an IPv6 zone
// (free text, which could carry anything), and that a record holding one,
// which only Verify can meet (decoded from a log), is spelled by the
// encoding/json fallback exactly as encoding/json spells it.
func TestZoneRefusedFallbackSpelled(t *testing.T) {
	l := newTestLog(t, &memSink{})
	r := intent(1)
	r.ResolvedIP = `fe80::1%a"b\c<d>é`
	if _, err := l.Append(context.Background(), r); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Append with a zone = %v, want ErrInvalid", err)
	}
	if r.plain() {
		t.Fatalf("record with an escaped zone is plain")
	}
	got, err := r.appendCanonical(nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.canonicalJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("fallback spelling\n got %s\nwant %s", got, want)
	}
}

package vaultclient

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// refDecodeCardRecord and refDecodeCVCRecord are the decoders as they were
// before the canonical fast path: decodeStrict and the format check. The
// tests below hold the new decoders to them.
func refDecodeCardRecord(data []byte) (*cardRecord, error) {
	var r cardRecord
	if err := decodeStrict(data, &r); err != nil {
		return nil, err
	}
	if r.Format != recordFormat {
		return nil, fmt.Errorf("record format %d is not %d: %w", r.Format, recordFormat, errCorrupt)
	}
	return &r, nil
}

func refDecodeCVCRecord(data []byte) (*cvcRecord, error) {
	var r cvcRecord
	if err := decodeStrict(data, &r); err != nil {
		return nil, err
	}
	if r.Format != recordFormat {
		return nil, fmt.Errorf("cvc record format %d is not %d: %w", r.Format, recordFormat, errCorrupt)
	}
	return &r, nil
}

// Records as json.Marshal writes them, for the local keyring, PKCS#11 and
// Vault Transit.
var (
	canonCardLocal = mustMarshal(cardRecord{
		Format: recordFormat, Key: KeyID{LocalBackend, localCardKey, 1},
		Card:  []byte("0123456789ab\x00\x01\x02\xfe\xffsealed-card-payload-and-tag"),
		Last4: "4242", Brand: BrandVisa, Fingerprint: "3q2-7w_abcdefghijklmnopqrstuvwxyzABCDEFGHI",
		FingerprintKey: KeyID{LocalBackend, localFingerprintKey, 1}, CreatedAt: 1773144000,
	})
	canonCardPKCS11 = mustMarshal(cardRecord{
		Format: recordFormat, Key: KeyID{PKCS11Backend, "cardgate-card-v7", 4294967295},
		Card:  []byte{0xfb, 0xff, 0xbf}, // "+/+/" in base64
		Last4: "0005", Brand: BrandAmex, Fingerprint: "fp",
		FingerprintKey: KeyID{PKCS11Backend, "cardgate-fp", 1}, CreatedAt: 0,
	})
	canonCardTransit = mustMarshal(cardRecord{
		Format: recordFormat, Key: KeyID{TransitBackend, "cards", 3},
		Card:  []byte("vault:v3:AbCdEf0123456789+/=="),
		Last4: "4444", Brand: BrandMastercard, Fingerprint: "",
		FingerprintKey: KeyID{TransitBackend, "fingerprints", 2}, CreatedAt: 9223372036854775807,
	})
	canonCVC = mustMarshal(cvcRecord{
		Format: recordFormat, Key: KeyID{LocalBackend, localCardKey, 12},
		CVC: []byte("nonce-twelve\x00ciphertext-and-tag\xff"),
	})
)

func mustMarshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// recordVariants are inputs around a canonical record: each is valid JSON
// that the fast path declines, invalid JSON, or a wrong type or value.
func recordVariants(base string) map[string]string {
	rep := func(old, new string) string {
		if !strings.Contains(base, old) {
			return base // a case that does not apply to this record
		}
		return strings.Replace(base, old, new, 1)
	}
	body := strings.TrimSuffix(strings.TrimPrefix(base, "{"), "}")
	v := map[string]string{
		"canonical":                 base,
		"empty":                     "",
		"null":                      "null",
		"empty object":              "{}",
		"array":                     "[]",
		"string":                    `"x"`,
		"number":                    "1",
		"leading space":             " " + base,
		"trailing space":            base + " ",
		"trailing newline":          base + "\n",
		"trailing brace":            base + "}",
		"trailing bracket":          base + "]",
		"trailing bracket garbage":  base + "]garbage",
		"trailing garbage":          base + "x",
		"trailing object":           base + "{}",
		"second record":             base + " " + base,
		"trailing nul":              base + "\x00",
		"space after colon":         rep(`"format":`, `"format": `),
		"newline inside":            rep(`,"key":`, ",\n\"key\":"),
		"format 0":                  rep(`"format":1`, `"format":0`),
		"format 2":                  rep(`"format":1`, `"format":2`),
		"format 01":                 rep(`"format":1`, `"format":01`),
		"format -1":                 rep(`"format":1`, `"format":-1`),
		"format -0":                 rep(`"format":1`, `"format":-0`),
		"format 1.0":                rep(`"format":1`, `"format":1.0`),
		"format 1e0":                rep(`"format":1`, `"format":1e0`),
		"format string":             rep(`"format":1`, `"format":"1"`),
		"format null":               rep(`"format":1`, `"format":null`),
		"format true":               rep(`"format":1`, `"format":true`),
		"format huge":               rep(`"format":1`, `"format":99999999999999999999999`),
		"format max int":            rep(`"format":1`, `"format":9223372036854775807`),
		"format above max int":      rep(`"format":1`, `"format":9223372036854775808`),
		"format duplicated":         rep(`"format":1`, `"format":2,"format":1`),
		"format duplicated last":    rep(`"format":1`, `"format":1,"format":2`),
		"format upper case":         rep(`"format":`, `"FORMAT":`),
		"format escaped name":       rep(`"format":`, `"\u0066ormat":`),
		"key kelvin sign":           rep(`"key":`, "\"\u212aey\":"),
		"key null":                  rep(`"key":{`, `"key":null,"x":{`),
		"key string":                rep(`"key":{`, `"key":"k","y":{`),
		"key unknown field":         rep(`"backend":`, `"extra":1,"backend":`),
		"key fields reordered":      rep(`{"backend":`, `{"version":1,"backend":`),
		"key version negative":      rep(`"version":`, `"version":-`),
		"key version max":           rep(`"version":1`, `"version":4294967295`),
		"key version above max":     rep(`"version":1`, `"version":4294967296`),
		"key version huge":          rep(`"version":1`, `"version":18446744073709551616`),
		"key version 0":             rep(`"version":1`, `"version":0`),
		"key version 00":            rep(`"version":1`, `"version":00`),
		"key version float":         rep(`"version":1`, `"version":1.5`),
		"key backend escaped":       rep(`"backend":"`, `"backend":"\u006c`),
		"key backend number":        rep(`"backend":"`, `"backend":7,"z":"`),
		"key backend non-ascii":     rep(`"backend":"`, "\"backend\":\"\u00e9"),
		"key backend invalid utf-8": rep(`"backend":"`, "\"backend\":\"\xff"),
		"key backend del":           rep(`"backend":"`, "\"backend\":\"\x7f"),
		"key backend tab":           rep(`"backend":"`, "\"backend\":\"\t"),
		"unknown field first":       "{\"extra\":1," + body + "}",
		"unknown field last":        "{" + body + ",\"extra\":1}",
		"unknown field null":        "{" + body + ",\"extra\":null}",
		"blob not base64":           rep(`":"`+blobOf(base), `":"!!!!`),
		"blob unpadded":             rep(`":"`+blobOf(base), `":"QUI`),
		"blob url alphabet":         rep(`":"`+blobOf(base), `":"-_-_`),
		"blob padding inside":       rep(`":"`+blobOf(base), `":"QQ==QQ==`),
		"blob trailing bits":        rep(`":"`+blobOf(base), `":"QR==`),
		"blob escaped newline":      rep(`":"`+blobOf(base), `":"QUJD\nQUJD`),
		"blob escaped slash":        rep(`":"`+blobOf(base), `":"\/\/\/\/`),
		"blob empty":                rep(`":"`+blobOf(base), `":"`),
		"blob null":                 rep(`"`+blobOf(base)+`"`, `null`),
		"blob number":               rep(`"`+blobOf(base)+`"`, `12`),
		"blob array":                rep(`"`+blobOf(base)+`"`, `[1,2]`),
		"last4 number":              rep(`"last4":"`, `"last4":4242,"q":"`),
		"last4 escaped":             rep(`"last4":"`, `"last4":"\u0034`),
		"last4 html escaped":        rep(`"last4":"`, `"last4":"\u003c`),
		"last4 raw lt":              rep(`"last4":"`, `"last4":"<`),
		"created_at negative":       rep(`"created_at":`, `"created_at":-`),
		"created_at float":          rep(`"created_at":`, `"created_at":1.5e`),
		"created_at overflow":       rep(`"created_at":`, `"created_at":9223372036854775808`),
		"missing field":             rep(`,"last4":`, `,"x4":`),
		"unterminated string":       rep(`"last4":"`, `"last4":"\`),
	}
	// Every proper prefix: a record cut short by a partial write.
	for i := 0; i < len(base); i++ {
		v[fmt.Sprintf("prefix %d", i)] = base[:i]
	}
	return v
}

// blobOf returns the first few characters of base's blob field.
func blobOf(base string) string {
	for _, f := range []string{`"card":"`, `"cvc":"`} {
		if i := strings.Index(base, f); i >= 0 {
			return base[i+len(f) : i+len(f)+4]
		}
	}
	return "\x00none"
}

func TestDecodeRecordMatchesStrictDecoder(t *testing.T) {
	for name, base := range map[string]string{"local": canonCardLocal, "pkcs11": canonCardPKCS11, "transit": canonCardTransit} {
		for vname, data := range recordVariants(base) {
			t.Run("card/"+name+"/"+vname, func(t *testing.T) {
				checkCardDecoders(t, []byte(data))
			})
		}
	}
	for vname, data := range recordVariants(canonCVC) {
		t.Run("cvc/"+vname, func(t *testing.T) {
			checkCVCDecoders(t, []byte(data))
		})
	}
}

func TestDecodeCanonicalAcceptsMarshalled(t *testing.T) {
	for name, data := range map[string]string{"local": canonCardLocal, "pkcs11": canonCardPKCS11, "transit": canonCardTransit} {
		var r cardRecord
		if !r.decodeCanonical([]byte(data)) {
			t.Errorf("card %s: decodeCanonical(%q) = false, want true", name, data)
		}
	}
	var r cvcRecord
	if !r.decodeCanonical([]byte(canonCVC)) {
		t.Errorf("cvc: decodeCanonical(%q) = false, want true", canonCVC)
	}
}

// TestTokenizeWritesCanonicalRecords checks that what Tokenize writes
// takes the fast path, so that a change to the record layout cannot
// silently send every Detokenize back to encoding/json.
func TestTokenizeWritesCanonicalRecords(t *testing.T) {
	ctx := context.Background()
	keys, _ := newTestKeyring(t)
	s := &memStore{m: map[string]Entry{}}
	v := newTestVault(t, s, keys, Options{})
	for _, tc := range testCards {
		info, err := v.Tokenize(ctx, tc.input())
		if err != nil {
			t.Fatalf("Tokenize(%s): %v", tc.name, err)
		}
		e := s.m[info.Token]
		var r cardRecord
		if !r.decodeCanonical(e.Record) {
			t.Errorf("%s: card record %q does not take the fast path", tc.name, e.Record)
		}
		var c cvcRecord
		if !c.decodeCanonical(e.CVC) {
			t.Errorf("%s: cvc record %q does not take the fast path", tc.name, e.CVC)
		}
	}
}

// checkCardDecoders fails t if the fast path accepts data differently from
// decodeStrict, or if decodeCardRecord differs from the old decoder.
func checkCardDecoders(t *testing.T, data []byte) {
	t.Helper()
	var fast, strict cardRecord
	if fast.decodeCanonical(data) {
		if err := decodeStrict(data, &strict); err != nil {
			t.Fatalf("decodeCanonical(%q) = true, decodeStrict = %v", data, err)
		}
		if diff := cmp.Diff(strict, fast); diff != "" {
			t.Fatalf("decodeCanonical(%q) differs from decodeStrict (-strict +fast):\n%s", data, diff)
		}
	}
	got, gotErr := decodeCardRecord(data)
	want, wantErr := refDecodeCardRecord(data)
	compareDecoded(t, data, got, gotErr, want, wantErr)
}

func checkCVCDecoders(t *testing.T, data []byte) {
	t.Helper()
	var fast, strict cvcRecord
	if fast.decodeCanonical(data) {
		if err := decodeStrict(data, &strict); err != nil {
			t.Fatalf("decodeCanonical(%q) = true, decodeStrict = %v", data, err)
		}
		if diff := cmp.Diff(strict, fast); diff != "" {
			t.Fatalf("decodeCanonical(%q) differs from decodeStrict (-strict +fast):\n%s", data, diff)
		}
	}
	got, gotErr := decodeCVCRecord(data)
	want, wantErr := refDecodeCVCRecord(data)
	compareDecoded(t, data, got, gotErr, want, wantErr)
}

func compareDecoded[T any](t *testing.T, data []byte, got *T, gotErr error, want *T, wantErr error) {
	t.Helper()
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("decode(%q) error = %v, want %v", data, gotErr, wantErr)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("decode(%q) differs from the old decoder (-old +new):\n%s", data, diff)
	}
}

// FuzzRecordDecoders holds the record decoders to the old ones on
// arbitrary bytes:
//
//	go test -run '^$' -fuzz FuzzRecordDecoders -fuzztime 1m ./vaultclient/
func FuzzRecordDecoders(f *testing.F) {
	for _, base := range []string{canonCardLocal, canonCardPKCS11, canonCardTransit, canonCVC} {
		for _, data := range recordVariants(base) {
			f.Add([]byte(data))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkCardDecoders(t, data)
		checkCVCDecoders(t, data)
	})
}

// FuzzRecordMarshalled holds the decoders to the old ones on records that
// json.Marshal writes from arbitrary field values, and checks that every
// such record whose strings are printable ASCII takes the fast path.
func FuzzRecordMarshalled(f *testing.F) {
	f.Add(1, "local", "card", uint32(1), []byte("blob"), "4242", "visa", "fp", "fingerprint", uint32(1), int64(1773144000))
	f.Add(2, "transit", "ca<r>ds&", uint32(0), []byte{}, "\u2028", "\xff", "\"\\", "", uint32(9), int64(-1))
	f.Fuzz(func(t *testing.T, format int, backend, name string, version uint32, blob []byte, last4, brand, fp, fpName string, fpVersion uint32, created int64) {
		rec := cardRecord{
			Format: format, Key: KeyID{backend, name, version}, Card: blob,
			Last4: last4, Brand: brand, Fingerprint: fp,
			FingerprintKey: KeyID{backend, fpName, fpVersion}, CreatedAt: created,
		}
		data := []byte(mustMarshal(rec))
		checkCardDecoders(t, data)
		var fast cardRecord
		plain := format >= 0 && created >= 0 && blob != nil
		for _, s := range []string{backend, name, last4, brand, fp, fpName} {
			plain = plain && isPlainASCII(s) && !strings.ContainsAny(s, `<>&`) // Marshal escapes those
		}
		if got := fast.decodeCanonical(data); got != plain {
			t.Errorf("decodeCanonical(%q) = %v, want %v", data, got, plain)
		}

		cdata := []byte(mustMarshal(cvcRecord{Format: format, Key: KeyID{backend, name, version}, CVC: blob}))
		checkCVCDecoders(t, cdata)
	})
}

func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\' {
			return false
		}
	}
	return true
}

// BenchmarkDecodeRecord compares the fast path with decodeStrict on a
// record as Tokenize writes it.
func BenchmarkDecodeRecord(b *testing.B) {
	data := []byte(canonCardLocal)
	b.Run("card/canonical", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeCardRecord(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("card/strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := refDecodeCardRecord(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

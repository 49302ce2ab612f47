package audit

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func accepted() Record {
	return Record{Kind: KindAllowlist, Decision: DecisionAllow, AllowlistVersion: 7, AllowlistSHA256: testSHA,
		Signers: []string{"alice@audit.example", "bob@audit.example"}}
}

func refused() Record {
	return Record{Kind: KindAllowlist, Decision: DecisionDeny, Reason: "rollback", AllowlistSHA256: testSHA}
}

// Allowlist records are appended, encode as encoding/json does, and verify.
func TestAllowlistRecords(t *testing.T) {
	sink := &memSink{}
	l := newTestLog(t, sink)
	for _, r := range []Record{accepted(), refused(), intent(1)} {
		got, err := l.Append(context.Background(), r)
		if err != nil {
			t.Fatalf("Append(%s %s): %v", r.Kind, r.Decision, err)
		}
		hand, err := got.appendCanonical(nil)
		if err != nil {
			t.Fatal(err)
		}
		viaJSON, err := got.canonicalJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hand, viaJSON) {
			t.Errorf("canonical:\n%s\nencoding/json:\n%s", hand, viaJSON)
		}
	}
	text := sink.text()
	if !strings.Contains(text, `"allowlist_sha256":"`+testSHA+`","signers":["alice@audit.example","bob@audit.example"],"decision":"allow"`) {
		t.Errorf("log does not hold the signers member in place:\n%s", text)
	}
	if strings.Count(text, `"signers"`) != 1 {
		t.Errorf("a record without signers holds the member:\n%s", text)
	}
	if rep, err := Verify(strings.NewReader(text)); err != nil {
		t.Fatalf("Verify: %v %v", err, rep.Problems)
	}
}

func TestAllowlistRecordRules(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Record)
		base   func() Record
	}{
		{"accepted without signers", func(r *Record) { r.Signers = nil }, accepted},
		{"accepted without version", func(r *Record) { r.AllowlistVersion = 0 }, accepted},
		{"accepted with a reason", func(r *Record) { r.Reason = "rollback" }, accepted},
		{"refused without a reason", func(r *Record) { r.Reason = "" }, refused},
		{"refused with a version", func(r *Record) { r.AllowlistVersion = 3 }, refused},
		{"a caller", func(r *Record) { r.Caller = "billing" }, accepted},
		{"a token", func(r *Record) { r.Token = testToken }, refused},
		{"signer with a space", func(r *Record) { r.Signers = []string{"alice audit"} }, accepted},
		{"signer holding a card", func(r *Record) { r.Signers = []string{"x4242424242424242"} }, accepted},
		{"signer twice", func(r *Record) { r.Signers = []string{"a@x", "a@x"} }, accepted},
		{"empty signers", func(r *Record) { r.Signers = []string{} }, accepted},
		{"no decision", func(r *Record) { r.Decision = "" }, refused},
		{"signers on an intent", func(r *Record) { *r = intent(1); r.Signers = []string{"a@x"} }, accepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.base()
			tc.mutate(&r)
			l := newTestLog(t, &memSink{})
			if _, err := l.Append(context.Background(), r); !errors.Is(err, ErrInvalid) {
				t.Errorf("Append = %v, want ErrInvalid", err)
			}
		})
	}
}

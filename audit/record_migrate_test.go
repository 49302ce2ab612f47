package audit

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Imported and exported records name the run and the token; an export
// also names its recipient and the allowlist that allowed it. Anything
// less, or a forward's fields, is refused.
func TestMigrationRecords(t *testing.T) {
	valid := map[Kind]func() Record{
		KindImported: func() Record {
			return Record{Kind: KindImported, RequestID: "imp_1", Caller: "cardgate-cli/cards-import", Token: testToken}
		},
		KindExported: func() Record {
			return Record{Kind: KindExported, RequestID: "exp_1", Caller: "cardgate-cli/cards-export", Token: testToken,
				Destination: "newvault", Decision: DecisionAllow, AllowlistVersion: 3, AllowlistSHA256: strings.Repeat("a", 64)}
		},
	}
	l := newTestLog(t, &memSink{})
	for kind, v := range valid {
		if _, err := l.Append(context.Background(), v()); err != nil {
			t.Fatalf("Append(%s) = %v, want nil", kind, err)
		}
	}
	tests := []struct {
		name string
		kind Kind
		edit func(*Record)
	}{
		{"imported without token", KindImported, func(r *Record) { r.Token = "" }},
		{"imported with a card for a token", KindImported, func(r *Record) { r.Token = "tok_4242424242424242" }},
		{"imported with a destination", KindImported, func(r *Record) { r.Destination = "acme" }},
		{"imported with a forward id", KindImported, func(r *Record) { r.ForwardID = "fwd_1" }},
		{"imported with an outcome", KindImported, func(r *Record) { r.Outcome = OutcomeAnswered }},
		{"imported without run id", KindImported, func(r *Record) { r.RequestID = "" }},
		{"exported without token", KindExported, func(r *Record) { r.Token = "" }},
		{"exported without recipient", KindExported, func(r *Record) { r.Destination = "" }},
		{"exported without allowlist", KindExported, func(r *Record) { r.AllowlistSHA256 = "" }},
		{"exported denied", KindExported, func(r *Record) { r.Decision = DecisionDeny }},
		{"exported with a status", KindExported, func(r *Record) { r.UpstreamStatus = 200 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid[tt.kind]()
			tt.edit(&r)
			if _, err := l.Append(context.Background(), r); !errors.Is(err, ErrInvalid) {
				t.Errorf("Append(%s) = %v, want ErrInvalid", tt.name, err)
			}
		})
	}
}

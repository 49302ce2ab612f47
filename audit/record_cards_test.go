package audit

import (
	"context"
	"errors"
	"testing"
)

// A card lifecycle record names the caller and the token, with the allow
// decision and nothing of a forward; anything else is refused.
func TestCardRecords(t *testing.T) {
	l := newTestLog(t, &memSink{})
	for _, kind := range []Kind{KindCardUpdated, KindCardDeleted, KindCVCCollected} {
		t.Run(string(kind), func(t *testing.T) {
			valid := func() Record {
				return Record{Kind: kind, RequestID: "req_1", Caller: "billing", Token: testToken, Decision: DecisionAllow}
			}
			if _, err := l.Append(context.Background(), valid()); err != nil {
				t.Fatalf("Append(%s) = %v, want nil", kind, err)
			}
			for _, tt := range []struct {
				name string
				edit func(*Record)
			}{
				{"no token", func(r *Record) { r.Token = "" }},
				{"no caller", func(r *Record) { r.Caller = "" }},
				{"no request id", func(r *Record) { r.RequestID = "" }},
				{"deny", func(r *Record) { r.Decision = DecisionDeny }},
				{"no decision", func(r *Record) { r.Decision = "" }},
				{"an outcome", func(r *Record) { r.Outcome = OutcomeAnswered }},
				{"a forward id", func(r *Record) { r.ForwardID = "fwd_1" }},
				{"a destination", func(r *Record) { r.Destination = "acme" }},
				{"several tokens", func(r *Record) { r.Token = ""; r.Tokens = []string{testToken} }},
				{"a card for a token", func(r *Record) { r.Token = "tok_4242424242424242" }},
			} {
				t.Run(tt.name, func(t *testing.T) {
					r := valid()
					tt.edit(&r)
					if _, err := l.Append(context.Background(), r); !errors.Is(err, ErrInvalid) {
						t.Errorf("Append(%s, %s) = %v, want ErrInvalid", kind, tt.name, err)
					}
				})
			}
		})
	}
}

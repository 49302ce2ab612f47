package audit

import (
	"context"
	"errors"
	"testing"
)

// A tokenized record names the forward, the entry and the new token, with
// the allow decision and no outcome; anything less is refused.
func TestTokenizedRecord(t *testing.T) {
	valid := func() Record {
		return Record{Kind: KindTokenized, RequestID: "req_1", ForwardID: "fwd_1", Caller: "billing",
			Token: testToken, Destination: "acme", Decision: DecisionAllow}
	}
	l := newTestLog(t, &memSink{})
	if _, err := l.Append(context.Background(), valid()); err != nil {
		t.Fatalf("Append(tokenized) = %v, want nil", err)
	}
	tests := []struct {
		name string
		edit func(*Record)
	}{
		{"no token", func(r *Record) { r.Token = "" }},
		{"no forward id", func(r *Record) { r.ForwardID = "" }},
		{"no destination", func(r *Record) { r.Destination = "" }},
		{"deny", func(r *Record) { r.Decision = DecisionDeny }},
		{"no decision", func(r *Record) { r.Decision = "" }},
		{"an outcome", func(r *Record) { r.Outcome = OutcomeAnswered }},
		{"a status", func(r *Record) { r.UpstreamStatus = 200 }},
		{"a card for a token", func(r *Record) { r.Token = "tok_4242424242424242" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid()
			tt.edit(&r)
			if _, err := l.Append(context.Background(), r); !errors.Is(err, ErrInvalid) {
				t.Errorf("Append(tokenized, %s) = %v, want ErrInvalid", tt.name, err)
			}
		})
	}
}

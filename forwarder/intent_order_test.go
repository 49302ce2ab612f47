package forwarder

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/idempotency"
	"github.com/cardgate/cardgate/internal/redistest"
)

// orderSink is an audit.Sink in front of the real file sink. Each time a
// batch holding an intent record reaches it, it checks that the processor
// has received no more requests than intents were made durable before
// this one, and, for a single forward, that no connection reached the
// processor either. It checks once when the write arrives, and again after
// holding the write back for orderHold: Append must return only once the
// record is durable, so a forward that sends without waiting for it would
// reach the processor in that window.
type orderSink struct {
	inner audit.Sink
	p     *processor

	mu       sync.Mutex
	intents  int      // intent records written
	atResult []int    // requests the processor had received when each result record arrived
	broken   []string // every violation seen
}

// orderHold is how long orderSink holds an intent write back before
// looking again. It is not a timing assertion: a correct forwarder sends
// nothing whatever the hold.
const orderHold = 50 * time.Millisecond

func (s *orderSink) Write(ctx context.Context, batch []audit.Entry) error {
	intents, results := 0, 0
	for _, e := range batch {
		switch e.Rec.Kind {
		case audit.KindIntent:
			intents++
		case audit.KindResult:
			results++
		}
	}
	if intents > 0 {
		s.check("when the intent write arrived")
		time.Sleep(orderHold)
		s.check("while the intent write was still held")
	}
	err := s.inner.Write(ctx, batch)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.intents += intents
	}
	for range results {
		s.atResult = append(s.atResult, len(s.p.requests()))
	}
	return err
}

// check records a violation when the processor got more than the intents
// already durable allow.
func (s *orderSink) check(when string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if got := len(s.p.requests()); got > s.intents {
		s.broken = append(s.broken, fmt.Sprintf("%s: the processor had received %d requests, with %d intent records durable", when, got, s.intents))
	}
	if s.intents == 0 {
		if n := s.p.conns.Load(); n != 0 {
			s.broken = append(s.broken, fmt.Sprintf("%s: the processor had accepted %d connections before the first intent", when, n))
		}
	}
}

func (s *orderSink) report() (intents int, atResult []int, broken []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.intents, append([]int(nil), s.atResult...), append([]string(nil), s.broken...)
}

// withOrderSink makes the forwarder audit through an orderSink watching
// p, over a real file sink.
func withOrderSink(t *testing.T, p *processor) (*orderSink, envOpt) {
	t.Helper()
	_, file, _ := newAuditLog(t)
	s := &orderSink{inner: file, p: p}
	log, err := audit.New(audit.Options{Sinks: []audit.Sink{s}})
	if err != nil {
		t.Fatal(err)
	}
	return s, func(o *Options, _ *allowlist.Destination) { o.Auditor = log }
}

// TestIntentBeforeSend: the intent record is durable before the processor
// receives anything, on every path that sends a card.
func TestIntentBeforeSend(t *testing.T) {
	const withCVC = `{"number":"{{card.number}}","cvc":"{{card.cvc}}"}`
	tests := []struct {
		name  string
		http2 bool
		body  string
		idem  bool // an Idempotency-Key, with a Redis idempotency store
	}{
		{name: "number over HTTP/1.1", body: cardBody},
		{name: "number and CVC over HTTP/1.1", body: withCVC},
		{name: "number over HTTP/2", http2: true, body: cardBody},
		{name: "with an idempotency key", body: cardBody, idem: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProcessor(t, echo, tt.http2)
			sink, opt := withOrderSink(t, p)
			opts := []envOpt{opt}
			if tt.idem {
				store, err := idempotency.NewRedisStore(idempotency.RedisOptions{Client: redistest.Start(t).Client(), Keys: testIdempotencyKeys(t), Prefix: "test:idem:", Wait: 10 * time.Second, Lease: time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, func(o *Options, _ *allowlist.Destination) { o.Idempotency = store })
			}
			e := newEnvOn(t, p, opts...)
			r := e.jsonRequest(tt.body)
			if tt.idem {
				r.IdempotencyKey = "order-1234:attempt-1"
			}
			resp, err := e.f.Forward(context.Background(), r)
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			if resp.Outcome != Answered || resp.Status != http.StatusCreated {
				t.Fatalf("Forward = %s %d, want answered 201", resp.Outcome, resp.Status)
			}
			intents, atResult, broken := sink.report()
			for _, b := range broken {
				t.Error(b)
			}
			// The control: the sink does see the processor, so the check
			// above could fail.
			if intents != 1 || len(atResult) != 1 || atResult[0] != 1 {
				t.Errorf("intents %d, requests seen at each result %v; want 1 intent and [1]", intents, atResult)
			}
		})
	}
}

// TestIntentBeforeSendConcurrent: with forwards in flight together, the
// processor never holds more requests than there are durable intents.
func TestIntentBeforeSendConcurrent(t *testing.T) {
	const n = 8
	p := newProcessor(t, echo, false)
	sink, opt := withOrderSink(t, p)
	e := newEnvOn(t, p, opt)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.f.Forward(context.Background(), e.jsonRequest(cardBody)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Forward: %v", err)
	}
	intents, _, broken := sink.report()
	for _, b := range broken {
		t.Error(b)
	}
	if got := len(p.requests()); intents != n || got != n {
		t.Errorf("intents %d, processor requests %d; want %d each", intents, got, n)
	}
}

package audit

// OpenIntent is an intent record whose forward has no result record in
// the verified input: the card may have left, and the log does not say
// what came of it. It is the "outcome unknown" of AUDITING.md: a gateway
// that crashed (or whose machine did) after the intent was durable and
// before the result was, or a forward still in flight when the input was
// read. It is not a problem of the log (Verify still succeeds): it is a
// forward to reconcile with the processor.
type OpenIntent struct {
	ForwardID string
	Chain     string
	Seq       uint64
	Line      int    // for a file; 0 for a stream
	StreamID  string // for a stream
}

// maxOpenIntents bounds the intents Verify keeps waiting for their
// results. A gateway has at most a few hundred forwards in flight, so the
// bound matters only for a log that is not one; intents past it are
// counted in Report.UntrackedIntents, unchecked.
const maxOpenIntents = MaxProblems

// openIntents pairs intents with results as Verify reads them.
type openIntents struct {
	open      map[string]OpenIntent // by forward id
	order     []string              // forward ids, in input order (some settled)
	untracked int
}

// see notes an intent, or settles the intent that a result closes.
func (o *openIntents) see(rec *Record, loc location) {
	if rec.ForwardID == "" {
		return
	}
	switch rec.Kind {
	case KindIntent:
		if o.open == nil {
			o.open = map[string]OpenIntent{}
		}
		if _, dup := o.open[rec.ForwardID]; dup {
			return
		}
		if len(o.open) >= maxOpenIntents {
			o.untracked++
			return
		}
		o.open[rec.ForwardID] = OpenIntent{ForwardID: rec.ForwardID, Chain: rec.Chain, Seq: rec.Seq, Line: loc.line, StreamID: loc.streamID}
		o.order = append(o.order, rec.ForwardID)
	case KindResult:
		delete(o.open, rec.ForwardID)
		if len(o.order) > 2*len(o.open)+64 {
			// Forget the settled ids, so that memory follows the forwards
			// open at once rather than the length of the log.
			kept := o.order[:0]
			for _, id := range o.order {
				if _, ok := o.open[id]; ok {
					kept = append(kept, id)
				}
			}
			clear(o.order[len(kept):])
			o.order = kept
		}
	}
}

// list returns the intents still open, in input order.
func (o *openIntents) list() []OpenIntent {
	var out []OpenIntent
	for _, id := range o.order {
		if oi, ok := o.open[id]; ok {
			out = append(out, oi)
			delete(o.open, id) // an id listed twice in order is listed once
		}
	}
	return out
}

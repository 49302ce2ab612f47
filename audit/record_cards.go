package audit

// Kinds of the card lifecycle calls (PATCH, DELETE and POST …/cvc on
// /v1/cards/{token}). Each records who changed which token, never what
// changed: the new expiry, name or CVC are card data and have no field
// here. Reading metadata is not audited (it reveals no card data and
// changes nothing); tokenizing is counted by the store, not the log.
const (
	// KindCardUpdated records a new expiry or name for a stored card.
	KindCardUpdated Kind = "card_updated"
	// KindCardDeleted records a card deleted on request.
	KindCardDeleted Kind = "card_deleted"
	// KindCVCCollected records a CVC collected again for a stored card.
	KindCVCCollected Kind = "cvc_collected"
)

// isCardKind reports whether k is a card lifecycle kind.
func isCardKind(k Kind) bool {
	return k == KindCardUpdated || k == KindCardDeleted || k == KindCVCCollected
}

// checkCardKind holds the rules between fields of a card lifecycle
// record: a token, an allow decision, nothing of a forward.
func (r *Record) checkCardKind() error {
	if r.Decision != DecisionAllow || r.Outcome != "" || r.UpstreamStatus != 0 {
		return fieldError("decision", `must be "allow", with no outcome, in a card record`)
	}
	if r.ForwardID != "" || r.Destination != "" || len(r.Tokens) != 0 {
		return fieldError("forward_id", "must be empty in a card record: it names one token and no forward")
	}
	return nil
}

package audit

// Kinds of the card migration commands (cardgate cards import and
// export). Their records have no forward: RequestID names the run, Caller
// the command ("cardgate-cli/cards-import" or "cardgate-cli/cards-export").
const (
	// KindImported records a card stored by an import: Token is its token.
	// A card an interrupted run stored is recorded again by the run that
	// resumes, so each imported card has one record or more.
	KindImported Kind = "imported"
	// KindExported records a card written to an export: Token is its
	// token, Destination the allowlist's export recipient, and
	// AllowlistVersion and AllowlistSHA256 the signed allowlist that named
	// it. It is written before the card is (fail closed: a card may have
	// a record and not be in a file that was cut off, never the reverse).
	KindExported Kind = "exported"
)

// migrationKind reports whether k is one of the kinds above.
func migrationKind(k Kind) bool { return k == KindImported || k == KindExported }

// validateMigration checks the rules of the migration kinds, after the
// checks every record gets: a token always, and for an export the
// recipient and the allowlist that allowed it, with an allow decision and
// no outcome.
func (r *Record) validateMigration() error {
	if !migrationKind(r.Kind) {
		return nil
	}
	if r.Token == "" {
		return fieldError("token", "required in an "+string(r.Kind)+" record")
	}
	if r.Outcome != "" || r.UpstreamStatus != 0 || r.ForwardID != "" || len(r.Tokens) != 0 {
		return fieldError("outcome", "must be empty in an "+string(r.Kind)+" record: nothing was forwarded")
	}
	switch r.Kind {
	case KindImported:
		if r.Destination != "" || r.Decision != "" {
			return fieldError("destination", "must be empty in an imported record")
		}
	case KindExported:
		if r.Destination == "" {
			return fieldError("destination", "required in an exported record: the export recipient")
		}
		if r.Decision != DecisionAllow || r.AllowlistSHA256 == "" {
			return fieldError("decision", `must be "allow", with the allowlist that allowed it, in an exported record`)
		}
	}
	return nil
}

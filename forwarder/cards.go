package forwarder

import (
	"context"
	"slices"
	"strconv"
	"sync"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/cardscan"
	"github.com/cardgate/cardgate/vaultclient"
)

// The request's cards. A forward sends one card, "card": "tok_…", whose
// fields are {{card.FIELD}}, or several named cards, "cards": {"primary":
// "tok_…", "funding": "tok_…"}, whose fields are {{cards.NAME.FIELD}}; never
// both. Every named card must be used by the template, and the matched
// entry must list each in its `cards` block with the fields it uses
// (allowlist.Query.Cards).

// checkCardTokens checks the card or cards of r: one form or the other,
// names in the allowlist's card-name grammar, at most
// allowlist.MaxNamedCards, and each value shaped like a token, not a card.
func checkCardTokens(r *Request) *Error {
	invalid := func(msg string) *Error { return notSent(CodeInvalidRequest, msg) }
	switch {
	case r.Card != "" && r.Cards != nil:
		return invalid(`card, cards: send one card as "card" or named cards as "cards", not both`)
	case r.Card != "":
		return checkToken("card", r.Card)
	case r.Cards == nil:
		return invalid("card: is required (or cards, for several named cards)")
	case len(r.Cards) == 0:
		return invalid("cards: must name at least one card")
	case len(r.Cards) > allowlist.MaxNamedCards:
		return invalid("cards: more than " + strconv.Itoa(allowlist.MaxNamedCards) + " cards")
	}
	for _, name := range sortedNames(r.Cards) {
		if !allowlist.ValidCardName(name) {
			// Not echoed: it matched no grammar.
			return invalid("cards: a card name must be a lowercase letter, then up to 31 of a-z, 0-9 and '_'")
		}
		if cardscan.ContainsAnyWindow(name) {
			return notSent(CodeLiteralCard, "cards: a card name looks like a card number")
		}
		if e := checkToken("cards."+name, r.Cards[name]); e != nil {
			return e
		}
	}
	seen := make(map[string]bool, len(r.Cards))
	for _, tok := range r.Cards {
		if seen[tok] {
			return invalid("cards: the same token is named twice; name each card once")
		}
		seen[tok] = true
	}
	return nil
}

// checkToken checks one token value; where names it ("card",
// "cards.primary").
func checkToken(where, tok string) *Error {
	if tok == "" {
		return notSent(CodeInvalidRequest, where+": is required")
	}
	if len(tok) > maxTokenBytes || !printableToken(tok) {
		return notSent(CodeInvalidRequest, where+": must be a token of printable ASCII characters")
	}
	if cardscan.IsCardNumber(tok) {
		// Compared whole: a token is never all digits, and a long random
		// token must not trip the >19-digit rule.
		return notSent(CodeLiteralCard, where+": contains what looks like a card number; send a token and a placeholder instead")
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// scopeCards fills v.fields (the single card's) and v.cards (each named
// card's) from the placeholders of every slot, and checks that the
// placeholders and the request's cards agree: {{card.…}} only with "card",
// {{cards.NAME.…}} only for a NAME in "cards", every named card used, and
// each reference in a slot its namespace may use.
func (v *validated) scopeCards(r *Request) *Error {
	single := map[allowlist.Field]bool{}
	named := map[string]map[allowlist.Field]bool{}
	check := func(phs []placeholder, kind slotKind, where string) *Error {
		for _, ph := range phs {
			rf := ph.ref
			if !rf.allowedIn(kind) {
				if rf.ns == nsSecret {
					return notSent(CodeInvalidTemplate, where+": "+rf.placeholderText()+" is allowed only in header values")
				}
				return notSent(CodeInvalidTemplate, where+": "+rf.placeholderText()+" is not allowed here")
			}
			switch rf.ns {
			case nsCard:
				if r.Card == "" {
					return notSent(CodeInvalidTemplate, where+": "+rf.placeholderText()+" needs \"card\"; with named cards write {{cards.NAME."+string(rf.field)+"}}")
				}
				for _, f := range rf.fields() {
					single[f] = true
				}
			case nsCards:
				if _, ok := r.Cards[rf.name]; !ok {
					// The name is not echoed unless the request sent it.
					return notSent(CodeInvalidTemplate, where+": a {{cards.…}} placeholder names a card that \"cards\" does not send")
				}
				if named[rf.name] == nil {
					named[rf.name] = map[allowlist.Field]bool{}
				}
				for _, f := range rf.fields() {
					named[rf.name][f] = true
				}
			}
		}
		return nil
	}
	for _, h := range v.headers {
		for _, sl := range h.values {
			if e := check(sl.phs, slotHeader, "header "+h.name); e != nil {
				return e
			}
		}
	}
	if e := check(v.body.phs, slotBody, "body"); e != nil {
		return e
	}
	for _, name := range sortedNames(r.Cards) {
		if named[name] == nil {
			return notSent(CodeInvalidRequest, "cards."+name+": not used by the template; send only the cards it uses")
		}
	}
	v.fields = sortedFields(single)
	if len(named) > 0 {
		v.cards = make(map[string][]allowlist.Field, len(named))
		for name, fs := range named {
			v.cards[name] = sortedFields(fs)
		}
	}
	return nil
}

func sortedFields(set map[allowlist.Field]bool) []allowlist.Field {
	var out []allowlist.Field
	for f := range set {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// recheckCards repeats the named-card part of the allowlist decision (see
// recheck).
func recheckCards(d *allowlist.Destination, v *validated) *Error {
	for name, fs := range v.cards {
		scope, ok := d.CardFields(name)
		if !ok {
			return notSent(string(allowlist.ReasonCardNotAllowed), "card "+name+" is not allowed for this destination")
		}
		for _, f := range fs {
			if !slices.Contains(scope, f) {
				return notSent(string(allowlist.ReasonFieldNotAllowed), "card field "+string(f)+" of card "+name+" is not allowed for this destination")
			}
		}
	}
	return nil
}

// cardValues holds the cards a render may write. Built only after the
// destination matched, from the cards the template uses.
type cardValues struct {
	card  *vaultclient.Card            // the request's "card"; nil with named cards
	named map[string]*vaultclient.Card // the request's "cards", by name
}

// value returns the field's text, its filter applied.
func (v cardValues) value(r ref) (string, *Error) {
	c := v.card
	if r.ns == nsCards {
		c = v.named[r.name]
	}
	if c == nil || !r.isCard() {
		// validate ties every reference to a card that was read.
		return "", newError(CodeInternal, NotSent, "no card read for a placeholder", nil)
	}
	return cardValue(c, r)
}

// cardValue returns one card's field for r.
func cardValue(c *vaultclient.Card, r ref) (string, *Error) {
	unavailable := func() (string, *Error) {
		switch r.field {
		case allowlist.FieldCVC:
			// Transient: it expired, or an earlier forward read it (and so
			// consumed it, whatever that forward's outcome).
			msg := "the card's CVC has expired or was already used by a forward (which consumes it even when nothing was sent); collect it again"
			if r.ns == nsCards {
				msg = "card " + r.name + ": " + msg
			}
			return "", notSent(CodeCVCNotAvailable, msg)
		case allowlist.FieldName:
			return "", notSent(CodeInvalidTemplate, "the template uses "+r.placeholderText()+" but the card holds no name")
		}
		// The vault validates number and expiry when it tokenizes; a card
		// without them is a bug there.
		return "", newError(CodeInternal, NotSent, "card record incomplete", nil)
	}
	var s string
	switch r.field {
	case allowlist.FieldNumber:
		s = c.Number.Reveal()
	case allowlist.FieldCVC:
		s = c.CVC.Reveal()
	case allowlist.FieldName:
		s = c.Name.Reveal()
	case allowlist.FieldExpMonth, allowlist.FieldExpYear, fieldExp:
		m, y := c.ExpMonth, c.ExpYear
		if m < 1 || m > 12 || y < 1000 || y > 9999 {
			return unavailable()
		}
		return expiryValue(r, m, y), nil
	}
	if s == "" {
		return unavailable()
	}
	return s, nil
}

// readCards reads the request's card or named cards from the vault. A
// card whose fields include the CVC is read with DetokenizeConsumingCVC,
// so its CVC is gone from here whatever the outcome. Named cards are read
// concurrently under one CardTimeout; when reads fail, the error of the
// first card by name is returned.
func (f *Forwarder) readCards(ctx context.Context, fw *forward, r *Request, v *validated) (cardValues, *Error) {
	read := func(ctx context.Context, token string, fields []allowlist.Field) (*vaultclient.Card, *Error) {
		detokenize := f.cards.Detokenize
		if slices.Contains(fields, allowlist.FieldCVC) {
			detokenize = f.cards.DetokenizeConsumingCVC
		}
		card, err := detokenize(ctx, token)
		if err != nil {
			return nil, passThrough(err, "card store unavailable")
		}
		if card == nil {
			return nil, notSent(CodeInternal, "card store returned no card")
		}
		return card, nil
	}
	cctx, cancel := context.WithTimeout(ctx, f.cardTimeout)
	defer cancel()

	if r.Card != "" {
		fw.usedCVC = slices.Contains(v.fields, allowlist.FieldCVC)
		card, e := read(cctx, r.Card, v.fields)
		if e != nil {
			return cardValues{}, e
		}
		return cardValues{card: card}, nil
	}

	names := sortedNames(v.cards)
	cards := make([]*vaultclient.Card, len(names))
	errs := make([]*Error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		if slices.Contains(v.cards[name], allowlist.FieldCVC) {
			fw.usedCVC = true
		}
		wg.Go(func() { cards[i], errs[i] = read(cctx, r.Cards[name], v.cards[name]) })
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return cardValues{}, e
		}
	}
	cv := cardValues{named: make(map[string]*vaultclient.Card, len(names))}
	for i, name := range names {
		cv.named[name] = cards[i]
	}
	return cv, nil
}

// sentCards are what the answer is masked for: every card the forward
// read, with its CVC when the template used it, as cardscan.Secrets (the
// number in every encoding, forwarder/response.go) and as plain digits for
// the response rules. clear wipes them after the forward.
type sentCards struct {
	own           []cardscan.Secrets
	numbers, cvcs [][]byte
}

// sentOf builds the sentCards of the cards in cv.
func sentOf(cv cardValues, v *validated) sentCards {
	var s sentCards
	add := func(c *vaultclient.Card, withCVC bool) {
		if c == nil {
			return
		}
		num, cvc := c.Number.Reveal(), ""
		if withCVC {
			cvc = c.CVC.Reveal()
		}
		s.own = append(s.own, cardscan.NewSecrets(num, cvc))
		if num != "" {
			s.numbers = append(s.numbers, []byte(num))
		}
		if cvc != "" {
			s.cvcs = append(s.cvcs, []byte(cvc))
		}
	}
	add(cv.card, slices.Contains(v.fields, allowlist.FieldCVC))
	for _, name := range sortedNames(cv.named) {
		add(cv.named[name], slices.Contains(v.cards[name], allowlist.FieldCVC))
	}
	return s
}

func (s sentCards) clear() {
	for i := range s.own {
		s.own[i].Wipe()
	}
	for _, b := range s.numbers {
		clear(b)
	}
	for _, b := range s.cvcs {
		clear(b)
	}
}

// redact appends src to dst with every card number masked, and each card
// the forward sent masked in every encoding (cardscan.Secrets), once per
// card beyond the first. A scratch copy made for several cards is zeroed
// before it is dropped.
func (s sentCards) redact(dst, src []byte) []byte {
	switch len(s.own) {
	case 0:
		return cardscan.Redact(dst, src)
	case 1:
		return s.own[0].Redact(dst, src)
	}
	start := len(dst)
	dst = s.own[0].Redact(dst, src)
	scratch := make([]byte, 0, len(dst)-start)
	for i := range s.own[1:] {
		scratch = s.own[i+1].Redact(scratch[:0], dst[start:])
		clear(dst[start:])
		dst = append(dst[:start], scratch...)
	}
	clear(scratch[:cap(scratch)])
	return dst
}

// auditTokens returns the named cards' tokens as audit records carry them:
// in the order of the names, and only those spelled like tokens (anything
// else is caller input that could be a card number).
func auditTokens(cards map[string]string) []string {
	var out []string
	for _, name := range sortedNames(cards) {
		if t := auditToken(cards[name]); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// requestTokens returns every token fw's request names, for the canary
// check: the single card's or the named cards'.
func (fw *forward) requestTokens() []string {
	if fw.token != "" {
		return []string{fw.token}
	}
	return fw.tokens
}

package forwarder

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/cardscan"
	"github.com/cardgate/cardgate/vaultclient"
)

// Response rules (step 12 with an entry's response block): the answer is
// masked as always, except at the entry's identifier paths, which are kept
// but for the forward's own card and CVC; values at its returned-card
// paths that are card numbers are tokenized into the vault and replaced
// by their tokens; their expiry values are masked.

// CardIssuer stores a card a processor returned and gives back its token.
// vaultclient.Vault implements it. The forwarder uses Options.Cards as its
// CardIssuer when Cards implements it; when it does not, a forward to an
// entry with response.returned_cards is refused before anything is sent
// (internal_error, not_sent), since its answer could not be honoured.
type CardIssuer interface {
	Tokenize(ctx context.Context, in vaultclient.CardInput) (*vaultclient.TokenInfo, error)
}

// ReturnedCard is one card an answer held at a path the entry's
// response.returned_cards names, in the order of the answer.
type ReturnedCard struct {
	// Path is the rule's number path, as the entry writes it.
	Path string `json:"path"`
	// Token, Last4 and Brand describe the new card; the body holds Token
	// where the number was.
	Token string `json:"token,omitempty"`
	Last4 string `json:"last4,omitempty"`
	Brand string `json:"brand,omitempty"`
	// Error, when set, says why there is no token; the value is masked in
	// the body. One of the ReturnedCard* codes.
	Error string `json:"error,omitempty"`
}

// ReturnedCard error codes. The answer is returned whatever they say: the
// processor has answered, and losing its answer would be worse.
const (
	// ReturnedCardNotACard: the value is not 13–19 digits passing the Luhn
	// check (spaces and dashes aside); a processor's masked number, say.
	ReturnedCardNotACard = "not_a_card"
	// ReturnedCardInvalidExpiry: the sibling expiry values are missing,
	// repeated with different values, or not a month 1–12 and a year of
	// two or four digits.
	ReturnedCardInvalidExpiry = "invalid_expiry"
	// ReturnedCardTokenizeFailed: the vault refused the card (expired,
	// say) or did not answer, or the audit record of the new token could
	// not be written (then the token is not given out).
	ReturnedCardTokenizeFailed = "tokenize_failed"
	// ReturnedCardTooMany: the answer held more than
	// MaxReturnedCardsPerAnswer cards; the rest are masked.
	ReturnedCardTooMany = "too_many_cards"
)

// MaxReturnedCardsPerAnswer bounds the vault writes one answer can cause.
const MaxReturnedCardsPerAnswer = 16

// issuer returns the CardIssuer, or nil when Cards is not one.
func (f *Forwarder) issuer() CardIssuer {
	ci, _ := f.cards.(CardIssuer)
	return ci
}

// checkEntryRules runs after the allowlist match. It refuses an entry with
// returned cards when the gateway cannot tokenize, and a body whose
// literal-card check was relaxed by request_identifiers other than the
// matched entry's (the allowlist was reloaded in between).
func (f *Forwarder) checkEntryRules(d *allowlist.Destination, v *validated) *Error {
	if v.identifiersUsed != nil && !samePaths(v.identifiersUsed, d.RequestIdentifiers) {
		return notSent(CodeLiteralCard, "body: contains what looks like a card number; send a token and a placeholder instead")
	}
	if d.Response != nil && len(d.Response.ReturnedCards) > 0 && f.issuer() == nil {
		return notSent(CodeInternal, "this gateway cannot tokenize the cards this destination returns")
	}
	return nil
}

func samePaths(a, b []cardscan.Path) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// redactAnswer writes the answer raw into *red, masked under the entry's
// response rules (d.Response, not nil), and returns the returned cards.
// card is the card the forward sent, cvc its CVC when it was sent.
//
// Hook for credentials: the values of every credential the entry used go
// into m.Secrets below; RedactRules masks them everywhere, kept spans
// included. (Response header values are cleaned in cleanResponseHeaders.)
func (f *Forwarder) redactAnswer(ctx context.Context, fw *forward, d *allowlist.Destination, contentType string, raw []byte, red *[]byte, sent sentCards) []ReturnedCard {
	m := cardscan.Masks{Numbers: sent.numbers, CVCs: sent.cvcs}

	rules := d.Response
	paths := append([]cardscan.Path(nil), rules.Identifiers...)
	for _, rc := range rules.ReturnedCards {
		paths = append(paths, rc.Number, rc.ExpMonth, rc.ExpYear)
	}
	spans, err := cardscan.FindSpans(raw, cardscan.MediaKind(contentType), paths)
	if err != nil {
		spans = nil // not its declared type: nothing kept, nothing tokenized, all masked
	}

	nID := len(rules.Identifiers)
	edits := make([]cardscan.Edit, 0, len(spans))
	var numbers []cardscan.Span
	for _, sp := range spans {
		e := cardscan.Edit{Start: sp.Start, End: sp.End, Action: cardscan.EditMask}
		switch {
		case sp.Path < nID:
			e.Action = cardscan.EditKeep
		case (sp.Path-nID)%3 == 0:
			numbers = append(numbers, sp)
			continue // decided below
		}
		edits = append(edits, e) // identifiers kept, expiry values masked
	}
	returned, cardEdits := f.returnedCards(ctx, fw, d, raw, spans, numbers)
	edits = append(edits, cardEdits...)

	size := len(raw)
	for _, e := range cardEdits {
		size += max(0, len(e.With)-(e.End-e.Start))
	}
	*red = growZeroed(*red, size)
	*red = cardscan.RedactRules((*red)[:0], raw, edits, &m)
	return returned
}

// returnedCards decides each returned-card number span: tokenized and
// replaced by its token, or masked. A span two rules select is decided
// once, by the first.
func (f *Forwarder) returnedCards(ctx context.Context, fw *forward, d *allowlist.Destination, raw []byte, spans, numbers []cardscan.Span) ([]ReturnedCard, []cardscan.Edit) {
	if len(numbers) == 0 {
		return nil, nil
	}
	nID := len(d.Response.Identifiers)
	// One deadline for every vault call of this answer, on a context the
	// caller cannot cancel: the processor has answered, and an answer
	// stored under an Idempotency-Key must hold the tokens.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cardTimeout)
	defer cancel()
	var out []ReturnedCard
	var edits []cardscan.Edit
	seen := map[int]bool{}
	for _, sp := range numbers {
		if seen[sp.Start] {
			continue
		}
		seen[sp.Start] = true
		rule := d.Response.ReturnedCards[(sp.Path-nID)/3]
		edit := cardscan.Edit{Start: sp.Start, End: sp.End, Action: cardscan.EditMask}
		value, err := cardscan.SpanValue(raw, sp)
		if err == nil && strings.TrimSpace(value) == "" {
			edits = append(edits, edit)
			continue // no card in this answer: nothing to report
		}
		rc := ReturnedCard{Path: rule.Number.String()}
		number, isCard := cardNumber(value)
		switch {
		case len(out) >= MaxReturnedCardsPerAnswer:
			rc.Error = ReturnedCardTooMany
		case err != nil || !isCard:
			rc.Error = ReturnedCardNotACard
		default:
			month, year, ok := siblingExpiry(raw, spans, sp, nID+(sp.Path-nID)/3*3)
			if !ok {
				rc.Error = ReturnedCardInvalidExpiry
				break
			}
			info, terr := f.tokenizeReturned(tctx, fw, d, vaultclient.CardInput{Number: number, ExpMonth: month, ExpYear: year})
			if terr != nil {
				rc.Error = ReturnedCardTokenizeFailed
				break
			}
			rc.Token, rc.Last4, rc.Brand = info.Token, info.Last4, info.Brand
			edit.Action, edit.With = cardscan.EditReplace, []byte(info.Token)
			if sp.Kind == cardscan.ValueJSONNumber {
				// A JSON number becomes a string: the body stays JSON.
				edit.With = []byte(`"` + info.Token + `"`)
			}
		}
		out = append(out, rc)
		edits = append(edits, edit)
	}
	return out, edits
}

// cardNumber returns value without spaces and dashes, and whether that is
// 13–19 ASCII digits passing the Luhn check.
func cardNumber(value string) (string, bool) {
	n := strings.NewReplacer(" ", "", "-", "").Replace(value)
	if len(n) < 13 || len(n) > 19 {
		return "", false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return "", false
		}
	}
	return n, cardscan.Luhn([]byte(n))
}

// siblingExpiry finds the expiry of the number at sp: the values of the
// rule's exp_month and exp_year paths (indexes first+1 and first+2) in the
// same container. Each must appear once, or repeat one value.
func siblingExpiry(raw []byte, spans []cardscan.Span, sp cardscan.Span, first int) (month, year int, ok bool) {
	find := func(path int, parse func(string) (int, bool)) (int, bool) {
		got := 0
		for _, s := range spans {
			if s.Path != path || s.Parent != sp.Parent {
				continue
			}
			v, err := cardscan.SpanValue(raw, s)
			if err != nil {
				return 0, false
			}
			n, ok := parse(strings.TrimSpace(v))
			if !ok || got != 0 && got != n {
				return 0, false
			}
			got = n
		}
		return got, got != 0
	}
	if month, ok = find(first+1, parseMonth); !ok {
		return 0, 0, false
	}
	year, ok = find(first+2, parseYear)
	return month, year, ok
}

func digitsValue(s string, minLen, maxLen int) (int, bool) {
	if len(s) < minLen || len(s) > maxLen {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// parseMonth reads "1"–"12", zero-padded or not.
func parseMonth(s string) (int, bool) {
	n, ok := digitsValue(s, 1, 2)
	return n, ok && n >= 1 && n <= 12
}

// parseYear reads a four-digit year, or a two-digit one as 20YY (an
// expiry is never in the last century).
func parseYear(s string) (int, bool) {
	n, ok := digitsValue(s, 2, 4)
	switch {
	case !ok || len(s) == 3:
		return 0, false
	case len(s) == 2:
		return 2000 + n, true
	}
	return n, n >= 1000
}

// tokenizeReturned stores one returned card and writes its tokenized audit
// record. If the record cannot be written the token is not given out: a
// token without an audit record would be a card nobody can account for.
// Errors are logged by code only.
func (f *Forwarder) tokenizeReturned(ctx context.Context, fw *forward, d *allowlist.Destination, in vaultclient.CardInput) (*vaultclient.TokenInfo, error) {
	iss := f.issuer()
	if iss == nil {
		return nil, errors.New("forwarder: no card issuer") // checkEntryRules refused this before sending
	}
	info, err := iss.Tokenize(ctx, in)
	if err == nil && (info == nil || !vaultclient.ValidToken(info.Token)) {
		err = errors.New("forwarder: the vault returned no token")
	}
	if err != nil {
		code := CodeInternal
		var ve *vaultclient.Error
		if errors.As(err, &ve) {
			code = ve.Code
		}
		f.log.LogAttrs(ctx, slog.LevelWarn, "forwarder: returned card not tokenized",
			slog.String("forward_id", fw.id), slog.String("destination", d.ID), slog.String("code", code))
		return nil, err
	}
	rec := fw.base(audit.KindTokenized)
	rec.Token, rec.Destination, rec.Decision = info.Token, d.ID, audit.DecisionAllow
	if err := f.appendRecord(ctx, rec); err != nil {
		// The card is in the vault under a token no one holds; the log
		// names the token so that an operator can account for it.
		f.log.LogAttrs(ctx, slog.LevelError, "forwarder: audit tokenized record not written; token withheld",
			slog.String("forward_id", fw.id), slog.String("token", info.Token), slog.String("cause_class", causeClass(err)))
		return nil, err
	}
	return info, nil
}

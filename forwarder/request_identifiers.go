package forwarder

import (
	"net/url"
	"strings"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/cardscan"
)

// Request identifiers: an entry's request_identifiers name the body
// fields where a caller may send a processor identifier that looks like a
// card number (a network transaction id for a merchant-initiated or
// recurring payment). Only the body, and only those fields, are exempt
// from the literal-card refusal; the URL, the headers and every other
// body field are checked as before.

// literalScanBody returns what validate scans for a literal card in the
// body template: the template itself, or, when it holds something that
// looks like a card and the named entry declares request_identifiers, the
// template with the values at those paths cut out. The paths are found in
// the template, placeholders included, by the same code that finds
// identifiers in answers. When the entry, its paths or the template's
// structure cannot be read, nothing is cut: the refusal stands.
//
// The entry is looked up in the live allowlist before the policy checks;
// checkEntryRules refuses the forward if the matched entry's paths are
// not the ones used here.
func (f *Forwarder) literalScanBody(r *Request, contentType string, v *validated) string {
	body := r.Body
	if !cardscan.ContainsString(body) && !formDecodedHasCard(body, contentType) {
		return body
	}
	al, err := f.allow.Current()
	if err != nil || al == nil {
		return body
	}
	var d *allowlist.Destination
	for i := range al.Doc.Destinations {
		if al.Doc.Destinations[i].ID == r.Destination {
			d = &al.Doc.Destinations[i]
			break
		}
	}
	if d == nil || len(d.RequestIdentifiers) == 0 {
		return body
	}
	spans, err := cardscan.FindSpans(neutralizePlaceholders(body), cardscan.MediaKind(contentType), d.RequestIdentifiers)
	if err != nil || len(spans) == 0 {
		return body
	}
	var sb strings.Builder
	sb.Grow(len(body))
	pos := 0
	for _, sp := range spans {
		if sp.Start < pos {
			continue // the same value, selected twice
		}
		sb.WriteString(body[pos:sp.Start])
		pos = sp.End
	}
	sb.WriteString(body[pos:])
	v.identifiersUsed = d.RequestIdentifiers
	return sb.String()
}

// formDecodedHasCard reports whether a form body holds a card once
// percent-decoded, as validate's own form check reads it.
func formDecodedHasCard(body, contentType string) bool {
	if cardscan.MediaKind(contentType) != cardscan.BodyForm {
		return false
	}
	dec, err := url.QueryUnescape(body)
	return err == nil && cardscan.ContainsString(dec)
}

// neutralizePlaceholders returns body with every byte of every {{…}}
// placeholder replaced by '1', so that a template parses as its type (a
// bare {{card.exp_month}} becomes a JSON number) with its offsets kept.
func neutralizePlaceholders(body string) []byte {
	b := []byte(body)
	for off := 0; ; {
		i := strings.Index(body[off:], openDelim)
		if i < 0 {
			return b
		}
		start := off + i
		j := strings.Index(body[start+len(openDelim):], closeDelim)
		if j < 0 {
			return b
		}
		end := start + len(openDelim) + j + len(closeDelim)
		for k := start; k < end; k++ {
			b[k] = '1'
		}
		off = end
	}
}

package review

import (
	"fmt"
	"strings"

	"github.com/cardgate/cardgate/allowlist"
)

// Notes lists what a reviewer must notice about an entry, for `cardgate
// allowlist show`: a wildcard host, unsafe ranges, card headers and the
// TLS, timeout and size settings.
func Notes(d *allowlist.Destination) []string {
	var n []string
	if d.IsWildcard() {
		n = append(n, "WILDCARD host")
	}
	for _, p := range d.UnsafeAllowRanges {
		n = append(n, "UNSAFE range "+p.String())
	}
	if len(d.CardHeaders) > 0 {
		n = append(n, "card in headers "+strings.Join(d.CardHeaders, ","))
	}
	if d.TLS != nil && len(d.TLS.SPKIPins) > 0 {
		n = append(n, fmt.Sprintf("%d SPKI pin(s)", len(d.TLS.SPKIPins)))
	}
	if d.TLS != nil && d.TLS.CABundle != "" {
		n = append(n, "CA bundle "+d.TLS.CABundle)
	}
	if d.TLS != nil && d.TLS.ClientCert != "" {
		n = append(n, "client cert "+d.TLS.ClientCert)
	}
	if d.Timeout != 0 {
		n = append(n, "timeout "+d.Timeout.String())
	}
	if d.MaxResponseBytes != 0 {
		n = append(n, fmt.Sprintf("max response %d B", d.MaxResponseBytes))
	}
	n = append(n, allowlist.ResponseRuleNotes(d)...)
	n = append(n, CredentialNotes(d)...)
	n = append(n, CardsBodyNotes(d)...)
	return n
}

// Fields joins card field names with commas: "number,cvc".
func Fields(fs []allowlist.Field) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ",")
}

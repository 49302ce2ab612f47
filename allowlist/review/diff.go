package review

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cardgate/cardgate/allowlist"
)

// Change is one semantic difference between two documents.
type Change struct {
	// Widens is set when the change increases risk: a new destination, or
	// a setting that lets cards go somewhere, to someone or in a way they
	// could not before. AUDITING.md lists these.
	Widens bool
	// Text is the change as one line, as `cardgate allowlist diff` prints
	// it after its WIDENS mark: "+ destination …", "~ id: …", "- …".
	Text string
}

// Diff lists the semantic changes from old to new. oldSHA256 is the hex
// sha256 of old's exact bytes, which new's prev_sha256 must name. A
// destination is matched by id; a new one is listed with every
// risk-bearing setting on its own line, each marked (see NewDestination).
func Diff(old, new *allowlist.Document, oldSHA256 string) []Change {
	var c []Change
	add := func(widens bool, format string, a ...any) {
		c = append(c, Change{Widens: widens, Text: fmt.Sprintf(format, a...)})
	}
	if new.Version <= old.Version {
		add(true, "~ version %d -> %d: NOT increasing; the gateway refuses it as a rollback", old.Version, new.Version)
	} else {
		add(false, "~ version %d -> %d", old.Version, new.Version)
	}
	if new.Version == old.Version+1 && new.PrevSHA256 != oldSHA256 {
		add(true, "~ prev_sha256 %s does NOT match sha256 of OLD %s", orDash(new.PrevSHA256), oldSHA256)
	}
	if old.Environment != new.Environment {
		add(true, "~ environment %s -> %s", old.Environment, new.Environment)
	}
	oldValidity, newValidity := old.Expires.Sub(old.IssuedAt), new.Expires.Sub(new.IssuedAt)
	add(newValidity > oldValidity, "~ expires %s -> %s (validity %s -> %s)",
		old.Expires.Format(time.RFC3339), new.Expires.Format(time.RFC3339), oldValidity, newValidity)

	oldByID := map[string]*allowlist.Destination{}
	for i := range old.Destinations {
		oldByID[old.Destinations[i].ID] = &old.Destinations[i]
	}
	newIDs := map[string]bool{}
	for i := range new.Destinations {
		n := &new.Destinations[i]
		newIDs[n.ID] = true
		if o, ok := oldByID[n.ID]; ok {
			c = append(c, diffDestination(o, n)...)
		} else {
			c = append(c, NewDestination(n)...)
		}
	}
	for _, o := range old.Destinations {
		if !newIDs[o.ID] {
			add(false, "- destination %s: %s", o.ID, o.URL)
		}
	}
	return append(c, diffExports(old, new)...)
}

// NewDestination lists an entry that OLD did not have: the entry itself,
// then each risk-bearing setting on its own line, all marked Widens (a
// wildcard host, each method, caller, card field, card header, unsafe
// range, the CA bundle and the client certificate). SPKI pins, timeout,
// response limit, purpose and owner follow unmarked: pins narrow what is
// trusted, and the rest is what the reviewer checks the entry against.
func NewDestination(n *allowlist.Destination) []Change {
	var c []Change
	at := "+ " + n.ID + ": "
	add := func(widens bool, format string, a ...any) {
		c = append(c, Change{Widens: widens, Text: at + fmt.Sprintf(format, a...)})
	}
	c = append(c, Change{Widens: true, Text: fmt.Sprintf("+ destination %s: %s (host %s, port %d, path prefix %s)",
		n.ID, n.URL, n.Host, n.Port, n.PathPrefix)})
	if n.IsWildcard() {
		add(true, "WILDCARD host %s matches every name below %s", n.Host, n.Host[2:])
	}
	for _, m := range n.Methods {
		add(true, "method %s", m)
	}
	for _, v := range n.Callers {
		add(true, "caller %s", v)
	}
	for _, f := range n.Fields {
		add(true, "card field %s", f)
	}
	for _, h := range n.CardHeaders {
		add(true, "card header %s", h)
	}
	for _, p := range n.UnsafeAllowRanges {
		add(true, "unsafe range %s", p)
	}
	if n.TLS != nil {
		if n.TLS.CABundle != "" {
			add(true, "CA bundle %s (replaces the system roots)", n.TLS.CABundle)
		}
		if n.TLS.ClientCert != "" {
			add(true, "client cert %s", n.TLS.ClientCert)
		}
		for _, p := range n.TLS.SPKIPins {
			add(false, "SPKI pin (sha256 hex) %x", p)
		}
	}
	if n.Timeout != 0 {
		add(false, "timeout %s", n.Timeout)
	}
	if n.MaxResponseBytes != 0 {
		add(false, "max_response_bytes %d", n.MaxResponseBytes)
	}
	for _, r := range allowlist.DiffResponseRules(&allowlist.Destination{}, n) {
		add(r.Widens, "%s", r.Text)
	}
	c = append(c, diffCredentials(nil, n)...)
	c = append(c, diffCardsBody(at, &allowlist.Destination{}, n)...)
	add(false, "purpose %q", n.Purpose)
	add(false, "owner %s", n.Owner)
	return c
}

// diffDestination lists the changes to an entry present in both.
func diffDestination(o, n *allowlist.Destination) []Change {
	var c []Change
	at := "~ " + n.ID + ": "
	add := func(widens bool, format string, a ...any) {
		c = append(c, Change{Widens: widens, Text: at + fmt.Sprintf(format, a...)})
	}
	if o.Host != n.Host {
		add(true, "host %s -> %s (new host)", o.Host, n.Host)
	}
	if o.Port != n.Port {
		add(true, "port %d -> %d", o.Port, n.Port)
	}
	if o.PathPrefix != n.PathPrefix {
		// Only a move to a sub-path of the old prefix narrows.
		narrower := (o.PathPrefix == "/" && n.PathPrefix != "/") || strings.HasPrefix(n.PathPrefix, o.PathPrefix+"/")
		add(!narrower, "path prefix %s -> %s", o.PathPrefix, n.PathPrefix)
	}
	listDiff := func(name string, widenOnAdd bool, oldL, newL []string) {
		for _, v := range newL {
			if !slices.Contains(oldL, v) {
				add(widenOnAdd, "+ %s %s", name, v)
			}
		}
		for _, v := range oldL {
			if !slices.Contains(newL, v) {
				add(!widenOnAdd, "- %s %s", name, v)
			}
		}
	}
	listDiff("method", true, o.Methods, n.Methods)
	listDiff("caller", true, o.Callers, n.Callers)
	listDiff("card field", true, strings.Split(Fields(o.Fields), ","), strings.Split(Fields(n.Fields), ","))
	listDiff("card header", true, o.CardHeaders, n.CardHeaders)
	var oldR, newR []string
	for _, p := range o.UnsafeAllowRanges {
		oldR = append(oldR, p.String())
	}
	for _, p := range n.UnsafeAllowRanges {
		newR = append(newR, p.String())
	}
	listDiff("unsafe range", true, oldR, newR)
	pins := func(d *allowlist.Destination) (p []string, ca string) {
		if d.TLS == nil {
			return nil, ""
		}
		for _, x := range d.TLS.SPKIPins {
			p = append(p, fmt.Sprintf("%x", x))
		}
		return p, d.TLS.CABundle
	}
	oldP, oldCA := pins(o)
	newP, newCA := pins(n)
	// Removing pins widens what certificates are accepted; adding narrows,
	// unless it is the first pin set (then it narrows from "any").
	listDiff("SPKI pin (sha256 hex)", false, oldP, newP)
	if len(oldP) > 0 && len(newP) == 0 {
		add(true, "all SPKI pins removed")
	}
	if oldCA != newCA {
		add(true, "CA bundle %s -> %s", orDash(oldCA), orDash(newCA))
	}
	// A client certificate is the gateway's credential at a processor: a
	// new or different one presents it where it was not presented before
	// (and, under TLS 1.2, shows it on the wire), so it is flagged.
	// Removing it only makes an mTLS processor refuse the handshake.
	oldCC, newCC := clientCert(o), clientCert(n)
	if oldCC != newCC {
		add(newCC != "", "client cert %s -> %s", orDash(oldCC), orDash(newCC))
	}
	if o.Timeout != n.Timeout {
		add(n.Timeout > o.Timeout || n.Timeout == 0, "timeout %s -> %s", o.Timeout, n.Timeout)
	}
	if o.MaxResponseBytes != n.MaxResponseBytes {
		add(n.MaxResponseBytes > o.MaxResponseBytes || n.MaxResponseBytes == 0, "max_response_bytes %d -> %d", o.MaxResponseBytes, n.MaxResponseBytes)
	}
	for _, r := range allowlist.DiffResponseRules(o, n) {
		add(r.Widens, "%s", r.Text)
	}
	c = append(c, diffCredentials(o, n)...)
	c = append(c, diffCardsBody(at, o, n)...)
	if o.Purpose != n.Purpose {
		add(false, "purpose %q -> %q", o.Purpose, n.Purpose)
	}
	if o.Owner != n.Owner {
		add(false, "owner %s -> %s", o.Owner, n.Owner)
	}
	return c
}

func clientCert(d *allowlist.Destination) string {
	if d.TLS == nil {
		return ""
	}
	return d.TLS.ClientCert
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

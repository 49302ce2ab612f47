// "cardgate allowlist show" and "diff": what a reviewer reads before signing.

package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cardgate/cardgate/allowlist"
)

func allowlistShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("show", "FILE", "Prints FILE as a table. It does NOT check signatures; use verify for that.", stderr)
	if err := parseFlags(fs, args, 1); err != nil || fs.NArg() == 0 {
		return err
	}
	raw, err := allowlist.ReadDocument(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("allowlist show: %w", err)
	}
	doc, err := allowlist.ParseUnverified(raw)
	if err != nil {
		return fmt.Errorf("allowlist show: %w", err)
	}
	fmt.Fprintf(stdout, "%s  version %d  environment %s  (signatures not checked)\n", doc.Format, doc.Version, doc.Environment)
	fmt.Fprintf(stdout, "issued %s  expires %s  sha256 %s\nprev_sha256 %s\n\n",
		doc.IssuedAt.Format(time.RFC3339), doc.Expires.Format(time.RFC3339), allowlist.SHA256Hex(raw), orDash(doc.PrevSHA256))
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tHOST\tPORT\tPATH PREFIX\tMETHODS\tCALLERS\tCARD FIELDS\tNOTES")
	for _, d := range doc.Destinations {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Host, d.Port, d.PathPrefix,
			strings.Join(d.Methods, ","), strings.Join(d.Callers, ","), joinFields(d.Fields), strings.Join(notes(&d), "; "))
	}
	return w.Flush()
}

// notes lists what a reviewer must notice about an entry.
func notes(d *allowlist.Destination) []string {
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
	n = append(n, cardsBodyNotes(d)...)
	if d.TLS != nil && d.TLS.ClientCert != "" {
		n = append(n, "client cert "+d.TLS.ClientCert)
	}
	if d.Timeout != 0 {
		n = append(n, "timeout "+d.Timeout.String())
	}
	if d.MaxResponseBytes != 0 {
		n = append(n, fmt.Sprintf("max response %d B", d.MaxResponseBytes))
	}
	return n
}

func allowlistDiff(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("diff", "[--fail-on-widen] OLD NEW",
		"Compares two allowlists field by field. Lines marked WIDENS are changes that\n"+
			"increase risk (new destination or host, port, broader path, new caller, method,\n"+
			"card field or card header, new unsafe range, removed pins, new or changed\n"+
			"client certificate, new named card or card field, new DOCTYPE, longer validity).\n"+
			"Signatures are not checked.", stderr)
	failOnWiden := fs.Bool("fail-on-widen", false, "exit non-zero when any change widens risk")
	if err := parseFlags(fs, args, 2); err != nil || fs.NArg() == 0 {
		return err
	}
	var docs [2]*allowlist.Document
	var raws [2][]byte
	for i := range docs {
		raw, err := allowlist.ReadDocument(fs.Arg(i))
		if err != nil {
			return fmt.Errorf("allowlist diff: %w", err)
		}
		if docs[i], err = allowlist.ParseUnverified(raw); err != nil {
			return fmt.Errorf("allowlist diff: %s: %w", fs.Arg(i), err)
		}
		raws[i] = raw
	}
	changes := diffDocuments(docs[0], docs[1], allowlist.SHA256Hex(raws[0]))
	widens := 0
	for _, c := range changes {
		mark := "       "
		if c.widens {
			mark = "WIDENS "
			widens++
		}
		fmt.Fprintf(stdout, "%s%s\n", mark, c.text)
	}
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "no semantic changes")
	}
	fmt.Fprintf(stdout, "%d change(s), %d widening risk\n", len(changes), widens)
	if *failOnWiden && widens > 0 {
		return fmt.Errorf("allowlist diff: %d change(s) widen risk", widens)
	}
	return nil
}

type change struct {
	text   string
	widens bool
}

// diffDocuments lists semantic changes from old to new.
func diffDocuments(old, new *allowlist.Document, oldSHA string) []change {
	var c []change
	add := func(widens bool, format string, a ...any) {
		c = append(c, change{fmt.Sprintf(format, a...), widens})
	}
	if new.Version <= old.Version {
		add(true, "~ version %d -> %d: NOT increasing; the gateway refuses it as a rollback", old.Version, new.Version)
	} else {
		add(false, "~ version %d -> %d", old.Version, new.Version)
	}
	if new.Version == old.Version+1 && new.PrevSHA256 != oldSHA {
		add(true, "~ prev_sha256 %s does NOT match sha256 of OLD %s", orDash(new.PrevSHA256), oldSHA)
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
		o, ok := oldByID[n.ID]
		if !ok {
			add(true, "+ destination %s: %s (host %s, port %d, callers %s, card fields %s)", n.ID, n.URL, n.Host, n.Port,
				strings.Join(n.Callers, ","), joinFields(n.Fields))
			if cc := clientCert(n); cc != "" {
				add(true, "~ %s: client cert - -> %s", n.ID, cc)
			}
			c = append(c, diffCardsBody(&allowlist.Destination{}, n)...)
			continue
		}
		c = append(c, diffDestination(o, n)...)
	}
	for _, o := range old.Destinations {
		if !newIDs[o.ID] {
			add(false, "- destination %s: %s", o.ID, o.URL)
		}
	}
	return c
}

func diffDestination(o, n *allowlist.Destination) []change {
	var c []change
	at := "~ " + n.ID + ": "
	add := func(widens bool, format string, a ...any) {
		c = append(c, change{at + fmt.Sprintf(format, a...), widens})
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
	listDiff("card field", true, strings.Split(joinFields(o.Fields), ","), strings.Split(joinFields(n.Fields), ","))
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
	c = append(c, diffCardsBody(o, n)...)
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

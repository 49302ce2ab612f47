// "cardgate allowlist show" and "diff": what a reviewer reads before signing.

package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/allowlist/review"
)

func allowlistShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("show", "FILE", "Prints FILE as a table. It does NOT check signatures; use verify for that.", stderr)
	if err := parseFlags(fs, args, 1); err != nil || fs.NArg() == 0 {
		return err
	}
	raw, err := allowlist.ReadDocument(ctx, fs.Arg(0))
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
			strings.Join(d.Methods, ","), strings.Join(d.Callers, ","), review.Fields(d.Fields), strings.Join(review.Notes(&d), "; "))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, l := range review.ExportLines(doc) {
		fmt.Fprintln(stdout, l)
	}
	return nil
}

func allowlistDiff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("diff", "[--fail-on-widen] OLD NEW",
		"Compares two allowlists field by field. Lines marked WIDENS are changes that\n"+
			"increase risk (new destination or host, port, broader path, new caller, method,\n"+
			"card field or card header, new unsafe range, removed pins, new or changed\n"+
			"CA bundle or client certificate, new identifier or returned-card rule,\n"+
			"newly granted credential, new or changed signing block, new named card or\n"+
			"card field, new DOCTYPE, longer validity, new export recipient or key).\n"+
			"A new destination is\n"+
			"listed with each of those settings on its own WIDENS line.\n"+
			"Signatures are not checked.", stderr)
	failOnWiden := fs.Bool("fail-on-widen", false, "exit non-zero when any change widens risk")
	if err := parseFlags(fs, args, 2); err != nil || fs.NArg() == 0 {
		return err
	}
	var docs [2]*allowlist.Document
	var raws [2][]byte
	for i := range docs {
		raw, err := allowlist.ReadDocument(ctx, fs.Arg(i))
		if err != nil {
			return fmt.Errorf("allowlist diff: %w", err)
		}
		if docs[i], err = allowlist.ParseUnverified(raw); err != nil {
			return fmt.Errorf("allowlist diff: %s: %w", fs.Arg(i), err)
		}
		raws[i] = raw
	}
	changes := review.Diff(docs[0], docs[1], allowlist.SHA256Hex(raws[0]))
	widens := 0
	for _, c := range changes {
		mark := "       "
		if c.Widens {
			mark = "WIDENS "
			widens++
		}
		fmt.Fprintf(stdout, "%s%s\n", mark, c.Text)
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

// "cardgate allowlist next": the next version's header, edited in place.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/cardgate/cardgate/allowlist"
)

func allowlistNext(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("next", "[--validity D] [--out NEW] FILE",
		"Starts the next version of FILE: version+1, prev_sha256 = sha256 of FILE,\n"+
			"issued_at = now, expires = now + validity. Only those lines are edited, so\n"+
			"comments and layout survive. Edit the destinations, review with diff, then sign.", stderr)
	validity := fs.Duration("validity", 0, "expires-issued_at of the new version (default: the same as FILE's)")
	out := fs.String("out", "", "write the new version to this `file` (default: stdout); never overwritten")
	if err := parseFlags(fs, args, 1); err != nil || fs.NArg() == 0 {
		return err
	}
	raw, err := allowlist.ReadDocument(ctx, fs.Arg(0))
	if err != nil {
		return fmt.Errorf("allowlist next: %w", err)
	}
	next, err := nextVersion(raw, time.Now(), *validity)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(next)
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("allowlist next: %w", err)
	}
	if _, err := f.Write(next); err != nil {
		f.Close()
		return fmt.Errorf("allowlist next: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("allowlist next: %w", err)
	}
	fmt.Fprintf(stderr, "wrote %s\n", *out)
	return nil
}

// topLevelValue matches one top-level "key: value" line, capturing the
// prefix up to the value and the value itself (quoted or bare), so that a
// trailing comment survives the edit.
func topLevelValue(key string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^(` + regexp.QuoteMeta(key) + `:[ \t]*)("[^"\n]*"|'[^'\n]*'|[^ \t#\r\n]*)`)
}

// nextVersion edits the text of raw rather than re-serializing it, so
// that reviewers' comments and the layout of the signed file survive.
func nextVersion(raw []byte, now time.Time, validity time.Duration) ([]byte, error) {
	doc, err := allowlist.ParseUnverified(raw)
	if err != nil {
		return nil, fmt.Errorf("allowlist next: %w", err)
	}
	if validity == 0 {
		validity = doc.Expires.Sub(doc.IssuedAt)
	}
	if validity <= 0 {
		return nil, errors.New("allowlist next: --validity must be positive")
	}
	issued := now.UTC().Truncate(time.Second)
	edits := []struct{ key, value string }{
		{"version", fmt.Sprint(doc.Version + 1)},
		{"issued_at", issued.Format(time.RFC3339)},
		{"expires", issued.Add(validity).Format(time.RFC3339)},
		{"prev_sha256", `"` + allowlist.SHA256Hex(raw) + `"`},
	}
	text := string(raw)
	for _, e := range edits {
		re := topLevelValue(e.key)
		switch n := len(re.FindAllStringIndex(text, -1)); {
		case n == 0 && e.key == "prev_sha256":
			// Version 1 may omit it: add it under the version line.
			text = topLevelValue("version").ReplaceAllString(text, "${1}${2}\nprev_sha256: "+e.value)
		case n != 1:
			return nil, fmt.Errorf("allowlist next: expected exactly one top-level %q line, found %d", e.key, n)
		default:
			text = re.ReplaceAllString(text, "${1}"+e.value)
		}
	}
	out := []byte(text)
	check, err := allowlist.ParseUnverified(out)
	if err != nil {
		return nil, fmt.Errorf("allowlist next: the edited file does not parse: %w", err)
	}
	if check.Version != doc.Version+1 || check.PrevSHA256 != allowlist.SHA256Hex(raw) {
		return nil, errors.New("allowlist next: the edit did not take; edit version and prev_sha256 by hand")
	}
	return out, nil
}

package main

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// allowlistLoad is what an allowlist record says (kind "allowlist").
type allowlistLoad struct {
	Time     string   `json:"time"`
	Kind     string   `json:"kind"`
	Decision string   `json:"decision"`
	Version  uint64   `json:"allowlist_version"`
	SHA256   string   `json:"allowlist_sha256"`
	Signers  []string `json:"signers"`
	Reason   string   `json:"reason"`
}

// verifyLog recomputes the Merkle tree over the audit file r and checks
// it against every checkpoint: each must be the root of the file's first
// size lines. Then it lists the allowlist loads the largest checkpoint
// covers.
func verifyLog(w io.Writer, r io.Reader, cps []checkpoint) error {
	slices.SortFunc(cps, func(a, b checkpoint) int { return cmp.Compare(a.size, b.size) })
	at := map[int64]tlog.Hash{}
	f := newFrontier()
	last := cps[len(cps)-1].size
	var loads []allowlistLoad
	mark := func() error {
		for _, c := range cps {
			if c.size == f.n {
				h, err := f.root()
				if err != nil {
					return err
				}
				at[c.size] = h
			}
		}
		return nil
	}
	if err := mark(); err != nil {
		return err
	}
	partial, err := eachLine(r, func(line []byte) error {
		if f.n < last && strings.Contains(string(line), `"kind":"allowlist"`) {
			var a allowlistLoad
			if json.Unmarshal(line, &a) == nil && a.Kind == "allowlist" {
				loads = append(loads, a)
			}
		}
		if err := f.add(line); err != nil {
			return err
		}
		return mark()
	})
	if err != nil {
		return fmt.Errorf("read the audit file: %w", err)
	}
	bad := 0
	for _, c := range cps {
		h, ok := at[c.size]
		switch {
		case !ok:
			bad++
			fmt.Fprintf(w, "TRUNCATED: %s: the file holds %d lines, fewer than the checkpoint's %d: lines were cut from its end\n", c, f.n, c.size)
		case h != c.root:
			bad++
			fmt.Fprintf(w, "MODIFIED: %s: the root of the file's first %d lines is %s: a line was dropped, inserted, reordered or rewritten, or the log forked\n",
				c, c.size, base64.StdEncoding.EncodeToString(h[:]))
		default:
			fmt.Fprintf(w, "ok: the file's first %d lines are %s\n", c.size, c)
		}
	}
	if partial > 0 {
		fmt.Fprintf(w, "note: the file ends with %d bytes without a newline (a write in progress or cut short); they are not a line\n", partial)
	}
	if f.n > last {
		fmt.Fprintf(w, "note: %d lines after the last checkpoint are not covered by any checkpoint yet\n", f.n-last)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d checkpoints do not match the file: %w", bad, len(cps), errFailed)
	}
	fmt.Fprintf(w, "allowlist loads in the first %d lines (time, decision, version, sha256, signers or refusal):\n", last)
	for _, a := range loads {
		what := strings.Join(a.Signers, ",")
		if a.Decision != "allow" {
			what = "refused: " + a.Reason
		}
		fmt.Fprintf(w, "  %s %s v%d %s %s\n", a.Time, a.Decision, a.Version, a.SHA256, what)
	}
	return nil
}

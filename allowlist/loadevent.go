package allowlist

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// LoadEvent is one load attempt, as HolderOptions.OnLoad receives it.
type LoadEvent struct {
	// Accepted: the document went live.
	Accepted bool
	// Version is the accepted document's version; 0 for a refused load
	// (a refused document's claims are not trusted enough to repeat).
	Version uint64
	// SHA256 is the lowercase hex sha256 of the bytes read, accepted or
	// not; empty when nothing could be read.
	SHA256 string
	// Signers are the principals of the valid signatures, in signature
	// file order: those counted for an accepted document, and those
	// checked before a refusal (none when signatures were not reached).
	Signers []string
	// Problem is the refusal's stable code (such as "rollback"); empty
	// when accepted. A refusal that is not a *VerifyError is "malformed".
	Problem Problem
	// Time is when the outcome was decided.
	Time time.Time
}

func newLoadEvent(a *Allowlist, sum string, err error, now time.Time) LoadEvent {
	ev := LoadEvent{SHA256: sum, Time: now}
	if err == nil {
		ev.Accepted, ev.Version, ev.Signers = true, a.Doc.Version, countedPrincipals(a)
		return ev
	}
	ev.Problem = ProblemMalformed
	var ve *VerifyError
	if errors.As(err, &ve) {
		ev.Problem = ve.Problem
		for _, r := range ve.Signatures {
			if r.Status == StatusValid {
				ev.Signers = append(ev.Signers, r.Principal)
			}
		}
	}
	return ev
}

// sumHex is the lowercase hex sha256 of b, or "" for no bytes read.
func sumHex(b []byte) string {
	if b == nil {
		return ""
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

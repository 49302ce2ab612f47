package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The text formats, as written by `cardgate audit prove` and `cardgate
// audit consistency`. Repeated here on purpose: this command shares no
// code with the gateway.
const (
	proofHeader       = "c2sp.org/tlog-proof@v1"
	consistencyHeader = "cardgate.dev/tlog-consistency@v1"
)

// errFailed marks a verification that found a problem (exit status 1).
var errFailed = errors.New("verification failed")

// checkpoint is a verified checkpoint.
type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

// openCheckpoint verifies a signed note with v (named the log's origin)
// and reads the C2SP checkpoint text: origin, size, root hash. Extension
// lines are refused (cardgate writes none); cosignatures by other keys
// are ignored.
func openCheckpoint(msg []byte, v note.Verifier) (checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint signature: %w: %w", err, errFailed)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return checkpoint{}, fmt.Errorf("checkpoint: want origin, size and root hash lines: %w", errFailed)
	}
	if lines[0] != v.Name() {
		return checkpoint{}, fmt.Errorf("checkpoint: origin %q is not the key's name %q: %w", lines[0], v.Name(), errFailed)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return checkpoint{}, fmt.Errorf("checkpoint: bad size line: %w", errFailed)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return checkpoint{}, fmt.Errorf("checkpoint: bad root hash line: %w", errFailed)
	}
	c := checkpoint{origin: lines[0], size: size}
	copy(c.root[:], root)
	return c, nil
}

func (c checkpoint) String() string {
	return fmt.Sprintf("%s size %d root %s", c.origin, c.size, base64.StdEncoding.EncodeToString(c.root[:]))
}

// inclusion is one parsed tlog-proof.
type inclusion struct {
	line  []byte // the leaf: an audit file line
	index int64
	proof tlog.RecordProof
	cp    []byte // the signed checkpoint, verbatim
}

// splitProofs parses a file of concatenated tlog-proofs.
func splitProofs(b []byte) ([]inclusion, error) {
	var out []inclusion
	parts := bytes.Split(b, []byte(proofHeader+"\n"))
	if len(parts) < 2 || len(parts[0]) != 0 {
		return nil, fmt.Errorf("proofs: the input does not start with %s: %w", proofHeader, errFailed)
	}
	for i, p := range parts[1:] {
		head, cp, ok := bytes.Cut(p, []byte("\n\n"))
		if !ok {
			return nil, fmt.Errorf("proof %d: no blank line before the checkpoint: %w", i+1, errFailed)
		}
		var in inclusion
		in.cp = cp
		for j, l := range strings.Split(string(head), "\n") {
			switch {
			case j == 0 && strings.HasPrefix(l, "extra "):
				d, err := base64.StdEncoding.DecodeString(l[len("extra "):])
				if err != nil {
					return nil, fmt.Errorf("proof %d: extra is not base64: %w", i+1, errFailed)
				}
				in.line = d
			case j == 1 && strings.HasPrefix(l, "index "):
				n, err := strconv.ParseInt(l[len("index "):], 10, 64)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("proof %d: bad index: %w", i+1, errFailed)
				}
				in.index = n
			case j >= 2:
				h, err := base64.StdEncoding.DecodeString(l)
				if err != nil || len(h) != tlog.HashSize {
					return nil, fmt.Errorf("proof %d: hash %d is not 32 bytes of base64: %w", i+1, j-1, errFailed)
				}
				in.proof = append(in.proof, tlog.Hash(h))
			default:
				return nil, fmt.Errorf("proof %d: want extra (the audit line) then index: %w", i+1, errFailed)
			}
		}
		if in.line == nil {
			return nil, fmt.Errorf("proof %d: no audit line (extra): %w", i+1, errFailed)
		}
		out = append(out, in)
	}
	return out, nil
}

// verifyInclusion checks each proof against its checkpoint and prints the
// lines proven. With forward set, each line must be a record of it.
func verifyInclusion(w io.Writer, b []byte, v note.Verifier, forward string) error {
	proofs, err := splitProofs(b)
	if err != nil {
		return err
	}
	for i, p := range proofs {
		cp, err := openCheckpoint(p.cp, v)
		if err != nil {
			return fmt.Errorf("proof %d: %w", i+1, err)
		}
		if p.index >= cp.size {
			return fmt.Errorf("proof %d: index %d is outside the tree of size %d: %w", i+1, p.index, cp.size, errFailed)
		}
		if err := tlog.CheckRecord(p.proof, cp.size, cp.root, p.index, tlog.RecordHash(p.line)); err != nil {
			return fmt.Errorf("proof %d: line %d is not in %s: %w: %w", i+1, p.index+1, cp, err, errFailed)
		}
		if forward != "" {
			var r struct {
				ForwardID string `json:"forward_id"`
			}
			if json.Unmarshal(p.line, &r) != nil || r.ForwardID != forward {
				return fmt.Errorf("proof %d: line %d is not a record of forward %s: %w", i+1, p.index+1, forward, errFailed)
			}
		}
		fmt.Fprintf(w, "ok: line %d is in %s\n%s\n", p.index+1, cp, p.line)
	}
	return nil
}

// verifyConsistency checks that NEW extends OLD.
func verifyConsistency(w io.Writer, oldMsg, newMsg, proof []byte, v note.Verifier) error {
	old, err := openCheckpoint(oldMsg, v)
	if err != nil {
		return fmt.Errorf("OLD: %w", err)
	}
	cur, err := openCheckpoint(newMsg, v)
	if err != nil {
		return fmt.Errorf("NEW: %w", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(proof), "\n"), "\n")
	if len(lines) < 3 || lines[0] != consistencyHeader {
		return fmt.Errorf("proof: does not start with %s, old and new: %w", consistencyHeader, errFailed)
	}
	if lines[1] != "old "+strconv.FormatInt(old.size, 10) || lines[2] != "new "+strconv.FormatInt(cur.size, 10) {
		return fmt.Errorf("proof: made for other sizes (%s, %s) than the checkpoints' (%d, %d): %w", lines[1], lines[2], old.size, cur.size, errFailed)
	}
	var p tlog.TreeProof
	for i, l := range lines[3:] {
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(h) != tlog.HashSize {
			return fmt.Errorf("proof: hash %d is not 32 bytes of base64: %w", i+1, errFailed)
		}
		p = append(p, tlog.Hash(h))
	}
	if old.size > cur.size {
		return fmt.Errorf("OLD (size %d) is larger than NEW (size %d): %w", old.size, cur.size, errFailed)
	}
	if old.size == 0 {
		// Every tree extends the empty one, whose root RFC 6962 fixes.
		if old.root != tlog.Hash(sha256.Sum256(nil)) || len(p) != 0 {
			return fmt.Errorf("OLD is empty but its root is not the empty tree's: %w", errFailed)
		}
		fmt.Fprintf(w, "ok: %s extends %s\n", cur, old)
		return nil
	}
	if err := tlog.CheckTree(p, cur.size, cur.root, old.size, old.root); err != nil {
		return fmt.Errorf("NEW does not extend OLD (a fork, or a rewritten log): %w: %w", err, errFailed)
	}
	fmt.Fprintf(w, "ok: %s extends %s\n", cur, old)
	return nil
}

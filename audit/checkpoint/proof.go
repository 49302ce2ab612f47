package checkpoint

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
)

// ProofHeader starts a C2SP tlog-proof (c2sp.org/tlog-proof): the
// header, "extra" with the leaf's bytes (here: the audit file's line,
// base64), "index", the inclusion proof's hashes in base64, one a line, a
// blank line, and the signed checkpoint the proof is against, verbatim.
const ProofHeader = "c2sp.org/tlog-proof@v1"

// ConsistencyHeader starts cardgate's consistency proof: the header, "old
// SIZE", "new SIZE", then the RFC 6962 consistency proof's hashes in
// base64, one a line. C2SP defines no text form for these.
const ConsistencyHeader = "cardgate.dev/tlog-consistency@v1"

// AppendInclusion appends a tlog-proof of line, leaf index of the tree
// signed in cp (the signed note, verbatim).
func AppendInclusion(dst []byte, index uint64, line []byte, proof [][32]byte, cp []byte) []byte {
	dst = append(dst, ProofHeader+"\nextra "...)
	dst = base64.StdEncoding.AppendEncode(dst, line)
	dst = append(dst, "\nindex "...)
	dst = strconv.AppendUint(dst, index, 10)
	dst = append(dst, '\n')
	dst = appendHashes(dst, proof)
	dst = append(dst, '\n')
	return append(dst, cp...)
}

// AppendConsistency appends a consistency proof from size old to size new.
func AppendConsistency(dst []byte, old, new uint64, proof [][32]byte) []byte {
	dst = append(dst, ConsistencyHeader+"\nold "...)
	dst = strconv.AppendUint(dst, old, 10)
	dst = append(dst, "\nnew "...)
	dst = strconv.AppendUint(dst, new, 10)
	dst = append(dst, '\n')
	return appendHashes(dst, proof)
}

func appendHashes(dst []byte, hs [][32]byte) []byte {
	for _, h := range hs {
		dst = base64.StdEncoding.AppendEncode(dst, h[:])
		dst = append(dst, '\n')
	}
	return dst
}

// ParseUnverified reads the checkpoint in a signed note without checking
// any signature: for the gateway's own tools, which prove against the
// checkpoint an auditor then verifies. Never trust its result otherwise.
func ParseUnverified(msg []byte) (Checkpoint, error) {
	text, _, ok := bytes.Cut(msg, []byte("\n\n"))
	if !ok {
		return Checkpoint{}, fmt.Errorf("%w: not a signed note", ErrMalformed)
	}
	c, err := Parse(string(text) + "\n")
	if err != nil {
		return Checkpoint{}, err
	}
	return c, nil
}

// ErrRootMismatch is wrapped when the audit file's tree is not the one a
// checkpoint signed.
var ErrRootMismatch = errors.New("the audit file's merkle root is not the checkpoint's")

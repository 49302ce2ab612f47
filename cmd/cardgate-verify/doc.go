// Command cardgate-verify checks a cardgate audit log's signed checkpoints
// and Merkle proofs without trusting the gateway: it shares no code with
// cardgate beyond golang.org/x/mod/sumdb/note (signed notes) and
// golang.org/x/mod/sumdb/tlog (RFC 6962 proofs), and the gateway builds
// its tree and proofs with another library (github.com/transparency-dev/
// merkle), so a bug in one is not repeated in the other.
//
//	cardgate-verify checkpoint  --key VKEY CHECKPOINT
//	cardgate-verify inclusion   --key VKEY [--forward ID] PROOFS
//	cardgate-verify consistency --key VKEY OLD NEW PROOF
//	cardgate-verify log         --key VKEY --checkpoint CP [--checkpoint CP…] AUDITFILE
//
// VKEY is the log's note verifier key ("origin+hash+base64"), which the
// auditor pins; --key-file FILE reads it from a file. Every command exits 0
// only if everything it was given checks out, 1 if something does not,
// and 2 on a usage error.
//
// log recomputes the tree over the audit file and compares it with every
// checkpoint given: a file with fewer lines than a checkpoint was cut
// short (truncated); one whose first SIZE lines give another root had a
// line dropped, inserted, reordered or rewritten (or the log forked: the
// gateway showed someone another history). It then lists the allowlist
// loads the checkpointed lines record: which versions ran, from when.
package main

// Package audit owns cardgate's tamper-evident audit log: the Record
// format, the hash chain that links records, the sinks that store them (a
// JSON-lines file and a Redis stream), and the verifier behind `cardgate
// audit verify`.
//
// It must never hold card data: a Record has no free-form text field, every
// string field has a strict format, the token field accepts only a token id
// ("tok_…"), and Append refuses (ErrInvalid) any identifier that contains a
// Luhn-valid run of 13–19 digits (cardscan.ContainsAnyWindow: separators
// as the forwarder reads them, any window of a run). It must never report success before the
// record is durable in every sink: Append returns nil only after each sink
// confirmed the write (fsync for the file, the Redis primary's reply for
// the stream), and any failure is an error (ErrUnavailable) on which the
// forward is refused. Appends that arrive while a write is in flight are
// committed together (group commit: one fsync, one script call), which
// keeps that promise per record while letting throughput follow load.
//
// # Use
//
//	file, err := audit.OpenFileSink("/var/lib/cardgate/audit.log")
//	…
//	stream, err := audit.NewRedisStreamSink(audit.RedisStreamOptions{Client: rdb, Key: "cardgate:audit"})
//	…
//	// The file is the primary, the stream its mirror (see "Two sinks").
//	log, err := audit.New(audit.Options{Sinks: []audit.Sink{file}, Mirror: stream, Logger: logger})
//	…
//	// Before the card is sent; refuse the forward on error.
//	if _, err := log.Append(ctx, audit.Record{Kind: audit.KindIntent, …}); err != nil { … }
//
// # Chains
//
// Each Log writes its own chain, named by 96 random bits (24 hex digits)
// drawn when the chain starts: replicas that share one Redis stream or one
// file interleave their records, but each chain is a single line that a
// verifier follows by its id. A chain starts when the process starts, and
// again after any failed write (see Log), so restarts and outages show up
// as new chains, not as holes. A new chain does not point at the previous
// one; the writer logs each chain's start and end (with its last hash) to
// its operational log, which is where an auditor finds the chains a
// gateway wrote.
//
// Record n of a chain carries seq n (from 1), prev = the hash of record n-1
// (64 zeros for seq 1), and hash = the sha256 of its own canonical bytes.
//
// # Canonical bytes
//
// A stored record (a file line, or the stream entry's "record" field) is a
// compact JSON object whose members are, in this order: chain, seq, prev,
// time, kind, request_id, forward_id, caller, token, tokens, destination,
// resolved_ip, tls_version, peer_cert_sha256, allowlist_version,
// allowlist_sha256, signers, decision, reason, outcome, upstream_status,
// duration_ms, hash. Every member is always present (empty strings and
// zeros included) but tokens, an array of token ids that only a forward
// of several named cards carries (its token is then empty), and signers,
// an array of principals that only an allowlist record carries. Numbers are integers below 2^53; time is RFC 3339 in UTC
// with up to nine fractional digits and no trailing zeros
// ("2025-06-01T12:00:00.1234Z"); strings hold only printable ASCII other
// than `"`, `\`, `<`, `>` and `&`, so no escaping is ever needed.
//
// The canonical bytes of a record are the stored object without its last
// member, hash: exactly the bytes before `,"hash":"`, followed by `}`, with
// no newline. hash is the lowercase hex sha256 of those bytes. Because the
// stored form has no spaces and no escapes, `jq -c` reproduces it byte for
// byte, so an auditor can recompute one record's hash with
//
//	printf '%s\n' "$line" | jq -cj 'del(.hash)' | sha256sum
//
// and compare it with `printf '%s\n' "$line" | jq -r .hash`. The verifier
// additionally requires the stored bytes to be exactly the canonical
// encoding plus the hash member, so editing even the spacing of a line is
// detected.
//
// The whole check with stock tools (testdata/verify-with-jq.sh, which the
// tests run against a real log):
//
//	#!/bin/sh
//	# Verify a cardgate audit log (JSON lines) with jq and sha256sum only.
//	# Usage: verify-with-jq.sh FILE. Prints every problem; exits 1 if any.
//	set -eu
//	log=$1
//	zero=0000000000000000000000000000000000000000000000000000000000000000
//	bad=0
//	n=0
//	# 1. Every record's hash is the sha256 of the record without "hash",
//	#    compact, in its stored field order, with no trailing newline.
//	while IFS= read -r line; do
//	  n=$((n + 1))
//	  want=$(printf '%s\n' "$line" | jq -r .hash)
//	  got=$(printf '%s\n' "$line" | jq -cj 'del(.hash)' | sha256sum | cut -d' ' -f1)
//	  if [ "$want" != "$got" ]; then
//	    echo "line $n: hash does not match contents"
//	    bad=1
//	  fi
//	done < "$log"
//	# 2. Per chain, seq counts 1, 2, 3... and prev is the previous hash.
//	jq -r '[.chain, .seq, .prev, .hash] | @tsv' "$log" |
//	  awk -F'\t' -v zero="$zero" '
//	    { ok = ($2 == 1) ? ($3 == zero && !($1 in last)) : (seq[$1] == $2 - 1 && last[$1] == $3)
//	      if (!ok) { print "line " NR ": chain " $1 " seq " $2 " does not follow its chain"; bad = 1 }
//	      seq[$1] = $2; last[$1] = $4 }
//	    END { for (c in seq) print "chain " c ": last seq " seq[c] ", last hash " last[c]; exit bad }' || bad=1
//	exit $bad
//
// For a Redis stream, export the records first (with --raw, XRANGE prints
// id, field name and record on three lines per entry):
//
//	redis-cli --raw XRANGE cardgate:audit - + | awk 'NR % 3 == 0' > audit.log
//
// or use `cardgate audit verify --redis ADDR --stream KEY`.
//
// # Two sinks: the file and its mirror
//
// With a file and a Redis stream both configured, the file is the primary
// and the stream a mirror that the Log keeps equal to it (Options.Mirror).
// The choice, made to fail closed: every intent reaches both sinks or the
// forward is refused; every other record reaches the file, and then the
// stream, even if late.
//
//   - A group is written to the file first (fsync), then to the stream, so
//     the stream never holds a record the file lacks.
//   - When a stream write fails, the file's chain goes on and the stream
//     is behind. An intent in that group is refused (its forward is not
//     sent; the record stays in the file). Until the stream holds every
//     record the file holds, every new intent is refused without being
//     written, so no card leaves while the sinks disagree.
//   - Results, denials and canary records record what already happened:
//     they are accepted once the file holds them, and Log.Reconcile copies
//     each record the stream lacks from the file, by chain and seq, after
//     reading the stream's head for the chain. A record that does not
//     verify in the file (hash, canonical form, link) is never copied. If
//     the stream lost records of a chain being reconciled (a Redis
//     restarted without its data), the chain is copied again from its
//     start. Chains that were complete in the stream before it lost them
//     (earlier runs, other replicas) are not restored: run the stream's
//     Redis with appendonly yes.
//   - Reconcile is called periodically (cmd/cardgate: every 500ms while the
//     stream lags); readiness fails (Log.MirrorErr) until the two agree.
//   - A lag survives a restart: a marker file next to the audit file
//     (FILE.mirror-lag.CHAIN) keeps it until it is reconciled, and a new
//     Log refuses intents until then.
//
// Either way the two sinks end with the same records, in the same order
// per chain.
//
// # What verification proves
//
// Verify detects, per chain, a record modified, deleted, inserted or
// reordered, and says where (line or stream id, chain, seq). A hash chain
// has no secret, so it cannot show that records were removed from the end
// of a chain, that a whole chain was removed, or that a chain was rewritten
// from some record onward with every later hash recomputed. Those need an
// anchor: a chain's last hash (Log.Head, ChainReport.LastHash) kept where
// the log's writer cannot change it, and passed to Verify as an Anchor
// (`--expect HASH`, `--expect-last HASH`). Writing to two sinks on
// different machines also helps: both must be rewritten consistently.
//
// # Merkle tree and checkpoints
//
// The file is also a Merkle tree (RFC 6962 hashing, built with
// github.com/transparency-dev/merkle): line i is leaf i-1, hashed without
// its newline (Tree, OpenFileSinkTree). An append adds one leaf hash and,
// on average, one node hash to a compact range held in memory; no other
// write, and no other fsync. Package audit/checkpoint signs the tree's
// size and root as a C2SP checkpoint at an interval, which anchors the
// whole file with no --expect: lines dropped, inserted, reordered,
// rewritten or cut from the end change the signed root. Proofs are made
// from the file on demand (ProveLines, ProveConsistency: two passes, memory
// independent of the file's size) and checked by cmd/cardgate-verify with
// golang.org/x/mod/sumdb/tlog, another implementation. Allowlist loads are
// leaves too (KindAllowlist), so the signed tree also says which allowlist
// versions ran and when. A file shared by several writing processes has no
// tree: each process would count lines it did not write (the Tree stops).
package audit

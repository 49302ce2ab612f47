#!/bin/sh
# Verify a cardgate audit log (JSON lines) with jq and sha256sum only.
# Usage: verify-with-jq.sh FILE. Prints every problem; exits 1 if any.
set -eu
log=$1
zero=0000000000000000000000000000000000000000000000000000000000000000
bad=0
n=0
# 1. Every record's hash is the sha256 of the record without "hash",
#    compact, in its stored field order, with no trailing newline.
while IFS= read -r line; do
  n=$((n + 1))
  want=$(printf '%s\n' "$line" | jq -r .hash)
  got=$(printf '%s\n' "$line" | jq -cj 'del(.hash)' | sha256sum | cut -d' ' -f1)
  if [ "$want" != "$got" ]; then
    echo "line $n: hash does not match contents"
    bad=1
  fi
done < "$log"
# 2. Per chain, seq counts 1, 2, 3... and prev is the previous hash.
jq -r '[.chain, .seq, .prev, .hash] | @tsv' "$log" |
  awk -F'\t' -v zero="$zero" '
    { ok = ($2 == 1) ? ($3 == zero && !($1 in last)) : (seq[$1] == $2 - 1 && last[$1] == $3)
      if (!ok) { print "line " NR ": chain " $1 " seq " $2 " does not follow its chain"; bad = 1 }
      seq[$1] = $2; last[$1] = $4 }
    END { for (c in seq) print "chain " c ": last seq " seq[c] ", last hash " last[c]; exit bad }' || bad=1
exit $bad

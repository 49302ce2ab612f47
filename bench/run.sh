#!/usr/bin/env bash
# Side-by-side benchmark: the same wrk load, in one run on one machine,
# against (1) the upstream directly, (2) an nginx reverse-proxy hop,
# (3) a plain Go httputil.ReverseProxy hop, (4) cardgate /v1/forward with
# Redis and the local keyring, (5) cardgate /v1/forward with Redis and
# SoftHSM2 (keys.backend: hsm, PKCS#11), (6) naive, the forwarder a team
# would write itself (bench/naive: Redis GET, AES-GCM, a static allowlist,
# an fsynced intent and result line per forward, regexp+Luhn masking), and
# (7) naive-nofsync, the same without its fsyncs. Every hop accepts plain
# HTTP on loopback from wrk and speaks TLS (verified) to the upstream over
# pooled connections.
#
# usage: bench/run.sh [-d SECONDS] [-c "1 32 256"] [-w WARMUP_SECONDS] [-t "direct nginx goproxy cardgate cardgate-hsm naive naive-nofsync"] [-r BYTES]
# -r BYTES pads the upstream's JSON answer to about BYTES (default 0: its
# ~70-byte answer), with text, ids, timestamps and amounts full of digit runs
# that are not card numbers, to show how the ratios change with the size of
# the response cardgate must scan.
# CARDGATE_BIN runs that binary instead of building one (for profiling);
# cardgate-hsm needs it built with cgo (the PKCS#11 module is a C library).
# CARDGATE_BIN_B adds the target cardgate-b, a second binary run exactly as
# cardgate is (its own Redis database and audit file), for an A/B
# comparison of two builds interleaved in one run.
# Needs wrk, nginx, redis-server, ssh-keygen, softhsm2 (installed from
# Debian's packages when missing and running as root).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10
conns="1 32 256"
warmup=2
targets="direct nginx goproxy cardgate cardgate-hsm naive naive-nofsync"
resp_bytes=0
while getopts "d:c:w:t:r:" opt; do
  case $opt in
    d) duration=$OPTARG ;;
    c) conns=$OPTARG ;;
    w) warmup=$OPTARG ;;
    t) targets=$OPTARG ;;
    r) resp_bytes=$OPTARG ;;
    *) echo "usage: $0 [-d seconds] [-c \"1 32 256\"] [-w warmup] [-t \"targets\"] [-r bytes]"; exit 2 ;;
  esac
done
case $resp_bytes in
  '' | *[!0-9]*) echo "bench: -r takes a byte count, not $resp_bytes" >&2; exit 2 ;;
esac
# A misspelt target would otherwise be skipped without a word.
for t in $targets; do
  case $t in
    direct | nginx | goproxy | cardgate | cardgate-hsm | naive | naive-nofsync) ;;
    cardgate-b) [ -n "${CARDGATE_BIN_B:-}" ] || { echo "bench: cardgate-b needs CARDGATE_BIN_B" >&2; exit 2; } ;;
    *) echo "bench: unknown target $t (direct nginx goproxy cardgate cardgate-hsm naive naive-nofsync)" >&2; exit 2 ;;
  esac
done

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v redis-server >/dev/null || need+=(redis-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v softhsm2-util >/dev/null || need+=(softhsm2)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
# SoftHSM2's PKCS#11 module, looked up where vaultclient/pkcs11_test.go
# looks (Debian/Ubuntu first).
softhsm_lib=""
for l in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
  /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so /usr/lib64/pkcs11/libsofthsm2.so \
  /usr/local/lib/softhsm/libsofthsm2.so /opt/homebrew/lib/softhsm/libsofthsm2.so; do
  if [ -e "$l" ]; then softhsm_lib=$l; break; fi
done

work=$(mktemp -d /tmp/cardgate-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { # url
  for _ in $(seq 1 200); do
    if curl -fsS -o /dev/null --cacert "$work/ca.pem" "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "bench: $1 never answered" >&2; return 1
}

echo "building…" >&2
# -tags grpcnotrace as the Dockerfile builds it (a smaller resident binary).
if [ -n "${CARDGATE_BIN:-}" ]; then cp "$CARDGATE_BIN" "$work/cardgate"; else go build -tags grpcnotrace -o "$work/cardgate" ./cmd/cardgate; fi
go build -o "$work/upstream" ./bench/upstream
go build -o "$work/goproxy" ./bench/goproxy
go build -o "$work/naive" ./bench/naive

# (1) the upstream
"$work/upstream" -resp-bytes "$resp_bytes" -ca-out "$work/ca.pem" -addr-out "$work/upstream.addr" 2>"$work/upstream.log" &
up_pid=$!
pids+=("$up_pid")
for _ in $(seq 1 100); do [ -s "$work/upstream.addr" ] && break; sleep 0.05; done
up_addr=$(cat "$work/upstream.addr"); up_port=${up_addr##*:}

# Redis for cardgate
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
redis_pid=$!
pids+=("$redis_pid")

# (2) nginx
nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  upstream up { server 127.0.0.1:$up_port; keepalive 512; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass https://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_ssl_verify on;
      proxy_ssl_name upstream.bench;
      proxy_ssl_server_name on;
      proxy_ssl_trusted_certificate $work/ca.pem;
      proxy_ssl_session_reuse on;
    }
  }
}
NGINX
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
pids+=("$nginx_pid")

# (3) Go ReverseProxy
goproxy_port=$(free_port)
"$work/goproxy" -addr "127.0.0.1:$goproxy_port" -upstream "https://$up_addr" -ca "$work/ca.pem" 2>"$work/goproxy.log" &
goproxy_pid=$!
pids+=("$goproxy_pid")

# (4) cardgate: dev mode (plain HTTP loopback listener, dev caller header),
# Redis store, local keyring, a freshly signed allowlist.
cg_port=$(free_port)
ssh-keygen -q -t ed25519 -N "" -C bench -f "$work/auditor"
echo "bench@cardgate namespaces=\"cardgate-allowlist@v1\" $(cat "$work/auditor.pub")" >"$work/allowed_signers"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
expires=$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)
cat >"$work/allowlist.yaml" <<YAML
format: cardgate.allowlist/v1
namespace: cardgate-allowlist@v1
environment: bench
version: 1
issued_at: $now
expires: $expires
prev_sha256: ""
destinations:
  - id: bench-upstream
    purpose: benchmark upstream on loopback
    owner: bench@cardgate
    url: https://127.0.0.1:$up_port/v1/charges
    methods: [POST]
    callers: ["dev:bench"]
    fields: [number, exp_month, exp_year]
    unsafe_allow_ranges: [127.0.0.1/32]
YAML
mkdir -p "$work/sigs"
ssh-keygen -q -Y sign -f "$work/auditor" -n cardgate-allowlist@v1 "$work/allowlist.yaml"
mv "$work/allowlist.yaml.sig" "$work/sigs/bench.sig"
# cardgate_config NAME PORT REDIS_DB KEYS_YAML: one instance's config. Both
# instances share the allowlist, upstream and Redis server; each has its own
# Redis database (so tokens, allowlist state and idempotency keys don't mix)
# and its own audit file.
cardgate_config() {
  cat >"$work/$1.yaml" <<YAML
mode: dev
environment: bench
listen:
  addr: 127.0.0.1:$2
allowlist:
  path: $work/allowlist.yaml
  signatures_dir: $work/sigs
  allowed_signers: $work/allowed_signers
  threshold: 1
store:
  backend: redis
  redis:
    addrs: [127.0.0.1:$redis_port]
    db: $3
keys:
$4
egress:
  ca_file: $work/ca.pem
# As in production: every forward writes an intent and a result record,
# fsynced, before and after the card is sent.
audit:
  file: $work/$1-audit.jsonl
log:
  level: warn
YAML
}
"$work/cardgate" keys init "$work/keyring.json" >/dev/null
cardgate_config cardgate "$cg_port" 0 "  backend: local
  local:
    path: $work/keyring.json"
"$work/cardgate" serve -config "$work/cardgate.yaml" 2>"$work/cardgate.log" &
cg_pid=$!
pids+=("$cg_pid")
cgb_pid=""
if [ -n "${CARDGATE_BIN_B:-}" ]; then
  cp "$CARDGATE_BIN_B" "$work/cardgate-b"
  cgb_port=$(free_port)
  cardgate_config cardgate-b "$cgb_port" 3 "  backend: local
  local:
    path: $work/keyring.json"
  "$work/cardgate-b" serve -config "$work/cardgate-b.yaml" 2>"$work/cardgate-b.log" &
  cgb_pid=$!
  pids+=("$cgb_pid")
fi

# (5) cardgate-hsm: the same, with its keys in a SoftHSM2 token initialised
# here. SoftHSM2 reads SOFTHSM2_CONF when the module loads, so the token
# lives in $work and nothing touches the machine's own tokens. Only started
# when asked for, so the other targets run where cgo or SoftHSM2 is missing.
hsm_pid=""
case " $targets " in *" cardgate-hsm "*)
  [ -n "$softhsm_lib" ] || { echo "bench: SoftHSM2's libsofthsm2.so not found" >&2; exit 1; }
  hsm_port=$(free_port)
  mkdir -p "$work/softhsm/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/softhsm/tokens" >"$work/softhsm/softhsm2.conf"
  export SOFTHSM2_CONF=$work/softhsm/softhsm2.conf CARDGATE_HSM_PIN=1234
  softhsm2-util --init-token --free --label cardgate-bench --so-pin 87654321 --pin "$CARDGATE_HSM_PIN" >/dev/null
  # The PIN comes from CARDGATE_HSM_PIN, as the config's validation asks;
  # max_sessions and timeout stay at their defaults (16, 2s).
  cardgate_config cardgate-hsm "$hsm_port" 1 "  backend: hsm
  hsm:
    library: $softhsm_lib
    token_label: cardgate-bench"
  # The hsm backend does not create keys on start: keys init -config
  # generates card key v1 and the fingerprint key inside the token.
  "$work/cardgate" keys init -config "$work/cardgate-hsm.yaml" >/dev/null
  "$work/cardgate" serve -config "$work/cardgate-hsm.yaml" 2>"$work/cardgate-hsm.log" &
  hsm_pid=$!
  pids+=("$hsm_pid")
  ;;
esac

# (6, 7) the naive peers: their own Redis database (2) and key, the test
# card seeded under one token, an allowlist of the upstream's host:port,
# and each its own audit file.
naive_port=$(free_port)
nofsync_port=$(free_port)
openssl rand -hex 32 >"$work/naive.key"
"$work/naive" seed -redis "127.0.0.1:$redis_port" -db 2 -key "$work/naive.key" -token tok_bench -number 4242424242424242
naive_flags=(-redis "127.0.0.1:$redis_port" -db 2 -key "$work/naive.key" -ca "$work/ca.pem" -allow "127.0.0.1:$up_port")
"$work/naive" "${naive_flags[@]}" -addr "127.0.0.1:$naive_port" -audit "$work/naive-audit.jsonl" 2>"$work/naive.log" &
naive_pid=$!
pids+=("$naive_pid")
"$work/naive" "${naive_flags[@]}" -addr "127.0.0.1:$nofsync_port" -audit "$work/naive-nofsync-audit.jsonl" -fsync=false 2>"$work/naive-nofsync.log" &
nofsync_pid=$!
pids+=("$nofsync_pid")

wait_http "https://$up_addr/stats"
wait_http "http://127.0.0.1:$nginx_port/stats"
wait_http "http://127.0.0.1:$goproxy_port/stats"
wait_http "http://127.0.0.1:$cg_port/readyz"
[ -z "$hsm_pid" ] || wait_http "http://127.0.0.1:$hsm_port/readyz"
[ -z "$cgb_pid" ] || wait_http "http://127.0.0.1:$cgb_port/readyz"
wait_http "http://127.0.0.1:$naive_port/healthz"
wait_http "http://127.0.0.1:$nofsync_port/healthz"

# The same card body for every target. cardgate gets a token and a
# template that renders to these bytes.
card_body='{"amount":1000,"currency":"usd","number":"4242424242424242","exp":"12/2030"}'
printf '%s' "$card_body" >"$work/direct.json"
# tokenize PORT NAME: store the card through that instance and write
# $work/NAME-forward.json, a forward of its token to the upstream.
tokenize() {
  local token
  token=$(curl -fsS -H 'Content-Type: application/json' -H 'Cardgate-Dev-Caller: bench' \
    -d '{"number":"4242424242424242","exp_month":12,"exp_year":2030}' "http://127.0.0.1:$1/v1/cards" |
    sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
  [ -n "$token" ] || { echo "bench: tokenize through $2 failed" >&2; cat "$work/$2.log" >&2; exit 1; }
  cat >"$work/$2-forward.json" <<JSON
{"destination":"bench-upstream","url":"https://127.0.0.1:$up_port/v1/charges","method":"POST","card":"$token","headers":{"Content-Type":["application/json"]},"body":"{\"amount\":1000,\"currency\":\"usd\",\"number\":\"{{card.number}}\",\"exp\":\"{{card.exp_month}}/{{card.exp_year}}\"}"}
JSON
}
tokenize "$cg_port" cardgate
cat >"$work/naive-forward.json" <<JSON
{"token":"tok_bench","url":"https://127.0.0.1:$up_port/v1/charges","body":"{\"amount\":1000,\"currency\":\"usd\",\"number\":\"{{card.number}}\",\"exp\":\"{{card.exp_month}}/{{card.exp_year}}\"}"}
JSON
[ -z "$hsm_pid" ] || tokenize "$hsm_port" cardgate-hsm
[ -z "$cgb_pid" ] || tokenize "$cgb_port" cardgate-b

handshakes() { curl -fsS --cacert "$work/ca.pem" "https://$up_addr/stats" | sed -n 's/.*"handshakes":\([0-9]*\).*/\1/p'; }
# CPU time (utime+stime, in clock ticks) of the given processes and their
# child processes (nginx's workers are children of its master).
clk_tck=$(getconf CLK_TCK)
ticks() {
  local total=0 p
  for p in "$@" $(for q in "$@"; do pgrep -P "$q"; done); do
    [ -r "/proc/$p/stat" ] && total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}
# The processes whose CPU a target's forwards cost (Redis counts for the
# cardgates: it is part of what a forward needs); direct has none.
hop_pids() {
  case $1 in
    nginx) echo "$nginx_pid" ;;
    goproxy) echo "$goproxy_pid" ;;
    cardgate) echo "$cg_pid $redis_pid" ;;
    cardgate-hsm) echo "$hsm_pid $redis_pid" ;;
    cardgate-b) echo "$cgb_pid $redis_pid" ;;
    naive) echo "$naive_pid $redis_pid" ;;
    naive-nofsync) echo "$nofsync_pid $redis_pid" ;;
  esac
}
# Machine-wide CPU from /proc/stat, in clock ticks: "busy iowait total".
# Busy is everything but idle and iowait: wrk, every hop, the upstream and
# whatever else runs on the machine. High busy per request and little idle
# means the run was CPU-bound; much iowait, or idle left over while the
# rate is low, means it waited on the disk.
machine() { awk '/^cpu / {t=0; for (i=2; i<=NF; i++) t+=$i; print t-$5-$6, $6, t; exit}' /proc/stat; }
run_wrk() { # name url bodyfile headers conns
  local threads=2; [ "$5" -lt 2 ] && threads=1
  if [ "$warmup" -gt 0 ]; then
    BENCH_BODY_FILE=$3 BENCH_HEADERS=$4 wrk -t"$threads" -c"$5" -d"${warmup}s" -s bench/post.lua "$2" >/dev/null
  fi
  local before; before=$(handshakes)
  local hop; hop=$(hop_pids "$1")
  local hop0 up0
  # shellcheck disable=SC2086 # hop is a list of pids
  hop0=$(ticks $hop)
  up0=$(ticks "$up_pid")
  local m0; read -r -a m0 <<<"$(machine)"
  local line; line=$(BENCH_BODY_FILE=$3 BENCH_HEADERS=$4 wrk -t"$threads" -c"$5" -d"${duration}s" --timeout 10s -s bench/post.lua "$2" |
    sed -n "s/^RESULT /$1 $5 /p")
  local m1; read -r -a m1 <<<"$(machine)"
  # shellcheck disable=SC2086
  echo "$line handshakes=$(( $(handshakes) - before )) hopticks=$(( $(ticks $hop) - hop0 )) upticks=$(( $(ticks "$up_pid") - up0 ))" \
    "mbusy=$((m1[0] - m0[0])) miowait=$((m1[1] - m0[1])) mtotal=$((m1[2] - m0[2]))"
}

results="$work/results.txt"
: >"$results"
for c in $conns; do
  echo "load: $c connections…" >&2
  for t in $targets; do
    case $t in
      direct) run_wrk direct "https://$up_addr/v1/charges" "$work/direct.json" "Content-Type: application/json" "$c" >>"$results" ;;
      nginx) run_wrk nginx "http://127.0.0.1:$nginx_port/v1/charges" "$work/direct.json" "Content-Type: application/json" "$c" >>"$results" ;;
      goproxy) run_wrk goproxy "http://127.0.0.1:$goproxy_port/v1/charges" "$work/direct.json" "Content-Type: application/json" "$c" >>"$results" ;;
      cardgate) run_wrk cardgate "http://127.0.0.1:$cg_port/v1/forward" "$work/cardgate-forward.json" "Content-Type: application/json;Cardgate-Dev-Caller: bench" "$c" >>"$results" ;;
      cardgate-hsm) run_wrk cardgate-hsm "http://127.0.0.1:$hsm_port/v1/forward" "$work/cardgate-hsm-forward.json" "Content-Type: application/json;Cardgate-Dev-Caller: bench" "$c" >>"$results" ;;
      cardgate-b) run_wrk cardgate-b "http://127.0.0.1:$cgb_port/v1/forward" "$work/cardgate-b-forward.json" "Content-Type: application/json;Cardgate-Dev-Caller: bench" "$c" >>"$results" ;;
      naive) run_wrk naive "http://127.0.0.1:$naive_port/forward" "$work/naive-forward.json" "Content-Type: application/json" "$c" >>"$results" ;;
      naive-nofsync) run_wrk naive-nofsync "http://127.0.0.1:$nofsync_port/forward" "$work/naive-forward.json" "Content-Type: application/json" "$c" >>"$results" ;;
    esac
  done
done
# Peak RSS (VmHWM) of each cardgate process; SoftHSM2 runs inside the
# cardgate-hsm process, so its memory is counted there.
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$cg_pid/status")
naive_rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$naive_pid/status")
nofsync_rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$nofsync_pid/status")
cgb_rss_kb=""
[ -z "$cgb_pid" ] || cgb_rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$cgb_pid/status")
hsm_rss_kb=""
[ -z "$hsm_pid" ] || hsm_rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$hsm_pid/status")
stats=$(curl -fsS --cacert "$work/ca.pem" "https://$up_addr/stats" || echo '{}')

echo
# The size the upstream actually answers with (-r 0 is its small answer).
resp_size=$(curl -fsS --cacert "$work/ca.pem" -d '' -o "$work/response.json" "https://$up_addr/v1/charges" &&
  wc -c <"$work/response.json" | tr -d ' ') || resp_size=$resp_bytes
echo "cardgate bench: $(nproc) cores, ${duration}s per run after ${warmup}s warm-up, response body ~$resp_size bytes, wrk over loopback, $(date -u +%F)"
echo
awk -v rss="$rss_kb" -v cgb_rss="$cgb_rss_kb" -v hsm_rss="$hsm_rss_kb" -v naive_rss="$naive_rss_kb" -v nofsync_rss="$nofsync_rss_kb" -v conns="$conns" -v tck="$clk_tck" '
  { split($0, f, " "); name=f[1]; c=f[2];
    for (i=3; i<=NF; i++) { split($i, kv, "="); v[name, c, kv[1]] = kv[2] }
    rps[name, c] = v[name, c, "requests"] / v[name, c, "seconds"]; seen[c] = 1; names[name] = 1 }
  # A ratio or difference whose other side was not run (-t) prints as "-".
  function ratio(a, b, c) { return ((a, c) in rps && (b, c) in rps && rps[b, c] > 0) ? sprintf("%.2f", rps[a, c]/rps[b, c]) : "-" }
  # CPU microseconds per request of a run, from clock ticks.
  function perreq(t, c, k) { return (t == "direct" && k == "hopticks") || v[t, c, "requests"] == 0 ? "-" : sprintf("%.0f", v[t, c, k] * 1e6 / tck / v[t, c, "requests"]) }
  function added(a, c, q) { return ((a, c) in rps && ("direct", c) in rps) ? sprintf("%.2f", (v[a, c, q] - v["direct", c, q])/1000) : "-" }
  # Machine-wide CPU: busy microseconds per request, and the shares of the
  # CPU time of the run that were busy and waiting on I/O.
  function mper(t, c) { return v[t, c, "requests"] == 0 || v[t, c, "mtotal"] == "" ? "-" : sprintf("%.0f", v[t, c, "mbusy"] * 1e6 / tck / v[t, c, "requests"]) }
  function mpct(t, c, k) { return v[t, c, "mtotal"] > 0 ? sprintf("%.0f", 100 * v[t, c, k] / v[t, c, "mtotal"]) : "-" }
  END {
    printf "%-13s %5s %10s %9s %9s %9s %7s %7s %11s %11s %10s %11s %6s %8s\n", "target", "conns", "rps", "p50 ms", "p99 ms", "p99.9 ms", "non2xx", "sockerr", "handshakes", "hop cpu us", "up cpu us", "mach cpu us", "busy%", "iowait%"
    n = split("direct nginx goproxy cardgate cardgate-b cardgate-hsm naive naive-nofsync", order, " ")
    m = split(conns, cs, " ")
    for (j = 1; j <= m; j++) for (i = 1; i <= n; i++) { t = order[i]; c = cs[j]
      if (!((t, c) in rps)) continue
      printf "%-13s %5d %10.0f %9.2f %9.2f %9.2f %7d %7d %11d %11s %10s %11s %6s %8s\n", t, c, rps[t, c], v[t, c, "p50"]/1000, v[t, c, "p99"]/1000, v[t, c, "p999"]/1000, v[t, c, "non2xx"], v[t, c, "sockerr"], v[t, c, "handshakes"], perreq(t, c, "hopticks"), perreq(t, c, "upticks"), mper(t, c), mpct(t, c, "mbusy"), mpct(t, c, "miowait") }
    print ""
    printf "%-13s %5s %10s %12s %10s %15s %24s %24s\n", "target", "conns", "rps/nginx", "rps/goproxy", "rps/naive", "rps/naive-nofs", "added p50 ms (vs direct)", "added p99 ms (vs direct)"
    k = split("cardgate cardgate-b cardgate-hsm naive naive-nofsync", cg, " ")
    for (i = 1; i <= k; i++) for (j = 1; j <= m; j++) { t = cg[i]; c = cs[j]
      if (!((t, c) in rps)) continue
      printf "%-13s %5d %10s %12s %10s %15s %24s %24s\n", t, c, ratio(t, "nginx", c), ratio(t, "goproxy", c), t ~ /^naive/ ? "-" : ratio(t, "naive", c), t ~ /^naive/ ? "-" : ratio(t, "naive-nofsync", c), added(t, c, "p50"), added(t, c, "p99") }
    for (j = 1; j <= m; j++) if (("cardgate-b", cs[j]) in rps) printf "cardgate-b / cardgate at %d connections: %s\n", cs[j], ratio("cardgate-b", "cardgate", cs[j])
    print ""
    if (("cardgate", cs[1]) in rps) printf "cardgate peak RSS: %.1f MB\n", rss / 1024
    if (cgb_rss != "") printf "cardgate-b peak RSS: %.1f MB\n", cgb_rss / 1024
    if (hsm_rss != "") printf "cardgate-hsm peak RSS: %.1f MB\n", hsm_rss / 1024
    if (("naive", cs[1]) in rps) printf "naive peak RSS: %.1f MB\n", naive_rss / 1024
    if (("naive-nofsync", cs[1]) in rps) printf "naive-nofsync peak RSS: %.1f MB\n", nofsync_rss / 1024
  }' "$results"
echo "upstream TLS handshakes vs requests, whole run: $stats"
echo "(handshakes: new TLS connections the upstream saw during each measured run; wrk's own for direct)"
echo "(hop cpu us: CPU time per request of the hop's processes during the measured run, Redis included for the cardgates and the naive peers; up cpu us: the upstream's)"
echo "(mach cpu us: the whole machine's busy CPU time per request during the run, wrk, upstream and anything else running included; busy%, iowait%: shares of the run's CPU time)"

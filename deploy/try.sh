#!/usr/bin/env bash
# Tries the compose stack as the billing service would: tokenize the test
# card 4242 4242 4242 4242, forward it to the test processor, and show the
# masked answer. Run it with `docker compose run --rm try`.
set -euo pipefail
GATEWAY=${GATEWAY:-https://cardgate:8443}
CERTS=${CERTS:-/out/client}
call() { # path json
  curl -sS --fail-with-body --cacert "$CERTS/server-ca.pem" \
    --cert "$CERTS/client.crt" --key "$CERTS/client.key" \
    -H 'Content-Type: application/json' -H 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' \
    --data "$2" "$GATEWAY$1"
}
year=$(( $(date -u +%Y) + 2 ))
echo "== POST /v1/cards"
tok=$(call /v1/cards "{\"number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":$year,\"cvc\":\"123\",\"name\":\"Jane Doe\"}" | tee /dev/stderr | jq -r .token)
echo
echo "== POST /v1/forward (the processor echoes the number; the answer is masked)"
call /v1/forward "$(jq -nc --arg tok "$tok" '{destination:"demo-charges", url:"https://processor:8443/v1/charges", method:"POST", card:$tok,
  headers:{"Content-Type":["application/json"]},
  body:"{\"number\":\"{{card.number}}\",\"cvc\":\"{{card.cvc}}\",\"exp\":\"{{card.exp_month}}/{{card.exp_year}}\"}"}')" | jq .
echo "== the trace is 0af7651916cd43dd8448eb211c80319c: docker compose logs otel-collector | grep -A3 0af76519"

#!/bin/sh
# The compose stack's Vault setup job, run in the hashicorp/vault image as
# the gateway's uid after the dev server is healthy. Idempotent: every
# `docker compose up` may run it again.
#
# It enables Transit and creates the two keys the gateway expects, with
# the shape `cardgate keys init` creates (vaultclient.Transit.InitKeys):
#   cardgate-card         aes256-gcm96, derived (context = token || field)
#   cardgate-fingerprint  aes256-gcm96, used with transit/hmac
# neither exportable nor backed up in plaintext. It writes the gateway's
# policy (deploy/vault/cardgate-gateway.hcl), enables AppRole with a role
# bound to that policy, and hands the gateway, through the gateway-vault
# volume, a fresh secret id and Vault's CA. The role id is fixed (it is
# an identifier; the secret id is the credential). The secret id does not
# expire, because the gateway logs in again with it whenever its token
# ends; in production deliver a response-wrapped, short-lived one
# (keys.vault.auth.secret_id_wrapped) instead.
set -eu

: "${VAULT_ADDR:?}" "${VAULT_CACERT:?}" "${VAULT_TOKEN:?}"
OUT=${OUT:-/out/vault}
ROLE=cardgate-gateway
ROLE_ID=${ROLE_ID:-cardgate-compose-gateway}
umask 077

vault secrets list -format=json | grep -q '"transit/"' || vault secrets enable transit
for key in cardgate-card:true cardgate-fingerprint:false; do
  name=${key%%:*}
  derived=${key#*:}
  if ! vault read -format=json "transit/keys/$name" >/dev/null 2>&1; then
    vault write -f "transit/keys/$name" type=aes256-gcm96 derived="$derived" \
      exportable=false allow_plaintext_backup=false >/dev/null
  fi
  vault read -format=json "transit/keys/$name" | grep -q "\"derived\": $derived" || {
    echo "vault-init: transit/keys/$name exists with derived != $derived" >&2
    exit 1
  }
done

vault policy write "$ROLE" /deploy/cardgate-gateway.hcl >/dev/null
vault auth list -format=json | grep -q '"approle/"' || vault auth enable approle
vault write "auth/approle/role/$ROLE" token_policies="$ROLE" \
  token_ttl=1h token_max_ttl=4h secret_id_num_uses=0 secret_id_ttl=0 >/dev/null
vault write "auth/approle/role/$ROLE/role-id" role_id="$ROLE_ID" >/dev/null
vault write -f -field=secret_id "auth/approle/role/$ROLE/secret-id" >"$OUT/secret-id.tmp"
mv "$OUT/secret-id.tmp" "$OUT/secret-id"
cp "$VAULT_CACERT" "$OUT/vault-ca.pem.tmp"
mv "$OUT/vault-ca.pem.tmp" "$OUT/vault-ca.pem"
echo "vault-init: transit keys cardgate-card and cardgate-fingerprint, policy $ROLE, AppRole $ROLE ready"

# The gateway's Vault policy: seal and open card records under the derived
# card key, and fingerprint under the HMAC key. Nothing else: it cannot
# read, rotate, export or configure a key (operators do that with their
# own token: cardgate keys rotate|rewrap|retire). auth/token/lookup-self,
# which the readiness check calls, comes with Vault's default policy.
path "transit/encrypt/cardgate-card" {
  capabilities = ["update"]
}

path "transit/decrypt/cardgate-card" {
  capabilities = ["update"]
}

path "transit/hmac/cardgate-fingerprint/*" {
  capabilities = ["update"]
}

package vaultclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// StoreLegacyCardForTest stores in as Tokenize did before names were
// checked for card-like numbers: every other field is validated, the name
// is stored as given. It builds the record the way tokenize does (without
// a CVC), so that tests outside the package can hold a record of the kind
// a store may still contain.
func StoreLegacyCardForTest(ctx context.Context, v *Vault, in CardInput) (string, error) {
	name := in.Name
	in.Name = ""
	c, err := validate(in, v.now())
	if err != nil {
		return "", err
	}
	defer c.wipe()
	c.name, c.cvc = name, nil
	token := newToken()
	mac, fpKey, err := v.fingerprint(ctx, c.number)
	if err != nil {
		return "", err
	}
	payload := encodeCardPayload(c)
	defer clear(payload)
	sealed, err := v.encrypt(ctx, []EncryptItem{{Binding: Binding{Token: token, Field: FieldCard}, Plaintext: payload}})
	if err != nil {
		return "", err
	}
	if len(sealed) != 1 {
		return "", fmt.Errorf("sealed %d blobs, want 1", len(sealed))
	}
	rec, err := json.Marshal(cardRecord{
		Format:         recordFormat,
		Key:            sealed[0].Key,
		Card:           sealed[0].Blob,
		Last4:          string(c.number[len(c.number)-4:]),
		Brand:          c.brand,
		Fingerprint:    base64.RawURLEncoding.EncodeToString(mac),
		FingerprintKey: fpKey,
		CreatedAt:      v.now().Unix(),
	})
	if err != nil {
		return "", err
	}
	return token, v.put(ctx, token, Entry{Record: rec})
}

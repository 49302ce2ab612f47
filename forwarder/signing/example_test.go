package signing_test

import (
	"bytes"
	"fmt"
	"net/http"
	"time"

	"github.com/cardgate/cardgate/forwarder/signing"
)

// A Cybersource-style entry: the signed allowlist names the scheme and the
// credential; the gateway holds the secret and signs the rendered request.
func ExampleSigner_Sign() {
	spec := signing.Spec{
		Scheme:         signing.SchemeCavage,
		Credential:     "cybs-shared-secret",
		SecretEncoding: "base64",
		Cavage: &signing.CavageSpec{
			KeyID:     "08c94330-f618-42a3-b09d-e1e43be5efda",
			Algorithm: "HmacSHA256",
			Headers:   []string{"host", "date", "request-target", "digest", "v-c-merchant-id"},
		},
	}
	if err := spec.Validate([]string{http.MethodPost}); err != nil {
		fmt.Println(err)
		return
	}
	// In the gateway the secret comes from the named credential.
	s, err := signing.New(spec, signing.SecretKey([]byte("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")))
	if err != nil {
		fmt.Println(err)
		return
	}
	body := []byte(`{"paymentInformation":{"card":{"number":"4111111111111111"}}}`)
	req, _ := http.NewRequest(http.MethodPost, "https://apitest.cybersource.com/pts/v2/payments", bytes.NewReader(body))
	req.Header.Set("v-c-merchant-id", "testrest")
	if err := s.Sign(req, body, time.Unix(1618884473, 0)); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("Date:", req.Header.Get("Date"))
	fmt.Println("Digest:", req.Header.Get("Digest"))
	fmt.Println("Signature:", req.Header.Get("Signature"))
	// Output:
	// Date: Tue, 20 Apr 2021 02:07:53 GMT
	// Digest: SHA-256=jvbj2BzrjfUyX932R0X3BK2jj9BlWhcOfo62GRGF53g=
	// Signature: keyid="08c94330-f618-42a3-b09d-e1e43be5efda", algorithm="HmacSHA256", headers="host date request-target digest v-c-merchant-id", signature="6v9qDPVkeKLD1Cn3c1wBzCxyPFK+lC/WWuteBnf/T2M="
}

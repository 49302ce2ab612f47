package forwarder

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/cardgate/cardgate/vaultclient"
)

// testIdempotencyKeys is a data-key wrapper over a new development
// keyring: the key backend the idempotency store seals answers with.
func testIdempotencyKeys(t *testing.T) *vaultclient.DataKeys {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyring.json")
	if err := vaultclient.CreateLocalKeyring(path); err != nil {
		t.Fatal(err)
	}
	k, err := vaultclient.OpenLocalKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	dk, err := vaultclient.NewDataKeys(k, "idempotency-answers", 0)
	if err != nil {
		t.Fatal(err)
	}
	return dk
}

// TestIdempotencyAnswerSealedInRedis: a processor answers with the card,
// the CVC and its own words, plain and encoded. After the forward and its
// replay, no Redis value (every key read by its type, and the RDB file a
// backup holds) contains the card in any encoding the masker knows, the
// CVC, or the processor's words; the replay is the answer the caller got.
func TestIdempotencyAnswerSealedInRedis(t *testing.T) {
	const words = "processor-says-zq7-hello"
	body := fmt.Sprintf(`{"number":%q,"cvc":%q,"note":%q,"hex":%q,"b64":%q}`, testPAN, testCVC, words,
		hex.EncodeToString([]byte(testPAN)), base64.StdEncoding.EncodeToString([]byte(testPAN)))
	srv, envs := idemEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", base64.StdEncoding.EncodeToString([]byte(body)))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	})
	a, b := envs[0], envs[1]
	ctx := context.Background()
	req := func(e *env) *Request {
		r := e.jsonRequest(`{"number":"{{card.number}}","cvc":"{{card.cvc}}"}`)
		r.IdempotencyKey = "order-77:attempt-1"
		return r
	}
	first, err := a.f.Forward(ctx, req(a))
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	again, err := b.f.Forward(ctx, req(b))
	if err != nil || !again.Replayed {
		t.Fatalf("replay = %+v, %v; want a replayed answer", again, err)
	}
	j1, _ := json.Marshal(first)
	again.Replayed = false
	j2, _ := json.Marshal(again)
	if !bytes.Equal(j1, j2) {
		t.Errorf("replayed answer differs:\n first %s\nreplay %s", j1, j2)
	}

	forbidden := map[string]string{
		"card": testPAN, "card hex": hex.EncodeToString([]byte(testPAN)), "card utf-16": string(utf16LE(testPAN)),
		"cvc": `"` + testCVC + `"`, "processor words": words, "processor words hex": hex.EncodeToString([]byte(words)),
		"masked body": `"note":"` + words, "caller-facing body": first.Body[:20],
	}
	for al := range 3 {
		for name, v := range map[string]string{"card": testPAN, "words": words} {
			enc := base64.StdEncoding.EncodeToString(append(make([]byte, al), v...))
			forbidden[fmt.Sprintf("%s base64 at %d", name, al)] = enc[(8*al+5)/6 : 8*(al+len(v))/6]
		}
	}
	dump, rdb := srv.Dump(), srv.RDB()
	if !bytes.Contains(dump, []byte("test:idem:")) {
		t.Fatal("Redis holds no idempotency record; the scan would prove nothing")
	}
	for where, data := range map[string][]byte{"values": dump, "rdb": rdb} {
		for name, f := range forbidden {
			if bytes.Contains(data, []byte(f)) {
				t.Errorf("Redis %s hold the %s in clear", where, name)
			}
		}
	}
}

package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// duplicateKeyReference is duplicateKey written over json.Decoder.Token:
// slower, but plainly right. The scanner must agree with it.
func duplicateKeyReference(body []byte) (string, bool) {
	type ref struct {
		object, wantKey bool
		key             string
		index           int
		keys            map[string]bool
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []*ref
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var top *ref
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok && top != nil && top.object && top.wantKey {
			if top.keys[foldKey([]byte(s))] {
				frames := make([]frame, len(stack))
				for i, f := range stack {
					frames[i] = frame{object: f.object, key: []byte(f.key), index: f.index}
				}
				return render(frames, []byte(s)), true
			}
			top.keys[foldKey([]byte(s))] = true
			top.key, top.wantKey = s, false
			continue
		}
		if top != nil && !top.object {
			if d, ok := tok.(json.Delim); !ok || d == '{' || d == '[' {
				top.index++
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, &ref{object: tok == json.Delim('{'), wantKey: tok == json.Delim('{'), index: -1, keys: map[string]bool{}})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].wantKey = true
		}
	}
}

// randomDoc writes a random JSON value, with keys drawn from a small set
// (in varied case and escaping) so that duplicates are common.
func randomDoc(rng *rand.Rand, b *strings.Builder, depth int) {
	keys := []string{"a", "A", `\u0061`, "b", "héllo", "HÉLLO", "k", "\u212a", `x\"y`, `x\\y`, "headers", "X-Api-Key", "x-api-key"}
	ws := func() {
		if rng.IntN(4) == 0 {
			b.WriteString([]string{" ", "\n", "\t", "\r\n  "}[rng.IntN(4)])
		}
	}
	ws()
	switch k := rng.IntN(8); {
	case depth > 3 || k < 3:
		b.WriteString([]string{`"s"`, `"a"`, `"{\"a\":1,\"a\":2}"`, `-1.5e3`, `0`, `true`, `false`, `null`, `"\\"`, `"]}"`}[rng.IntN(10)])
	case k < 5:
		b.WriteByte('[')
		for i := range rng.IntN(4) {
			if i > 0 {
				b.WriteByte(',')
			}
			randomDoc(rng, b, depth+1)
		}
		b.WriteByte(']')
	default:
		b.WriteByte('{')
		n := rng.IntN(5)
		if rng.IntN(10) == 0 {
			n = 20 + rng.IntN(10) // past fewKeys, into the map
		}
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			ws()
			if n > 10 {
				fmt.Fprintf(b, `"k%d"`, rng.IntN(40))
			} else {
				b.WriteString(`"` + keys[rng.IntN(len(keys))] + `"`)
			}
			ws()
			b.WriteByte(':')
			randomDoc(rng, b, depth+1)
		}
		ws()
		b.WriteByte('}')
	}
	ws()
}

// TestDuplicateKeyAgreesWithReference runs both on random documents.
func TestDuplicateKeyAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 6))
	dups := 0
	for range 20000 {
		var b strings.Builder
		randomDoc(rng, &b, 0)
		doc := []byte(b.String())
		if !json.Valid(doc) {
			t.Fatalf("the generator made invalid JSON: %s", doc)
		}
		gotPath, got := duplicateKey(doc)
		wantPath, want := duplicateKeyReference(doc)
		if got != want || gotPath != wantPath {
			t.Fatalf("duplicateKey(%s) = %q, %v; the reference says %q, %v", doc, gotPath, got, wantPath, want)
		}
		if got {
			dups++
		}
	}
	if dups < 1000 {
		t.Errorf("only %d of the random documents had a duplicate key; the comparison is too weak", dups)
	}
}

// FuzzDuplicateKey compares the scanner with the reference on any valid
// JSON the fuzzer finds (go test -fuzz FuzzDuplicateKey ./api/).
func FuzzDuplicateKey(f *testing.F) {
	for _, s := range []string{`{"a":1,"A":2}`, `{"x":[{"b":1},{"b":1,"b":2}]}`, `{"\u0061":1,"a":2}`, `[1,"a",{"k":{"k":1}}]`, `"str"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		doc := []byte(s)
		if !json.Valid(doc) {
			return
		}
		gotPath, got := duplicateKey(doc)
		wantPath, want := duplicateKeyReference(doc)
		if got != want || gotPath != wantPath {
			t.Fatalf("duplicateKey(%s) = %q, %v; the reference says %q, %v", doc, gotPath, got, wantPath, want)
		}
	})
}

package testprocessor

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cardgate/cardgate/forwarder/signing"
)

// httpSigWindow is how far created may lie from the processor's clock.
const httpSigWindow = 5 * time.Minute

// httpSigLabel is the label the processor reads its signature under.
const httpSigLabel = "sig1"

// checkSignature checks Signature-Input, Signature and Content-Digest as
// RFC 9421 (§2, §3.2, §4) and RFC 9530 describe them, written out here
// from the RFCs rather than with cardgate's forwarder/signing, so that a
// conformance test catches a gateway whose signer and verifier agree with
// each other but not with the RFC. It returns "" when the request is
// authentic, else a reason code (never a value).
//
// The processor's policy (what its Accept-Signature asks for): the
// signature labelled sig1 covers exactly httpSigComponents, in any order,
// carries created (within five minutes of its clock) and its keyid, and
// alg, when present, is its algorithm; Content-Digest holds the body's
// sha-256.
func (p *HTTPSig) checkSignature(r *http.Request, body []byte, now time.Time) string {
	input, ok := sfMember(r.Header.Values("Signature-Input"), httpSigLabel)
	if !ok {
		return "signature_missing"
	}
	sigItem, ok := sfMember(r.Header.Values("Signature"), httpSigLabel)
	if !ok {
		return "signature_missing"
	}
	components, params, ok := parseInnerList(input)
	if !ok {
		return "signature_malformed"
	}
	covered := slices.Clone(components)
	slices.Sort(covered)
	want := slices.Clone(httpSigComponents)
	slices.Sort(want)
	if !slices.Equal(covered, want) {
		return "signature_policy"
	}
	var created int64 = -1
	for _, kv := range params {
		switch kv[0] {
		case "created":
			n, err := strconv.ParseInt(kv[1], 10, 64)
			if err != nil {
				return "signature_malformed"
			}
			created = n
		case "keyid":
			if kv[1] != strconv.Quote(p.KeyID) {
				return "signature_policy"
			}
		case "alg":
			if kv[1] != strconv.Quote(p.Algorithm) {
				return "signature_policy"
			}
		case "expires":
			n, err := strconv.ParseInt(kv[1], 10, 64)
			if err != nil {
				return "signature_malformed"
			}
			if now.Unix() > n {
				return "signature_stale"
			}
		}
	}
	if created < 0 || !hasParam(params, "keyid") {
		return "signature_policy"
	}
	// The signature base (RFC 9421 §2.5): one line per covered
	// component in the order listed, then @signature-params, the inner
	// list as it was serialized.
	var base strings.Builder
	for _, c := range components {
		var v string
		switch c {
		case "@method":
			v = r.Method
		case "@authority":
			v = strings.ToLower(r.Host)
		case "@path":
			v = r.URL.EscapedPath()
			if v == "" {
				v = "/"
			}
		default:
			vals := r.Header.Values(c)
			if len(vals) == 0 {
				return "signature_invalid"
			}
			for i := range vals {
				vals[i] = strings.Trim(vals[i], " \t")
			}
			v = strings.Join(vals, ", ")
		}
		base.WriteString(strconv.Quote(c) + ": " + v + "\n")
	}
	base.WriteString(`"@signature-params": ` + input)
	if !strings.HasPrefix(sigItem, ":") || !strings.HasSuffix(sigItem, ":") || len(sigItem) < 2 {
		return "signature_malformed"
	}
	sig, err := base64.StdEncoding.DecodeString(sigItem[1 : len(sigItem)-1])
	if err != nil {
		return "signature_malformed"
	}
	switch p.Algorithm {
	case signing.AlgEd25519:
		if len(p.PublicKey) != ed25519.PublicKeySize || !ed25519.Verify(p.PublicKey, []byte(base.String()), sig) {
			return "signature_invalid"
		}
	case signing.AlgECDSAP256SHA256:
		// RFC 9421 §3.3.4: SHA-256 of the base, the signature r||s, each
		// 32 bytes big-endian.
		digest := sha256.Sum256([]byte(base.String()))
		r, s := new(big.Int).SetBytes(sig[:min(32, len(sig))]), new(big.Int).SetBytes(sig[min(32, len(sig)):])
		if p.ECDSAPublicKey == nil || len(sig) != 64 || !ecdsa.Verify(p.ECDSAPublicKey, digest[:], r, s) {
			return "signature_invalid"
		}
	case signing.AlgHMACSHA256:
		mac := hmac.New(sha256.New, p.Secret)
		mac.Write([]byte(base.String()))
		if len(p.Secret) == 0 || !hmac.Equal(mac.Sum(nil), sig) {
			return "signature_invalid"
		}
	default:
		return "processor_misconfigured"
	}
	if now.Unix()-created > int64(httpSigWindow/time.Second) || created-now.Unix() > int64(httpSigWindow/time.Second) {
		return "signature_stale"
	}
	digest, ok := sfMember(r.Header.Values("Content-Digest"), "sha-256")
	sum := sha256.Sum256(body)
	if !ok || digest != ":"+base64.StdEncoding.EncodeToString(sum[:])+":" {
		return "digest_mismatch"
	}
	return ""
}

func hasParam(params [][2]string, name string) bool {
	return slices.ContainsFunc(params, func(kv [2]string) bool { return kv[0] == name })
}

// sfMember returns the value of the dictionary member name (RFC 8941
// §3.2) across the field lines vals, as serialized; ok is false when the
// member is absent or the dictionary does not split.
func sfMember(vals []string, name string) (string, bool) {
	for _, member := range splitTopLevel(strings.Join(vals, ",")) {
		k, v, found := strings.Cut(strings.TrimSpace(member), "=")
		if found && k == name {
			return v, true
		}
	}
	return "", false
}

// splitTopLevel splits a dictionary at the commas outside quoted strings
// and inner lists.
func splitTopLevel(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '(':
			depth++
		case !quoted && c == ')':
			depth--
		case !quoted && depth == 0 && c == ',':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseInnerList reads ("a" "b");k=v;… into its quoted items (unquoted)
// and its parameters (values as serialized).
func parseInnerList(s string) (items []string, params [][2]string, ok bool) {
	if !strings.HasPrefix(s, "(") {
		return nil, nil, false
	}
	end := strings.IndexByte(s, ')')
	if end < 0 {
		return nil, nil, false
	}
	if inner := s[1:end]; inner != "" {
		for _, it := range strings.Split(inner, " ") {
			v, err := strconv.Unquote(it)
			if err != nil || !strings.HasPrefix(it, `"`) || slices.Contains(items, v) {
				return nil, nil, false
			}
			items = append(items, v)
		}
	}
	rest := s[end+1:]
	for rest != "" {
		if rest[0] != ';' {
			return nil, nil, false
		}
		rest = rest[1:]
		next, quoted := 0, false
		for ; next < len(rest) && (quoted || rest[next] != ';'); next++ {
			if rest[next] == '"' {
				quoted = !quoted
			}
		}
		k, v, found := strings.Cut(rest[:next], "=")
		if !found || k == "" || hasParam(params, k) {
			return nil, nil, false
		}
		params = append(params, [2]string{k, v})
		rest = rest[next:]
	}
	return items, params, true
}

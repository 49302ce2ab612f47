package testprocessor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// cybsWindow is how far Date may lie from the processor's clock.
const cybsWindow = 5 * time.Minute

// cybsParam is one name="value" pair of a Signature header.
var cybsParam = regexp.MustCompile(`^([A-Za-z]+)="([^"]*)"$`)

// checkSignature checks the Digest and Signature headers the way
// Cybersource's "HTTP Signature Authentication" guide describes them,
// written out here from that guide rather than with cardgate's
// forwarder/signing: a conformance test must catch a gateway whose signer
// and verifier agree with each other but not with the processor (an HMAC
// keyed with the base64 text instead of its decoded bytes, a
// request-target spelt or valued otherwise). It returns "" when the
// request is authentic, else a reason code (never a value).
//
// The guide's recipe:
//   - Signature: keyid="<key id>", algorithm="HmacSHA256",
//     headers="host date request-target digest v-c-merchant-id",
//     signature="<base64 HMAC>"; (request-target) before its 2024
//     security update;
//   - the signing string is one "name: value" line per listed header, in
//     the listed order, joined by "\n" without a final newline, where
//     request-target's value is the lowercase method, a space and the
//     path with its query;
//   - the HMAC-SHA256 key is the shared secret base64-decoded;
//   - Digest is "SHA-256=" and the base64 SHA-256 of the body;
//   - Date is an RFC 1123 date, close to the processor's clock.
func (p *Cybersource) checkSignature(r *http.Request, body []byte, now time.Time) string {
	vals := r.Header.Values("Signature")
	if len(vals) == 0 {
		return "signature_missing"
	}
	if len(vals) > 1 {
		return "signature_malformed"
	}
	params := map[string]string{}
	for _, pair := range strings.Split(vals[0], ",") {
		m := cybsParam.FindStringSubmatch(strings.TrimSpace(pair))
		if m == nil {
			return "signature_malformed"
		}
		if _, dup := params[m[1]]; dup {
			return "signature_malformed"
		}
		params[m[1]] = m[2]
	}
	for _, name := range []string{"keyid", "algorithm", "headers", "signature"} {
		if _, ok := params[name]; !ok {
			return "signature_malformed"
		}
	}
	if len(params) != 4 {
		return "signature_malformed"
	}
	rt := "request-target"
	if p.LegacyRequestTarget {
		rt = "(request-target)"
	}
	switch {
	case params["keyid"] != p.KeyID, params["algorithm"] != "HmacSHA256",
		params["headers"] != "host date "+rt+" digest v-c-merchant-id":
		return "signature_policy"
	}
	lines := make([]string, 0, 5)
	for _, name := range strings.Fields(params["headers"]) {
		var v string
		switch name {
		case "host":
			v = r.Host
		case rt:
			v = strings.ToLower(r.Method) + " " + r.RequestURI
		default:
			hv := r.Header.Values(name)
			if len(hv) != 1 {
				return "signature_invalid"
			}
			v = hv[0]
		}
		lines = append(lines, name+": "+v)
	}
	key, err := base64.StdEncoding.DecodeString(p.SharedSecret)
	if err != nil || len(key) == 0 {
		return "processor_misconfigured"
	}
	got, err := base64.StdEncoding.DecodeString(params["signature"])
	if err != nil {
		return "signature_malformed"
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(strings.Join(lines, "\n")))
	if !hmac.Equal(mac.Sum(nil), got) {
		return "signature_invalid"
	}
	date, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		return "signature_malformed"
	}
	if date.Before(now.Add(-cybsWindow)) || date.After(now.Add(cybsWindow)) {
		return "signature_stale"
	}
	sum := sha256.Sum256(body)
	if r.Header.Get("Digest") != "SHA-256="+base64.StdEncoding.EncodeToString(sum[:]) {
		return "digest_mismatch"
	}
	return ""
}

// What "allowlist show" and "diff" say about an entry's credentials and
// signing block. A credential newly granted to an entry, a header newly
// listed in its credential_headers, and a new or changed signing block,
// widen risk: they let a gateway-held secret go somewhere, or be used in
// a way, no auditor approved before.

package review

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/forwarder/signing"
)

// diffCredentials lists the changes of n's credentials and signing block
// from o's. o is nil for a new entry: everything it grants is new.
func diffCredentials(o, n *allowlist.Destination) []Change {
	var c []Change
	at := "~ " + n.ID + ": "
	if o == nil {
		at = "+ " + n.ID + ": "
	}
	var oldCreds, oldHeaders []string
	var oldSigning *signing.Spec
	if o != nil {
		oldCreds, oldHeaders, oldSigning = o.Credentials, o.CredentialHeaders, o.Signing
	}
	for _, name := range n.Credentials {
		if !slices.Contains(oldCreds, name) {
			c = append(c, Change{Widens: true, Text: at + "+ credential " + name})
		}
	}
	for _, name := range oldCreds {
		if !slices.Contains(n.Credentials, name) {
			c = append(c, Change{Widens: false, Text: at + "- credential " + name})
		}
	}
	// A header newly listed is a new place a credential may be sent:
	// one a processor may show or echo where the secret was not before.
	for _, h := range n.CredentialHeaders {
		if !slices.Contains(oldHeaders, h) {
			c = append(c, Change{Widens: true, Text: at + "+ credential header " + h})
		}
	}
	for _, h := range oldHeaders {
		if !slices.Contains(n.CredentialHeaders, h) {
			c = append(c, Change{Widens: false, Text: at + "- credential header " + h})
		}
	}
	before, after := signingSummary(oldSigning), signingSummary(n.Signing)
	if before != after {
		// Any new or changed block widens: a scheme, covered component or
		// key id change alters what the processor accepts as signed by
		// us. Removing the block only makes a signing processor refuse.
		c = append(c, Change{Widens: n.Signing != nil, Text: at + "signing " + orDash(before) + " -> " + orDash(after)})
	}
	return c
}

// credentialNotes are what "allowlist show" says about an entry's
// credentials and signing.
func CredentialNotes(d *allowlist.Destination) []string {
	var n []string
	if len(d.Credentials) > 0 {
		n = append(n, "CREDENTIALS "+strings.Join(d.Credentials, ","))
		if len(d.CredentialHeaders) > 0 {
			n = append(n, "CREDENTIAL HEADERS "+strings.Join(d.CredentialHeaders, ","))
		} else {
			n = append(n, "credentials in no header (signing only)")
		}
	}
	if d.Signing != nil {
		s := "signing " + string(d.Signing.Scheme)
		if d.Signing.Credential != "" {
			s += " with " + d.Signing.Credential
		}
		n = append(n, s)
	}
	return n
}

// signingSummary writes every setting of a signing block on one line,
// with the document's key names, so that a diff shows what changed. ""
// means no block.
func signingSummary(s *signing.Spec) string {
	if s == nil {
		return ""
	}
	var b settingList
	b.add("scheme", string(s.Scheme))
	b.add("credential", s.Credential)
	b.add("secret_encoding", s.SecretEncoding)
	if d := s.Digest; d != nil {
		b.list("digest.algorithms", d.Algorithms)
	}
	if r := s.RFC9421; r != nil {
		b.add("rfc9421.algorithm", r.Algorithm)
		b.add("rfc9421.key_id", r.KeyID)
		b.add("rfc9421.label", r.Label)
		b.list("rfc9421.components", r.Components)
		b.flag("rfc9421.created", r.Created)
		if r.Expires != 0 {
			b.add("rfc9421.expires", r.Expires.Round(time.Second).String())
		}
		b.flag("rfc9421.nonce", r.Nonce)
		b.add("rfc9421.tag", r.Tag)
		b.flag("rfc9421.include_alg", r.IncludeAlg)
		b.list("rfc9421.content_digest", r.ContentDigest)
	}
	if cv := s.Cavage; cv != nil {
		b.add("cavage.key_id", cv.KeyID)
		b.add("cavage.algorithm", cv.Algorithm)
		b.list("cavage.headers", cv.Headers)
		b.add("cavage.key_id_param", cv.KeyIDParam)
		b.add("cavage.header", cv.Header)
		b.add("cavage.digest_algorithm", cv.DigestAlgorithm)
		b.flag("cavage.empty_body_digest", cv.EmptyBodyDigest)
	}
	if h := s.HMAC; h != nil {
		b.add("hmac.hash", h.Hash)
		b.list("hmac.parts", h.Parts)
		b.add("hmac.separator", h.Separator)
		b.add("hmac.header", h.Header)
		b.add("hmac.prefix", h.Prefix)
		b.add("hmac.encoding", h.Encoding)
		b.add("hmac.timestamp_header", h.TimestampHeader)
		b.add("hmac.timestamp_format", h.TimestampFormat)
	}
	return "{" + strings.Join(b, " ") + "}"
}

type settingList []string

func (b *settingList) add(key, v string) {
	if v != "" {
		*b = append(*b, key+"="+quoteIfNeeded(v))
	}
}

func (b *settingList) flag(key string, v bool) {
	if v {
		*b = append(*b, key+"=true")
	}
}

func (b *settingList) list(key string, vs []string) {
	if len(vs) == 0 {
		return
	}
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = quoteIfNeeded(v)
	}
	*b = append(*b, key+"=["+strings.Join(q, ",")+"]")
}

// quoteIfNeeded quotes a value that holds anything but visible ASCII
// without separators, so that a separator of "\n" or a prefix with a
// space reads unambiguously.
func quoteIfNeeded(v string) string {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"{}[],=\`, c) >= 0 {
			return strconv.Quote(v)
		}
	}
	return v
}

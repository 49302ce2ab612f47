package audit

import "slices"

// An allowlist record (KindAllowlist) tells that the gateway accepted an
// allowlist version, or refused a load. With the forward records in one
// Merkle tree under signed checkpoints, it lets an auditor list exactly
// which signed versions ran, from when, and which loads were refused:
//
//   - accepted: decision "allow", allowlist_version and allowlist_sha256
//     of the document that went live, signers the principals counted;
//   - refused: decision "deny", reason the refusal's code (such as
//     "rollback" or "threshold_not_met"), allowlist_sha256 of the bytes
//     read (empty if none could be read), allowlist_version 0, signers
//     the principals of the valid signatures checked before the refusal.
//
// Time is when the record was appended. request_id, forward_id, caller,
// token and the connection fields are empty: a load is nobody's request.

// reSigner is a signer principal (allowed_signers' principals, which
// cardgate requires to be plain names, such as alice@audit.example).
var reSigner = shape{rule: `^[A-Za-z0-9][A-Za-z0-9._@+=:/-]{0,127}$`, first: setOf(alnum), rest: setOf(alnum + "._@+=:/-"), max: 128}

// maxSigners bounds Signers: the allowlist's limit on signature files.
const maxSigners = 32

// validateAllowlist checks an allowlist record.
func (r *Record) validateAllowlist() error {
	for _, f := range []struct{ name, v string }{
		{"request_id", r.RequestID}, {"forward_id", r.ForwardID}, {"caller", r.Caller}, {"token", r.Token},
		{"destination", r.Destination}, {"resolved_ip", r.ResolvedIP}, {"tls_version", r.TLSVersion},
		{"peer_cert_sha256", r.PeerCertSHA256}, {"outcome", string(r.Outcome)},
	} {
		if f.v != "" {
			return fieldError(f.name, "must be empty in an allowlist record")
		}
	}
	if r.Tokens != nil || r.UpstreamStatus != 0 || r.DurationMS != 0 {
		return fieldError("tokens", "must be empty in an allowlist record")
	}
	if err := checkDigest("allowlist_sha256", r.AllowlistSHA256); err != nil {
		return err
	}
	if r.AllowlistVersion > maxSafeInteger {
		return fieldError("allowlist_version", "must be at most 2^53-1")
	}
	switch r.Decision {
	case DecisionAllow:
		if r.AllowlistVersion == 0 || r.AllowlistSHA256 == "" || r.Reason != "" || len(r.Signers) == 0 {
			return fieldError("decision", "an accepted allowlist record needs allowlist_version, allowlist_sha256 and signers, and no reason")
		}
	case DecisionDeny:
		if r.AllowlistVersion != 0 {
			return fieldError("allowlist_version", "must be 0 in a refused allowlist record")
		}
		if err := checkID("reason", r.Reason, reReason, true); err != nil {
			return err
		}
	default:
		return fieldError("decision", `must be "allow" or "deny" in an allowlist record`)
	}
	if r.Signers == nil {
		return nil
	}
	if len(r.Signers) == 0 || len(r.Signers) > maxSigners {
		return fieldError("signers", "must be left out rather than empty, and hold at most 32")
	}
	for i, s := range r.Signers {
		if err := checkID("signers", s, reSigner, true); err != nil {
			return err
		}
		if slices.Contains(r.Signers[:i], s) {
			return fieldError("signers", "must not hold a principal twice")
		}
	}
	return nil
}

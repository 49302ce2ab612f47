package vaultclient

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// PKCS11Backend is KeyID.Backend for the PKCS#11 HSM backend.
const PKCS11Backend = "pkcs11"

// Defaults for PKCS11Config.
const (
	// DefaultPKCS11KeyLabel is the label prefix of the card keys: version N
	// is the object labelled "cardgate-card-vN".
	DefaultPKCS11KeyLabel = "cardgate-card"
	// DefaultPKCS11FingerprintLabel is the label prefix of the fingerprint
	// HMAC key; it has one version, "cardgate-fingerprint-v1".
	DefaultPKCS11FingerprintLabel = "cardgate-fingerprint"
	// DefaultPKCS11Timeout bounds each call into the HSM, including the
	// wait for a free session.
	DefaultPKCS11Timeout = 2 * time.Second
	// DefaultPKCS11MaxSessions bounds the sessions open on the token, and
	// so the HSM calls in flight, including calls abandoned at their
	// deadline that the HSM has not finished yet.
	DefaultPKCS11MaxSessions = 16
)

// PKCS11Config locates the token and names the keys. The zero value of
// each optional field means its documented default.
type PKCS11Config struct {
	// Library is the path of the vendor's PKCS#11 module, for example
	// /usr/lib/softhsm/libsofthsm2.so. A network HSM's module keeps the
	// keys on the HSM's machines. Required.
	Library string
	// TokenLabel selects the token. Slots are not used: their ids are
	// assigned at random by some modules (SoftHSM2 among them). Required.
	TokenLabel string
	// PIN is the user PIN. It is a secret: the gateway's configuration
	// takes it from the environment.
	PIN string
	// KeyLabel is the card keys' label prefix. 0 means
	// DefaultPKCS11KeyLabel.
	KeyLabel string
	// FingerprintLabel is the fingerprint key's label prefix. "" means
	// DefaultPKCS11FingerprintLabel.
	FingerprintLabel string
	// PrimaryVersion pins the version that seals new cards. 0 means the
	// highest version on the token that is not retired, so that a
	// version made by `cardgate keys rotate` becomes primary as each
	// gateway restarts, while gateways that have not restarted can
	// already open what it sealed (they look versions up on first use).
	PrimaryVersion uint32
	// MinVersion retires every version below it: records sealed under one
	// fail with ErrKeyRetired without an HSM call. 0 means 1.
	MinVersion uint32
	// Timeout bounds each call. 0 means DefaultPKCS11Timeout.
	Timeout time.Duration
	// MaxSessions bounds the token sessions. 0 means
	// DefaultPKCS11MaxSessions; at least 2.
	MaxSessions int
}

// withDefaults fills the zero fields and checks the rest.
func (c PKCS11Config) withDefaults() (PKCS11Config, error) {
	if c.Library == "" {
		return c, errors.New("vaultclient: pkcs11: library is required")
	}
	if c.TokenLabel == "" {
		return c, errors.New("vaultclient: pkcs11: token label is required")
	}
	if c.KeyLabel == "" {
		c.KeyLabel = DefaultPKCS11KeyLabel
	}
	if c.FingerprintLabel == "" {
		c.FingerprintLabel = DefaultPKCS11FingerprintLabel
	}
	if c.KeyLabel == c.FingerprintLabel {
		return c, errors.New("vaultclient: pkcs11: the card and fingerprint key labels must differ")
	}
	if c.MinVersion == 0 {
		c.MinVersion = 1
	}
	if c.PrimaryVersion != 0 && c.PrimaryVersion < c.MinVersion {
		return c, fmt.Errorf("vaultclient: pkcs11: primary version %d is below the minimum version %d", c.PrimaryVersion, c.MinVersion)
	}
	switch {
	case c.Timeout == 0:
		c.Timeout = DefaultPKCS11Timeout
	case c.Timeout < 0:
		return c, fmt.Errorf("vaultclient: pkcs11: timeout %v is negative", c.Timeout)
	}
	switch {
	case c.MaxSessions == 0:
		c.MaxSessions = DefaultPKCS11MaxSessions
	case c.MaxSessions < 2:
		return c, fmt.Errorf("vaultclient: pkcs11: max sessions %d is below 2", c.MaxSessions)
	}
	return c, nil
}

// versionLabel is the label of one key version: prefix "-v" N.
func versionLabel(prefix string, v uint32) string {
	return prefix + "-v" + strconv.FormatUint(uint64(v), 10)
}

// parseVersionLabel returns N for prefix "-v" N, spelled canonically.
func parseVersionLabel(prefix, label string) (uint32, bool) {
	s, ok := strings.CutPrefix(label, prefix+"-v")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 || strconv.FormatUint(v, 10) != s {
		return 0, false
	}
	return uint32(v), true
}

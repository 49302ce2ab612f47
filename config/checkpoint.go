package config

import (
	"strings"
	"time"
)

// Defaults of audit.checkpoint.
const (
	DefaultCheckpointInterval = time.Minute
	DefaultCheckpointTimeout  = 10 * time.Second
)

// Checkpoint signers.
const (
	CheckpointSignerLocal = "local"
	CheckpointSignerVault = "vault"
	CheckpointSignerHSM   = "hsm"
)

// Checkpoint configures signed checkpoints of the audit file's Merkle tree
// (package audit/checkpoint): off while Origin is empty.
type Checkpoint struct {
	// Origin names the log in every checkpoint, and is the signing key's
	// name: a schema-less URL such as "cardgate.example.com/audit/prod-1",
	// one per audit file.
	Origin string `yaml:"origin"`
	// File is where the signed checkpoint is published (replaced by
	// atomic rename) for auditors to fetch.
	File string `yaml:"file"`
	// Interval between checkpoints (one is signed only if the log grew);
	// another is signed at shutdown.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one signature.
	Timeout time.Duration `yaml:"timeout"`
	// Signer is "vault" (a Transit key of type ed25519 signs; the gateway
	// never holds it), "hsm" (an Ed25519 key pair on keys.hsm's token,
	// CKM_EDDSA; never extractable) or "local" (a note private key in
	// KeyFile; dev mode).
	Signer string `yaml:"signer"`
	// KeyFile holds the local signer's note private key (mode 0600).
	KeyFile string `yaml:"key_file"`
	// UnsafeLocalOutsideDev lets the local signer run outside dev mode.
	// Whoever can read the key file can then sign any history, so the
	// checkpoints show nothing that person could not forge.
	UnsafeLocalOutsideDev bool `yaml:"unsafe_local_outside_dev"`
	// VaultKey is the Transit key (type ed25519) on keys.vault's Vault,
	// and VaultKeyVersion the version that signs: pinned, because
	// auditors pin the public key of one version.
	VaultKey        string `yaml:"vault_key"`
	VaultKeyVersion int    `yaml:"vault_key_version"`
	// HSMKeyLabel labels the Ed25519 key pair on keys.hsm's token
	// (create it with `cardgate audit checkpoint-key --hsm`).
	HSMKeyLabel string `yaml:"hsm_key_label"`
}

// DefaultCheckpointHSMKeyLabel is audit.checkpoint.hsm_key_label's default.
const DefaultCheckpointHSMKeyLabel = "cardgate-checkpoint"

func defaultCheckpoint() Checkpoint {
	return Checkpoint{Interval: DefaultCheckpointInterval, Timeout: DefaultCheckpointTimeout, HSMKeyLabel: DefaultCheckpointHSMKeyLabel}
}

// validateCheckpoint checks audit.checkpoint.
func (c *Config) validateCheckpoint(bad func(key, format string, args ...any)) {
	cp := c.Audit.Checkpoint
	if cp.Origin == "" {
		if cp.File != "" || cp.Signer != "" {
			bad("audit.checkpoint.origin", "required when audit.checkpoint is configured: a name for this log such as \"cardgate.example.com/audit/prod-1\"")
		}
		return
	}
	if len(cp.Origin) > 255 || strings.ContainsFunc(cp.Origin, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '+' }) {
		bad("audit.checkpoint.origin", "must be printable ASCII without spaces or '+', at most 255 bytes")
	}
	if c.Audit.File == "" {
		bad("audit.checkpoint.origin", "needs audit.file: the checkpoints sign the file's Merkle tree")
	}
	if cp.File == "" {
		bad("audit.checkpoint.file", "required: where the signed checkpoint is published")
	}
	if cp.Interval < time.Second {
		bad("audit.checkpoint.interval", "must be at least 1s (default %v)", DefaultCheckpointInterval)
	}
	if cp.Timeout <= 0 {
		bad("audit.checkpoint.timeout", "must be a positive duration (default %v)", DefaultCheckpointTimeout)
	}
	switch cp.Signer {
	case CheckpointSignerLocal:
		if cp.KeyFile == "" {
			bad("audit.checkpoint.key_file", "required with signer: local (create one with `cardgate audit checkpoint-key`)")
		}
		if c.Mode != ModeDev && !cp.UnsafeLocalOutsideDev {
			bad("audit.checkpoint.signer", "local holds the signing key in the gateway: dev mode only; use vault, or set unsafe_local_outside_dev: true knowing that whoever reads the key can sign any history")
		}
	case CheckpointSignerVault:
		if c.Keys.Backend != KeysVault {
			bad("audit.checkpoint.signer", "vault needs keys.backend: vault (the Transit key lives on that Vault)")
		}
		if cp.VaultKey == "" {
			bad("audit.checkpoint.vault_key", "required with signer: vault: a Transit key of type ed25519")
		}
		if cp.VaultKeyVersion < 1 {
			bad("audit.checkpoint.vault_key_version", "required with signer: vault: the key version that signs (auditors pin its public key)")
		}
	case CheckpointSignerHSM:
		if c.Keys.Backend != KeysHSM {
			bad("audit.checkpoint.signer", "hsm needs keys.backend: hsm (the key pair lives on that token)")
		}
		if cp.HSMKeyLabel == "" {
			bad("audit.checkpoint.hsm_key_label", "required with signer: hsm")
		}
	default:
		bad("audit.checkpoint.signer", "must be %q, %q or %q", CheckpointSignerVault, CheckpointSignerHSM, CheckpointSignerLocal)
	}
}

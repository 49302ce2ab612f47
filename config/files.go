package config

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"github.com/cardgate/cardgate/internal/fileread"
)

// CheckFiles checks that every file and directory the gateway will read at
// start can be: each named file exists and is a regular file (a symlink to
// one counts, as Kubernetes mounts use them), each directory is one, and
// the directory of each file the gateway creates (the audit file, the
// allowlist state file, the bolt database) exists. Only the files of the
// configured backends are checked. It returns every problem, each a
// *FieldError naming the key, joined; it reads no file's contents.
func (c *Config) CheckFiles() error {
	var errs []error
	for _, p := range c.fileProblems() {
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

// fileKind is what a configured path must be.
type fileKind int

const (
	regularFile fileKind = iota // read at start
	directory                   // listed at start
	createdFile                 // created if missing: its directory must exist
)

func (c *Config) fileProblems() []*FieldError {
	type want struct {
		key, path string
		kind      fileKind
	}
	var ws []want
	file := func(key, path string) {
		if path != "" {
			ws = append(ws, want{key, path, regularFile})
		}
	}
	file("listen.tls.cert_file", c.Listen.TLS.CertFile)
	file("listen.tls.key_file", c.Listen.TLS.KeyFile)
	file("listen.tls.client_ca_file", c.Listen.TLS.ClientCAFile)
	file("listen.tls.crl_file", c.Listen.TLS.CRLFile)
	file("allowlist.path", c.Allowlist.Path)
	if c.Allowlist.SignaturesDir != "" {
		ws = append(ws, want{"allowlist.signatures_dir", c.Allowlist.SignaturesDir, directory})
	}
	file("allowlist.allowed_signers", c.Allowlist.AllowedSigners)
	if c.Allowlist.StateFile != "" {
		ws = append(ws, want{"allowlist.state_file", c.Allowlist.StateFile, createdFile})
	}
	switch c.Store.Backend {
	case StoreBolt:
		if c.Store.Bolt.Path != "" {
			ws = append(ws, want{"store.bolt.path", c.Store.Bolt.Path, createdFile})
		}
	case StoreRedis:
		file("store.redis.tls.ca_file", c.Store.Redis.TLS.CAFile)
		file("store.redis.tls.cert_file", c.Store.Redis.TLS.CertFile)
		file("store.redis.tls.key_file", c.Store.Redis.TLS.KeyFile)
	}
	switch c.Keys.Backend {
	case KeysLocal:
		file("keys.local.path", c.Keys.Local.Path)
	case KeysHSM:
		file("keys.hsm.library", c.Keys.HSM.Library)
	case KeysVault:
		v := c.Keys.Vault
		file("keys.vault.ca_file", v.CAFile)
		file("keys.vault.client_cert_file", v.ClientCertFile)
		file("keys.vault.client_key_file", v.ClientKeyFile)
		if v.Auth.Method == VaultAuthAppRole {
			file("keys.vault.auth.secret_id_file", v.Auth.SecretIDFile)
		}
	}
	file("egress.ca_file", c.Egress.CAFile)
	for _, name := range slices.Sorted(maps.Keys(c.Egress.CABundles)) {
		file("egress.ca_bundles."+name, c.Egress.CABundles[name])
	}
	for _, name := range slices.Sorted(maps.Keys(c.Egress.ClientCerts)) {
		cc := c.Egress.ClientCerts[name]
		file("egress.client_certs."+name+".cert_file", cc.CertFile)
		file("egress.client_certs."+name+".key_file", cc.KeyFile)
	}
	if c.Telemetry.Traces.Exporter == ExporterOTLP {
		file("telemetry.traces.otlp.ca_file", c.Telemetry.Traces.OTLP.CAFile)
	}
	if c.Audit.File != "" {
		ws = append(ws, want{"audit.file", c.Audit.File, createdFile})
	}
	if c.KillSwitch.File != "" {
		ws = append(ws, want{"killswitch.file", c.KillSwitch.File, createdFile})
	}

	var out []*FieldError
	for _, w := range ws {
		if msg := checkPath(w.path, w.kind); msg != "" {
			out = append(out, &FieldError{Key: w.key, Msg: msg, Env: c.envFor(w.key)})
		}
	}
	return out
}

// checkPath returns what is wrong with path for its kind, or "". It opens
// only what stat says is a regular file, and without blocking: a FIFO
// named here must not hang the start.
func checkPath(path string, kind fileKind) string {
	stat := os.Stat
	q := strconv.Quote(path)
	if kind == createdFile {
		dir := filepath.Dir(path)
		if fi, err := stat(path); err == nil {
			if !fi.Mode().IsRegular() {
				return q + " is not a regular file: not_regular_file (" + fileread.TypeName(fi.Mode()) + ")"
			}
			return ""
		}
		fi, err := stat(dir)
		switch {
		case err != nil:
			return q + ": its directory " + strconv.Quote(dir) + " " + statProblem(err) + " (the gateway creates the file, not the directory)"
		case !fi.IsDir():
			return q + ": " + strconv.Quote(dir) + " is not a directory"
		}
		return ""
	}
	fi, err := stat(path)
	switch {
	case err != nil:
		return q + " " + statProblem(err)
	case kind == directory && !fi.IsDir():
		return q + " is not a directory"
	case kind == regularFile && fi.IsDir():
		return q + " is a directory, not a file"
	case kind == regularFile && !fi.Mode().IsRegular():
		return q + " is not a regular file: not_regular_file (" + fileread.TypeName(fi.Mode()) + ")"
	case kind == regularFile:
		f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return q + " " + statProblem(err)
		}
		f.Close()
	}
	return ""
}

// statProblem says why a stat failed, without Go's "stat PATH:" prefix.
func statProblem(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	case errors.Is(err, fs.ErrPermission):
		return "cannot be read (permission denied)"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "cannot be read (" + pe.Err.Error() + ")"
	}
	return "cannot be read"
}

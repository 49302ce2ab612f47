package credentials

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Watch reloads when a file source changes and, while any credential
// follows Vault's latest version, every VaultPollInterval. It returns
// when ctx is done. Reload errors are recorded in Status and logged, not
// returned; the last good set stays live.
//
// Files are compared by what stat says after following symlinks (device,
// inode, size, modification and change times, mode), never by reading
// them, so a poll does not copy secrets around. A Kubernetes secret
// volume's symlink swap changes the inode; an edit in place changes the
// times. SIGHUP is the caller's to wire to Reload.
func (s *Store) Watch(ctx context.Context) error {
	files := time.NewTicker(s.opts.PollInterval)
	defer files.Stop()
	var vault <-chan time.Time
	if s.followsVault() && s.opts.VaultPollInterval > 0 {
		t := time.NewTicker(s.opts.VaultPollInterval)
		defer t.Stop()
		vault = t.C
	}
	// Start from the files as the live set read them, so a change made
	// after that load and before Watch started is not missed; with no
	// set loaded, the first tick reloads.
	var last [sha256.Size]byte
	if cur := s.cur.Load(); cur != nil {
		last = cur.fp
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-files.C:
			fp := s.fingerprint()
			if fp == last {
				continue
			}
			last = fp
		case <-vault:
		}
		_ = s.Reload(ctx) // recorded in Status and the log
	}
}

func (s *Store) followsVault() bool {
	for _, sp := range s.specs {
		if v, ok := sp.Source.(VaultKV); ok && v.Version == 0 {
			return true
		}
	}
	return false
}

// fingerprint hashes the stat of every file source.
func (s *Store) fingerprint() [sha256.Size]byte {
	h := sha256.New()
	for _, sp := range s.specs {
		f, ok := sp.Source.(File)
		if !ok {
			continue
		}
		fi, err := os.Stat(f.Path)
		if err != nil {
			fmt.Fprintf(h, "%s\x00err %v\x00", f.Path, err)
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%v\x00", f.Path, fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			fmt.Fprintf(h, "%d\x00%d\x00%d\x00", st.Dev, st.Ino, changeTime(st))
		}
	}
	var out [sha256.Size]byte
	copy(out[:], h.Sum(nil))
	return out
}

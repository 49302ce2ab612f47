package allowlist

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestHolderCheck shows that a document the gateway cannot serve (here: an
// entry naming a client certificate it was not configured with) is
// refused like any failed load: the last good allowlist stays live and the
// rollback mark does not move.
func TestHolderCheck(t *testing.T) {
	s := newAttackSetup(t)
	c := &clock{t: testNow}
	dir := t.TempDir()
	p := s.policy
	p.Now = c.Now
	statePath := filepath.Join(dir, "state.json")
	configured := map[string]bool{"acme-mtls": true}
	h := NewHolder(HolderOptions{
		Path: filepath.Join(dir, "allowlist.yaml"), SignaturesDir: filepath.Join(dir, "sigs"),
		Policy: p, State: NewFileStateStore(statePath),
		Check: func(d *Document) error {
			for _, dst := range d.Destinations {
				if dst.TLS != nil && dst.TLS.ClientCert != "" && !configured[dst.TLS.ClientCert] {
					return fmt.Errorf("destination %s names client certificate %q, which egress.client_certs does not configure", dst.ID, dst.TLS.ClientCert)
				}
			}
			return nil
		},
	})
	withCert := func(name string) string {
		return fmt.Sprintf("    tls:\n      client_cert: %s\n", name)
	}

	v1 := docSpec{extraDst: withCert("acme-mtls")}.yaml()
	writeSet(t, dir, v1, s.signBoth(t, v1)...)
	if err := h.Load(); err != nil {
		t.Fatalf("Load(v1 naming a configured certificate) = %v", err)
	}

	v2 := docSpec{version: 2, prev: SHA256Hex(v1), extraDst: withCert("acme-other")}.yaml()
	writeSet(t, dir, v2, s.signBoth(t, v2)...)
	err := h.Load()
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Load(v2 naming an unconfigured certificate) = %v, want ErrUnsupported", err)
	}
	if a, err := h.Current(); err != nil || a.Doc.Version != 1 {
		t.Errorf("Current() after the refused load = %v, %v, want version 1 still live", a, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := NewFileStateStore(statePath).Load(ctx)
	if err != nil || st.Version != 1 {
		t.Errorf("rollback mark after the refused load = %+v, %v, want version 1", st, err)
	}

	// Once the gateway is configured for it, the same signed file loads.
	configured["acme-other"] = true
	if err := h.Load(); err != nil {
		t.Errorf("Load(v2) once configured = %v", err)
	}
}

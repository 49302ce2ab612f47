package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/canary"
	"github.com/cardgate/cardgate/internal/redistest"
	"github.com/cardgate/cardgate/killswitch"
)

// cliConfig writes a dev-mode configuration for the operator commands: the
// redis store on addr, or bolt with a kill switch file when addr is "".
func cliConfig(t *testing.T, addr string) (path, ksFile string) {
	t.Helper()
	dir := t.TempDir()
	store := fmt.Sprintf("store:\n  backend: redis\n  redis:\n    addrs: [%s]\n", addr)
	if addr == "" {
		ksFile = filepath.Join(dir, "killswitch.json")
		store = fmt.Sprintf("store:\n  backend: bolt\n  bolt:\n    path: %s/cards.db\nkillswitch:\n  file: %s\n", dir, ksFile)
	}
	raw := fmt.Sprintf(`mode: dev
environment: test
listen:
  addr: 127.0.0.1:0
allowlist:
  path: %[1]s/allowlist.yaml
  signatures_dir: %[1]s/sigs
  allowed_signers: %[1]s/allowed_signers
  state_file: %[1]s/allowlist.state
keys:
  backend: local
  local:
    path: %[1]s/keyring.json
%[2]s`, dir, store)
	path = filepath.Join(dir, "cardgate.yaml")
	if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, ksFile
}

func TestDestinationsCommand(t *testing.T) {
	srv := redistest.Start(t)
	redisCfg, _ := cliConfig(t, srv.Addr())
	boltCfg, ksFile := cliConfig(t, "")
	stores := map[string]struct {
		cfg   string
		store killswitch.Store
	}{
		"redis": {redisCfg, killswitch.NewRedisStore(srv.Client(), "cardgate:killswitch:test")},
		"bolt":  {boltCfg, killswitch.NewFileStore(ksFile)},
	}
	for name, s := range stores {
		t.Run(name, func(t *testing.T) {
			steps := []struct {
				args     []string
				wantErr  bool
				wantOut  string
				disabled []string // ids in the state afterwards
			}{
				{[]string{"status"}, false, "nothing disabled", nil},
				{[]string{"disable", "acme-charges", "--reason", "INC-42 fraud spike"}, false, "disabled acme-charges", []string{"acme-charges"}},
				{[]string{"status"}, false, "disabled acme-charges since", []string{"acme-charges"}},
				{[]string{"disable", "--all"}, false, "disabled every destination", []string{"*", "acme-charges"}},
				{[]string{"enable", "acme-charges"}, false, "global switch (--all) is still on", []string{"*"}},
				{[]string{"enable", "--all"}, false, "enabled every destination", nil},
				{[]string{"disable", "ACME"}, true, "", nil},
				{[]string{"disable"}, true, "", nil},
				{[]string{"disable", "a", "b"}, true, "", nil},
				{[]string{"enable", "acme", "--reason", "x"}, true, "", nil},
				{[]string{"disable", "acme", "--reason", "two\nlines"}, true, "", nil},
			}
			for _, st := range steps {
				var out, errOut bytes.Buffer
				args := append([]string{"destinations", "-config", s.cfg}, st.args...)
				err := run(context.Background(), args, &out, &errOut)
				if (err != nil) != st.wantErr {
					t.Fatalf("%v: err = %v (stderr %q), want error %v", st.args, err, errOut.String(), st.wantErr)
				}
				if !strings.Contains(out.String(), st.wantOut) {
					t.Errorf("%v: output %q, want it to contain %q", st.args, out.String(), st.wantOut)
				}
				state, err := s.store.Load(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				ids := slices.Sorted(maps.Keys(state))
				if fmt.Sprint(ids) != fmt.Sprint(st.disabled) {
					t.Errorf("%v: disabled = %v, want %v", st.args, ids, st.disabled)
				}
			}
		})
	}
}

func TestCanaryCommand(t *testing.T) {
	srv := redistest.Start(t)
	cfg, _ := cliConfig(t, srv.Addr())
	const tok = "tok_canaryaaaaaaaaaaaaaaaaaaaaaaaaaa"
	set, _ := canary.NewSet(srv.Client(), "cardgate:canary:test", 0)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"canary", "-config", cfg, "add", tok}, &out, &out); err != nil {
		t.Fatalf("canary add: %v (%s)", err, out.String())
	}
	if ok, err := set.IsCanary(context.Background(), tok); err != nil || !ok {
		t.Errorf("IsCanary after add = %v, %v", ok, err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"canary", "-config", cfg, "list"}, &out, &out); err != nil || strings.TrimSpace(out.String()) != tok {
		t.Errorf("canary list = %q, %v", out.String(), err)
	}
	if err := run(context.Background(), []string{"canary", "-config", cfg, "add", "4242424242424242"}, &out, &out); err == nil {
		t.Error("canary add accepted a card number")
	}
	boltCfg, _ := cliConfig(t, "")
	if err := run(context.Background(), []string{"canary", "-config", boltCfg, "list"}, &out, &out); err == nil {
		t.Error("canary list with bolt succeeded; canaries need the redis store")
	}
}

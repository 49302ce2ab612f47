// The Kubernetes overlays' files: the egress policy is the generator's
// output, and the allowlist ConfigMap works as the kubelet mounts it.

package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/cardgate/cardgate/allowlist"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// cardgateBinary builds ./cmd/cardgate once for the tests that run it.
func cardgateBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cardgate-deploy-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "cardgate")
		if out, err := exec.Command("go", "build", "-tags", "grpcnotrace", "-o", binPath, "../cmd/cardgate").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestKubernetesEgressIsGenerated: each overlay's egress policy is the
// output of `cardgate allowlist egress-policy` over its signed allowlist
// (as of a time inside the allowlist's validity), or, while the allowlist
// is the unsigned placeholder, a policy that allows nothing.
func TestKubernetesEgressIsGenerated(t *testing.T) {
	bin := cardgateBinary(t)
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			dir := filepath.Join("kubernetes", "overlays", overlay)
			committed, err := os.ReadFile(filepath.Join(dir, "egress-networkpolicy.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			argsRaw, err := os.ReadFile(filepath.Join(dir, "egress-policy.args"))
			if err != nil {
				t.Fatal(err)
			}
			args := append([]string{"allowlist", "egress-policy", "-at", "2026-12-02T00:00:00Z"}, strings.Fields(string(argsRaw))...)
			cmd := exec.Command(bin, args...)
			cmd.Dir = dir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			runErr := cmd.Run()
			if !bytes.HasPrefix(committed, []byte("# PLACEHOLDER")) {
				if runErr != nil {
					t.Fatalf("cardgate %s: %v\n%s", strings.Join(args, " "), runErr, stderr.String())
				}
				if stdout.String() != string(committed) {
					t.Errorf("%s/egress-networkpolicy.yaml is not the generated policy; regenerate it:\n  cardgate allowlist egress-policy $(cat egress-policy.args) > egress-networkpolicy.yaml", dir)
				}
				return
			}
			if runErr == nil {
				t.Errorf("%s: the allowlist verifies but the egress policy is still the placeholder; regenerate it", dir)
			}
			var np networkingv1.NetworkPolicy
			if err := yaml.UnmarshalStrict(committed, &np); err != nil || len(np.Spec.Egress) != 0 {
				t.Errorf("the placeholder egress policy must allow nothing: %v, %d rules", err, len(np.Spec.Egress))
			}
		})
	}
}

// TestKubernetesDevAllowlistVerifies: the dev overlay's ConfigMaps, laid
// out as the kubelet mounts them, pass the gateway's verification.
func TestKubernetesDevAllowlistVerifies(t *testing.T) {
	r := render(t, "dev")
	mount := materialize(t, r.configMaps["cardgate-allowlist"].Data)
	signers := r.configMaps["cardgate-allowed-signers"].Data["allowed_signers"]
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	h := allowlist.NewHolder(allowlist.HolderOptions{
		Path:          filepath.Join(mount, path.Base(r.cfg.Allowlist.Path)),
		SignaturesDir: mount,
		Policy: allowlist.Policy{AllowedSigners: []byte(signers), Threshold: r.cfg.Allowlist.Threshold,
			Environment: r.cfg.Environment, MaxValidity: r.cfg.Allowlist.MaxValidity, Now: func() time.Time { return now }},
		State: allowlist.NewFileStateStore(filepath.Join(t.TempDir(), "state.json")),
	})
	if err := h.LoadContext(t.Context()); err != nil {
		t.Fatalf("the dev allowlist ConfigMap does not verify as mounted: %v", err)
	}
}

// TestConfigMapSwapReloads: with the flat layout the overlays use (the
// document and its *.sig files in one ConfigMap, signatures_dir = the
// mount), a kubelet update (a new timestamped directory and one rename of
// ..data) is picked up by the gateway's next load, document and
// signatures together.
func TestConfigMapSwapReloads(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "auditor")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "a", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	signed := func(version int, prev string) map[string]string {
		doc := fmt.Sprintf(`format: cardgate.allowlist/v1
namespace: cardgate-allowlist@v1
environment: dev
version: %d
issued_at: 2026-12-01T00:00:00Z
expires: 2027-01-01T00:00:00Z
prev_sha256: "%s"
destinations:
  - id: sandbox-charges
    purpose: test
    owner: platform@example.com
    url: https://sandbox-psp.dev.internal.example:8443/v1/charges
    methods: [POST]
    callers: [billing]
    fields: [number]
`, version, prev)
		f := filepath.Join(dir, fmt.Sprintf("v%d.yaml", version))
		if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("ssh-keygen", "-q", "-Y", "sign", "-f", key, "-n", allowlist.Namespace, f).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
		}
		sig, err := os.ReadFile(f + ".sig")
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"allowlist.yaml": doc, "auditor.sig": string(sig)}
	}
	v1 := signed(1, "")
	mount := materialize(t, v1)
	h := allowlist.NewHolder(allowlist.HolderOptions{
		Path: filepath.Join(mount, "allowlist.yaml"), SignaturesDir: mount,
		Policy: allowlist.Policy{AllowedSigners: append([]byte("a@example.com "), pub...), Threshold: 1, Environment: "dev",
			Now: func() time.Time { return now }},
		State: allowlist.NewFileStateStore(filepath.Join(dir, "state.json")),
	})
	if err := h.LoadContext(t.Context()); err != nil {
		t.Fatalf("load v1 through the ConfigMap layout: %v", err)
	}
	swapData(t, mount, "..2026_12_02_00_05_00.000000002", signed(2, allowlist.SHA256Hex([]byte(v1["allowlist.yaml"]))))
	if err := h.LoadContext(t.Context()); err != nil {
		t.Fatalf("load v2 after the ..data swap: %v", err)
	}
	if st := h.Status(); st.Version != 2 {
		t.Fatalf("after the swap Status() = %+v, want version 2", st)
	}
}

// materialize writes data as the kubelet mounts a ConfigMap: the files in
// a timestamped directory, ..data linking to it, and one link per key.
func materialize(t *testing.T, data map[string]string) string {
	t.Helper()
	mount := t.TempDir()
	swapData(t, mount, "..2026_12_02_00_00_00.000000001", data)
	for k := range data {
		if err := os.Symlink(filepath.Join("..data", k), filepath.Join(mount, k)); err != nil {
			t.Fatal(err)
		}
	}
	return mount
}

// swapData writes a new timestamped directory and points ..data at it
// with one rename, as the kubelet's atomic writer does.
func swapData(t *testing.T, mount, stamp string, data map[string]string) {
	t.Helper()
	dir := filepath.Join(mount, stamp)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range data {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(mount, "..data_tmp")
	if err := os.Symlink(stamp, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(mount, "..data")); err != nil {
		t.Fatal(err)
	}
}

package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/cardgate/cardgate/config"
)

// loadProject loads docker-compose.yml with compose-go, the loader Compose
// v2 uses: the compose-spec JSON schema, interpolation, merges and the
// consistency checks (every network, volume and dependency declared).
func loadProject(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"},
		cli.WithWorkingDirectory(".."), cli.WithEnv(nil), cli.WithProfiles([]string{"try"}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("compose-go refuses docker-compose.yml: %v", err)
	}
	return p
}

func composeConfig(t *testing.T) config.Config {
	t.Helper()
	raw, err := os.ReadFile("cardgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestComposeSpec: the file is valid Compose v2 (it names the project,
// which Compose v1 refuses), and stopping the gateway waits longer than
// the drain it actually runs.
func TestComposeSpec(t *testing.T) {
	p := loadProject(t)
	if p.Name != "cardgate" {
		t.Errorf("project name %q, want cardgate (the top-level name: Compose v2)", p.Name)
	}
	if _, ok := p.Services["try"]; !ok {
		t.Errorf("the try profile's service did not load")
	}
	g := p.Services["cardgate"]
	drain := composeConfig(t).Listen.ShutdownTimeout
	if drain == 0 {
		drain = config.DefaultShutdownTimeout
	}
	// Beyond the drain: the audit chain head is written and the process
	// exits; Docker's default of 10s would cut every drain short.
	if g.StopGracePeriod == nil || time.Duration(*g.StopGracePeriod) < drain+5*time.Second {
		t.Errorf("cardgate stop_grace_period %v, want at least listen.shutdown_timeout (%v) + 5s", g.StopGracePeriod, drain)
	}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind && !strings.HasPrefix(v.Source, p.WorkingDir+"/deploy/") {
				t.Errorf("%s binds %s: only files from deploy/ may be bound", name, v.Source)
			}
		}
	}
}

// TestComposeVaultWiring: the gateway uses Vault Transit over verified
// TLS at the compose vault service, with the keys, policy and AppRole
// role that vault-init creates.
func TestComposeVaultWiring(t *testing.T) {
	p := loadProject(t)
	cfg := composeConfig(t)
	v := cfg.Keys.Vault
	if cfg.Keys.Backend != config.KeysVault {
		t.Fatalf("keys.backend = %q, want vault", cfg.Keys.Backend)
	}
	if v.Address != "https://vault:8200" {
		t.Errorf("keys.vault.address = %q, want https://vault:8200", v.Address)
	}
	vault, ok := p.Services["vault"]
	if !ok {
		t.Fatal("no vault service")
	}
	for _, want := range []string{"-dev-tls", "-dev-listen-address=0.0.0.0:8200", "-dev-tls-san=vault", "-dev-tls-cert-dir=/vault/file"} {
		if !slices.Contains(vault.Command, want) {
			t.Errorf("vault command %q lacks %s: the gateway verifies Vault's certificate for the name vault", vault.Command, want)
		}
	}
	if len(vault.Volumes) != 1 || vault.Volumes[0].Source != "vault-tls" || vault.Volumes[0].Target != "/vault/file" {
		t.Errorf("vault volumes %+v, want vault-tls at the cert dir", vault.Volumes)
	}

	vi := p.Services["vault-init"]
	env := func(s types.ServiceConfig, k string) string {
		if e := s.Environment[k]; e != nil {
			return *e
		}
		return ""
	}
	if env(vi, "VAULT_ADDR") != v.Address || env(vi, "VAULT_CACERT") != "/vault/file/vault-ca.pem" {
		t.Errorf("vault-init reaches %s with CA %s, want the gateway's address and vault's generated CA", env(vi, "VAULT_ADDR"), env(vi, "VAULT_CACERT"))
	}
	if got, want := env(p.Services["cardgate"], config.EnvVaultRoleID), env(vi, "ROLE_ID"); got == "" || got != want {
		t.Errorf("the gateway's role id %q is not the one vault-init sets (%q)", got, want)
	}
	if vi.DependsOn["vault"].Condition != types.ServiceConditionHealthy || vi.DependsOn["init"].Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("vault-init depends_on %+v", vi.DependsOn)
	}
	mounts := map[string]types.ServiceVolumeConfig{}
	for _, m := range vi.Volumes {
		mounts[m.Target] = m
	}
	// vault-init reads vault's CA (never its key: only the CA is copied)
	// and writes the gateway's files into the volume the gateway mounts
	// at /etc/cardgate/vault.
	if m := mounts["/vault/file"]; m.Source != "vault-tls" || !m.ReadOnly {
		t.Errorf("vault-init mounts the vault TLS volume as %+v, want read-only", m)
	}
	if m := mounts["/out/vault"]; m.Source != "gateway-vault" || m.ReadOnly {
		t.Errorf("vault-init mounts gateway-vault as %+v", m)
	}
	for _, m := range p.Services["cardgate"].Volumes {
		if m.Source == "vault-tls" {
			t.Error("the gateway mounts vault's TLS directory, which holds vault's private key")
		}
	}
	script, err := os.ReadFile("vault-init.sh")
	if err != nil {
		t.Fatal(err)
	}
	out := regexp.MustCompile(`(?m)^OUT=\$\{OUT:-(\S+)\}$`).FindSubmatch(script)
	if out == nil || string(out[1]) != "/out/vault" {
		t.Fatalf("vault-init.sh writes to %q, want /out/vault", out)
	}
	for file, key := range map[string]string{"vault-ca.pem": v.CAFile, "secret-id": v.Auth.SecretIDFile} {
		if !strings.Contains(string(script), `"$OUT/`+file+`"`) || key != "/etc/cardgate/vault/"+file {
			t.Errorf("the gateway reads %s, vault-init writes $OUT/%s: want /etc/cardgate/vault/%s", key, file, file)
		}
	}

	// The keys: the names the gateway uses, with the shape
	// vaultclient.Transit.InitKeys checks (the card key derived).
	if v.Key != config.DefaultVaultKey || v.FingerprintKey != config.DefaultVaultFingerprintKey || v.Mount != config.DefaultVaultMount {
		t.Errorf("keys %s/%s on %s, want the defaults %s/%s on %s", v.Key, v.FingerprintKey, v.Mount,
			config.DefaultVaultKey, config.DefaultVaultFingerprintKey, config.DefaultVaultMount)
	}
	if !strings.Contains(string(script), "for key in "+v.Key+":true "+v.FingerprintKey+":false; do") ||
		!strings.Contains(string(script), `type=aes256-gcm96 derived="$derived"`) ||
		!strings.Contains(string(script), "exportable=false allow_plaintext_backup=false") {
		t.Errorf("vault-init.sh does not create %s (derived) and %s as aes256-gcm96, neither exportable", v.Key, v.FingerprintKey)
	}
	if v.Auth.Method != config.VaultAuthAppRole || !strings.Contains(string(script), "vault auth enable approle") {
		t.Errorf("auth %q: want AppRole, enabled by vault-init", v.Auth.Method)
	}
	if out, err := exec.Command("sh", "-n", "vault-init.sh").CombinedOutput(); err != nil {
		t.Errorf("sh -n vault-init.sh: %v\n%s", err, out)
	}

	// The policy: update on exactly the three paths the gateway calls.
	hcl, err := os.ReadFile("vault/cardgate-gateway.hcl")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range regexp.MustCompile(`(?s)path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]\s*\}`).FindAllSubmatch(hcl, -1) {
		got = append(got, string(m[1])+" "+string(m[2]))
	}
	want := []string{
		v.Mount + "/encrypt/" + v.Key + ` "update"`,
		v.Mount + "/decrypt/" + v.Key + ` "update"`,
		v.Mount + "/hmac/" + v.FingerprintKey + `/* "update"`,
	}
	if !slices.Equal(got, want) || strings.Count(string(hcl), "path ") != len(want) {
		t.Errorf("policy grants %q, want exactly %q", got, want)
	}
	if !strings.Contains(string(script), `vault policy write "$ROLE" /deploy/cardgate-gateway.hcl`) ||
		!strings.Contains(string(script), `token_policies="$ROLE"`) {
		t.Error("vault-init.sh does not bind the AppRole role to the gateway's policy")
	}
	if m := mountsOf(vi)["/deploy/cardgate-gateway.hcl"]; !strings.HasSuffix(m.Source, "/deploy/vault/cardgate-gateway.hcl") || !m.ReadOnly {
		t.Errorf("vault-init mounts the policy as %+v", m)
	}
}

func mountsOf(s types.ServiceConfig) map[string]types.ServiceVolumeConfig {
	out := map[string]types.ServiceVolumeConfig{}
	for _, m := range s.Volumes {
		out[m.Target] = m
	}
	return out
}

// TestDockerignore: the build context carries no repository history, key
// material or local state into an image layer, and keeps what the
// Dockerfile copies.
func TestDockerignore(t *testing.T) {
	raw, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	for _, want := range []string{".git", "**/*.pem", "**/*.key", "**/keyring*.json", "**/.env", "cmd/cardgate/cardgate", "deploy/kubernetes/overlays/*/allowlist"} {
		if !slices.Contains(patterns, want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
	for _, p := range patterns {
		if strings.HasPrefix(p, "!") {
			t.Errorf(".dockerignore re-includes %s: keep the exclusions unconditional", p)
		}
		for _, keep := range []string{"go.mod", "go.sum", "deploy/init.sh", "deploy/try.sh", "cmd", "cmd/cardgate/main.go", "Dockerfile"} {
			if p == keep || p == "*" || p == "**" || strings.HasPrefix(keep, p+"/") && p != "cmd/cardgate/cardgate" {
				t.Errorf(".dockerignore pattern %s drops %s, which the build needs", p, keep)
			}
		}
	}
}

// Package deploy holds the deployment files — the docker compose stack's
// (gateway and collector configuration, the test processor's nginx
// configuration, the setup, Vault and try scripts) and the Kubernetes
// kustomize base and overlays (kubernetes/) — and the tests that check
// them without a Docker engine or a cluster, which CI does not have. Its
// dependencies (k8s.io, kustomize, compose-spec) are test-only: the
// gateway's binary never links them.
package deploy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/config"
)

// compose is the part of the Compose specification these tests read.
type compose struct {
	Services map[string]service `yaml:"services"`
	Networks map[string]any     `yaml:"networks"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string               `yaml:"image"`
	Build       *build               `yaml:"build"`
	User        string               `yaml:"user"`
	ReadOnly    bool                 `yaml:"read_only"`
	Privileged  bool                 `yaml:"privileged"`
	CapAdd      []string             `yaml:"cap_add"`
	CapDrop     []string             `yaml:"cap_drop"`
	SecurityOpt []string             `yaml:"security_opt"`
	NetworkMode string               `yaml:"network_mode"`
	Pid         string               `yaml:"pid"`
	Command     []string             `yaml:"command"`
	Environment map[string]string    `yaml:"environment"`
	Volumes     []string             `yaml:"volumes"`
	Ports       []string             `yaml:"ports"`
	Healthcheck *healthcheck         `yaml:"healthcheck"`
	DependsOn   map[string]dependsOn `yaml:"depends_on"`
	Profiles    []string             `yaml:"profiles"`
	Restart     string               `yaml:"restart"`
	Networks    any                  `yaml:"networks"`
}

type build struct {
	Context string `yaml:"context"`
	Target  string `yaml:"target"`
}

type healthcheck struct {
	Test    []string `yaml:"test"`
	Disable bool     `yaml:"disable"`
}

type dependsOn struct {
	Condition string `yaml:"condition"`
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// jobs are the one-shot services: restart "no", and whoever waits on one
// waits for it to complete.
func jobs(t *testing.T, c compose) map[string]bool {
	out := map[string]bool{}
	for name, s := range c.Services {
		if s.Restart == "no" {
			out[name] = true
		}
	}
	for name, s := range c.Services {
		for dep, d := range s.DependsOn {
			if out[dep] != (d.Condition == "service_completed_successfully") {
				t.Errorf("%s depends on %s with %q; a one-shot job is waited on with service_completed_successfully, a server with service_healthy (or service_started)", name, dep, d.Condition)
			}
		}
	}
	return out
}

func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"cardgate", "redis", "vault", "vault-init", "otel-collector", "processor", "init"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("docker-compose.yml has no %s service", name)
		}
	}
	job := jobs(t, c)
	for name, s := range c.Services {
		t.Run(name, func(t *testing.T) {
			if s.Privileged {
				t.Errorf("privileged: true")
			}
			if len(s.CapAdd) > 0 {
				t.Errorf("cap_add %v: no service needs a capability", s.CapAdd)
			}
			if s.NetworkMode != "" || s.Pid != "" {
				t.Errorf("network_mode %q pid %q: share nothing with the host", s.NetworkMode, s.Pid)
			}
			if s.Image == "" && s.Build == nil {
				t.Errorf("neither image nor build")
			}
			if s.Image != "" && !strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest") {
				t.Errorf("image %q: pin a tag", s.Image)
			}
			for _, p := range s.Ports {
				if !strings.HasPrefix(p, "127.0.0.1:") {
					t.Errorf("port %q is published beyond the host's loopback", p)
				}
			}
			switch {
			case job[name]:
				// Runs to completion; its exit status is its health.
			case len(s.Profiles) > 0:
				// An on-demand tool (docker compose run), not part of `up`.
			default:
				if s.Healthcheck == nil || s.Healthcheck.Disable || len(s.Healthcheck.Test) < 2 || s.Healthcheck.Test[0] != "CMD" {
					t.Errorf("healthcheck = %+v, want an exec-form [\"CMD\", …] test", s.Healthcheck)
				}
			}
			// Everything but the Vault dev server (whose entrypoint
			// changes ownership at start) runs read-only, as non-root,
			// without new privileges.
			if name == "vault" {
				return
			}
			if !s.ReadOnly {
				t.Errorf("read_only is not set")
			}
			if u := strings.SplitN(s.User, ":", 2)[0]; u == "" || u == "0" || u == "root" {
				t.Errorf("user = %q, want a non-root uid", s.User)
			}
			if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
				t.Errorf("security_opt %v lacks no-new-privileges:true", s.SecurityOpt)
			}
			if !slices.Contains(s.CapDrop, "ALL") {
				t.Errorf("cap_drop %v lacks ALL", s.CapDrop)
			}
		})
	}
}

func TestComposeGateway(t *testing.T) {
	c := loadCompose(t)
	g := c.Services["cardgate"]
	if g.Build == nil || g.Build.Target != "gateway" {
		t.Errorf("cardgate build = %+v, want the Dockerfile's gateway stage", g.Build)
	}
	var writable []string
	for _, v := range g.Volumes {
		if !strings.HasSuffix(v, ":ro") {
			writable = append(writable, v)
		}
	}
	for dep, want := range map[string]string{
		"init":       "service_completed_successfully",
		"vault-init": "service_completed_successfully",
		"redis":      "service_healthy",
		"processor":  "service_healthy",
	} {
		if got := g.DependsOn[dep].Condition; got != want {
			t.Errorf("cardgate depends_on %s = %q, want %q", dep, got, want)
		}
	}

	// The configuration file it mounts exists here, parses strictly and
	// validates, and agrees with the rest of the stack.
	cfgPath := ""
	for _, v := range g.Volumes {
		if src, dst, _ := strings.Cut(strings.TrimSuffix(v, ":ro"), ":"); dst == "/etc/cardgate/cardgate.yaml" {
			cfgPath = filepath.Join("..", src)
		}
	}
	if !slices.Equal(g.Command, []string{"serve", "-config", "/etc/cardgate/cardgate.yaml"}) || cfgPath == "" {
		t.Fatalf("cardgate command %v and volumes %v: want serve -config /etc/cardgate/cardgate.yaml mounted from deploy/", g.Command, g.Volumes)
	}
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(raw)
	if err != nil {
		t.Fatalf("config.Parse(%s) = %v", cfgPath, err)
	}
	cfg.Keys.Vault.Auth.RoleID = g.Environment[config.EnvVaultRoleID] // as Load does from the environment
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate(%s) = %v", cfgPath, err)
	}
	// The only writable mount is the audit log's directory.
	if want := []string{"gateway-audit:" + path.Dir(cfg.Audit.File)}; !slices.Equal(writable, want) {
		t.Errorf("cardgate's writable volumes %v, want only %v (audit.file %s)", writable, want, cfg.Audit.File)
	}
	if cfg.Mode != config.ModeProduction {
		t.Errorf("mode %q: the compose gateway runs with the production checks", cfg.Mode)
	}
	if cfg.Store.Backend != config.StoreRedis || !slices.Equal(cfg.Store.Redis.Addrs, []string{"redis:6379"}) {
		t.Errorf("store = %+v, want the compose redis service", cfg.Store)
	}
	if !cfg.Listen.TLS.Enabled() {
		t.Errorf("listen.tls is off: callers must authenticate with mTLS even in compose")
	}
	u, err := url.Parse(cfg.Telemetry.Traces.OTLP.Endpoint)
	if err != nil || cfg.Telemetry.Traces.Exporter != config.ExporterOTLP {
		t.Fatalf("telemetry.traces = %+v, want otlp", cfg.Telemetry.Traces)
	}
	if _, ok := c.Services[u.Hostname()]; !ok {
		t.Errorf("otlp endpoint %s names no compose service", u)
	}
	_, adminPort, err := net.SplitHostPort(cfg.Admin.Addr)
	if err != nil {
		t.Fatalf("admin.addr %q: %v", cfg.Admin.Addr, err)
	}
	if want := []string{"CMD", "/cardgate", "probe", "http://127.0.0.1:" + adminPort + "/readyz"}; !slices.Equal(g.Healthcheck.Test, want) {
		t.Errorf("cardgate healthcheck = %v, want %v", g.Healthcheck.Test, want)
	}
	collector, err := os.ReadFile("otel-collector.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(collector), `"cardgate:`+adminPort+`"`) {
		t.Errorf("otel-collector.yaml does not scrape cardgate:%s", adminPort)
	}
	// Every file the gateway reads comes from the init job's read-only
	// volume, or (Vault's CA and the AppRole secret id) from vault-init's.
	for key, p := range map[string]string{
		"listen.tls.cert_file":      cfg.Listen.TLS.CertFile,
		"listen.tls.key_file":       cfg.Listen.TLS.KeyFile,
		"listen.tls.client_ca_file": cfg.Listen.TLS.ClientCAFile,
		"allowlist.path":            cfg.Allowlist.Path,
		"allowlist.signatures_dir":  cfg.Allowlist.SignaturesDir,
		"allowlist.allowed_signers": cfg.Allowlist.AllowedSigners,
		"egress.ca_file":            cfg.Egress.CAFile,
	} {
		if !strings.HasPrefix(p, "/etc/cardgate/generated/") {
			t.Errorf("%s = %q, want a file in /etc/cardgate/generated/ (the init job's volume)", key, p)
		}
	}
	for key, p := range map[string]string{
		"keys.vault.ca_file":             cfg.Keys.Vault.CAFile,
		"keys.vault.auth.secret_id_file": cfg.Keys.Vault.Auth.SecretIDFile,
	} {
		if !strings.HasPrefix(p, "/etc/cardgate/vault/") || !slices.Contains(g.Volumes, "gateway-vault:/etc/cardgate/vault:ro") {
			t.Errorf("%s = %q, want a file in /etc/cardgate/vault/ (vault-init's gateway-vault volume, read-only)", key, p)
		}
	}
}

func TestComposeSupportServices(t *testing.T) {
	c := loadCompose(t)
	if r := strings.Join(c.Services["redis"].Command, " "); !strings.Contains(r, "--appendonly yes") {
		t.Errorf("redis command %q: want AOF (--appendonly yes)", r)
	}
	if !slices.ContainsFunc(c.Services["redis"].Volumes, func(v string) bool { return strings.HasSuffix(v, ":/data") }) {
		t.Errorf("redis keeps its AOF in no volume")
	}
	if d := c.Services["vault-init"].DependsOn["vault"].Condition; d != "service_healthy" {
		t.Errorf("vault-init depends on vault %q, want service_healthy", d)
	}
	collector, err := os.ReadFile("otel-collector.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var oc struct {
		Service struct {
			Pipelines map[string]struct {
				Receivers []string `yaml:"receivers"`
				Exporters []string `yaml:"exporters"`
			} `yaml:"pipelines"`
		} `yaml:"service"`
	}
	if err := yaml.Unmarshal(collector, &oc); err != nil {
		t.Fatalf("otel-collector.yaml: %v", err)
	}
	if p := oc.Service.Pipelines["traces"]; !slices.Contains(p.Receivers, "otlp") || !slices.Contains(p.Exporters, "debug") {
		t.Errorf("collector traces pipeline %+v, want otlp → debug", p)
	}
	if p := oc.Service.Pipelines["metrics"]; !slices.Contains(p.Receivers, "prometheus") {
		t.Errorf("collector metrics pipeline %+v, want the prometheus scrape", p)
	}
	// Bind-mounted files exist in the repository.
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			if src, _, _ := strings.Cut(v, ":"); strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s mounts volume %q, which is not declared", name, src)
			}
		}
	}
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var stages []string
	lastUser := map[string]string{}
	cur := ""
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			cur = f[len(f)-1]
			stages = append(stages, cur)
		case "USER":
			lastUser[cur] = f[1]
		}
	}
	if len(stages) == 0 || stages[len(stages)-1] != "gateway" {
		t.Fatalf("stages %v: the last (default) stage must be gateway", stages)
	}
	for _, want := range []string{"FROM scratch AS gateway", "CGO_ENABLED=0", "-trimpath"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	for _, st := range []string{"gateway", "tools"} {
		if u := strings.SplitN(lastUser[st], ":", 2)[0]; u == "" || u == "0" || u == "root" {
			t.Errorf("stage %s runs as %q, want a non-root uid", st, lastUser[st])
		}
	}
}

// TestInitScript runs deploy/init.sh as the compose job would, outside
// Docker, and checks that what it writes is what the gateway's compose
// configuration expects: the allowlist verifies under the pinned signers,
// the TLS files chain to their CAs with the right names, and a second run
// changes nothing.
func TestInitScript(t *testing.T) {
	for _, tool := range []string{"bash", "openssl", "ssh-keygen", "date", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (./scripts/test installs it)", tool)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cardgate")
	if out, err := exec.Command("go", "build", "-tags", "grpcnotrace", "-o", bin, "../cmd/cardgate").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := map[string]string{}
	env := append(os.Environ(), "CARDGATE="+bin)
	for _, d := range []string{"gateway", "processor", "client", "probe"} {
		out[d] = filepath.Join(dir, d)
		if err := os.Mkdir(out[d], 0o700); err != nil {
			t.Fatal(err)
		}
		env = append(env, strings.ToUpper(d)+"_DIR="+out[d])
	}
	run := func() string {
		cmd := exec.Command("bash", "init.sh")
		cmd.Env = env
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("init.sh: %v\n%s", err, b)
		}
		return string(b)
	}
	run()
	first, err := os.ReadFile(filepath.Join(out["gateway"], "allowlist.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if again := run(); !strings.Contains(again, "already initialized") {
		t.Errorf("second run said %q, want it to change nothing", again)
	}
	if second, _ := os.ReadFile(filepath.Join(out["gateway"], "allowlist.yaml")); string(second) != string(first) {
		t.Errorf("a second run rewrote the allowlist")
	}

	// The compose configuration, pointed at the generated files.
	raw, err := os.ReadFile("cardgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(strings.ReplaceAll(string(raw), "/etc/cardgate/generated/", out["gateway"]+"/")))
	if err != nil {
		t.Fatal(err)
	}
	signers, err := os.ReadFile(cfg.Allowlist.AllowedSigners)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(cfg.Allowlist.Path)
	if err != nil {
		t.Fatal(err)
	}
	sigFiles, _ := filepath.Glob(filepath.Join(cfg.Allowlist.SignaturesDir, "*.sig"))
	var sigs []allowlist.Signature
	for _, f := range sigFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, allowlist.Signature{Name: filepath.Base(f), Armor: b})
	}
	al, err := allowlist.Verify(doc, sigs, allowlist.Policy{
		AllowedSigners: signers,
		Threshold:      cfg.Allowlist.Threshold,
		Environment:    cfg.Environment,
		MaxValidity:    cfg.Allowlist.MaxValidity,
	})
	if err != nil {
		t.Fatalf("the generated allowlist does not verify under the compose configuration: %v", err)
	}
	if al.Doc.Version != 1 || len(al.Doc.Destinations) != 1 {
		t.Fatalf("allowlist version %d with %d destinations, want version 1 with the demo destination", al.Doc.Version, len(al.Doc.Destinations))
	}

	if _, err := tls.LoadX509KeyPair(cfg.Listen.TLS.CertFile, cfg.Listen.TLS.KeyFile); err != nil {
		t.Errorf("gateway key pair: %v", err)
	}
	verify := func(name, certFile, caFile string, usage x509.ExtKeyUsage, dns string) *x509.Certificate {
		t.Helper()
		cert := readCert(t, certFile)
		roots := x509.NewCertPool()
		roots.AddCert(readCert(t, caFile))
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: dns, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("%s certificate: %v", name, err)
		}
		return cert
	}
	verify("gateway", cfg.Listen.TLS.CertFile, filepath.Join(out["client"], "server-ca.pem"), x509.ExtKeyUsageServerAuth, "cardgate")
	verify("processor", filepath.Join(out["processor"], "processor.crt"), cfg.Egress.CAFile, x509.ExtKeyUsageServerAuth, "processor")
	client := verify("caller", filepath.Join(out["client"], "client.crt"), cfg.Listen.TLS.ClientCAFile, x509.ExtKeyUsageClientAuth, "")
	if len(client.URIs) != 1 || !slices.Contains(al.Doc.Destinations[0].Callers, client.URIs[0].String()) {
		t.Errorf("caller certificate URIs %v are not among the demo destination's callers %v", client.URIs, al.Doc.Destinations[0].Callers)
	}
	for _, f := range []string{cfg.Listen.TLS.KeyFile, filepath.Join(out["processor"], "processor.key")} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", f, fi.Mode().Perm(), err)
		}
	}
	if fi, err := os.Stat(filepath.Join(out["probe"], "cardgate")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("the probe binary was not copied for the collector's healthcheck: %v", err)
	}
	if entries, _ := os.ReadDir(out["processor"]); len(entries) != 2 {
		t.Errorf("the processor's volume holds %d files, want only its certificate and key", len(entries))
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

package deploy

import (
	"fmt"
	"net"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/cardgate/cardgate/config"
)

// rendered is one overlay, rendered with the kustomize Go API (what
// `kubectl kustomize` runs) and decoded strictly into k8s.io/api types.
type rendered struct {
	namespaces []corev1.Namespace
	accounts   []corev1.ServiceAccount
	services   []corev1.Service
	configMaps map[string]corev1.ConfigMap // by name without hash suffix
	deploy     *appsv1.Deployment
	pdb        *policyv1.PodDisruptionBudget
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	policies   map[string]networkingv1.NetworkPolicy
	cfg        config.Config
}

func render(t *testing.T, overlay string) rendered {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join("kubernetes", "overlays", overlay))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", overlay, err)
	}
	r := rendered{configMaps: map[string]corev1.ConfigMap{}, policies: map[string]networkingv1.NetworkPolicy{}}
	for _, res := range rm.Resources() {
		raw, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		id := res.GetKind() + "/" + res.GetName()
		strict := func(v any) {
			t.Helper()
			if err := yaml.UnmarshalStrict(raw, v); err != nil {
				t.Fatalf("%s: %s does not decode strictly into its k8s.io/api type: %v", overlay, id, err)
			}
		}
		if ns := res.GetNamespace(); res.GetKind() != "Namespace" && ns != "cardgate" {
			t.Errorf("%s: %s is in namespace %q, want cardgate", overlay, id, ns)
		}
		switch res.GetKind() {
		case "Namespace":
			var v corev1.Namespace
			strict(&v)
			r.namespaces = append(r.namespaces, v)
		case "ServiceAccount":
			var v corev1.ServiceAccount
			strict(&v)
			r.accounts = append(r.accounts, v)
		case "Service":
			var v corev1.Service
			strict(&v)
			r.services = append(r.services, v)
		case "ConfigMap":
			var v corev1.ConfigMap
			strict(&v)
			name := v.Name
			if i := strings.LastIndex(name, "-"); i > 0 && !strings.HasPrefix(name, "cardgate-allowlist") {
				name = name[:i] // the generator's hash suffix
			}
			r.configMaps[name] = v
		case "Deployment":
			var v appsv1.Deployment
			strict(&v)
			if r.deploy != nil {
				t.Fatalf("%s: two Deployments", overlay)
			}
			r.deploy = &v
		case "PodDisruptionBudget":
			var v policyv1.PodDisruptionBudget
			strict(&v)
			r.pdb = &v
		case "HorizontalPodAutoscaler":
			var v autoscalingv2.HorizontalPodAutoscaler
			strict(&v)
			r.hpa = &v
		case "NetworkPolicy":
			var v networkingv1.NetworkPolicy
			strict(&v)
			r.policies[v.Name] = v
		default:
			t.Fatalf("%s: unexpected object %s (add it to the test with its checks)", overlay, id)
		}
	}
	if r.deploy == nil || r.pdb == nil || r.hpa == nil {
		t.Fatalf("%s: want a Deployment, a PodDisruptionBudget and a HorizontalPodAutoscaler", overlay)
	}
	cm, ok := r.configMaps["cardgate-config"]
	if !ok {
		t.Fatalf("%s: no cardgate-config ConfigMap", overlay)
	}
	cfg, err := config.Parse([]byte(cm.Data["cardgate.yaml"]))
	if err != nil {
		t.Fatalf("%s: cardgate.yaml: %v", overlay, err)
	}
	// Validate as the gateway would with its Secrets in the environment.
	cfg.Keys.Vault.Auth.RoleID = "role-id-from-the-secret"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: cardgate.yaml does not validate: %v", overlay, err)
	}
	r.cfg = cfg
	return r
}

var overlays = []string{"dev", "production"}

func TestKubernetesNamespaceAndPolicies(t *testing.T) {
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			r := render(t, overlay)
			if len(r.namespaces) != 1 || r.namespaces[0].Name != "cardgate" {
				t.Fatalf("namespaces %v, want cardgate", r.namespaces)
			}
			for _, mode := range []string{"enforce", "audit", "warn"} {
				if got := r.namespaces[0].Labels["pod-security.kubernetes.io/"+mode]; got != "restricted" {
					t.Errorf("pod-security %s = %q, want restricted", mode, got)
				}
			}
			for _, sa := range r.accounts {
				if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
					t.Errorf("ServiceAccount %s mounts its token", sa.Name)
				}
			}

			deny, ok := r.policies["default-deny"]
			if !ok || len(deny.Spec.PodSelector.MatchLabels)+len(deny.Spec.PodSelector.MatchExpressions) != 0 ||
				!slices.Equal(deny.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) ||
				len(deny.Spec.Ingress)+len(deny.Spec.Egress) != 0 {
				t.Errorf("default-deny = %+v, want every pod, Ingress and Egress, no rule", deny.Spec)
			}
			in, ok := r.policies["cardgate-ingress"]
			if !ok || !slices.Equal(in.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) || len(in.Spec.Egress) > 0 {
				t.Fatalf("cardgate-ingress = %+v, want an ingress-only policy", in.Spec)
			}
			_, adminPort, _ := net.SplitHostPort(r.cfg.Admin.Addr)
			_, apiPort, _ := net.SplitHostPort(r.cfg.Listen.Addr)
			for _, rule := range in.Spec.Ingress {
				if len(rule.From) == 0 || len(rule.Ports) == 0 {
					t.Errorf("ingress rule %+v allows every source or port", rule)
				}
				for _, f := range rule.From {
					if f.IPBlock != nil || f.NamespaceSelector == nil || len(f.NamespaceSelector.MatchLabels)+len(f.NamespaceSelector.MatchExpressions) == 0 {
						t.Errorf("ingress peer %+v: want a non-empty namespace selector (declared callers or monitoring)", f)
					}
				}
				for _, p := range rule.Ports {
					if p.Port == nil || (p.Port.String() != apiPort && p.Port.String() != adminPort) {
						t.Errorf("ingress port %v is neither the API (%s) nor the admin (%s) port", p.Port, apiPort, adminPort)
					}
				}
			}
			egress, ok := r.policies["cardgate-egress"]
			if !ok || !slices.Equal(egress.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}) ||
				egress.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != "cardgate" {
				t.Fatalf("cardgate-egress = %+v, want the generated egress policy for the gateway's pods", egress.Spec)
			}
			for name, np := range r.policies {
				for _, rule := range np.Spec.Egress {
					if len(rule.To) == 0 || len(rule.Ports) == 0 {
						t.Errorf("%s: egress rule %+v allows every peer or port", name, rule)
					}
					for _, to := range rule.To {
						if to.IPBlock != nil && strings.HasSuffix(to.IPBlock.CIDR, "/0") {
							t.Errorf("%s: egress to %s", name, to.IPBlock.CIDR)
						}
					}
				}
				if name != "default-deny" && name != "cardgate-ingress" && name != "cardgate-egress" {
					t.Errorf("unexpected NetworkPolicy %s: every allow must be reviewed here", name)
				}
			}
		})
	}
}

func TestKubernetesDeployment(t *testing.T) {
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			r := render(t, overlay)
			d := r.deploy
			ps := d.Spec.Template.Spec
			if ps.HostNetwork || ps.HostPID || ps.HostIPC {
				t.Errorf("the pod shares the host's namespaces")
			}
			if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
				t.Errorf("automountServiceAccountToken is not false")
			}
			psc := ps.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", psc)
			}
			if len(ps.Containers) != 1 || len(ps.InitContainers) > 0 {
				t.Fatalf("want one container, got %d (+%d init)", len(ps.Containers), len(ps.InitContainers))
			}
			c := ps.Containers[0]
			sc := c.SecurityContext
			switch {
			case sc == nil:
				t.Fatal("the container has no securityContext")
			case sc.Privileged != nil && *sc.Privileged:
				t.Error("privileged")
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Error("allowPrivilegeEscalation is not false")
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				t.Error("readOnlyRootFilesystem is not true")
			case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0:
				t.Error("the container may run as root")
			case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
				t.Errorf("capabilities %+v, want drop ALL and add none", sc.Capabilities)
			case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
				t.Error("the container's seccomp profile is not RuntimeDefault")
			}
			if !slices.Equal(c.Args, []string{"serve", "-config", "/etc/cardgate/config/cardgate.yaml"}) {
				t.Errorf("args %v", c.Args)
			}
			if overlay == "production" && !strings.Contains(c.Image, "@sha256:") {
				t.Errorf("production image %q is not pinned by digest", c.Image)
			}

			// Memory: requests equal limits (the Go soft limit is 3/4 of
			// the limit, README "Configuration"); the README's measured
			// peak RSS under load (80 MB) fits under that soft limit.
			req, lim := c.Resources.Requests.Memory(), c.Resources.Limits.Memory()
			if lim.IsZero() || req.Cmp(*lim) != 0 {
				t.Errorf("memory request %v, limit %v: want a limit, and the request equal to it", req, lim)
			}
			if soft := lim.Value() * 3 / 4; soft < 128<<20 {
				t.Errorf("memory limit %v leaves a Go soft limit of %d MiB, under the measured peak RSS with headroom (128 MiB)", lim, soft>>20)
			}
			if c.Resources.Requests.Cpu().IsZero() {
				t.Error("no CPU request: the HPA's utilization target needs one")
			}

			// Probes on the admin listener, which serves them without mTLS.
			_, adminPort, err := net.SplitHostPort(r.cfg.Admin.Addr)
			if err != nil || !strings.HasPrefix(r.cfg.Admin.Addr, "0.0.0.0:") {
				t.Fatalf("admin.addr %q: the kubelet probes the pod IP; bind 0.0.0.0", r.cfg.Admin.Addr)
			}
			ports := map[string]string{}
			for _, p := range c.Ports {
				ports[p.Name] = fmt.Sprint(p.ContainerPort)
			}
			_, apiPort, _ := net.SplitHostPort(r.cfg.Listen.Addr)
			if ports["admin"] != adminPort || ports["api"] != apiPort {
				t.Errorf("container ports %v, want api %s and admin %s from the configuration", ports, apiPort, adminPort)
			}
			for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
				want := "/healthz"
				if name == "readiness" {
					want = "/readyz"
				}
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port.String() != "admin" || p.HTTPGet.Scheme == corev1.URISchemeHTTPS {
					t.Errorf("%s probe %+v, want HTTP GET %s on the admin port", name, p, want)
				}
			}

			// Shutdown: the kubelet waits longer than preStop + the drain.
			pre := 0
			if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
				pre = int(c.Lifecycle.PreStop.Sleep.Seconds)
			}
			drain := r.cfg.Listen.ShutdownTimeout
			grace := time.Duration(0)
			if ps.TerminationGracePeriodSeconds != nil {
				grace = time.Duration(*ps.TerminationGracePeriodSeconds) * time.Second
			}
			if grace <= drain+time.Duration(pre)*time.Second {
				t.Errorf("terminationGracePeriodSeconds %v <= preStop %ds + listen.shutdown_timeout %v: the kubelet would kill a draining gateway", grace, pre, drain)
			}
			if pre == 0 {
				t.Error("no preStop sleep: the drain would start while endpoints still route to the pod")
			}
			if s := d.Spec.Strategy.RollingUpdate; s == nil || s.MaxUnavailable == nil || s.MaxUnavailable.IntValue() != 0 {
				t.Error("a rollout may take a ready pod away before its successor is ready (maxUnavailable != 0)")
			}

			// Spread: never two replicas on one node in production.
			aa := ps.Affinity
			if aa == nil || aa.PodAntiAffinity == nil {
				t.Fatal("no pod anti-affinity")
			}
			onHost := func(terms []corev1.PodAffinityTerm) bool {
				return slices.ContainsFunc(terms, func(p corev1.PodAffinityTerm) bool {
					return p.TopologyKey == "kubernetes.io/hostname" && p.LabelSelector != nil && p.LabelSelector.MatchLabels["app.kubernetes.io/name"] == "cardgate"
				})
			}
			var preferred []corev1.PodAffinityTerm
			for _, w := range aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
				preferred = append(preferred, w.PodAffinityTerm)
			}
			if overlay == "production" && !onHost(aa.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) {
				t.Error("production: replicas may share a node (want required anti-affinity on kubernetes.io/hostname)")
			}
			if !onHost(aa.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) && !onHost(preferred) {
				t.Error("no anti-affinity on kubernetes.io/hostname at all")
			}

			// PDB and HPA agree with the Deployment.
			sel := d.Spec.Selector.MatchLabels
			if r.pdb.Spec.Selector == nil || !equalMaps(r.pdb.Spec.Selector.MatchLabels, sel) {
				t.Errorf("the PDB selects %v, the Deployment %v", r.pdb.Spec.Selector, sel)
			}
			if r.hpa.Spec.ScaleTargetRef.Kind != "Deployment" || r.hpa.Spec.ScaleTargetRef.Name != d.Name {
				t.Errorf("the HPA scales %+v", r.hpa.Spec.ScaleTargetRef)
			}
			if r.hpa.Spec.MinReplicas == nil || *r.hpa.Spec.MinReplicas > r.hpa.Spec.MaxReplicas {
				t.Errorf("HPA min %v max %d", r.hpa.Spec.MinReplicas, r.hpa.Spec.MaxReplicas)
			}
			if overlay == "production" {
				if r.pdb.Spec.MinAvailable == nil || r.hpa.Spec.MinReplicas == nil || int32(r.pdb.Spec.MinAvailable.IntValue()) >= *r.hpa.Spec.MinReplicas || r.pdb.Spec.MinAvailable.IntValue() < 2 {
					t.Errorf("PDB minAvailable %v with HPA minReplicas %v: want at least 2, and below the minimum so that a drain can proceed", r.pdb.Spec.MinAvailable, r.hpa.Spec.MinReplicas)
				}
			}
			checkMounts(t, r)
			checkBackends(t, overlay, r.cfg)
		})
	}
}

// checkMounts: every file the configuration names lies under a read-only
// mount of the right source, the allowlist is mounted without subPath
// (a subPath mount never sees the kubelet's ..data swap) and the only
// writable volume is the audit emptyDir.
func checkMounts(t *testing.T, r rendered) {
	t.Helper()
	ps := r.deploy.Spec.Template.Spec
	c := ps.Containers[0]
	vols := map[string]corev1.Volume{}
	for _, v := range ps.Volumes {
		vols[v.Name] = v
	}
	mountOf := func(file string) (corev1.VolumeMount, bool) {
		for _, m := range c.VolumeMounts {
			if strings.HasPrefix(file, m.MountPath+"/") || file == m.MountPath {
				return m, true
			}
		}
		return corev1.VolumeMount{}, false
	}
	for _, m := range c.VolumeMounts {
		v := vols[m.Name]
		if m.SubPath != "" || m.SubPathExpr != "" {
			t.Errorf("mount %s uses subPath: it would never see an update", m.Name)
		}
		if v.EmptyDir != nil {
			if m.MountPath != path.Dir(r.cfg.Audit.File) {
				t.Errorf("writable emptyDir %s at %s is not the audit file's directory", m.Name, m.MountPath)
			}
			continue
		}
		if !m.ReadOnly {
			t.Errorf("mount %s is writable", m.Name)
		}
		if v.HostPath != nil {
			t.Errorf("volume %s is a hostPath", v.Name)
		}
	}
	for key, want := range map[string]string{
		r.cfg.Allowlist.Path:               "configMap:cardgate-allowlist",
		r.cfg.Allowlist.SignaturesDir:      "configMap:cardgate-allowlist",
		r.cfg.Allowlist.AllowedSigners:     "configMap:cardgate-allowed-signers",
		r.cfg.Listen.TLS.CertFile:          "secret:cardgate-tls",
		r.cfg.Listen.TLS.KeyFile:           "secret:cardgate-tls",
		r.cfg.Listen.TLS.ClientCAFile:      "configMap:cardgate-callers-ca",
		r.cfg.Keys.Vault.CAFile:            "configMap:cardgate-vault-ca",
		r.cfg.Keys.Vault.Auth.SecretIDFile: "secret:cardgate-vault-approle",
	} {
		m, ok := mountOf(key)
		if !ok {
			t.Errorf("%s is under no mount", key)
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(key, m.MountPath), "/")
		if got := volumeSource(vols[m.Name], rel); !strings.HasPrefix(got, want) {
			t.Errorf("%s comes from %q, want %s", key, got, want)
		}
	}
	if r.cfg.Allowlist.SignaturesDir != path.Dir(r.cfg.Allowlist.Path) {
		t.Errorf("signatures_dir %s is not the allowlist's directory: the ConfigMap's document and signatures must swap together", r.cfg.Allowlist.SignaturesDir)
	}
}

// volumeSource names where rel (a file in volume v, "" for the
// directory) comes from: "configMap:NAME" or "secret:NAME".
func volumeSource(v corev1.Volume, rel string) string {
	switch {
	case v.ConfigMap != nil:
		return "configMap:" + v.ConfigMap.Name
	case v.Secret != nil:
		return "secret:" + v.Secret.SecretName
	case v.Projected != nil:
		for _, s := range v.Projected.Sources {
			switch {
			case s.Secret != nil && slices.ContainsFunc(s.Secret.Items, func(k corev1.KeyToPath) bool { return k.Path == rel }):
				return "secret:" + s.Secret.Name
			case s.ConfigMap != nil && slices.ContainsFunc(s.ConfigMap.Items, func(k corev1.KeyToPath) bool { return k.Path == rel }):
				return "configMap:" + s.ConfigMap.Name
			}
		}
	}
	return "?"
}

// checkBackends: keys in Vault Transit outside the cluster, with AppRole
// (what vaultclient supports besides cert and token), verified TLS, and
// Redis by the addresses the mode needs.
func checkBackends(t *testing.T, overlay string, cfg config.Config) {
	t.Helper()
	v := cfg.Keys.Vault
	if cfg.Keys.Backend != config.KeysVault || !strings.HasPrefix(v.Address, "https://") || v.CAFile == "" {
		t.Errorf("keys = %s at %q (CA %q), want Vault Transit over verified https", cfg.Keys.Backend, v.Address, v.CAFile)
	}
	if strings.Contains(v.Address, ".svc") || strings.Contains(v.Address, "cluster.local") {
		t.Errorf("keys.vault.address %s is inside the cluster; the keys live on other machines", v.Address)
	}
	if v.Auth.Method != config.VaultAuthAppRole || v.Auth.RoleID != "role-id-from-the-secret" && v.Auth.RoleID != "" {
		t.Errorf("vault auth %q: want approle, the role id from the environment", v.Auth.Method)
	}
	if v.Key != config.DefaultVaultKey || v.FingerprintKey != config.DefaultVaultFingerprintKey {
		t.Errorf("vault keys %s/%s, want the defaults the compose and Vault setup create", v.Key, v.FingerprintKey)
	}
	if cfg.Store.Backend != config.StoreRedis || cfg.Audit.RedisStream == "" || cfg.Audit.File == "" {
		t.Errorf("store %s, audit %+v: want Redis, with the audit file mirrored to a stream", cfg.Store.Backend, cfg.Audit)
	}
	if overlay == "production" && (cfg.Store.Redis.Mode != "sentinel" && cfg.Store.Redis.Mode != "cluster" || len(cfg.Store.Redis.Addrs) < 3) {
		t.Errorf("production redis %s %v: want Sentinel or Cluster with at least three addresses", cfg.Store.Redis.Mode, cfg.Store.Redis.Addrs)
	}
	if cfg.Mode != config.ModeProduction || !cfg.Listen.TLS.Enabled() {
		t.Errorf("mode %s, listen.tls %+v: want production mode and mTLS", cfg.Mode, cfg.Listen.TLS)
	}
	if overlay == "production" && cfg.Allowlist.Threshold < 2 {
		t.Errorf("production threshold %d: one auditor alone must not widen the allowlist", cfg.Allowlist.Threshold)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestGatewayBinaryHasNoKubernetesDeps: the k8s.io, kustomize and
// compose-spec modules are for these tests only.
func TestGatewayBinaryHasNoKubernetesDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../cmd/cardgate").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "k8s.io/") || strings.HasPrefix(dep, "sigs.k8s.io/") || strings.HasPrefix(dep, "github.com/compose-spec/") {
			t.Errorf("the gateway binary depends on %s", dep)
		}
	}
}

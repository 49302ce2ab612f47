package egresspolicy

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/cardgate/cardgate/allowlist"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// verified signs testdata/name with a fresh key and verifies it, as
// `cardgate allowlist egress-policy` does.
func verified(t *testing.T, name string) *allowlist.Allowlist {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	armor, err := allowlist.Sign(raw, s)
	if err != nil {
		t.Fatal(err)
	}
	signers := fmt.Sprintf("auditor@example.com %s", ssh.MarshalAuthorizedKey(s.PublicKey()))
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	a, err := allowlist.Verify(raw, []allowlist.Signature{{Name: "auditor.sig", Armor: armor}}, allowlist.Policy{
		AllowedSigners: []byte(signers), Threshold: 1, Environment: "test", Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func peers(t *testing.T) []Peer {
	t.Helper()
	var out []Peer
	for _, s := range [][2]string{
		{KindKeyService, "cidr=198.51.100.20/32,host=vault.keys.example,port=8200"},
		{KindRedis, "namespace=cardgate-data,pod=app.kubernetes.io/name=redis,port=26379,port=6379"},
		{KindDNS, "namespace=kube-system,pod=k8s-app=kube-dns,port=53"},
		{KindTelemetry, "namespace=observability,pod=app=otel-collector,port=4318"},
	} {
		p, err := ParsePeer(s[0], s[1])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", name, diff)
	}
}

// TestNetworkPolicy decodes the output strictly into k8s.io/api's
// NetworkPolicy and checks that every entry is exactly one rule, derived
// here independently of the generator, and that nothing else is allowed.
func TestNetworkPolicy(t *testing.T) {
	for _, tc := range []struct {
		name, fixture, golden string
		omit                  bool
		omitted               []string
	}{
		{name: "addresses", fixture: "addresses.yaml", golden: "addresses.networkpolicy.yaml"},
		{name: "names omitted", fixture: "allowlist.yaml", golden: "allowlist.networkpolicy.yaml", omit: true, omitted: []string{"acme-charges", "acme-wild"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := verified(t, tc.fixture)
			out, err := Generate(a, Options{Format: FormatKubernetes, Namespace: "cardgate", Peers: peers(t), OmitUnexpressible: tc.omit})
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, out)
			var np networkingv1.NetworkPolicy
			if err := yaml.UnmarshalStrict(out, &np); err != nil {
				t.Fatalf("strict decode into networking/v1 NetworkPolicy: %v", err)
			}
			if np.APIVersion != "networking.k8s.io/v1" || np.Kind != "NetworkPolicy" || np.Namespace != "cardgate" {
				t.Errorf("type %s %s in %q", np.APIVersion, np.Kind, np.Namespace)
			}
			if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}) {
				t.Errorf("policyTypes = %v, want [Egress]: without it nothing is denied", np.Spec.PolicyTypes)
			}
			if diff := cmp.Diff(map[string]string{"app.kubernetes.io/name": "cardgate"}, np.Spec.PodSelector.MatchLabels); diff != "" || len(np.Spec.PodSelector.MatchExpressions) > 0 {
				t.Errorf("podSelector (-want +got):\n%s", diff)
			}
			if np.Annotations[AnnotationSHA256] != a.SHA256 {
				t.Errorf("annotation %s = %q, want %s", AnnotationSHA256, np.Annotations[AnnotationSHA256], a.SHA256)
			}
			var got []string
			for _, r := range np.Spec.Egress {
				got = append(got, describeK8s(t, r))
			}
			want := expectedK8s(a, tc.omitted)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("egress rules (-want +got):\n%s", diff)
			}
			for _, id := range tc.omitted {
				if !strings.Contains(string(out), id) {
					t.Errorf("the header does not name the omitted entry %s", id)
				}
			}
		})
	}
}

// describeK8s renders a rule as "peers -> ports", refusing the forms that
// would allow more than they name.
func describeK8s(t *testing.T, r networkingv1.NetworkPolicyEgressRule) string {
	t.Helper()
	if len(r.To) == 0 || len(r.Ports) == 0 {
		t.Fatalf("rule %+v: an empty to or ports list allows every peer or port", r)
	}
	var to, ports []string
	for _, p := range r.To {
		switch {
		case p.IPBlock != nil:
			if len(p.IPBlock.Except) > 0 || p.NamespaceSelector != nil || p.PodSelector != nil {
				t.Fatalf("peer %+v mixes forms", p)
			}
			if strings.HasSuffix(p.IPBlock.CIDR, "/0") {
				t.Fatalf("ipBlock %s allows everything", p.IPBlock.CIDR)
			}
			to = append(to, p.IPBlock.CIDR)
		default:
			if p.NamespaceSelector == nil || p.PodSelector == nil || len(p.NamespaceSelector.MatchLabels) == 0 || len(p.PodSelector.MatchLabels) == 0 {
				t.Fatalf("peer %+v: an empty selector selects every namespace or pod", p)
			}
			to = append(to, fmt.Sprintf("ns:%v pods:%v", p.NamespaceSelector.MatchLabels, p.PodSelector.MatchLabels))
		}
	}
	for _, p := range r.Ports {
		if p.Port == nil || p.EndPort != nil || p.Protocol == nil {
			t.Fatalf("port %+v: want one explicit port and protocol", p)
		}
		ports = append(ports, fmt.Sprintf("%s/%s", *p.Protocol, p.Port.String()))
	}
	return strings.Join(to, " ") + " -> " + strings.Join(ports, " ")
}

// expectedK8s is the rule list the document and peers() call for.
func expectedK8s(a *allowlist.Allowlist, omitted []string) []string {
	ds := slices.Clone(a.Doc.Destinations)
	slices.SortFunc(ds, func(x, y allowlist.Destination) int { return strings.Compare(x.ID, y.ID) })
	var out []string
	for _, d := range ds {
		if slices.Contains(omitted, d.ID) {
			continue
		}
		var to []string
		switch {
		case strings.Contains(d.Host, ":"):
			to = []string{d.Host + "/128"}
		case strings.Trim(d.Host, "0123456789.") == "":
			to = []string{d.Host + "/32"}
		default:
			for _, p := range d.UnsafeAllowRanges {
				to = append(to, p.String())
			}
			slices.Sort(to)
		}
		out = append(out, fmt.Sprintf("%s -> TCP/%d", strings.Join(to, " "), d.Port))
	}
	return append(out,
		"ns:map[kubernetes.io/metadata.name:kube-system] pods:map[k8s-app:kube-dns] -> UDP/53 TCP/53",
		"ns:map[kubernetes.io/metadata.name:cardgate-data] pods:map[app.kubernetes.io/name:redis] -> TCP/6379 TCP/26379",
		"198.51.100.20/32 -> TCP/8200",
		"ns:map[kubernetes.io/metadata.name:observability] pods:map[app:otel-collector] -> TCP/4318",
	)
}

func TestNetworkPolicyRefusesNames(t *testing.T) {
	_, err := Generate(verified(t, "allowlist.yaml"), Options{Format: FormatKubernetes, Namespace: "cardgate", Peers: peers(t)})
	var ue *UnexpressibleError
	if !errors.As(err, &ue) {
		t.Fatalf("Generate = %v, want an *UnexpressibleError", err)
	}
	if diff := cmp.Diff([]string{"acme-charges", "acme-wild"}, ue.IDs); diff != "" {
		t.Errorf("unexpressible entries (-want +got):\n%s", diff)
	}
}

func TestDeterministic(t *testing.T) {
	a := verified(t, "allowlist.yaml")
	ps := peers(t)
	first, err := Generate(a, Options{Format: FormatCilium, Namespace: "cardgate", Peers: ps})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		slices.Reverse(ps)
		rev := *a
		rev.Doc.Destinations = slices.Clone(a.Doc.Destinations)
		if i%2 == 0 {
			slices.Reverse(rev.Doc.Destinations)
		}
		again, err := Generate(&rev, Options{Format: FormatCilium, Namespace: "cardgate", Peers: ps})
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(first) {
			t.Fatalf("run %d differs from the first:\n%s", i, cmp.Diff(string(first), string(again)))
		}
	}
}

func TestRefusals(t *testing.T) {
	a := verified(t, "addresses.yaml")
	unsigned := *a
	unsigned.Signatures = nil
	altered := *a
	altered.Raw = append([]byte("# edited\n"), a.Raw...)
	dnsOnlyHost, err := ParsePeer(KindRedis, "host=redis.example,port=6379")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		a    *allowlist.Allowlist
		o    Options
		want string
	}{
		{"nil", nil, Options{Format: FormatKubernetes, Namespace: "x"}, "signature verification"},
		{"no counted signature", &unsigned, Options{Format: FormatKubernetes, Namespace: "x"}, "signature verification"},
		{"bytes differ from the hash", &altered, Options{Format: FormatKubernetes, Namespace: "x"}, "signature verification"},
		{"unknown format", a, Options{Format: "calico", Namespace: "x"}, "format"},
		{"no namespace", a, Options{Format: FormatKubernetes}, "namespace"},
		{"empty pod selector", a, Options{Format: FormatKubernetes, Namespace: "x", PodLabels: map[string]string{}}, "every pod"},
		{"host-only peer in a NetworkPolicy", a, Options{Format: FormatKubernetes, Namespace: "x", Peers: []Peer{dnsOnlyHost}}, "cannot express"},
		{"cilium names without dns", verified(t, "allowlist.yaml"), Options{Format: FormatCilium, Namespace: "x"}, "no dns peer"},
		{"peer without ports", a, Options{Format: FormatKubernetes, Namespace: "x", Peers: []Peer{{Kind: KindRedis, Namespace: "r"}}}, "no port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Generate(tc.a, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Generate = %q, %v; want an error about %q", out, err, tc.want)
			}
		})
	}
}

func TestParsePeer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" means accepted
	}{
		{"cidr=10.0.0.0/8,port=6379", ""},
		{"namespace=data,pod=app=redis,port=6379,port=26379", ""},
		{"host=vault.example,port=8200", ""},
		{"cidr=10.0.0.1/8,port=1", "network address"},
		{"cidr=0.0.0.0/0,port=1", "non-zero"},
		{"namespace=data", "no port"},
		{"port=6379", "would allow every address"},
		{"port=0,cidr=10.0.0.0/8", "port"},
		{"port=06379,cidr=10.0.0.0/8", "port"},
		{"host=*.example,port=1", "only a-z"},
		{"host=Vault.example,port=1", "lowercase"},
		{"pod=app,port=1", "LABEL=VALUE"},
		{"zone=a,port=1", "unknown key"},
		{"namespace=a,namespace=b,port=1", "twice"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParsePeer(KindRedis, tc.in)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("ParsePeer(%q) = %v, want %q", tc.in, err, tc.want)
			}
		})
	}
}

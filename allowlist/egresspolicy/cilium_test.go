package egresspolicy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/cardgate/cardgate/allowlist"
)

// The Cilium Go types (github.com/cilium/cilium/pkg/policy/api) are a
// heavy dependency, so the output is decoded, with unknown fields refused,
// into this copy of the CiliumNetworkPolicy CRD schema (cilium.io/v2,
// as documented in Cilium's policy language reference and the CRD's
// openAPIV3Schema): every field a rule may carry is declared, so that a
// field outside the schema fails the decode and a field inside it that
// this generator must not emit (toEntities, toCIDRSet, egressDeny, …) is
// caught by the checks below.
type cnp struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec  *cnpRule  `json:"spec"`
	Specs []cnpRule `json:"specs"`
}

type cnpRule struct {
	EndpointSelector  *cnpSelector     `json:"endpointSelector"`
	NodeSelector      *cnpSelector     `json:"nodeSelector"`
	Ingress           []map[string]any `json:"ingress"`
	IngressDeny       []map[string]any `json:"ingressDeny"`
	Egress            []cnpEgress      `json:"egress"`
	EgressDeny        []map[string]any `json:"egressDeny"`
	Labels            []map[string]any `json:"labels"`
	EnableDefaultDeny map[string]any   `json:"enableDefaultDeny"`
	Description       string           `json:"description"`
	Log               map[string]any   `json:"log"`
}

type cnpSelector struct {
	MatchLabels      map[string]string `json:"matchLabels"`
	MatchExpressions []map[string]any  `json:"matchExpressions"`
}

type cnpEgress struct {
	ToEndpoints    []cnpSelector    `json:"toEndpoints"`
	ToRequires     []cnpSelector    `json:"toRequires"`
	ToCIDR         []string         `json:"toCIDR"`
	ToCIDRSet      []map[string]any `json:"toCIDRSet"`
	ToEntities     []string         `json:"toEntities"`
	ToServices     []map[string]any `json:"toServices"`
	ToGroups       []map[string]any `json:"toGroups"`
	ToNodes        []cnpSelector    `json:"toNodes"`
	ToFQDNs        []cnpFQDN        `json:"toFQDNs"`
	ToPorts        []cnpPortRule    `json:"toPorts"`
	ICMPs          []map[string]any `json:"icmps"`
	Authentication map[string]any   `json:"authentication"`
}

type cnpFQDN struct {
	MatchName    string `json:"matchName"`
	MatchPattern string `json:"matchPattern"`
}

type cnpPortRule struct {
	Ports          []cnpPort      `json:"ports"`
	TerminatingTLS map[string]any `json:"terminatingTLS"`
	OriginatingTLS map[string]any `json:"originatingTLS"`
	ServerNames    []string       `json:"serverNames"`
	Listener       map[string]any `json:"listener"`
	Rules          *cnpL7         `json:"rules"`
}

type cnpPort struct {
	Port     string `json:"port"`
	EndPort  int    `json:"endPort"`
	Protocol string `json:"protocol"`
}

type cnpL7 struct {
	HTTP    []map[string]any `json:"http"`
	Kafka   []map[string]any `json:"kafka"`
	DNS     []cnpFQDN        `json:"dns"`
	L7Proto string           `json:"l7proto"`
	L7      []map[string]any `json:"l7"`
}

// The CRD's validation patterns for FQDN selectors (FQDNSelector in
// pkg/policy/api/fqdn.go, kubebuilder markers).
var (
	matchNameRE    = regexp.MustCompile(`^([-a-zA-Z0-9_]+[.]?)+$`)
	matchPatternRE = regexp.MustCompile(`^([-a-zA-Z0-9_*]+[.]?)+$`)
)

func TestCiliumNetworkPolicy(t *testing.T) {
	a := verified(t, "allowlist.yaml")
	out, err := Generate(a, Options{Format: FormatCilium, Namespace: "cardgate", Peers: peers(t)})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "allowlist.cilium.yaml", out)
	var p cnp
	if err := yaml.UnmarshalStrict(out, &p); err != nil {
		t.Fatalf("strict decode into the CiliumNetworkPolicy schema: %v", err)
	}
	if p.APIVersion != "cilium.io/v2" || p.Kind != "CiliumNetworkPolicy" || p.Metadata.Namespace != "cardgate" {
		t.Errorf("type %s %s in %q", p.APIVersion, p.Kind, p.Metadata.Namespace)
	}
	if p.Spec == nil || len(p.Specs) > 0 {
		t.Fatalf("want exactly one rule in spec")
	}
	r := p.Spec
	if r.EndpointSelector == nil || !cmp.Equal(r.EndpointSelector.MatchLabels, map[string]string{"app.kubernetes.io/name": "cardgate"}) || len(r.EndpointSelector.MatchExpressions) > 0 {
		t.Errorf("endpointSelector = %+v, want the gateway's pods", r.EndpointSelector)
	}
	if r.NodeSelector != nil || r.Ingress != nil || r.IngressDeny != nil || r.EgressDeny != nil || r.EnableDefaultDeny != nil {
		t.Errorf("the rule carries sections beyond egress: %+v", r)
	}
	var got []string
	for _, e := range r.Egress {
		got = append(got, describeCilium(t, e))
	}
	if diff := cmp.Diff(expectedCilium(a), got); diff != "" {
		t.Errorf("egress rules (-want +got):\n%s", diff)
	}
}

// describeCilium renders a rule as "peers -> ports [dns: names]",
// refusing every form that would allow more than it names.
func describeCilium(t *testing.T, e cnpEgress) string {
	t.Helper()
	if e.ToRequires != nil || e.ToCIDRSet != nil || e.ToEntities != nil || e.ToServices != nil || e.ToGroups != nil || e.ToNodes != nil || e.ICMPs != nil || e.Authentication != nil {
		t.Fatalf("rule %+v uses a peer form the generator must not emit", e)
	}
	kinds := 0
	var to []string
	if e.ToEndpoints != nil {
		kinds++
		for _, s := range e.ToEndpoints {
			if len(s.MatchLabels) < 2 || len(s.MatchExpressions) > 0 {
				t.Fatalf("toEndpoints %+v: want a namespace and pod labels", s)
			}
			to = append(to, fmt.Sprintf("endpoints:%v", s.MatchLabels))
		}
	}
	if e.ToCIDR != nil {
		kinds++
		for _, c := range e.ToCIDR {
			if strings.HasSuffix(c, "/0") {
				t.Fatalf("toCIDR %s allows everything", c)
			}
			to = append(to, c)
		}
	}
	if e.ToFQDNs != nil {
		kinds++
		for _, f := range e.ToFQDNs {
			to = append(to, fqdnText(t, f))
		}
	}
	if kinds != 1 || len(to) == 0 {
		t.Fatalf("rule %+v: want exactly one non-empty peer list (Cilium refuses toFQDNs beside other peers)", e)
	}
	if len(e.ToPorts) != 1 || len(e.ToPorts[0].Ports) == 0 {
		t.Fatalf("rule %+v: want one toPorts with ports", e)
	}
	pr := e.ToPorts[0]
	if pr.TerminatingTLS != nil || pr.OriginatingTLS != nil || pr.ServerNames != nil || pr.Listener != nil {
		t.Fatalf("toPorts %+v carries TLS or listener settings", pr)
	}
	var ports []string
	for _, p := range pr.Ports {
		if p.EndPort != 0 || (p.Protocol != "TCP" && p.Protocol != "UDP") {
			t.Fatalf("port %+v: want one port, TCP or UDP", p)
		}
		ports = append(ports, p.Protocol+"/"+p.Port)
	}
	s := strings.Join(to, " ") + " -> " + strings.Join(ports, " ")
	if pr.Rules != nil {
		if pr.Rules.HTTP != nil || pr.Rules.Kafka != nil || pr.Rules.L7 != nil || pr.Rules.L7Proto != "" || len(pr.Rules.DNS) == 0 {
			t.Fatalf("rules %+v: want only a non-empty dns list", pr.Rules)
		}
		var names []string
		for _, f := range pr.Rules.DNS {
			if f.MatchPattern == "*" {
				t.Fatalf("the dns rule allows every lookup")
			}
			names = append(names, fqdnText(t, f))
		}
		s += " dns: " + strings.Join(names, " ")
	}
	return s
}

func fqdnText(t *testing.T, f cnpFQDN) string {
	t.Helper()
	switch {
	case f.MatchName != "" && f.MatchPattern == "" && matchNameRE.MatchString(f.MatchName):
		return "name:" + f.MatchName
	case f.MatchPattern != "" && f.MatchName == "" && matchPatternRE.MatchString(f.MatchPattern):
		return "pattern:" + f.MatchPattern
	}
	t.Fatalf("fqdn selector %+v: want exactly one of matchName, matchPattern, matching the CRD's pattern", f)
	return ""
}

func expectedCilium(a *allowlist.Allowlist) []string {
	ds := slices.Clone(a.Doc.Destinations)
	slices.SortFunc(ds, func(x, y allowlist.Destination) int { return strings.Compare(x.ID, y.ID) })
	var out, dns []string
	for _, d := range ds {
		var to string
		switch {
		case strings.Contains(d.Host, ":"):
			to = d.Host + "/128"
		case strings.Trim(d.Host, "0123456789.") == "":
			to = d.Host + "/32"
		case strings.HasPrefix(d.Host, "*."):
			to = "pattern:**." + d.Host[2:]
			dns = append(dns, to)
		default:
			to = "name:" + d.Host
			dns = append(dns, to)
		}
		out = append(out, fmt.Sprintf("%s -> TCP/%d", to, d.Port))
	}
	dns = append(dns, "name:vault.keys.example")
	slices.Sort(dns)
	return append(out,
		"endpoints:map[k8s:io.kubernetes.pod.namespace:kube-system k8s:k8s-app:kube-dns] -> UDP/53 TCP/53 dns: "+strings.Join(dns, " "),
		"endpoints:map[k8s:app.kubernetes.io/name:redis k8s:io.kubernetes.pod.namespace:cardgate-data] -> TCP/6379 TCP/26379",
		"198.51.100.20/32 -> TCP/8200",
		"endpoints:map[k8s:app:otel-collector k8s:io.kubernetes.pod.namespace:observability] -> TCP/4318",
	)
}

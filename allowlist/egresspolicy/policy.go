package egresspolicy

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cardgate/cardgate/allowlist"
)

// Formats.
const (
	FormatKubernetes = "kubernetes" // networking.k8s.io/v1 NetworkPolicy
	FormatCilium     = "cilium"     // cilium.io/v2 CiliumNetworkPolicy
)

// Defaults for Options' zero fields.
const (
	DefaultName = "cardgate-egress"
	// DefaultPodLabel selects the gateway's pods (deploy/kubernetes sets it).
	DefaultPodLabelKey   = "app.kubernetes.io/name"
	DefaultPodLabelValue = "cardgate"
)

// Annotations the output carries, so that a cluster shows which signed
// document its policy came from.
const (
	AnnotationVersion = "cardgate.dev/allowlist-version"
	AnnotationSHA256  = "cardgate.dev/allowlist-sha256"
)

// Options say where the policy goes and which infrastructure it allows.
type Options struct {
	Format    string // FormatKubernetes or FormatCilium; required
	Namespace string // the gateway's namespace; required
	// Name is the policy's metadata.name; "" means DefaultName.
	Name string
	// PodLabels select the gateway's pods; nil means DefaultPodLabelKey:
	// DefaultPodLabelValue.
	PodLabels map[string]string
	// Peers are the infrastructure services (see Peer). A DNS peer is
	// required whenever an entry or peer is reached by name.
	Peers []Peer
	// OmitUnexpressible leaves out, instead of refusing, the entries a
	// NetworkPolicy cannot express; the output's header lists them, and
	// the policy drops the gateway's traffic to them.
	OmitUnexpressible bool
}

// UnexpressibleError lists the entries a NetworkPolicy cannot express:
// their host is a name and they name no address range.
type UnexpressibleError struct {
	IDs []string
}

func (e *UnexpressibleError) Error() string {
	return "egresspolicy: a NetworkPolicy cannot name hosts, and these entries name no address range: " +
		strings.Join(e.IDs, ", ") + "; use the cilium format, or omit them explicitly and allow them in a separately reviewed policy"
}

// ErrUnverified is returned for an allowlist that did not come from
// allowlist.Verify.
var ErrUnverified = errors.New("egresspolicy: the allowlist has not passed signature verification")

// rule is one egress rule in a format-neutral form.
type rule struct {
	comment   string
	cidrs     []netip.Prefix
	namespace string
	selects   bool
	podLabels map[string]string
	names     []string // toFQDNs matchName
	patterns  []string // toFQDNs matchPattern
	ports     []int
	dns       bool // UDP and TCP, and (Cilium) the L7 DNS rule
}

// plan is the policy before it is rendered.
type plan struct {
	a       *allowlist.Allowlist
	o       Options
	rules   []rule
	omitted []string
	// lookups are the names Cilium's DNS proxy must answer.
	lookups []lookup
}

type lookup struct{ name, pattern string }

// Generate renders the egress policy for a, which must come from
// allowlist.Verify, in o.Format. The output is YAML, deterministic for
// the same a and o.
func Generate(a *allowlist.Allowlist, o Options) ([]byte, error) {
	p, err := build(a, o)
	if err != nil {
		return nil, err
	}
	var doc any
	switch o.Format {
	case FormatKubernetes:
		doc = p.networkPolicy()
	case FormatCilium:
		doc = p.ciliumPolicy()
	}
	return p.render(doc)
}

func build(a *allowlist.Allowlist, o Options) (*plan, error) {
	if a == nil || len(a.Raw) == 0 || allowlist.SHA256Hex(a.Raw) != a.SHA256 ||
		!slices.ContainsFunc(a.Signatures, func(r allowlist.SignatureResult) bool { return r.Status == allowlist.StatusValid }) {
		return nil, ErrUnverified
	}
	if o.Format != FormatKubernetes && o.Format != FormatCilium {
		return nil, fmt.Errorf("egresspolicy: format %q: want %s or %s", o.Format, FormatKubernetes, FormatCilium)
	}
	if err := checkLabelValue(o.Namespace); err != nil || o.Namespace == "" {
		return nil, fmt.Errorf("egresspolicy: namespace %q: name the gateway's namespace", o.Namespace)
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.PodLabels == nil {
		o.PodLabels = map[string]string{DefaultPodLabelKey: DefaultPodLabelValue}
	}
	if len(o.PodLabels) == 0 {
		return nil, errors.New("egresspolicy: an empty pod selector would apply the policy to every pod in the namespace")
	}
	p := &plan{a: a, o: o}
	cilium := o.Format == FormatCilium

	dests := slices.Clone(a.Doc.Destinations)
	slices.SortFunc(dests, func(x, y allowlist.Destination) int { return strings.Compare(x.ID, y.ID) })
	var unexpressible []string
	for _, d := range dests {
		r := rule{comment: fmt.Sprintf("allowlist entry %s: %s", d.ID, d.URL), ports: []int{d.Port}}
		ip, ipErr := netip.ParseAddr(d.Host)
		switch {
		case ipErr == nil:
			r.cidrs = []netip.Prefix{netip.PrefixFrom(ip, ip.BitLen())}
		case cilium && d.IsWildcard():
			r.patterns = []string{"**." + d.Host[2:]}
			p.lookups = append(p.lookups, lookup{pattern: r.patterns[0]})
		case cilium:
			r.names = []string{d.Host}
			p.lookups = append(p.lookups, lookup{name: d.Host})
		case len(d.UnsafeAllowRanges) > 0:
			r.cidrs = slices.Clone(d.UnsafeAllowRanges)
			slices.SortFunc(r.cidrs, func(x, y netip.Prefix) int { return strings.Compare(x.String(), y.String()) })
			r.cidrs = slices.Compact(r.cidrs)
			r.comment += " (its signed unsafe_allow_ranges)"
		default:
			unexpressible = append(unexpressible, d.ID)
			continue
		}
		p.rules = append(p.rules, r)
	}
	if len(unexpressible) > 0 {
		if !o.OmitUnexpressible {
			return nil, &UnexpressibleError{IDs: unexpressible}
		}
		p.omitted = unexpressible
	}

	peers := slices.Clone(o.Peers)
	slices.SortStableFunc(peers, func(x, y Peer) int { return slices.Index(kindOrder, x.Kind) - slices.Index(kindOrder, y.Kind) })
	hasDNS := false
	for _, peer := range peers {
		if err := peer.check(); err != nil {
			return nil, err
		}
		if !slices.Contains(kindOrder, peer.Kind) {
			return nil, fmt.Errorf("egresspolicy: unknown peer kind %q", peer.Kind)
		}
		peer = peer.normalized()
		hasDNS = hasDNS || peer.Kind == KindDNS
		base := rule{ports: peer.Ports, dns: peer.Kind == KindDNS}
		what := peerText(peer)
		if peer.selects() {
			r := base
			r.comment = peer.Kind + ": pods " + what
			r.selects, r.namespace, r.podLabels = true, peer.Namespace, peer.PodLabels
			p.rules = append(p.rules, r)
		}
		if len(peer.CIDRs) > 0 {
			r := base
			r.comment = peer.Kind + ": addresses " + what
			r.cidrs = peer.CIDRs
			p.rules = append(p.rules, r)
		}
		if len(peer.Hosts) > 0 && !peer.selects() && len(peer.CIDRs) == 0 {
			if !cilium {
				return nil, fmt.Errorf("egresspolicy: the %s peer is named only by host (%s), which a NetworkPolicy cannot express: give its cidr or its namespace and pod labels", peer.Kind, strings.Join(peer.Hosts, ", "))
			}
			r := base
			r.comment = peer.Kind + ": hosts " + what
			r.names = peer.Hosts
			p.rules = append(p.rules, r)
		}
		for _, h := range peer.Hosts {
			p.lookups = append(p.lookups, lookup{name: h})
		}
	}
	if cilium && len(p.lookups) > 0 && !hasDNS {
		return nil, errors.New("egresspolicy: entries or peers are reached by name, but no dns peer is given: Cilium learns their addresses only from DNS answers it proxies")
	}
	// Names first, then patterns, each sorted.
	slices.SortFunc(p.lookups, func(x, y lookup) int {
		return strings.Compare(x.pattern+"\x00"+x.name, y.pattern+"\x00"+y.name)
	})
	p.lookups = slices.Compact(p.lookups)
	return p, nil
}

func peerText(p Peer) string {
	var parts []string
	if p.Namespace != "" {
		parts = append(parts, "namespace "+p.Namespace)
	}
	for _, k := range slices.Sorted(mapsKeys(p.PodLabels)) {
		parts = append(parts, k+"="+p.PodLabels[k])
	}
	for _, c := range p.CIDRs {
		parts = append(parts, c.String())
	}
	for _, h := range p.Hosts {
		parts = append(parts, h)
	}
	ports := make([]string, len(p.Ports))
	for i, n := range p.Ports {
		ports[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, " ") + ", port " + strings.Join(ports, ", ")
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (p *plan) meta() objectMeta {
	return objectMeta{
		Name:      p.o.Name,
		Namespace: p.o.Namespace,
		Labels:    map[string]string{"app.kubernetes.io/part-of": "cardgate", "app.kubernetes.io/managed-by": "cardgate-allowlist-egress-policy"},
		Annotations: map[string]string{
			AnnotationVersion: strconv.FormatUint(p.a.Doc.Version, 10),
			AnnotationSHA256:  p.a.SHA256,
		},
	}
}

// render encodes doc with a header and one comment per egress rule, which
// says which entry or peer the rule is for.
func (p *plan) render(doc any) ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(doc); err != nil {
		return nil, fmt.Errorf("egresspolicy: encode: %w", err)
	}
	if egress := findEgress(&n); egress != nil && len(egress.Content) == len(p.rules) {
		for i, item := range egress.Content {
			item.HeadComment = p.rules[i].comment
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Generated by `cardgate allowlist egress-policy -format %s` from the signed\n", p.o.Format)
	fmt.Fprintf(&b, "# allowlist version %d (sha256 %s), environment %s.\n", p.a.Doc.Version, p.a.SHA256, p.a.Doc.Environment)
	b.WriteString("# Do not edit: regenerate it from the signed file. Each allowlist entry is one\n")
	b.WriteString("# egress rule; everything no rule names is dropped.\n")
	if len(p.omitted) > 0 {
		fmt.Fprintf(&b, "# OMITTED (a NetworkPolicy cannot name their hosts; this policy DROPS their\n# traffic): %s\n", strings.Join(p.omitted, ", "))
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("egresspolicy: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("egresspolicy: encode: %w", err)
	}
	return b.Bytes(), nil
}

// findEgress returns the spec.egress sequence of an encoded document.
func findEgress(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	spec := mapValue(n, "spec")
	if spec == nil {
		return nil
	}
	return mapValue(spec, "egress")
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

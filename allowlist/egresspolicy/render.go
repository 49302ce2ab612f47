// The two output formats, as the subsets of their published schemas this
// package emits. They are local types so that the gateway's binary does
// not depend on k8s.io or Cilium modules; the tests decode the output
// strictly into k8s.io/api's NetworkPolicy and into a copy of Cilium's
// documented CRD schema.

package egresspolicy

import "strconv"

type objectMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// networking.k8s.io/v1 NetworkPolicy.
type networkPolicy struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   objectMeta        `yaml:"metadata"`
	Spec       networkPolicySpec `yaml:"spec"`
}

type networkPolicySpec struct {
	PodSelector labelSelector `yaml:"podSelector"`
	PolicyTypes []string      `yaml:"policyTypes"`
	Egress      []egressRule  `yaml:"egress"`
}

type egressRule struct {
	Ports []networkPolicyPort `yaml:"ports"`
	To    []networkPolicyPeer `yaml:"to"`
}

type networkPolicyPort struct {
	Protocol string `yaml:"protocol"`
	Port     int    `yaml:"port"`
}

type networkPolicyPeer struct {
	IPBlock           *ipBlock       `yaml:"ipBlock,omitempty"`
	NamespaceSelector *labelSelector `yaml:"namespaceSelector,omitempty"`
	PodSelector       *labelSelector `yaml:"podSelector,omitempty"`
}

type ipBlock struct {
	CIDR string `yaml:"cidr"`
}

// namespaceLabel is the label Kubernetes sets on every namespace
// (kubernetes.io/metadata.name, GA in 1.22).
const namespaceLabel = "kubernetes.io/metadata.name"

func (p *plan) networkPolicy() networkPolicy {
	np := networkPolicy{
		APIVersion: "networking.k8s.io/v1",
		Kind:       "NetworkPolicy",
		Metadata:   p.meta(),
		Spec: networkPolicySpec{
			PodSelector: labelSelector{MatchLabels: p.o.PodLabels},
			PolicyTypes: []string{"Egress"},
			Egress:      []egressRule{},
		},
	}
	for _, r := range p.rules {
		er := egressRule{}
		for _, port := range r.ports {
			if r.dns {
				er.Ports = append(er.Ports, networkPolicyPort{Protocol: "UDP", Port: port})
			}
			er.Ports = append(er.Ports, networkPolicyPort{Protocol: "TCP", Port: port})
		}
		for _, c := range r.cidrs {
			er.To = append(er.To, networkPolicyPeer{IPBlock: &ipBlock{CIDR: c.String()}})
		}
		if r.selects {
			peer := networkPolicyPeer{}
			if r.namespace != "" {
				peer.NamespaceSelector = &labelSelector{MatchLabels: map[string]string{namespaceLabel: r.namespace}}
			}
			if len(r.podLabels) > 0 {
				peer.PodSelector = &labelSelector{MatchLabels: r.podLabels}
			}
			er.To = append(er.To, peer)
		}
		np.Spec.Egress = append(np.Spec.Egress, er)
	}
	return np
}

// cilium.io/v2 CiliumNetworkPolicy.
type ciliumPolicy struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       ciliumRule `yaml:"spec"`
}

type ciliumRule struct {
	Description      string         `yaml:"description"`
	EndpointSelector labelSelector  `yaml:"endpointSelector"`
	Egress           []ciliumEgress `yaml:"egress"`
}

type ciliumEgress struct {
	ToEndpoints []labelSelector `yaml:"toEndpoints,omitempty"`
	ToCIDR      []string        `yaml:"toCIDR,omitempty"`
	ToFQDNs     []fqdnSelector  `yaml:"toFQDNs,omitempty"`
	ToPorts     []portRule      `yaml:"toPorts"`
}

type fqdnSelector struct {
	MatchName    string `yaml:"matchName,omitempty"`
	MatchPattern string `yaml:"matchPattern,omitempty"`
}

type portRule struct {
	Ports []portProtocol `yaml:"ports"`
	Rules *l7Rules       `yaml:"rules,omitempty"`
}

type portProtocol struct {
	Port     string `yaml:"port"`
	Protocol string `yaml:"protocol"`
}

type l7Rules struct {
	DNS []fqdnSelector `yaml:"dns"`
}

// ciliumNamespaceLabel is how a Cilium endpoint selector names a pod's
// namespace.
const ciliumNamespaceLabel = "k8s:io.kubernetes.pod.namespace"

func (p *plan) ciliumPolicy() ciliumPolicy {
	cp := ciliumPolicy{
		APIVersion: "cilium.io/v2",
		Kind:       "CiliumNetworkPolicy",
		Metadata:   p.meta(),
		Spec: ciliumRule{
			Description:      "cardgate egress, generated from the signed allowlist version " + strconv.FormatUint(p.a.Doc.Version, 10),
			EndpointSelector: labelSelector{MatchLabels: p.o.PodLabels},
			Egress:           []ciliumEgress{},
		},
	}
	for _, r := range p.rules {
		ce := ciliumEgress{}
		pr := portRule{}
		for _, port := range r.ports {
			if r.dns {
				pr.Ports = append(pr.Ports, portProtocol{Port: strconv.Itoa(port), Protocol: "UDP"})
			}
			pr.Ports = append(pr.Ports, portProtocol{Port: strconv.Itoa(port), Protocol: "TCP"})
		}
		if r.dns {
			pr.Rules = &l7Rules{DNS: []fqdnSelector{}}
			for _, l := range p.lookups {
				pr.Rules.DNS = append(pr.Rules.DNS, fqdnSelector{MatchName: l.name, MatchPattern: l.pattern})
			}
		}
		ce.ToPorts = []portRule{pr}
		for _, c := range r.cidrs {
			ce.ToCIDR = append(ce.ToCIDR, c.String())
		}
		if r.selects {
			m := map[string]string{}
			ns := r.namespace
			if ns == "" {
				ns = p.o.Namespace
			}
			m[ciliumNamespaceLabel] = ns
			for k, v := range r.podLabels {
				m["k8s:"+k] = v
			}
			ce.ToEndpoints = []labelSelector{{MatchLabels: m}}
		}
		for _, n := range r.names {
			ce.ToFQDNs = append(ce.ToFQDNs, fqdnSelector{MatchName: n})
		}
		for _, pat := range r.patterns {
			ce.ToFQDNs = append(ce.ToFQDNs, fqdnSelector{MatchPattern: pat})
		}
		cp.Spec.Egress = append(cp.Spec.Egress, ce)
	}
	return cp
}

// Infrastructure peers: what the gateway reaches besides the allowlist's
// destinations, as the operator declares it.

package egresspolicy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Peer kinds, in the order their rules follow the entries' rules.
const (
	KindDNS        = "dns"
	KindRedis      = "redis"
	KindKeyService = "key-service"
	KindTelemetry  = "telemetry"
)

var kindOrder = []string{KindDNS, KindRedis, KindKeyService, KindTelemetry}

// Peer is one infrastructure service the gateway must reach. It is
// addressed by CIDRs, by a pod selector (Namespace and PodLabels, for a
// service inside the cluster) or, for Cilium only, by host names.
type Peer struct {
	Kind string
	// CIDRs are addresses outside the cluster's pod network.
	CIDRs []netip.Prefix
	// Namespace and PodLabels select pods in the cluster. An empty
	// Namespace with labels means the policy's own namespace.
	Namespace string
	PodLabels map[string]string
	// Hosts are the names the gateway looks up to reach the peer. With
	// neither CIDRs nor a selector they are the peer's address (Cilium
	// toFQDNs; a NetworkPolicy cannot express them). Otherwise they only
	// widen the Cilium DNS rule so that the lookups are answered.
	Hosts []string
	// Ports are TCP ports; for the DNS peer, UDP and TCP.
	Ports []int
}

// ParsePeer reads a peer from its flag form, a comma-separated list of
// key=value: cidr=PREFIX, namespace=NAME, pod=LABEL=VALUE, host=NAME and
// port=N, each key but namespace repeatable. For example
//
//	namespace=cardgate-data,pod=app.kubernetes.io/name=redis,port=6379,port=26379
//	cidr=203.0.113.20/32,host=vault.keys.example,port=8200
func ParsePeer(kind, s string) (Peer, error) {
	p := Peer{Kind: kind}
	if !slices.Contains(kindOrder, kind) {
		return p, fmt.Errorf("egresspolicy: unknown peer kind %q", kind)
	}
	for _, field := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(field), "=")
		if !ok || v == "" {
			return p, fmt.Errorf("egresspolicy: %s peer: %q is not key=value (cidr, namespace, pod, host or port)", kind, field)
		}
		switch k {
		case "cidr":
			pfx, err := netip.ParsePrefix(v)
			if err != nil || pfx != pfx.Masked() || pfx.Bits() == 0 || pfx.Addr().Is4In6() {
				return p, fmt.Errorf("egresspolicy: %s peer: cidr %q must be a network address with a non-zero prefix length", kind, v)
			}
			p.CIDRs = append(p.CIDRs, pfx)
		case "namespace":
			if p.Namespace != "" {
				return p, fmt.Errorf("egresspolicy: %s peer: namespace given twice", kind)
			}
			if err := checkLabelValue(v); err != nil {
				return p, fmt.Errorf("egresspolicy: %s peer: namespace: %w", kind, err)
			}
			p.Namespace = v
		case "pod":
			lk, lv, ok := strings.Cut(v, "=")
			if !ok || lk == "" {
				return p, fmt.Errorf("egresspolicy: %s peer: pod %q must be LABEL=VALUE", kind, v)
			}
			if err := checkLabelValue(lv); err != nil {
				return p, fmt.Errorf("egresspolicy: %s peer: pod label %s: %w", kind, lk, err)
			}
			if p.PodLabels == nil {
				p.PodLabels = map[string]string{}
			}
			if _, dup := p.PodLabels[lk]; dup {
				return p, fmt.Errorf("egresspolicy: %s peer: pod label %s given twice", kind, lk)
			}
			p.PodLabels[lk] = lv
		case "host":
			if err := checkHost(v); err != nil {
				return p, fmt.Errorf("egresspolicy: %s peer: %w", kind, err)
			}
			p.Hosts = append(p.Hosts, v)
		case "port":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != v {
				return p, fmt.Errorf("egresspolicy: %s peer: port %q must be a decimal from 1 to 65535", kind, v)
			}
			p.Ports = append(p.Ports, n)
		default:
			return p, fmt.Errorf("egresspolicy: %s peer: unknown key %q (want cidr, namespace, pod, host or port)", kind, k)
		}
	}
	return p, p.check()
}

// check refuses a peer that would allow too much or nothing.
func (p Peer) check() error {
	if len(p.Ports) == 0 {
		return fmt.Errorf("egresspolicy: %s peer names no port: a rule without ports would allow every port", p.Kind)
	}
	if len(p.CIDRs) == 0 && !p.selects() && len(p.Hosts) == 0 {
		return fmt.Errorf("egresspolicy: %s peer names no cidr, namespace, pod or host: it would allow every address", p.Kind)
	}
	return nil
}

func (p Peer) selects() bool { return p.Namespace != "" || len(p.PodLabels) > 0 }

// normalized returns p with its lists sorted and deduplicated.
func (p Peer) normalized() Peer {
	p.CIDRs = slices.Clone(p.CIDRs)
	slices.SortFunc(p.CIDRs, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
	p.CIDRs = slices.Compact(p.CIDRs)
	p.Hosts = slices.Compact(slices.Sorted(slices.Values(p.Hosts)))
	p.Ports = slices.Compact(slices.Sorted(slices.Values(p.Ports)))
	return p
}

// checkHost accepts a lowercase DNS name without a wildcard.
func checkHost(h string) error {
	if h == "" || len(h) > 253 || h != strings.ToLower(h) || strings.HasSuffix(h, ".") {
		return fmt.Errorf("host %q must be a lowercase DNS name without a trailing dot", h)
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("host %q has an empty, over-long or hyphen-edged label", h)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("host %q: only a-z, 0-9, '-' and '.' are allowed", h)
			}
		}
	}
	return nil
}

// checkLabelValue accepts a Kubernetes label value or namespace name.
func checkLabelValue(v string) error {
	if len(v) > 63 {
		return errors.New("longer than 63 characters")
	}
	for i, c := range v {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			(c == '-' || c == '_' || c == '.') && i > 0 && i < len(v)-1
		if !ok {
			return fmt.Errorf("%q is not a label value", v)
		}
	}
	return nil
}

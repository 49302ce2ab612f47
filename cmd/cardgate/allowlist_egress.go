// "cardgate allowlist egress-policy": network policy from the signed file.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/allowlist/egresspolicy"
	"github.com/cardgate/cardgate/config"
)

// peerFlags collects the repeatable -dns, -redis, -key-service and
// -telemetry flags.
type peerFlags struct {
	kind  string
	peers *[]egresspolicy.Peer
	seen  map[string]bool
}

func (f peerFlags) String() string { return "" }

func (f peerFlags) Set(s string) error {
	p, err := egresspolicy.ParsePeer(f.kind, s)
	if err != nil {
		return err
	}
	*f.peers = append(*f.peers, p)
	f.seen[f.kind] = true
	return nil
}

type labelFlags map[string]string

func (l labelFlags) String() string { return "" }

func (l labelFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || v == "" {
		return fmt.Errorf("%q is not LABEL=VALUE", s)
	}
	l[k] = v
	return nil
}

// defaultDNSPeer is the cluster DNS of a stock Kubernetes (CoreDNS keeps
// the kube-dns label).
const defaultDNSPeer = "namespace=kube-system,pod=k8s-app=kube-dns,port=53"

func allowlistEgress(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("egress-policy", "-format kubernetes|cilium -namespace NS (-config F | --allowed-signers F --threshold M --environment E) [peer flags] [FILE]",
		"Verifies FILE exactly as the gateway does (signatures, threshold, pinned\n"+
			"signers, environment, expiry) and prints the egress NetworkPolicy or\n"+
			"CiliumNetworkPolicy for the gateway's pods: one rule per allowlist entry\n"+
			"on its port, plus DNS, Redis, the key service and the telemetry collector.\n"+
			"With -config the verification settings, FILE and the peers the\n"+
			"configuration names come from the gateway's configuration; a peer flag\n"+
			"replaces the configuration's peers of its kind. Peer flags are\n"+
			"comma-separated cidr=, namespace=, pod=LABEL=VALUE, host= and port= (see\n"+
			"docs/deploying.md). A NetworkPolicy cannot name hosts: an entry reached\n"+
			"by name without unsafe_allow_ranges is refused unless -omit-unexpressible.", stderr)
	format := fs.String("format", "", "kubernetes (NetworkPolicy) or cilium (CiliumNetworkPolicy) (required)")
	namespace := fs.String("namespace", "", "the gateway's `namespace` (required)")
	name := fs.String("name", egresspolicy.DefaultName, "the policy's metadata.name")
	cfgPath := fs.String("config", "", "the gateway's configuration `file`: verification settings, FILE and peers")
	signersPath := fs.String("allowed-signers", "", "OpenSSH allowed_signers `file` pinned by the gateway")
	threshold := fs.Int("threshold", 0, "`M`: distinct signers required")
	env := fs.String("environment", "", "the gateway's environment, e.g. prod")
	sigsDir := fs.String("sigs", "", "`dir`ectory of *.sig files (default: FILE without extension + .sigs)")
	maxValidity := fs.Duration("max-validity", 0, "longest allowed expires-issued_at (default 2160h, 90 days)")
	at := fs.String("at", "", "verify as of this RFC 3339 `time` instead of now")
	omit := fs.Bool("omit-unexpressible", false, "kubernetes: leave out (and list) entries reached by name; the policy then DROPS their traffic")
	pods := labelFlags{}
	fs.Var(pods, "pod-label", "`LABEL=VALUE` selecting the gateway's pods (repeatable; default app.kubernetes.io/name=cardgate)")
	var peers []egresspolicy.Peer
	seen := map[string]bool{}
	for _, k := range []struct{ kind, help string }{
		{egresspolicy.KindDNS, "the cluster DNS (default " + defaultDNSPeer + ")"},
		{egresspolicy.KindRedis, "Redis: in sentinel or cluster mode every data node, not only the seeds"},
		{egresspolicy.KindKeyService, "the key service (Vault Transit, a network HSM)"},
		{egresspolicy.KindTelemetry, "the OTLP collector"},
	} {
		fs.Var(peerFlags{kind: k.kind, peers: &peers, seen: seen}, k.kind, "`SPEC` of "+k.help+" (repeatable)")
	}
	if err := parseCommand(fs, args); err != nil {
		return err // errHelp after -h: exit 0, nothing run
	}
	if fs.NArg() > 1 || *format == "" || *namespace == "" || (*cfgPath == "" && (fs.NArg() != 1 || *signersPath == "" || *threshold < 1 || *env == "")) {
		fmt.Fprintln(stderr, "cardgate allowlist egress-policy: -format and -namespace are required, and either -config or FILE with --allowed-signers, --threshold and --environment")
		fs.Usage()
		return errUsage
	}
	file := fs.Arg(0)
	policy := allowlist.Policy{Threshold: *threshold, Environment: *env, MaxValidity: *maxValidity}
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath, os.Getenv)
		if err != nil {
			return fmt.Errorf("allowlist egress-policy: %w", err)
		}
		if file == "" {
			file, *sigsDir = cfg.Allowlist.Path, cfg.Allowlist.SignaturesDir
		}
		*signersPath = cfg.Allowlist.AllowedSigners
		policy = allowlist.Policy{Threshold: cfg.Allowlist.Threshold, Environment: cfg.Environment, MaxValidity: cfg.Allowlist.MaxValidity}
		fromCfg, err := configPeers(cfg, seen)
		if err != nil {
			return fmt.Errorf("allowlist egress-policy: %w", err)
		}
		peers = append(peers, fromCfg...)
	}
	if !seen[egresspolicy.KindDNS] {
		p, err := egresspolicy.ParsePeer(egresspolicy.KindDNS, defaultDNSPeer)
		if err != nil {
			return fmt.Errorf("allowlist egress-policy: %w", err)
		}
		peers = append(peers, p)
	}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("allowlist egress-policy: --at: %w", err)
		}
		policy.Now = func() time.Time { return t }
	}
	if *sigsDir == "" {
		*sigsDir = defaultSigsDir(file)
	}
	signers, err := allowlist.ReadAllowedSigners(ctx, *signersPath)
	if err != nil {
		return fmt.Errorf("allowlist egress-policy: %w", err)
	}
	policy.AllowedSigners = signers
	raw, sigs, err := readSignedSet(ctx, file, *sigsDir)
	if err != nil {
		return fmt.Errorf("allowlist egress-policy: %w", err)
	}
	a, err := allowlist.Verify(raw, sigs, policy)
	if err != nil {
		return fmt.Errorf("allowlist egress-policy: %s is refused, no policy generated: %w", file, err)
	}
	o := egresspolicy.Options{Format: *format, Namespace: *namespace, Name: *name, Peers: peers, OmitUnexpressible: *omit}
	if len(pods) > 0 {
		o.PodLabels = pods
	}
	out, err := egresspolicy.Generate(a, o)
	if err != nil {
		return fmt.Errorf("allowlist egress-policy: %w", err)
	}
	_, err = stdout.Write(out)
	return err
}

// configPeers derives the peers the gateway's configuration names, for
// the kinds no flag gave. An address that is an IP literal becomes a /32
// or /128, a name becomes host= (Cilium only). Redis in sentinel or
// cluster mode is refused: the gateway learns its data nodes' addresses
// from the seeds, so only the operator can name them.
func configPeers(cfg config.Config, seen map[string]bool) ([]egresspolicy.Peer, error) {
	var out []egresspolicy.Peer
	add := func(kind, hostport string) error {
		host, port, err := net.SplitHostPort(hostport)
		if err != nil {
			return fmt.Errorf("%s address %q: %w", kind, hostport, err)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%s address %q: bad port", kind, hostport)
		}
		p := egresspolicy.Peer{Kind: kind, Ports: []int{n}}
		if a, err := netip.ParseAddr(host); err == nil {
			p.CIDRs = []netip.Prefix{netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())}
		} else {
			p.Hosts = []string{strings.ToLower(strings.TrimSuffix(host, "."))}
		}
		out = append(out, p)
		return nil
	}
	urlHostPort := func(raw, defPort string) (string, error) {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("%q is not a URL", raw)
		}
		if u.Port() == "" {
			return net.JoinHostPort(u.Hostname(), defPort), nil
		}
		return u.Host, nil
	}
	if !seen[egresspolicy.KindRedis] && cfg.Store.Backend == config.StoreRedis {
		if m := cfg.Store.Redis.Mode; m != "" && m != "single" {
			return nil, fmt.Errorf("store.redis.mode is %s: the gateway learns the data nodes from %v; name them all with -redis (for example namespace=…,pod=…,port=6379,port=26379)", m, cfg.Store.Redis.Addrs)
		}
		for _, a := range cfg.Store.Redis.Addrs {
			if err := add(egresspolicy.KindRedis, a); err != nil {
				return nil, err
			}
		}
	}
	if !seen[egresspolicy.KindKeyService] {
		switch cfg.Keys.Backend {
		case config.KeysVault:
			hp, err := urlHostPort(cfg.Keys.Vault.Address, "443")
			if err != nil {
				return nil, fmt.Errorf("keys.vault.address: %w", err)
			}
			if err := add(egresspolicy.KindKeyService, hp); err != nil {
				return nil, err
			}
		case config.KeysHSM:
			return nil, errors.New("keys.backend is hsm: name the HSM's network address with -key-service")
		}
	}
	if !seen[egresspolicy.KindTelemetry] && cfg.Telemetry.Traces.Exporter == config.ExporterOTLP {
		u := cfg.Telemetry.Traces.OTLP.Endpoint
		def := "443"
		if strings.HasPrefix(u, "http://") {
			def = "80"
		}
		hp, err := urlHostPort(u, def)
		if err != nil {
			return nil, fmt.Errorf("telemetry.traces.otlp.endpoint: %w", err)
		}
		if err := add(egresspolicy.KindTelemetry, hp); err != nil {
			return nil, err
		}
	}
	return out, nil
}

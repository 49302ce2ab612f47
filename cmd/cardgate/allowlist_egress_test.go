package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAllowlistEgressPolicy runs the command over a file signed by the
// stock ssh-keygen: it prints a policy only for a file that verifies, and
// takes the verification settings and peers from -config as well.
func TestAllowlistEgressPolicy(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	keygen(t, "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", p("alice"))
	pub, err := os.ReadFile(p("alice.pub"))
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, p("allowed_signers"), "alice@example.com "+string(pub))
	now := time.Now()
	doc := string(allowlistDoc(now)) + `  - id: psp-link
    purpose: a processor behind a private link
    owner: billing@example.com
    url: https://10.20.0.7:8443/v1
    methods: [POST]
    callers: [billing]
    fields: [number]
    unsafe_allow_ranges: [10.20.0.0/24]
`
	writeTestFile(t, p("allowlist.yaml"), doc)
	if err := os.Mkdir(p("allowlist.sigs"), 0o700); err != nil {
		t.Fatal(err)
	}
	keygen(t, "-Y", "sign", "-f", p("alice"), "-n", "cardgate-allowlist@v1", p("allowlist.yaml"))
	if err := os.Rename(p("allowlist.yaml.sig"), p("allowlist.sigs/alice.sig")); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, p("tampered.yaml"), strings.Replace(doc, "10.20.0.0/24", "10.0.0.0/8", 1))
	if err := os.Mkdir(p("tampered.sigs"), 0o700); err != nil {
		t.Fatal(err)
	}
	sig, _ := os.ReadFile(p("allowlist.sigs/alice.sig"))
	writeTestFile(t, p("tampered.sigs/alice.sig"), string(sig))
	writeTestFile(t, p("cardgate.yaml"), fmt.Sprintf(`environment: test
listen:
  addr: 0.0.0.0:8443
  tls:
    cert_file: %[1]s/x.crt
    key_file: %[1]s/x.key
    client_ca_file: %[1]s/ca.pem
allowlist:
  path: %[1]s/allowlist.yaml
  signatures_dir: %[1]s/allowlist.sigs
  allowed_signers: %[1]s/allowed_signers
  threshold: 1
audit:
  file: %[1]s/audit.jsonl
store:
  backend: redis
  redis:
    addrs: [10.30.0.5:6379]
keys:
  backend: vault
  vault:
    address: https://vault.keys.example:8200
    auth:
      role_id: r
      secret_id_file: %[1]s/secret-id
`, dir))

	sentinel, err := os.ReadFile(p("cardgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, p("sentinel.yaml"), strings.Replace(string(sentinel), "    addrs: [10.30.0.5:6379]", "    mode: sentinel\n    master_name: cardgate\n    addrs: [10.30.0.5:26379, 10.30.0.6:26379, 10.30.0.7:26379]", 1))

	verifyFlags := []string{"--allowed-signers", p("allowed_signers"), "--threshold", "1", "--environment", "test"}
	for _, tc := range []struct {
		name    string
		args    []string
		want    []string // substrings of the output
		wantErr string
	}{
		{"cilium", append(append([]string{"egress-policy", "-format", "cilium", "-namespace", "cardgate"}, verifyFlags...), p("allowlist.yaml")),
			[]string{"kind: CiliumNetworkPolicy", "matchName: api.acme.example", "- 10.20.0.7/32", "k8s:k8s-app: kube-dns"}, ""},
		{"kubernetes refuses a host name", append(append([]string{"egress-policy", "-format", "kubernetes", "-namespace", "cardgate"}, verifyFlags...), p("allowlist.yaml")),
			nil, "acme-charges"},
		{"kubernetes omitting it", append(append([]string{"egress-policy", "-format", "kubernetes", "-namespace", "cardgate", "-omit-unexpressible"}, verifyFlags...), p("allowlist.yaml")),
			[]string{"kind: NetworkPolicy", "cidr: 10.20.0.7/32", "OMITTED", "acme-charges"}, ""},
		{"tampered", append(append([]string{"egress-policy", "-format", "cilium", "-namespace", "cardgate"}, verifyFlags...), p("tampered.yaml")),
			nil, "no policy generated"},
		{"threshold not met", []string{"egress-policy", "-format", "cilium", "-namespace", "cardgate", "--allowed-signers", p("allowed_signers"), "--threshold", "2", "--environment", "test", p("allowlist.yaml")},
			nil, "no policy generated"},
		{"config", []string{"egress-policy", "-format", "cilium", "-namespace", "cardgate", "-config", p("cardgate.yaml")},
			[]string{"- 10.30.0.5/32", "port: \"6379\"", "matchName: vault.keys.example", "port: \"8200\""}, ""},
		{"config host-only key service in a NetworkPolicy", []string{"egress-policy", "-format", "kubernetes", "-namespace", "cardgate", "-omit-unexpressible", "-config", p("cardgate.yaml")},
			nil, "key-service peer is named only by host"},
		{"config with redis sentinel", []string{"egress-policy", "-format", "cilium", "-namespace", "cardgate", "-config", p("sentinel.yaml")},
			nil, "name them all with -redis"},
		{"config with redis sentinel and -redis", []string{"egress-policy", "-format", "cilium", "-namespace", "cardgate", "-config", p("sentinel.yaml"), "-redis", "namespace=data,pod=app=redis,port=6379,port=26379"},
			[]string{"k8s:io.kubernetes.pod.namespace: data", "port: \"26379\""}, ""},
		{"config with the key service by flag", []string{"egress-policy", "-format", "kubernetes", "-namespace", "cardgate", "-omit-unexpressible", "-config", p("cardgate.yaml"), "-key-service", "cidr=198.51.100.20/32,port=8200"},
			[]string{"cidr: 198.51.100.20/32", "cidr: 10.30.0.5/32"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runAL(t, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q; output:\n%s", err, tc.wantErr, out)
				}
				if strings.Contains(out, "kind:") {
					t.Errorf("a refused run printed a policy:\n%s", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v; output:\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func writeTestFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

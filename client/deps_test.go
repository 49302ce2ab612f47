package client

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDependencies runs `go list -deps` on this package, as a caller's
// build would see it, and fails on any module outside the standard
// library but go-spiffe's TLS and SVID packages: the client must not pull
// the gateway's dependencies (Redis, OpenTelemetry's SDK, PKCS#11, bbolt,
// Vault, gRPC through the Workload API) or the gateway's own packages into
// a caller's build.
func TestDependencies(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/redis/", "go.opentelemetry.io/", "github.com/miekg/pkcs11", "github.com/ThalesGroup/crypto11",
		"go.etcd.io/bbolt", "github.com/hashicorp/", "google.golang.org/grpc", "github.com/go-chi/",
		"github.com/spiffe/go-spiffe/v2/workloadapi",
	}
	allowed := []string{
		"github.com/cardgate/cardgate/client",
		"github.com/spiffe/go-spiffe/v2/spiffeid",
		"github.com/spiffe/go-spiffe/v2/bundle/x509bundle",
		"github.com/spiffe/go-spiffe/v2/svid/x509svid",
		"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig",
		"github.com/spiffe/go-spiffe/v2/internal/",
	}
	var deps []string
	for _, dep := range strings.Fields(string(out)) {
		deps = append(deps, dep)
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("the client depends on %s, one of the gateway's dependencies", dep)
			}
		}
		ok := false
		for _, a := range allowed {
			if dep == a || strings.HasSuffix(a, "/") && strings.HasPrefix(dep, a) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("the client depends on %s, which is not on this test's list: keep callers' builds small, or add it here with a reason", dep)
		}
	}
	if len(deps) == 0 || deps[len(deps)-1] != "github.com/cardgate/cardgate/client" {
		t.Errorf("go list -deps printed %q, want the client package last", deps)
	}
}

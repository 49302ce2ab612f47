package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestProductionBuild: the gateway as the Dockerfile builds it (-tags
// grpcnotrace) links no template package, and every script that builds
// the gateway for deployment, the benchmark or the end-to-end tests
// passes the tag. text/template calls reflect's MethodByName with names
// known only at run time, which makes the Go linker keep every exported
// method of every reachable type; the untagged build pulls it in through
// gRPC's golang.org/x/net/trace and maps 30 MB of code and tables
// instead of 20 (README "Building").
func TestProductionBuild(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goTool, "list", "-tags", "grpcnotrace", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch dep {
		case "text/template", "html/template", "golang.org/x/net/trace":
			t.Errorf("the production build links %s: its reflective method calls keep every exported method in the binary", dep)
		}
	}

	// Every build of the gateway outside `go test` and `go run` passes
	// the tag.
	for _, f := range []struct{ path, build string }{
		{"../../Dockerfile", "go build -trimpath -tags grpcnotrace "},
		{"../../bench/run.sh", "go build -tags grpcnotrace -o \"$work/cardgate\" ./cmd/cardgate"},
		{"../../integration/env_test.go", `"go", "build", "-tags", "grpcnotrace", "-o", binary, "../cmd/cardgate"`},
	} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), f.build) {
			t.Errorf("%s does not build the gateway with %q", f.path, f.build)
		}
	}
}

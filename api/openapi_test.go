package api

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.yaml.in/yaml/v3"

	"github.com/cardgate/cardgate/forwarder"
	"github.com/cardgate/cardgate/vaultclient"
)

// Stand-ins for New's two interfaces; the walk never calls them.
type openapiCards struct{}

func (openapiCards) Tokenize(context.Context, vaultclient.CardInput) (*vaultclient.TokenInfo, error) {
	return nil, errors.New("test: not implemented")
}

type openapiForwarder struct{}

func (openapiForwarder) Forward(context.Context, *forwarder.Request) (*forwarder.Response, error) {
	return nil, errors.New("test: not implemented")
}

func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi.yaml: openapi = %q, want 3.1.x", v)
	}
	return doc
}

// at follows a path of map keys; it fails the test if one is missing.
func at(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for i, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("openapi.yaml: %s is not a mapping", strings.Join(keys[:i], "."))
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("openapi.yaml: no %s", strings.Join(keys[:i+1], "."))
		}
	}
	return v
}

// Every route the router serves is documented with its method, and the
// document describes no route the router lacks.
func TestOpenAPIMatchesRouter(t *testing.T) {
	doc := loadOpenAPI(t)
	h, err := New(Options{Cards: openapiCards{}, Forwarder: openapiForwarder{}})
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	err = chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(served) == 0 {
		t.Fatal("chi.Walk found no routes")
	}
	documented := map[string]bool{}
	paths, _ := at(t, doc, "paths").(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for m := range ops {
			switch m {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				documented[strings.ToUpper(m)+" "+path] = true
			}
		}
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("the router serves %s; openapi.yaml does not document it", r)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("openapi.yaml documents %s; the router does not serve it", r)
		}
	}
}

// The document's error code enum is exactly api.Codes(), each with the
// status statusByCode gives it.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	enum, _ := at(t, doc, "components", "schemas", "ErrorCode", "enum").([]any)
	statuses, _ := at(t, doc, "components", "schemas", "ErrorCode", "x-cardgate-status").(map[string]any)
	inDoc := map[string]bool{}
	for _, v := range enum {
		c, _ := v.(string)
		if inDoc[c] {
			t.Errorf("openapi.yaml lists error code %q twice", c)
		}
		inDoc[c] = true
	}
	codes := Codes()
	slices.Sort(codes)
	for _, c := range codes {
		if !inDoc[c] {
			t.Errorf("error code %q (HTTP %d) is missing from openapi.yaml's ErrorCode enum and x-cardgate-status", c, statusByCode[c])
			continue
		}
		if got, _ := statuses[c].(int); got != statusByCode[c] {
			t.Errorf("openapi.yaml x-cardgate-status.%s = %v, want %d", c, statuses[c], statusByCode[c])
		}
	}
	for c := range inDoc {
		if _, ok := statusByCode[c]; !ok {
			t.Errorf("openapi.yaml lists error code %q, which api.Codes() does not", c)
		}
	}
	for c := range statuses {
		if !inDoc[c] {
			t.Errorf("openapi.yaml x-cardgate-status names %q, which the enum lacks", c)
		}
	}
}

// Every local $ref points at something in the document.
func TestOpenAPIRefsResolve(t *testing.T) {
	doc := loadOpenAPI(t)
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if !strings.HasPrefix(ref, "#/") {
					t.Errorf("%s: $ref %q is not local", where, ref)
				} else {
					var cur any = doc
					for _, k := range strings.Split(ref[2:], "/") {
						m, _ := cur.(map[string]any)
						if cur = m[k]; cur == nil {
							t.Errorf("%s: $ref %q does not resolve", where, ref)
							break
						}
					}
				}
			}
			for k, c := range v {
				walk(c, where+"."+k)
			}
		case []any:
			for _, c := range v {
				walk(c, where)
			}
		}
	}
	walk(doc, "openapi.yaml")
}

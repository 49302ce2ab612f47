package cardscan

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		name, in string
		kind     PathKind
		steps    []step
		key      string
	}{
		{"json dotted", "$.a.b", PathJSON, []step{{kind: stepKey, name: "a"}, {kind: stepKey, name: "b"}}, ""},
		{"json wildcard", "$.a[*].b", PathJSON, []step{{kind: stepKey, name: "a"}, {kind: stepAny}, {kind: stepKey, name: "b"}}, ""},
		{"json index", "$.a[0].b", PathJSON, []step{{kind: stepKey, name: "a"}, {kind: stepIndex}, {kind: stepKey, name: "b"}}, ""},
		{"json big index", "$.a[999999]", PathJSON, []step{{kind: stepKey, name: "a"}, {kind: stepIndex, index: 999999}}, ""},
		{"json quoted key", "$['odd.key']", PathJSON, []step{{kind: stepKey, name: "odd.key"}}, ""},
		{"json quoted key with space and unicode", "$['ä b']", PathJSON, []step{{kind: stepKey, name: "ä b"}}, ""},
		{"json key digits and dashes", "$.3ds-info_x", PathJSON, []step{{kind: stepKey, name: "3ds-info_x"}}, ""},
		{"json root array", "$[*]", PathJSON, []step{{kind: stepAny}}, ""},
		{"json cybersource nti", "$.processorInformation.networkTransactionId", PathJSON,
			[]step{{kind: stepKey, name: "processorInformation"}, {kind: stepKey, name: "networkTransactionId"}}, ""},
		{"xml element", "/a/b/c", PathXML, []step{{kind: stepElem, name: "a"}, {kind: stepElem, name: "b"}, {kind: stepElem, name: "c"}}, ""},
		{"xml attribute", "/a/b/@id", PathXML, []step{{kind: stepElem, name: "a"}, {kind: stepElem, name: "b"}, {kind: stepAttr, name: "id"}}, ""},
		{"xml dotted name", "/a.b/_c-1", PathXML, []step{{kind: stepElem, name: "a.b"}, {kind: stepElem, name: "_c-1"}}, ""},
		{"form", "form:network_transaction_id", PathForm, nil, "network_transaction_id"},
		{"form brackets", "form:card[number]", PathForm, nil, "card[number]"},
		{"json at depth 16", "$" + strings.Repeat(".a", 16), PathJSON, repeatStep(step{kind: stepKey, name: "a"}, 16), ""},
		{"xml at depth 16", strings.Repeat("/a", 16), PathXML, repeatStep(step{kind: stepElem, name: "a"}, 16), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePath(tt.in)
			if err != nil {
				t.Fatalf("ParsePath(%q) = %v", tt.in, err)
			}
			if p.Kind() != tt.kind || p.String() != tt.in || p.key != tt.key {
				t.Errorf("ParsePath(%q) = kind %v src %q key %q, want %v %q %q", tt.in, p.Kind(), p.String(), p.key, tt.kind, tt.in, tt.key)
			}
			if diff := cmp.Diff(tt.steps, p.steps, cmp.AllowUnexported(step{})); diff != "" {
				t.Errorf("ParsePath(%q) steps (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func repeatStep(s step, n int) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestParsePathRefused(t *testing.T) {
	tests := []struct {
		name, in string
		want     PathProblem
	}{
		{"empty", "", PathEmpty},
		{"too long", "$." + strings.Repeat("a", 600), PathTooLong},
		{"invalid utf8", "$['\xff']", PathBadCharacter},
		{"control", "$.a\tb", PathBadCharacter},
		{"no kind", "a.b", PathUnknownKind},
		{"jsonpath without dollar", ".a", PathUnknownKind},
		{"xpath descendant first", "//a", PathUnsupported},
		{"json root alone", "$", PathNoSteps},
		{"xml root alone", "/", PathNoSteps},
		{"form without key", "form:", PathNoSteps},
		{"json recursive descent", "$..a", PathUnsupported},
		{"json dot star", "$.*", PathUnsupported},
		{"json trailing dot", "$.a.", PathBadKey},
		{"json dot odd char", "$.a.b@c", PathUnsupported},
		{"json filter", "$.a[?(@.b)]", PathUnsupported},
		{"json slice", "$.a[0:2]", PathUnsupported},
		{"json union", "$.a[0,1]", PathUnsupported},
		{"json double quotes", `$.a["b"]`, PathUnsupported},
		{"json negative index", "$.a[-1]", PathUnsupported},
		{"json leading zero", "$.a[01]", PathBadIndex},
		{"json index too big", "$.a[1000000]", PathBadIndex},
		{"json unclosed bracket key", "$['a", PathBadKey},
		{"json empty bracket key", "$['']", PathBadKey},
		{"json bracket key with backslash", `$['a\'b']`, PathBadKey},
		{"json bracket key quote inside", "$['a'b']", PathBadKey},
		{"json no dot", "$a", PathUnsupported},
		{"json too deep", "$" + strings.Repeat(".a", 17), PathTooDeep},
		{"xml descendant", "/a//b", PathUnsupported},
		{"xml trailing slash", "/a/b/", PathUnsupported},
		{"xml wildcard", "/a/*", PathUnsupported},
		{"xml parent", "/a/../b", PathUnsupported},
		{"xml prefix", "/soap:Envelope/soap:Body", PathNamespace},
		{"xml predicate", "/a/b[1]", PathUnsupported},
		{"xml function", "/a/text()", PathUnsupported},
		{"xml attribute not last", "/a/@b/c", PathAttrNotLast},
		{"xml attribute alone", "/@id", PathUnsupported},
		{"xml attribute prefixed", "/a/@xml:lang", PathNamespace},
		{"xml name starts with digit", "/1a", PathBadKey},
		{"xml non-ascii name", "/ä", PathBadKey},
		{"xml too deep", strings.Repeat("/a", 17), PathTooDeep},
		{"form space", "form:a b", PathBadKey},
		{"form non-ascii", "form:ä", PathBadKey},
		{"form too long", "form:" + strings.Repeat("k", 129), PathBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePath(tt.in)
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("ParsePath(%q) = %+v, %v; want a *PathError", tt.in, p, err)
			}
			if pe.Problem != tt.want {
				t.Errorf("ParsePath(%q) problem = %s (%v), want %s", tt.in, pe.Problem, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "cardscan: path: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if len(tt.in) > 5 && strings.Contains(err.Error(), tt.in) {
				t.Errorf("error %q repeats the path", err)
			}
		})
	}
}

func TestPathEqualAndSameParent(t *testing.T) {
	tests := []struct {
		a, b          string
		equal, parent bool
	}{
		{"$.a", "$['a']", true, true},
		{"$.a.b", "$.a.c", false, true},
		{"$.a[*].b", "$.a[*].c", false, true},
		{"$.a[*].b", "$.a[0].c", false, false},
		{"$.a.b", "$.x.b", false, false},
		{"$.a.b", "$.a.b.c", false, false},
		{"/a/card/number", "/a/card/@exp", false, true},
		{"/a/card/number", "/a/other/exp", false, false},
		{"form:a", "form:b", false, true},
		{"form:a", "$.a", false, false},
		{"/a/b", "$.a.b", false, false},
	}
	for _, tt := range tests {
		a, b := MustParsePath(tt.a), MustParsePath(tt.b)
		if got := a.Equal(b); got != tt.equal {
			t.Errorf("Equal(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.equal)
		}
		if got := SameParent(a, b); got != tt.parent {
			t.Errorf("SameParent(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.parent)
		}
	}
	if (Path{}).Equal(MustParsePath("$.a")) || !(Path{}).IsZero() || SameParent(Path{}, Path{}) {
		t.Error("the zero Path must equal nothing and have no siblings")
	}
}

package cardscan

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// found is a span as a test reads it: the path that selected it, its raw
// bytes, its decoded value and its kind.
type found struct {
	Path       int
	Raw, Value string
	Kind       ValueKind
}

func findAll(t *testing.T, body string, kind BodyKind, paths ...string) ([]found, []Span, error) {
	t.Helper()
	var ps []Path
	for _, s := range paths {
		ps = append(ps, MustParsePath(s))
	}
	spans, err := FindSpans([]byte(body), kind, ps)
	if err != nil {
		return nil, nil, err
	}
	var out []found
	for _, sp := range spans {
		v, err := SpanValue([]byte(body), sp)
		if err != nil {
			t.Fatalf("SpanValue(%+v) = %v", sp, err)
		}
		out = append(out, found{sp.Path, body[sp.Start:sp.End], v, sp.Kind})
	}
	return out, spans, nil
}

func TestFindSpansJSON(t *testing.T) {
	tests := []struct {
		name, body string
		paths      []string
		want       []found
	}{
		{"string and number",
			`{"processorInformation":{"networkTransactionId":"722463149772052"},"acquirerReferenceNumber":74537604221431003881310}`,
			[]string{"$.processorInformation.networkTransactionId", "$.acquirerReferenceNumber"},
			[]found{{0, "722463149772052", "722463149772052", ValueJSONString}, {1, "74537604221431003881310", "74537604221431003881310", ValueJSONNumber}}},
		{"whitespace everywhere", "{ \"a\" :\n\t\"x\" , \"b\" : -1.5e3 }", []string{"$.a", "$.b"},
			[]found{{0, "x", "x", ValueJSONString}, {1, "-1.5e3", "-1.5e3", ValueJSONNumber}}},
		{"escapes kept raw, decoded value", `{"a":"7\u0032\"x\\"}`, []string{"$.a"},
			[]found{{0, `7\u0032\"x\\`, `72"x\`, ValueJSONString}}},
		{"escaped key matches", `{"n\u0074i":"1"}`, []string{"$.nti"}, []found{{0, "1", "1", ValueJSONString}}},
		{"quoted key with dot", `{"odd.key":"1","odd":{"key":"2"}}`, []string{"$['odd.key']"}, []found{{0, "1", "1", ValueJSONString}}},
		{"wildcard", `{"a":[{"b":"1"},{"c":"x"},{"b":"2"}]}`, []string{"$.a[*].b"},
			[]found{{0, "1", "1", ValueJSONString}, {0, "2", "2", ValueJSONString}}},
		{"index", `{"a":[{"b":"1"},{"b":"2"}]}`, []string{"$.a[1].b"}, []found{{0, "2", "2", ValueJSONString}}},
		{"scalar array elements", `{"ids":["1",2,null,"3"]}`, []string{"$.ids[*]"},
			[]found{{0, "1", "1", ValueJSONString}, {0, "2", "2", ValueJSONNumber}, {0, "3", "3", ValueJSONString}}},
		{"wildcard does not match objects", `{"a":{"x":"1"}}`, []string{"$.a[*]"}, nil},
		{"key does not match array", `{"a":["1"]}`, []string{"$.a.x"}, nil},
		{"object at path selects nothing", `{"a":{"b":"1"}}`, []string{"$.a"}, nil},
		{"array at path selects nothing", `{"a":["1"]}`, []string{"$.a"}, nil},
		{"bool and null select nothing", `{"a":true,"b":null}`, []string{"$.a", "$.b"}, nil},
		{"duplicate keys both", `{"a":"1","a":"2"}`, []string{"$.a"}, []found{{0, "1", "1", ValueJSONString}, {0, "2", "2", ValueJSONString}}},
		{"two paths one value", `{"a":"1"}`, []string{"$.a", "$['a']"}, []found{{0, "1", "1", ValueJSONString}, {1, "1", "1", ValueJSONString}}},
		{"deep skip", `{"x":{"y":[1,2,{"z":"4242424242424242"}]},"a":"1"}`, []string{"$.a"}, []found{{0, "1", "1", ValueJSONString}}},
		{"root scalar", `"722463149772052"`, []string{"$.a"}, nil},
		{"top-level array", `[{"a":"1"}]`, []string{"$[0].a"}, []found{{0, "1", "1", ValueJSONString}}},
		{"path of another kind", `{"a":"1"}`, []string{"/a", "form:a"}, nil},
		{"empty string", `{"a":""}`, []string{"$.a"}, []found{{0, "", "", ValueJSONString}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := findAll(t, tt.body, BodyJSON, tt.paths...)
			if err != nil {
				t.Fatalf("FindSpans = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FindSpans(%s) (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

func TestFindSpansXML(t *testing.T) {
	tests := []struct {
		name, body string
		paths      []string
		want       []found
	}{
		{"element text", `<r><a><b>722463149772052</b></a></r>`, []string{"/r/a/b"}, []found{{0, "722463149772052", "722463149772052", ValueXMLText}}},
		{"attribute", `<r><a id="74537604221431003881310" x='1'/></r>`, []string{"/r/a/@id", "/r/a/@x"},
			[]found{{0, "74537604221431003881310", "74537604221431003881310", ValueXMLAttr}, {1, "1", "1", ValueXMLAttr}}},
		{"attribute with spaces and gt", `<r><a  y = "a>b"   id = '5' /></r>`, []string{"/r/a/@id"}, []found{{0, "5", "5", ValueXMLAttr}}},
		{"namespaces ignored", `<s:Envelope xmlns:s="urn:s"><s:Body><n:reply xmlns:n="urn:n" n:id="7">1</n:reply></s:Body></s:Envelope>`,
			[]string{"/Envelope/Body/reply", "/Envelope/Body/reply/@id"},
			[]found{{1, "7", "7", ValueXMLAttr}, {0, "1", "1", ValueXMLText}}},
		{"xmlns not an attribute value", `<r xmlns="urn:x" xmlns:a="urn:a"/>`, []string{"/r/@xmlns", "/r/@a"}, nil},
		{"entities and cdata decoded", `<r><a>1&amp;2&#51;<![CDATA[<4>]]></a></r>`, []string{"/r/a"},
			[]found{{0, "1&amp;2&#51;<![CDATA[<4>]]>", "1&23<4>", ValueXMLText}}},
		{"element with a child selects nothing", `<r><a>1<b>2</b></a></r>`, []string{"/r/a"}, nil},
		{"element with a comment selects nothing", `<r><a>1<!-- x -->2</a></r>`, []string{"/r/a"}, nil},
		{"self-closing is empty", `<r><a/></r>`, []string{"/r/a"}, []found{{0, "", "", ValueXMLText}}},
		{"repeated elements", `<r><a>1</a><a>2</a></r>`, []string{"/r/a"}, []found{{0, "1", "1", ValueXMLText}, {0, "2", "2", ValueXMLText}}},
		{"path must start at the root", `<r><a>1</a></r>`, []string{"/a"}, nil},
		{"doctype tolerated", `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<!DOCTYPE paymentService PUBLIC "-//Worldpay//DTD Worldpay PaymentService v1//EN" "http://dtd.worldpay.com/paymentService_v1.dtd">` +
			`<paymentService><reply><id>722463149772052</id></reply></paymentService>`,
			[]string{"/paymentService/reply/id"}, []found{{0, "722463149772052", "722463149772052", ValueXMLText}}},
		{"comments and pis around the root", `<?xml version="1.0"?><!-- c --><r><a>1</a></r><!-- end -->` + "\n", []string{"/r/a"}, []found{{0, "1", "1", ValueXMLText}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := findAll(t, tt.body, BodyXML, tt.paths...)
			if err != nil {
				t.Fatalf("FindSpans = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FindSpans(%s) (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

func TestFindSpansForm(t *testing.T) {
	tests := []struct {
		name, body string
		paths      []string
		want       []found
	}{
		{"plain", "a=1&network_transaction_id=722463149772052&b=2", []string{"form:network_transaction_id"},
			[]found{{0, "722463149772052", "722463149772052", ValueForm}}},
		{"encoded key and value", "card%5Bnumber%5D=4242+4242%2B&x=", []string{"form:card[number]", "form:x"},
			[]found{{0, "4242+4242%2B", "4242 4242+", ValueForm}, {1, "", "", ValueForm}}},
		{"key without value", "a&b=1", []string{"form:a", "form:b"}, []found{{1, "1", "1", ValueForm}}},
		{"value with equals", "a=1=2", []string{"form:a"}, []found{{0, "1=2", "1=2", ValueForm}}},
		{"repeated key", "a=1&a=2", []string{"form:a"}, []found{{0, "1", "1", ValueForm}, {0, "2", "2", ValueForm}}},
		{"empty body", "", []string{"form:a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := findAll(t, tt.body, BodyForm, tt.paths...)
			if err != nil {
				t.Fatalf("FindSpans = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FindSpans(%q) (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

// Bodies that do not parse as their kind select nothing: an error, never
// a partial list.
func TestFindSpansUnparsable(t *testing.T) {
	tests := []struct {
		name string
		kind BodyKind
		body string
		path string
	}{
		{"json truncated", BodyJSON, `{"a":"722463149772052"`, "$.a"},
		{"json trailing garbage", BodyJSON, `{"a":"1"} x`, "$.a"},
		{"json two values", BodyJSON, `{"a":"1"}{"a":"2"}`, "$.a"},
		{"json empty", BodyJSON, ``, "$.a"},
		{"json single quotes", BodyJSON, `{'a':'1'}`, "$.a"},
		{"json trailing comma", BodyJSON, `{"a":"1",}`, "$.a"},
		{"json bad in skipped value", BodyJSON, `{"x":[1,2,],"a":"1"}`, "$.a"},
		{"json comment", BodyJSON, `{"a":"1"/*c*/}`, "$.a"},
		{"xml unclosed", BodyXML, `<r><a>1</a>`, "/r/a"},
		{"xml mismatched", BodyXML, `<r><a>1</b></r>`, "/r/a"},
		{"xml two roots", BodyXML, `<r><a>1</a></r><r/>`, "/r/a"},
		{"xml text outside root", BodyXML, `<r><a>1</a></r>junk`, "/r/a"},
		{"xml unknown entity", BodyXML, `<r><a>&card;</a></r>`, "/r/a"},
		{"xml internal subset", BodyXML, `<!DOCTYPE r [<!ENTITY x "4242424242424242">]><r><a>1</a></r>`, "/r/a"},
		{"xml doctype after root", BodyXML, `<r><a>1</a></r><!DOCTYPE r>`, "/r/a"},
		{"xml other encoding", BodyXML, `<?xml version="1.0" encoding="ISO-8859-1"?><r><a>1</a></r>`, "/r/a"},
		{"xml empty", BodyXML, ``, "/r/a"},
		{"xml not xml", BodyXML, `{"r":{"a":"1"}}`, "/r/a"},
		{"form bad escape in key", BodyForm, "a%zz=1&b=2", "form:b"},
		{"form bad escape in value", BodyForm, "a=%4&b=2", "form:b"},
		{"form semicolon", BodyForm, "a=1;b=2", "form:b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans, err := FindSpans([]byte(tt.body), tt.kind, []Path{MustParsePath(tt.path)})
			var se *SpanError
			if !errors.As(err, &se) || spans != nil {
				t.Fatalf("FindSpans(%q) = %v, %v; want nil and a *SpanError", tt.body, spans, err)
			}
		})
	}
}

func TestFindSpansLimits(t *testing.T) {
	paths := make([]Path, MaxFindPaths+1)
	for i := range paths {
		paths[i] = MustParsePath("$.a")
	}
	if _, err := FindSpans([]byte(`{"a":"1"}`), BodyJSON, paths); err == nil {
		t.Error("FindSpans with too many paths = nil error")
	}
	body := []byte("[" + repeatJoin(`"1"`, ",", maxSpans+1) + "]")
	if spans, err := FindSpans(body, BodyJSON, []Path{MustParsePath("$[*]")}); err == nil {
		t.Errorf("FindSpans selecting %d values = %d spans, nil error", maxSpans+1, len(spans))
	}
	deep := []byte(repeatJoin("<a>", "", maxXMLDepth+1))
	if _, err := FindSpans(deep, BodyXML, []Path{MustParsePath("/a")}); err == nil {
		t.Error("FindSpans on XML nested too deep = nil error")
	}
}

func repeatJoin(s, sep string, n int) string {
	b := make([]byte, 0, n*(len(s)+len(sep)))
	for i := range n {
		if i > 0 {
			b = append(b, sep...)
		}
		b = append(b, s...)
	}
	return string(b)
}

func TestMediaKind(t *testing.T) {
	tests := []struct {
		in   string
		want BodyKind
	}{
		{"application/json", BodyJSON},
		{"Application/JSON; charset=utf-8", BodyJSON},
		{"application/problem+json", BodyJSON},
		{"application/hal+json; charset=UTF-8", BodyJSON},
		{"application/xml", BodyXML},
		{"text/xml; charset=utf-8", BodyXML},
		{"application/soap+xml; charset=utf-8; action=x", BodyXML},
		{"application/x-www-form-urlencoded", BodyForm},
		{"application/json; charset=utf-16", BodyOther},
		{"text/xml; charset=iso-8859-1", BodyOther},
		{"text/plain", BodyOther},
		{"text/json", BodyOther},
		{"", BodyOther},
		{"application/json;;", BodyOther},
	}
	for _, tt := range tests {
		if got := MediaKind(tt.in); got != tt.want {
			t.Errorf("MediaKind(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// Parents pair siblings: a card's number and expiry in one object share
// a Parent, those of another object do not.
func TestFindSpansParents(t *testing.T) {
	body := `{"cards":[{"n":"1","m":"2"},{"n":"3","m":"4"}]}`
	_, spans, err := findAll(t, body, BodyJSON, "$.cards[*].n", "$.cards[*].m")
	if err != nil || len(spans) != 4 {
		t.Fatalf("FindSpans = %v, %v", spans, err)
	}
	if spans[0].Parent != spans[1].Parent || spans[2].Parent != spans[3].Parent || spans[0].Parent == spans[2].Parent {
		t.Errorf("parents = %d %d %d %d, want pairs", spans[0].Parent, spans[1].Parent, spans[2].Parent, spans[3].Parent)
	}
	xbody := `<r><card exp="1"><n>2</n></card><card exp="3"><n>4</n></card></r>`
	_, spans, err = findAll(t, xbody, BodyXML, "/r/card/n", "/r/card/@exp")
	if err != nil || len(spans) != 4 {
		t.Fatalf("FindSpans = %v, %v", spans, err)
	}
	if spans[0].Parent != spans[1].Parent || spans[2].Parent != spans[3].Parent || spans[0].Parent == spans[2].Parent {
		t.Errorf("xml parents = %d %d %d %d, want pairs", spans[0].Parent, spans[1].Parent, spans[2].Parent, spans[3].Parent)
	}
}

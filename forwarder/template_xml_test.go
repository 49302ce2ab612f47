package forwarder

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/vaultclient"
)

const worldpayDoctype = `<!DOCTYPE paymentService PUBLIC "-//Worldpay//DTD Worldpay PaymentService v1//EN" "http://dtd.worldpay.com/paymentService_v1.dtd">`

// xmlRequest is a request with an XML body template.
func (e *env) xmlRequest(contentType, body string) *Request {
	r := e.jsonRequest(body)
	r.Headers["Content-Type"] = []string{contentType}
	return r
}

// TestXMLTemplateRefusals covers each refusal of an XML template. In each
// case the processor receives nothing and the card is never read.
func TestXMLTemplateRefusals(t *testing.T) {
	const ok = `<pay><n>{{card.number}}</n></pay>`
	tests := []struct {
		name, body, code, msg string
		doctype               string // the entry's body.doctype
	}{
		{"internal subset", `<!DOCTYPE pay [<!ELEMENT pay ANY>]>` + ok, CodeInvalidTemplate, "internal subset", ""},
		{"internal subset even when the entry names a doctype", `<!DOCTYPE pay [ ]>` + ok, CodeInvalidTemplate, "internal subset", "<!DOCTYPE pay>"},
		{"entity declaration in a subset", `<!DOCTYPE pay [<!ENTITY e "x">]>` + ok, CodeInvalidTemplate, "entity declarations", ""},
		{"entity declaration alone", `<!ENTITY e "x">` + ok, CodeInvalidTemplate, "entity declarations", ""},
		{"other declaration", `<!ELEMENT pay ANY>` + ok, CodeInvalidTemplate, "declarations other than DOCTYPE", ""},
		{"processing instruction", `<?xml-stylesheet href="x.xsl"?>` + ok, CodeInvalidTemplate, "processing instructions", ""},
		{"processing instruction inside", `<pay><?php echo 1 ?><n>{{card.number}}</n></pay>`, CodeInvalidTemplate, "processing instructions", ""},
		{"xml declaration not first", ` <?xml version="1.0"?>` + ok, CodeInvalidTemplate, "processing instructions", ""},
		{"undeclared doctype", `<!DOCTYPE pay SYSTEM "pay.dtd">` + ok, CodeInvalidTemplate, "allows no DOCTYPE", ""},
		{"different doctype", `<!DOCTYPE pay SYSTEM "pay.dtd">` + ok, CodeInvalidTemplate, "not the one", `<!DOCTYPE pay SYSTEM "other.dtd">`},
		{"doctype differing in spacing only", `<!DOCTYPE  pay SYSTEM "pay.dtd">` + ok, CodeInvalidTemplate, "not the one", `<!DOCTYPE pay SYSTEM "pay.dtd">`},
		{"two doctypes", `<!DOCTYPE pay><!DOCTYPE pay>` + ok, CodeInvalidTemplate, "more than one DOCTYPE", "<!DOCTYPE pay>"},
		{"doctype after the root", ok + `<!DOCTYPE pay>`, CodeInvalidTemplate, "before the root", "<!DOCTYPE pay>"},
		{"placeholder in a comment", `<pay><!-- {{card.number}} --><n>1</n></pay>`, CodeInvalidTemplate, "is in a comment", ""},
		{"placeholder in CDATA", `<pay><n><![CDATA[{{card.number}}]]></n></pay>`, CodeInvalidTemplate, "is in a CDATA section", ""},
		{"placeholder as attribute name", `<pay {{card.number}}="1"/>`, CodeInvalidTemplate, "is in a tag or attribute name", ""},
		{"placeholder as unquoted attribute value", `<pay n={{card.number}}/>`, CodeInvalidTemplate, "is in a tag or attribute name", ""},
		{"placeholder as tag name", `<{{card.number}}>1</{{card.number}}>`, CodeInvalidTemplate, "is in a tag or attribute name", ""},
		{"placeholder in an end tag", `<pay>1</pay{{card.number}}>`, CodeInvalidTemplate, "is in a tag or attribute name", ""},
		{"placeholder in a processing instruction", `<?xml version="{{card.number}}"?><pay/>`, CodeInvalidTemplate, "is in a processing instruction", ""},
		{"placeholder in the doctype", `<!DOCTYPE pay SYSTEM "{{card.number}}">` + ok, CodeInvalidTemplate, "is in a DOCTYPE", ""},
		{"placeholder outside the root", `{{card.number}}<pay/>`, CodeInvalidTemplate, "text outside the root", ""},
		{"placeholder after the root", `<pay/>{{card.number}}`, CodeInvalidTemplate, "text outside the root", ""},
		{"placeholder in an entity reference", `<pay>&{{card.name}};</pay>`, CodeInvalidTemplate, "not well-formed", ""},
		{"placeholder in a character reference", `<pay>&#{{card.exp_month}};</pay>`, CodeInvalidTemplate, "not well-formed", ""},
		{"placeholder in a hex character reference", `<pay>&#x{{card.exp_month}};</pay>`, CodeInvalidTemplate, "not well-formed", ""},
		{"unknown entity", `<pay a="&nbsp;">{{card.number}}</pay>`, CodeInvalidTemplate, "not well-formed", ""},
		{"unclosed element", `<pay><n>{{card.number}}</n>`, CodeInvalidTemplate, "not well-formed", ""},
		{"mismatched end tag", `<pay><n>{{card.number}}</m></pay>`, CodeInvalidTemplate, "not well-formed XML (line 1)", ""},
		{"two roots", `<a>{{card.number}}</a><b/>`, CodeInvalidTemplate, "more than one root", ""},
		{"no root", `<!-- {{card.number}} -->`, CodeInvalidTemplate, "is in a comment", ""},
		{"duplicate attribute", `<pay n="{{card.number}}" n="2"/>`, CodeInvalidTemplate, "attribute appears twice", ""},
		{"byte order mark", "\ufeff" + ok, CodeInvalidTemplate, "text outside the root", ""},
		{"declared latin-1 encoding", `<?xml version="1.0" encoding="ISO-8859-1"?>` + ok, CodeInvalidTemplate, "not well-formed", ""},
		{"control character in the template", "<pay>\x01{{card.number}}</pay>", CodeInvalidTemplate, "not well-formed", ""},
		{"card in character references", `<pay><n>{{card.number}}</n><x>&#52;242424242424242</x></pay>`, CodeLiteralCard, "body", ""},
		{"card in hex references in an attribute", `<pay x="&#x34;&#x32;42424242424242"><n>{{card.number}}</n></pay>`, CodeLiteralCard, "body", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, echo, func(o *Options, d *allowlist.Destination) {
				if tt.doctype != "" {
					d.Body = &allowlist.Body{Doctype: tt.doctype}
				}
			})
			fe := forwardErr(t, e.f, e.xmlRequest("application/xml", tt.body))
			if fe.Code != tt.code || fe.Outcome != NotSent || !strings.Contains(fe.Message, tt.msg) {
				t.Errorf("Forward = %s/%s %q, want %s/not_sent containing %q", fe.Code, fe.Outcome, fe.Message, tt.code, tt.msg)
			}
			if strings.Contains(fe.Error(), "4242") {
				t.Errorf("error %q echoes card digits", fe.Error())
			}
			if d, _ := e.cards.counts(); d != 0 {
				t.Errorf("Detokenize called %d times", d)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests", n)
			}
		})
	}
}

// TestXMLContentTypes: each XML media type is accepted; a charset other
// than UTF-8 is not (the gateway writes UTF-8).
func TestXMLContentTypes(t *testing.T) {
	for _, tt := range []struct {
		ct string
		ok bool
	}{
		{"application/xml", true},
		{"text/xml", true},
		{"text/xml; charset=UTF-8", true},
		{`application/soap+xml; charset=utf-8; action="urn:pay"`, true},
		{"application/vnd.acme.payment+xml", true},
		{"text/xml; charset=iso-8859-1", false},
		{"application/xml-dtd", false},
		{"image/svg+xml", false},
	} {
		e := newEnv(t, echo)
		_, err := e.f.Forward(context.Background(), e.xmlRequest(tt.ct, `<pay n="{{card.number}}"/>`))
		if (err == nil) != tt.ok {
			t.Errorf("Content-Type %q: Forward error = %v, want ok=%v", tt.ct, err, tt.ok)
		}
	}
}

// TestXMLDeclaredDoctypeAccepted: the entry's doctype, byte for byte,
// with the XML declaration before it, reaches the processor unchanged.
func TestXMLDeclaredDoctypeAccepted(t *testing.T) {
	e := newEnv(t, echo, func(o *Options, d *allowlist.Destination) {
		d.Body = &allowlist.Body{Doctype: worldpayDoctype}
	})
	body := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + worldpayDoctype + "\n" +
		`<paymentService version="1.4" merchantCode="ACME"><submit><order orderCode="o-1"><paymentDetails><VISA-SSL>` +
		`<cardNumber>{{card.number}}</cardNumber><expiryDate><date month="{{card.exp_month}}" year="{{card.exp_year}}"/></expiryDate>` +
		`<cardHolderName>{{card.name}}</cardHolderName><cvc>{{card.cvc}}</cvc></VISA-SSL></paymentDetails></order></submit></paymentService>`
	if _, err := e.f.Forward(context.Background(), e.xmlRequest("text/xml", body)); err != nil {
		t.Fatalf("Forward: %v", err)
	}
	sent := string(e.p.requests()[0].body)
	if !strings.HasPrefix(sent, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+worldpayDoctype+"\n<paymentService") {
		t.Errorf("prolog changed: %.200s", sent)
	}
	var got struct {
		Number string `xml:"submit>order>paymentDetails>VISA-SSL>cardNumber"`
		Month  string
		Name   string `xml:"submit>order>paymentDetails>VISA-SSL>cardHolderName"`
		CVC    string `xml:"submit>order>paymentDetails>VISA-SSL>cvc"`
	}
	if err := xml.Unmarshal([]byte(sent), &got); err != nil {
		t.Fatalf("processor body is not XML: %v", err)
	}
	got.Month = xmlAttr(t, sent, "date", "month")
	want := struct{ Number, Month, Name, CVC string }{testPAN, "03", testName, testCVC}
	if diff := cmp.Diff(want, struct{ Number, Month, Name, CVC string }{got.Number, got.Month, got.Name, got.CVC}); diff != "" {
		t.Errorf("processor read (-want +got):\n%s", diff)
	}
}

// xmlAttr returns the value of attribute attr of the first element named
// el in doc.
func xmlAttr(t *testing.T, doc, el, attr string) string {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("no <%s %s=…> in the document: %v", el, attr, err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == el {
			for _, a := range se.Attr {
				if a.Name.Local == attr {
					return a.Value
				}
			}
		}
	}
}

// TestXMLEscaping: a name made to break out of text and attribute values
// stays inside them, in the bytes sent and as the processor parses them.
func TestXMLEscaping(t *testing.T) {
	for _, name := range []string{`Jane "<&'>" Doe`, "a]]>b", "tab\tnew\nline\rcr", "x\"/><evil a=\"", "é\xff\u2028"} {
		e := newEnv(t, echo)
		e.cards.cards[testToken] = func() *vaultclient.Card {
			return &vaultclient.Card{Token: testToken, Number: vaultclient.NewPAN(testPAN), ExpMonth: 3, ExpYear: 2031, Name: vaultclient.NewName(name)}
		}
		body := `<pay holder="{{card.name}}" other='{{card.name}}'><name>{{card.name}}</name><n>{{card.number}}</n></pay>`
		if _, err := e.f.Forward(context.Background(), e.xmlRequest("application/xml", body)); err != nil {
			t.Fatalf("name %q: Forward: %v", name, err)
		}
		sent := e.p.requests()[0].body
		var got struct {
			Holder string `xml:"holder,attr"`
			Other  string `xml:"other,attr"`
			Name   string `xml:"name"`
			N      string `xml:"n"`
		}
		if err := xml.Unmarshal(sent, &got); err != nil {
			t.Fatalf("name %q: processor body %q is not XML: %v", name, sent, err)
		}
		want := replaceInvalidUTF8(name)
		if got.Holder != want || got.Other != want || got.Name != want || got.N != testPAN {
			t.Errorf("name %q: processor read %+v", name, got)
		}
		if bytes.Count(sent, []byte("<")) != 6 {
			t.Errorf("name %q: the body's markup changed: %q", name, sent)
		}
	}
	t.Run("exact bytes", func(t *testing.T) {
		out, ok := appendXMLEscaped(nil, `Jane "<&'>" Doe`, false)
		if want := `Jane &quot;&lt;&amp;&apos;&gt;&quot; Doe`; !ok || string(out) != want {
			t.Errorf("appendXMLEscaped = %q, %v; want %q", out, ok, want)
		}
	})
	t.Run("refused characters", func(t *testing.T) {
		for _, s := range []string{"\x00", "a\x01b", "\x0b", "\x1f", "\uFFFE", "\uFFFF"} {
			if _, ok := appendXMLEscaped(nil, s, false); ok {
				t.Errorf("appendXMLEscaped(%q) accepted a character XML 1.0 cannot carry", s)
			}
		}
		e := newEnv(t, echo)
		e.cards.cards[testToken] = func() *vaultclient.Card {
			return &vaultclient.Card{Token: testToken, Number: vaultclient.NewPAN(testPAN), ExpMonth: 3, ExpYear: 2031, Name: vaultclient.NewName("a\uFFFEb")}
		}
		fe := forwardErr(t, e.f, e.xmlRequest("application/xml", `<p>{{card.name}}</p>`))
		if fe.Code != CodeInvalidTemplate || fe.Outcome != NotSent || !strings.Contains(fe.Message, "XML 1.0 cannot carry") {
			t.Errorf("Forward = %s/%s %q", fe.Code, fe.Outcome, fe.Message)
		}
		if n := len(e.p.requests()); n != 0 {
			t.Errorf("processor got %d requests", n)
		}
	})
}

// FuzzXMLEscape: for any value, the rendered text and attribute are
// well-formed and parse back to the value (invalid UTF-8 as U+FFFD), or
// the value holds a character XML cannot carry and is refused.
func FuzzXMLEscape(f *testing.F) {
	for _, s := range []string{"", `Jane "<&'>" Doe`, "]]>", "a]", "a]]", "]", "\t\r\n", "\x00", "\xff", "\uFFFE", "&#0;", "<![CDATA[", "é\u2028"} {
		f.Add(s)
	}
	// Text followed by "]>" and by ">": a value ending in "]" or "]]"
	// must not complete a "]]>".
	const tmpl = `<r a="{{card.name}}" b='{{card.name}}'>x{{card.name}}]>y{{card.name}}><c>{{card.name}}</c>]</r>`
	phs, e := parsePlaceholders(tmpl, "body")
	if e != nil {
		f.Fatal(e)
	}
	if _, e := checkXMLBody(tmpl, phs); e != nil {
		f.Fatal(e)
	}
	sl := slot{text: tmpl, phs: phs}
	f.Fuzz(func(t *testing.T, s string) {
		out, e := renderBody(make([]byte, 0, bodyBound(sl, stubValues(s))), sl, bodyXML, stubValues(s))
		allowed := true
		for _, r := range replaceInvalidUTF8(s) {
			if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF {
				allowed = false
			}
		}
		if !allowed {
			if e == nil {
				t.Fatalf("value %q with a forbidden character rendered as %q", s, out)
			}
			return
		}
		if e != nil {
			t.Fatalf("value %q refused: %v", s, e)
		}
		if len(out) > bodyBound(sl, stubValues(s)) {
			t.Fatalf("value %q: %d bytes, over the bound", s, len(out))
		}
		var got struct {
			A string `xml:"a,attr"`
			B string `xml:"b,attr"`
			T string `xml:",chardata"`
			C string `xml:"c"`
		}
		dec := xml.NewDecoder(bytes.NewReader(out))
		dec.Strict = true
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("value %q: rendered %q is not well-formed: %v", s, out, err)
		}
		want := replaceInvalidUTF8(s)
		if got.A != want || got.B != want || got.C != want || got.T != "x"+want+"]>y"+want+">]" {
			t.Fatalf("value %q: parsed back %+v", s, got)
		}
		if !utf8.Valid(out) {
			t.Fatalf("value %q: rendered invalid UTF-8", s)
		}
	})
}

// replaceInvalidUTF8 replaces each invalid byte of s with U+FFFD, as the
// escapers do (strings.ToValidUTF8 replaces each run with one).
func replaceInvalidUTF8(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r) // ranging yields U+FFFD for each invalid byte
	}
	return b.String()
}

// TestXMLDoctypeNeverFetched: a DOCTYPE naming an external DTD on a
// listener that fails the test when dialled; the forward goes through and
// nothing connects to it (encoding/xml has no DTD processing).
func TestXMLDoctypeNeverFetched(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dialled := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			dialled <- struct{}{}
		}
	}()
	t.Cleanup(func() { ln.Close() })
	dtdURL := "http://" + ln.Addr().String() + "/pay.dtd"
	doctype := `<!DOCTYPE pay SYSTEM "` + dtdURL + `">`
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		// The test processor parses what it got with encoding/xml too.
		b, _ := io.ReadAll(r.Body)
		var v struct {
			N string `xml:"n"`
		}
		if err := xml.Unmarshal(b, &v); err != nil || v.N != testPAN {
			http.Error(w, "bad xml", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Write([]byte(doctype + `<ok><n>` + v.N + `</n></ok>`))
	}, func(o *Options, d *allowlist.Destination) {
		d.Body = &allowlist.Body{Doctype: doctype}
	})
	for _, dry := range []bool{true, false} {
		r := e.xmlRequest("application/xml", doctype+`<pay><n>{{card.number}}</n></pay>`)
		r.DryRun = dry
		resp, err := e.f.Forward(context.Background(), r)
		if err != nil {
			t.Fatalf("Forward (dry run %v): %v", dry, err)
		}
		if !dry && (resp.Status != http.StatusOK || !strings.Contains(resp.Body, "<n>************4242</n>")) {
			t.Errorf("answer %d %q", resp.Status, resp.Body)
		}
	}
	select {
	case <-dialled:
		t.Fatal("something fetched the external DTD")
	default:
	}
}

// soapProcessor parses a SOAP envelope of either version and answers
// with a SOAP envelope that echoes the card number (which the caller must
// see masked).
func soapProcessor(t *testing.T, ns string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var env struct {
			XMLName xml.Name
			Body    struct {
				Pay struct {
					Card struct {
						Holder string `xml:"Holder,attr"`
						Number string
						Expiry string
						CVC    string
					}
				} `xml:"urn:acme:pay Authorize"`
			} `xml:"Body"`
		}
		if err := xml.Unmarshal(b, &env); err != nil {
			http.Error(w, "not xml: "+err.Error(), http.StatusBadRequest)
			return
		}
		p := env.Body.Pay.Card
		if env.XMLName.Space != ns || env.XMLName.Local != "Envelope" || p.Number != testPAN || p.Expiry != "03/31" || p.Holder != testName || p.CVC != testCVC {
			http.Error(w, "wrong envelope", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.Write([]byte(`<?xml version="1.0"?><s:Envelope xmlns:s="` + ns + `"><s:Body><AuthorizeResponse xmlns="urn:acme:pay"><Result>approved</Result><Card>` + p.Number + `</Card><Cvc>` + p.CVC + `</Cvc></AuthorizeResponse></s:Body></s:Envelope>`))
	}
}

// TestSOAPEnvelopes sends SOAP 1.1 (text/xml with SOAPAction) and SOAP
// 1.2 (application/soap+xml) envelopes end to end.
func TestSOAPEnvelopes(t *testing.T) {
	tests := []struct {
		name, ns, ct string
		headers      http.Header
	}{
		{"soap 1.1", "http://schemas.xmlsoap.org/soap/envelope/", "text/xml; charset=utf-8", http.Header{"Soapaction": {`"urn:acme:pay/Authorize"`}}},
		{"soap 1.2", "http://www.w3.org/2003/05/soap-envelope", `application/soap+xml; charset=utf-8; action="urn:acme:pay/Authorize"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, soapProcessor(t, tt.ns))
			body := `<?xml version="1.0" encoding="utf-8"?>` + "\n" +
				`<soap:Envelope xmlns:soap="` + tt.ns + `"><soap:Header/><soap:Body>` +
				`<Authorize xmlns="urn:acme:pay"><Amount currency="EUR">10.00</Amount>` +
				`<Card Holder="{{card.name}}"><Number>{{card.number}}</Number><Expiry>{{card.exp | MM/YY}}</Expiry><CVC>{{card.cvc}}</CVC></Card>` +
				`</Authorize></soap:Body></soap:Envelope>`
			r := e.xmlRequest(tt.ct, body)
			for k, v := range tt.headers {
				r.Headers[k] = v
			}
			resp, err := e.f.Forward(context.Background(), r)
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			if resp.Status != http.StatusOK {
				t.Fatalf("processor answered %d: %s", resp.Status, resp.Body)
			}
			if got := e.p.requests()[0].header.Get("Soapaction"); got != tt.headers.Get("Soapaction") {
				t.Errorf("SOAPAction = %q, want %q", got, tt.headers.Get("Soapaction"))
			}
			if !strings.Contains(resp.Body, "<Card>************4242</Card><Cvc>***</Cvc>") || strings.Contains(resp.Body, testPAN) {
				t.Errorf("answer not masked: %s", resp.Body)
			}
			for _, rec := range e.auditRecords() {
				if rec.Kind == audit.KindIntent && rec.Token != testToken {
					t.Errorf("intent record token = %q", rec.Token)
				}
			}
		})
	}
}

// TestXMLDryRun shows the stand-ins, escaped, in an XML body.
func TestXMLDryRun(t *testing.T) {
	e := newEnv(t, echo)
	r := e.xmlRequest("application/xml", `<p n="{{card.number}}"><e>{{card.exp|YYYY-MM}}</e></p>`)
	r.DryRun = true
	resp, err := e.f.Forward(context.Background(), r)
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	if want := `<p n="[card.number]"><e>[card.exp|YYYY-MM]</e></p>`; resp.DryRun.Body != want {
		t.Errorf("preview body = %q, want %q", resp.DryRun.Body, want)
	}
}

// BenchmarkRenderXML measures checking an XML template (done per request,
// in validate) and rendering it into a reused buffer.
func BenchmarkRenderXML(b *testing.B) {
	card := &vaultclient.Card{
		Number: vaultclient.NewPAN("4242424242424242"), CVC: vaultclient.NewCVC("123"),
		Name: vaultclient.NewName(`Zoë "Q" O'Brien & Sons`), ExpMonth: 3, ExpYear: 2031,
	}
	body := xmlBenchBody
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			phs, e := parsePlaceholders(body, "body")
			if e != nil {
				b.Fatal(e)
			}
			if _, e := checkXMLBody(body, phs); e != nil {
				b.Fatal(e)
			}
		}
	})
	phs, _ := parsePlaceholders(body, "body")
	sl := slot{text: body, phs: phs}
	b.Run("render", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			var e *Error
			if buf, e = renderBody(buf[:0], sl, bodyXML, cardValues{card: card}); e != nil {
				b.Fatal(e)
			}
		}
	})
}

const xmlBenchBody = `<?xml version="1.0" encoding="UTF-8"?>` +
	`<paymentService version="1.4" merchantCode="ACME"><submit><order orderCode="o-1" installationId="1">` +
	`<description>subscription</description><amount value="1000" currencyCode="EUR" exponent="2"/>` +
	`<paymentDetails><VISA-SSL><cardNumber>{{card.number}}</cardNumber>` +
	`<expiryDate><date month="{{card.exp_month}}" year="{{card.exp_year}}"/></expiryDate>` +
	`<cardHolderName>{{card.name}}</cardHolderName><cvc>{{card.cvc}}</cvc></VISA-SSL></paymentDetails>` +
	`</order></submit></paymentService>`

// TestXMLRenderAllocationBudget holds XML rendering to the same budget as
// JSON: the year's strconv, and nothing per escape.
func TestXMLRenderAllocationBudget(t *testing.T) {
	card := &vaultclient.Card{
		Number: vaultclient.NewPAN("4242424242424242"), CVC: vaultclient.NewCVC("123"),
		Name: vaultclient.NewName(`Zoë "Q" O'Brien & Sons`), ExpMonth: 3, ExpYear: 2031,
	}
	phs, e := parsePlaceholders(xmlBenchBody, "body")
	if e != nil {
		t.Fatal(e)
	}
	sl := slot{text: xmlBenchBody, phs: phs}
	buf := make([]byte, 0, 4096)
	if got := testing.AllocsPerRun(100, func() {
		buf, _ = renderBody(buf[:0], sl, bodyXML, cardValues{card: card})
	}); got > 2 {
		t.Errorf("XML render allocates %.1f times, budget 2", got)
	}
	if n := strconv.Itoa(len(buf)); n == "0" {
		t.Error("nothing rendered")
	}
}

// FuzzXMLTemplate: whatever template checkXMLBody accepts, rendering any
// value that XML can carry gives a well-formed document with the same
// markup (elements, attribute names, comments, declarations) as the template
// with a neutral probe: no value can add or close markup.
func FuzzXMLTemplate(f *testing.F) {
	for _, s := range []string{
		`<a>{{card.name}}</a>`,
		`<a b="{{card.name}}" c='{{card.name}}'>x{{card.name}}]>{{card.name}}</a>`,
		`<?xml version="1.0"?><!-- c --><a><![CDATA[x]]>{{card.name}}<b/></a>`,
		`<!DOCTYPE a SYSTEM "a.dtd"><a>&amp;{{card.name}}&#65;</a>`,
		`<a:b xmlns:a="urn:x"><a:c d="{{card.name}}"/></a:b>`,
	} {
		f.Add(s, `Jane "<&'>" Doe]]`)
	}
	f.Fuzz(func(t *testing.T, tmpl, value string) {
		phs, e := parsePlaceholders(tmpl, "body")
		if e != nil || len(phs) == 0 {
			return
		}
		if _, e := checkXMLBody(tmpl, phs); e != nil {
			return
		}
		sl := slot{text: tmpl, phs: phs}
		probe, e := renderBody(nil, sl, bodyXML, stubValues(xmlProbe))
		if e != nil {
			t.Fatalf("template %q: probe render failed: %v", tmpl, e)
		}
		out, e := renderBody(nil, sl, bodyXML, stubValues(value))
		if e != nil {
			return // a value XML cannot carry
		}
		want, err := xmlShape(probe)
		if err != nil {
			t.Fatalf("template %q accepted, but its probe does not parse: %v", tmpl, err)
		}
		got, err := xmlShape(out)
		if err != nil {
			t.Fatalf("template %q, value %q: rendered %q is not well-formed: %v", tmpl, value, out, err)
		}
		if !cmp.Equal(got, want) {
			t.Fatalf("template %q, value %q: structure changed\n got %q\nwant %q", tmpl, value, got, want)
		}
	})
}

// xmlShape lists a document's markup: element names, attribute names,
// comments, processing instructions and declarations (not character data,
// which an empty value leaves out).
func xmlShape(doc []byte) ([]string, error) {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.Strict = true
	var out []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			s := "<" + t.Name.Space + ":" + t.Name.Local
			for _, a := range t.Attr {
				s += " " + a.Name.Space + ":" + a.Name.Local
			}
			out = append(out, s)
		case xml.EndElement:
			out = append(out, "</"+t.Name.Local)
		case xml.Comment:
			out = append(out, "comment")
		case xml.ProcInst:
			out = append(out, "pi "+t.Target)
		case xml.Directive:
			out = append(out, "directive")
		}
	}
}

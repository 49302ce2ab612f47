package forwarder

import (
	"net/http"
)

// Preview is what a dry run would have sent. Card fields appear as masked
// stand-ins ("[card.number]", "[cards.funding.number]",
// "[card.exp|MM/YY]", …), escaped for their slot as the real
// values would be; where the template has a bare JSON number
// ({{card.exp_month}} outside quotes), the stand-in makes the body invalid
// JSON, which is the honest rendering of "a number goes here".
type Preview struct {
	Method  string      `json:"method"`
	URL     string      `json:"url"`
	Headers http.Header `json:"headers"`
	Body    string      `json:"body"`
}

// maskedValues renders every field as its stand-in. It never touches the
// vault: a dry run does not detokenize.
type maskedValues struct{}

func (maskedValues) value(r ref) (string, *Error) {
	return "[" + r.String() + "]", nil
}

// preview renders the request with masked stand-ins. It runs after every
// policy check a real forward makes before detokenizing, so a dry run that
// succeeds means the same request would reach the vault step.
func (f *Forwarder) preview(fw *forward, v *validated) (*Response, *Error) {
	body, hdr, e := f.render(v, maskedValues{})
	if e != nil {
		return nil, e
	}
	p := &Preview{Method: v.method, URL: v.target.URL().String(), Headers: hdr}
	if body != nil {
		p.Body = string(*body.buf)
		body.Close()
	}
	return &Response{
		ForwardID:        fw.id,
		AllowlistVersion: fw.version,
		Outcome:          NotSent,
		Headers:          http.Header{},
		DryRun:           p,
	}, nil
}

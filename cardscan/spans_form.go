package cardscan

import (
	"bytes"
	"net/url"
)

// findForm splits body on '&' and each pair on its first '=', as
// net/url.ParseQuery does, and compares decoded keys. A key or value that
// does not decode, or a ';' (which some servers read as a separator and
// net/url refuses), makes the whole body an error.
func findForm(body []byte, paths []Path) ([]Span, *SpanError) {
	out := spanList{kind: BodyForm}
	if bytes.IndexByte(body, ';') >= 0 {
		return nil, parseFailed(BodyForm, bytes.IndexByte(body, ';'))
	}
	for off := 0; off <= len(body); {
		end := bytes.IndexByte(body[off:], '&')
		if end < 0 {
			end = len(body)
		} else {
			end += off
		}
		pair := body[off:end]
		rawKey, vs, ve := pair, -1, -1
		if eq := bytes.IndexByte(pair, '='); eq >= 0 {
			rawKey, vs, ve = pair[:eq], off+eq+1, end
		}
		key, err := url.QueryUnescape(string(rawKey))
		if err != nil {
			return nil, parseFailed(BodyForm, off)
		}
		if vs >= 0 {
			if _, err := url.QueryUnescape(string(body[vs:ve])); err != nil {
				return nil, parseFailed(BodyForm, vs)
			}
			for i := range paths {
				if paths[i].kind == PathForm && paths[i].key == key {
					if err := out.add(Span{Start: vs, End: ve, Path: i, Parent: -1, Kind: ValueForm}); err != nil {
						return nil, err
					}
				}
			}
		}
		off = end + 1
	}
	return out.spans, nil
}

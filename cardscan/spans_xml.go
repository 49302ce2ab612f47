package cardscan

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// maxXMLDepth bounds element nesting; a deeper body gets no exemption.
const maxXMLDepth = 1024

type xmlFrame struct {
	name         string // local name
	start        int    // offset of its '<'
	contentStart int    // offset after its start tag
	onlyText     bool   // no child element, comment or processing instruction so far
}

// findXML reads body with encoding/xml in strict mode, which checks
// well-formedness and expands only the predefined entities and character
// references, and records the selected contents and attribute values from
// the decoder's input offsets.
func findXML(body []byte, paths []Path) ([]Span, *SpanError) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	// No Entity map and no CharsetReader: an unknown entity or a declared
	// encoding other than UTF-8 is an error. encoding/xml never fetches
	// anything a DOCTYPE names.
	out := spanList{kind: BodyXML}
	var stack []xmlFrame
	rootSeen := false
	fail := func(off int) ([]Span, *SpanError) { return nil, parseFailed(BodyXML, off) }

	for {
		before := int(dec.InputOffset())
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if !rootSeen || len(stack) > 0 {
				return fail(before)
			}
			return out.spans, nil
		}
		if err != nil {
			return fail(before)
		}
		after := int(dec.InputOffset())
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) == 0 {
				if rootSeen {
					return fail(before) // a second root
				}
				rootSeen = true
			} else {
				stack[len(stack)-1].onlyText = false
			}
			if len(stack) == maxXMLDepth {
				return fail(before)
			}
			stack = append(stack, xmlFrame{name: t.Name.Local, start: before, contentStart: after, onlyText: true})
			if err := addXMLAttrs(&out, paths, stack, body[before:after], before, len(t.Attr)); err != nil {
				return nil, err
			}
		case xml.EndElement:
			fr := stack[len(stack)-1] // the decoder matched it to a start tag
			if fr.onlyText {
				parent := -1
				if len(stack) > 1 {
					parent = stack[len(stack)-2].start
				}
				for i := range paths {
					if paths[i].kind == PathXML && xmlMatch(&paths[i], stack, false) {
						if err := out.add(Span{Start: fr.contentStart, End: before, Path: i, Parent: parent, Kind: ValueXMLText}); err != nil {
							return nil, err
						}
					}
				}
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 && len(bytes.TrimLeft(t, " \t\r\n")) > 0 {
				return fail(before) // text outside the root
			}
		case xml.Comment, xml.ProcInst:
			if len(stack) > 0 {
				stack[len(stack)-1].onlyText = false
			}
		case xml.Directive:
			// Only a DOCTYPE, before the root, without an internal
			// subset: a subset may declare entities that the caller's
			// parser would expand into text we did not read.
			if len(stack) > 0 || rootSeen || !bytes.HasPrefix(t, []byte("DOCTYPE")) || bytes.IndexByte(t, '[') >= 0 {
				return fail(before)
			}
		}
	}
}

// xmlMatch reports whether p names the element at the top of stack
// (attr: an attribute of it).
func xmlMatch(p *Path, stack []xmlFrame, attr bool) bool {
	n := len(stack)
	if attr {
		n++
	}
	if len(p.steps) != n || (p.steps[n-1].kind == stepAttr) != attr {
		return false
	}
	for i := range stack {
		if p.steps[i].kind != stepElem || p.steps[i].name != stack[i].name {
			return false
		}
	}
	return true
}

// addXMLAttrs records the attribute values that attribute paths select in
// the start tag tag (at offset off), whose element is the top of stack.
// The decoder has checked the tag, so a small lexer finds the values'
// offsets; it must find as many attributes as the decoder did.
func addXMLAttrs(out *spanList, paths []Path, stack []xmlFrame, tag []byte, off, want int) *SpanError {
	var names []int
	for i := range paths {
		if paths[i].kind == PathXML && xmlMatch(&paths[i], stack, true) {
			names = append(names, i)
		}
	}
	if len(names) == 0 {
		return nil
	}
	attrs, ok := lexAttrs(tag)
	if !ok || len(attrs) != want {
		return parseFailed(BodyXML, off)
	}
	for _, a := range attrs {
		local := a.name
		if i := strings.IndexByte(local, ':'); i >= 0 {
			if local[:i] == "xmlns" {
				continue // a namespace declaration, not a value
			}
			local = local[i+1:]
		}
		if local == "xmlns" {
			continue
		}
		for _, i := range names {
			if paths[i].steps[len(paths[i].steps)-1].name == local {
				sp := Span{Start: off + a.start, End: off + a.end, Path: i, Parent: stack[len(stack)-1].start, Kind: ValueXMLAttr}
				if err := out.add(sp); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

type rawAttr struct {
	name       string
	start, end int // the value, between the quotes, relative to the tag
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// lexAttrs lists the attributes of a well-formed start tag
// (<name a="v" b = 'w' …> or …/>).
func lexAttrs(tag []byte) ([]rawAttr, bool) {
	i := 1 // after '<'
	for i < len(tag) && !isXMLSpace(tag[i]) && tag[i] != '/' && tag[i] != '>' {
		i++
	}
	var attrs []rawAttr
	for {
		for i < len(tag) && isXMLSpace(tag[i]) {
			i++
		}
		if i >= len(tag) {
			return nil, false
		}
		if tag[i] == '/' || tag[i] == '>' {
			return attrs, true
		}
		ns := i
		for i < len(tag) && !isXMLSpace(tag[i]) && tag[i] != '=' {
			i++
		}
		name := string(tag[ns:i])
		for i < len(tag) && isXMLSpace(tag[i]) {
			i++
		}
		if i >= len(tag) || tag[i] != '=' {
			return nil, false
		}
		i++
		for i < len(tag) && isXMLSpace(tag[i]) {
			i++
		}
		if i >= len(tag) || (tag[i] != '"' && tag[i] != '\'') {
			return nil, false
		}
		q := tag[i]
		i++
		vs := i
		for i < len(tag) && tag[i] != q {
			i++
		}
		if i >= len(tag) {
			return nil, false
		}
		attrs = append(attrs, rawAttr{name: name, start: vs, end: i})
		i++
	}
}

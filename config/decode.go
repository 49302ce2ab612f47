package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// decoder fills a Config from a parsed YAML document one key at a time, so
// that every problem is reported, each with the key's full path (such as
// listen.read_timeout), its line, the value found and the form expected,
// instead of yaml's first error naming a Go type. A key whose value is
// refused keeps its default; decoding goes on with the next key.
type decoder struct {
	problems []*FieldError
	// lines maps each key path found to its line, so that a later check
	// of the key can name the line too.
	lines map[string]int
}

func (d *decoder) saw(path string, line int) {
	if d.lines == nil {
		d.lines = map[string]int{}
	}
	d.lines[path] = line
}

// secretTag marks a field that holds a secret (`secret:"true"`): its value
// is never quoted in an error.
const secretTag = "secret"

var durationType = reflect.TypeFor[time.Duration]()

func (d *decoder) bad(path string, n *yaml.Node, format string, args ...any) {
	fe := &FieldError{Key: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		fe.Line = n.Line
	}
	d.problems = append(d.problems, fe)
}

// value decodes n into v, the field at path. secret hides the value.
func (d *decoder) value(path string, n *yaml.Node, v reflect.Value, secret bool) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		// "key:" with nothing after it: the default stays, as yaml.v3
		// does for every kind but these.
		switch v.Kind() {
		case reflect.Map, reflect.Slice, reflect.Pointer:
			v.SetZero()
		}
		return
	}
	switch {
	case v.Type() == durationType:
		d.duration(path, n, v)
	case v.Kind() == reflect.Struct:
		d.mapping(path, n, v)
	case v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct:
		// An optional section (credentials.NAME.vault): present means set.
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.mapping(path, n, v.Elem())
	case v.Kind() == reflect.Map:
		d.namedMap(path, n, v, secret)
	case v.Kind() == reflect.Slice:
		d.list(path, n, v, secret)
	default:
		d.scalar(path, n, v, secret)
	}
}

// mapping decodes a section: a mapping whose keys are v's yaml field names.
func (d *decoder) mapping(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.bad(path, n, "is a section: want keys under it (key: value, one per line), not %s", describe(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name, ok := d.key(path, k, seen)
		if !ok {
			continue
		}
		d.saw(join(path, name), k.Line)
		f, known := fields[name]
		if !known {
			d.bad(join(path, name), k, "unknown key%s", suggest(path, name, v.Type()))
			continue
		}
		d.value(join(path, name), val, v.FieldByIndex(f.Index), f.Tag.Get(secretTag) == "true")
	}
}

// namedMap decodes a mapping of names the operator chooses (CA bundles,
// client certificates) to values.
func (d *decoder) namedMap(path string, n *yaml.Node, v reflect.Value, secret bool) {
	if n.Kind != yaml.MappingNode {
		d.bad(path, n, "want a mapping of names to values (name: value, one per line), not %s", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name, ok := d.key(path, k, seen)
		if !ok {
			continue
		}
		d.saw(join(path, name), k.Line)
		elem := reflect.New(v.Type().Elem()).Elem()
		before := len(d.problems)
		d.value(join(path, name), val, elem, secret)
		if len(d.problems) == before {
			v.SetMapIndex(reflect.ValueOf(name).Convert(v.Type().Key()), elem)
		}
	}
}

// key reads a mapping key, refusing one that is not a plain name or that
// was given before in the same mapping.
func (d *decoder) key(path string, k *yaml.Node, seen map[string]int) (string, bool) {
	if k.Kind != yaml.ScalarNode || k.Tag == "!!null" {
		d.bad(path, k, "has a key that is not a name (%s)", describe(k))
		return "", false
	}
	if k.Tag == "!!merge" {
		d.bad(path, k, "has a merge key (<<): write the keys out instead")
		return "", false
	}
	if line, dup := seen[k.Value]; dup {
		d.bad(join(path, k.Value), k, "given twice (first on line %d): keep one", line)
		return "", false
	}
	seen[k.Value] = k.Line
	return k.Value, true
}

func (d *decoder) list(path string, n *yaml.Node, v reflect.Value, secret bool) {
	if n.Kind != yaml.SequenceNode {
		d.bad(path, n, "want a list, such as [a, b] or one \"- item\" per line, not %s", describe(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	before := len(d.problems)
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.saw(p, item.Line)
		d.value(p, item, out.Index(i), secret)
	}
	if len(d.problems) == before {
		v.Set(out)
	}
}

func (d *decoder) duration(path string, n *yaml.Node, v reflect.Value) {
	const want = "write a duration with a unit, e.g. 15s, 500ms or 2m"
	if n.Kind != yaml.ScalarNode {
		d.bad(path, n, "want a duration, not %s: %s", describe(n), want)
		return
	}
	switch n.Tag {
	case "!!int", "!!float":
		// yaml reads 15 as a number; a bare number of nanoseconds is
		// never what was meant.
		d.bad(path, n, "%s has no unit: %s", shown(n), want)
		return
	}
	t, err := time.ParseDuration(n.Value)
	if err != nil {
		d.bad(path, n, "%s is not a duration: %s", shown(n), want)
		return
	}
	v.SetInt(int64(t))
}

func (d *decoder) scalar(path string, n *yaml.Node, v reflect.Value, secret bool) {
	want := expected(v.Type())
	if n.Kind != yaml.ScalarNode {
		d.bad(path, n, "want %s, not %s", want, describe(n))
		return
	}
	if v.Kind() == reflect.String && n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!float" && n.Tag != "!!bool" {
		// A timestamp or binary value where text was meant: refuse it
		// rather than guess how yaml would spell it.
		d.bad(path, n, "want %s: quote the value", want)
		return
	}
	if v.Kind() != reflect.String && n.Tag == "!!str" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		// "8" in quotes is text; yaml would refuse it with a Go type name.
		d.bad(path, n, "%s is quoted: want %s, unquoted", value(n, secret), want)
		return
	}
	dst := reflect.New(v.Type())
	if err := n.Decode(dst.Interface()); err != nil {
		d.bad(path, n, "%s is not %s", value(n, secret), want)
		return
	}
	v.Set(dst.Elem())
}

// expected says what a scalar of type t must look like.
func expected(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "text"
	case reflect.Float32, reflect.Float64:
		return "a number, such as 0.5"
	case reflect.Int, reflect.Int64:
		return "a whole number, such as 100"
	case reflect.Uint32:
		return fmt.Sprintf("a whole number from 0 to %d", uint64(1)<<32-1)
	}
	return "a " + t.Kind().String()
}

// describe names a node's shape, never its contents.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a section of keys"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "that"
}

// maxShown bounds a quoted value in a message.
const maxShown = 64

// value quotes n's value for a message, or says only "the value" for a
// secret, which must never reach an error, a log or a terminal.
func value(n *yaml.Node, secret bool) string {
	if secret {
		return "the value (not shown: it is a secret)"
	}
	return shown(n)
}

// shown quotes a scalar as it was written: text in quotes, a number or a
// boolean as is, cut to maxShown bytes.
func shown(n *yaml.Node) string {
	s := n.Value
	if len(s) > maxShown {
		s = strings.ToValidUTF8(s[:maxShown], "") + "…"
	}
	if n.Tag == "!!str" || !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	return s
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// yamlFields maps the yaml names of t's fields to the fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

// suggest returns "; did you mean X?" for an unknown key name in the
// section at path of type t: a key of that section spelled alike, or else
// the full path of a key of that name elsewhere in the file (a key put in
// the wrong section), or "".
func suggest(path, name string, t reflect.Type) string {
	best, bestDist := "", 0
	for sibling := range yamlFields(t) {
		d := editDistance(strings.ToLower(name), sibling)
		if d <= 3 && 2*d <= max(len(name), len(sibling)) && (best == "" || d < bestDist || d == bestDist && sibling < best) {
			best, bestDist = sibling, d
		}
	}
	if best != "" {
		return "; did you mean " + join(path, best) + "?"
	}
	var elsewhere []string
	walkKeys("", reflect.TypeFor[Config](), func(p, leaf string) {
		if leaf == name && p != join(path, name) {
			elsewhere = append(elsewhere, p)
		}
	})
	slices.Sort(elsewhere)
	switch len(elsewhere) {
	case 0:
		return ""
	case 1:
		return "; did you mean " + elsewhere[0] + "?"
	}
	if len(elsewhere) > 3 {
		elsewhere = elsewhere[:3]
	}
	return "; did you mean one of " + strings.Join(elsewhere, ", ") + "?"
}

// walkKeys calls fn with the path and name of every key of the sections
// of t, recursively (named maps and lists are not entered).
func walkKeys(path string, t reflect.Type, fn func(path, name string)) {
	for name, f := range yamlFields(t) {
		p := join(path, name)
		fn(p, name)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			walkKeys(p, f.Type, fn)
		}
	}
}

// editDistance is the Levenshtein distance between a and b (bytes: keys
// are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

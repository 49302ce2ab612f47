package allowlist

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// AllowedSigners is a parsed OpenSSH allowed_signers file (ssh-keygen(1),
// "ALLOWED SIGNERS"). Each line is
//
//	principal[,principal…] [option[,option…]] keytype base64 [comment]
//
// with the options namespaces="…", valid-after="…" and valid-before="…".
//
// cardgate is stricter than ssh-keygen, and refuses the whole file rather
// than guess:
//   - cert-authority lines are refused: cardgate verifies plain keys only;
//   - principals may not be patterns (*, ?, !): the threshold counts
//     principals, so each must name one person;
//   - valid-after/valid-before must end in Z (UTC); ssh-keygen reads them
//     in local time otherwise, which differs between laptop and gateway.
//
// For the threshold, principals and keys are grouped: two keys that share
// a principal, or two principals that share a key (directly or through a
// chain of lines), form one signer group and count once together. This is
// what stops one person with two keys, or one key listed under two names,
// from meeting a threshold alone.
type AllowedSigners struct {
	entries []signerEntry
	groups  map[string]int // marshalled key -> signer group
	nGroups int
}

type signerEntry struct {
	line        int
	principals  []string
	key         ssh.PublicKey
	keyBlob     string
	namespaces  string // pattern list; "" means any namespace
	hasNS       bool
	validAfter  time.Time
	validBefore time.Time
}

// ParseAllowedSigners parses b. Empty lines and lines starting with '#'
// are skipped. Any line it cannot read exactly is an error naming the line.
func ParseAllowedSigners(b []byte) (*AllowedSigners, error) {
	as := &AllowedSigners{groups: map[string]int{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimLeft(sc.Text(), " \t\r")
		line = strings.TrimRight(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		e, err := parseSignerLine(line)
		if err != nil {
			return nil, fmt.Errorf("allowlist: allowed_signers line %d: %w", n, err)
		}
		e.line = n
		as.entries = append(as.entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("allowlist: allowed_signers: %w", err)
	}
	if len(as.entries) == 0 {
		return nil, errors.New("allowlist: allowed_signers lists no keys")
	}
	as.group()
	return as, nil
}

// group computes signer groups with a small union-find over principals and
// keys.
func (as *AllowedSigners) group() {
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if p, ok := parent[x]; ok && p != x {
			r := find(p)
			parent[x] = r
			return r
		}
		parent[x] = x
		return x
	}
	union := func(a, b string) { parent[find(a)] = find(b) }
	for _, e := range as.entries {
		k := "k:" + e.keyBlob
		find(k)
		for _, p := range e.principals {
			union("p:"+p, k)
		}
	}
	ids := map[string]int{}
	for _, e := range as.entries {
		r := find("k:" + e.keyBlob)
		if _, ok := ids[r]; !ok {
			ids[r] = len(ids)
		}
		as.groups[e.keyBlob] = ids[r]
	}
	as.nGroups = len(ids)
}

// Groups returns how many independent signers the file lists: the largest
// threshold that can ever be met.
func (as *AllowedSigners) Groups() int { return as.nGroups }

// DuplicateKey is a key that allowed_signers lists on more than one line.
type DuplicateKey struct {
	Fingerprint string   // SHA256:… as ssh-keygen -l prints it
	Lines       []int    // every line that lists the key, ascending
	Principals  []string // every principal of those lines, sorted, each once
}

// DuplicateKeys returns the keys listed on more than one line, in the
// order of their first line. Such a key is one signer together with every
// principal on its lines (see Groups), and Verify counts it so; but
// ssh-keygen -Y find-principals names only the principals of the first
// line, so an auditor's count by principal can put two of those names, or
// the key's and another key's, down as two signers. The gateway logs, and
// `cardgate allowlist verify` prints, a warning for each.
func (as *AllowedSigners) DuplicateKeys() []DuplicateKey {
	byKey := map[string]*DuplicateKey{}
	var order []string
	for _, e := range as.entries {
		d, ok := byKey[e.keyBlob]
		if !ok {
			d = &DuplicateKey{Fingerprint: ssh.FingerprintSHA256(e.key)}
			byKey[e.keyBlob] = d
			order = append(order, e.keyBlob)
		}
		d.Lines = append(d.Lines, e.line)
		for _, p := range e.principals {
			if !slices.Contains(d.Principals, p) {
				d.Principals = append(d.Principals, p)
			}
		}
	}
	var out []DuplicateKey
	for _, k := range order {
		if d := byKey[k]; len(d.Lines) > 1 {
			sort.Strings(d.Principals)
			out = append(out, *d)
		}
	}
	return out
}

func parseSignerLine(line string) (signerEntry, error) {
	var e signerEntry
	// Principals: one token, optionally in double quotes (strdelimw).
	var principals string
	if line[0] == '"' {
		end := strings.IndexByte(line[1:], '"')
		if end < 0 {
			return e, errors.New("unterminated quoted principals")
		}
		principals, line = line[1:1+end], line[2+end:]
	} else {
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			return e, errors.New("missing key")
		}
		principals, line = line[:i], line[i:]
	}
	line = strings.TrimLeft(line, " \t")
	for _, p := range strings.Split(principals, ",") {
		if p == "" {
			return e, errors.New("empty principal")
		}
		if strings.ContainsAny(p, "*?!") {
			return e, fmt.Errorf("principal %q is a pattern; cardgate needs one named principal per signer", p)
		}
		e.principals = append(e.principals, p)
	}
	// Options are present when the next token is not a key type.
	if tok, _, _ := strings.Cut(line, " "); !isKeyType(tok) {
		opts, rest, err := splitOptions(line)
		if err != nil {
			return e, err
		}
		if err := e.parseOptions(opts); err != nil {
			return e, fmt.Errorf("bad options: %w", err)
		}
		line = strings.TrimLeft(rest, " \t")
	}
	// keytype base64 [comment]
	f := strings.Fields(line)
	if len(f) < 2 {
		return e, errors.New("missing key")
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(f[0] + " " + f[1]))
	if err != nil || key.Type() != f[0] {
		return e, fmt.Errorf("invalid key: %v", err)
	}
	if err := checkKeyType(key); err != nil {
		return e, err
	}
	e.key, e.keyBlob = key, string(key.Marshal())
	return e, nil
}

func isKeyType(tok string) bool {
	_, ok := sigFormatFor[tok]
	if ok {
		return true
	}
	// Refused types still count as "a key here" so that the error says
	// the key type is refused rather than that options are bad.
	return strings.HasPrefix(tok, "ssh-") || strings.HasPrefix(tok, "ecdsa-") || strings.HasPrefix(tok, "sk-")
}

// splitOptions returns the options token: everything up to the first
// blank outside double quotes (sshkey_advance_past_options).
func splitOptions(s string) (opts, rest string, err error) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted && i+1 < len(s) && s[i+1] == '"':
			i++
		case s[i] == '"':
			quoted = !quoted
		case !quoted && (s[i] == ' ' || s[i] == '\t'):
			return s[:i], s[i:], nil
		}
	}
	if quoted {
		return "", "", errors.New("missing end quote")
	}
	return "", "", errors.New("missing key")
}

// parseOptions follows sshsigopt_parse: comma-separated, option names
// case-insensitive, values double-quoted.
func (e *signerEntry) parseOptions(opts string) error {
	var sawAfter, sawBefore bool
	for opts != "" {
		name, _, _ := strings.Cut(opts, "=")
		lname := strings.ToLower(name)
		if i := strings.IndexByte(lname, ','); i >= 0 {
			lname = lname[:i]
		}
		var val string
		var err error
		switch lname {
		case "cert-authority":
			return errors.New("cert-authority is not supported; list each signer's own key")
		case "namespaces", "valid-after", "valid-before":
			if len(opts) <= len(lname) || opts[len(lname)] != '=' {
				return fmt.Errorf("%s needs a quoted value", lname)
			}
			val, opts, err = dequote(opts[len(lname)+1:])
			if err != nil {
				return fmt.Errorf("%s: %w", lname, err)
			}
		default:
			return fmt.Errorf("unsupported option %q", name)
		}
		switch lname {
		case "namespaces":
			if e.hasNS {
				return errors.New(`multiple "namespaces" clauses`)
			}
			e.namespaces, e.hasNS = val, true
		case "valid-after":
			if sawAfter {
				return errors.New(`multiple "valid-after" clauses`)
			}
			sawAfter = true
			if e.validAfter, err = parseSignerTime(val); err != nil {
				return fmt.Errorf("valid-after: %w", err)
			}
		case "valid-before":
			if sawBefore {
				return errors.New(`multiple "valid-before" clauses`)
			}
			sawBefore = true
			if e.validBefore, err = parseSignerTime(val); err != nil {
				return fmt.Errorf("valid-before: %w", err)
			}
		}
		if opts == "" {
			break
		}
		if opts[0] != ',' {
			return errors.New("unknown key option")
		}
		opts = opts[1:]
		if opts == "" {
			return errors.New("unexpected end-of-options")
		}
	}
	if sawAfter && sawBefore && !e.validBefore.After(e.validAfter) {
		return errors.New(`"valid-before" time is before "valid-after"`)
	}
	return nil
}

// dequote follows opt_dequote: a value in double quotes, \" escaping a quote.
func dequote(s string) (val, rest string, err error) {
	if s == "" || s[0] != '"' {
		return "", "", errors.New("missing start quote")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '"':
			return b.String(), s[i+1:], nil
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '"':
			i++
		}
		b.WriteByte(s[i])
	}
	return "", "", errors.New("missing end quote")
}

// parseSignerTime reads YYYYMMDD[HHMM[SS]]Z.
func parseSignerTime(s string) (time.Time, error) {
	v, ok := strings.CutSuffix(s, "Z")
	if !ok {
		v, ok = strings.CutSuffix(s, "z")
	}
	if !ok {
		return time.Time{}, fmt.Errorf("%q must end in Z (UTC)", s)
	}
	layouts := map[int]string{8: "20060102", 12: "200601021504", 14: "20060102150405"}
	layout, ok := layouts[len(v)]
	if !ok {
		return time.Time{}, fmt.Errorf("%q is not YYYYMMDD[HHMM[SS]]Z", s)
	}
	t, err := time.Parse(layout, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not YYYYMMDD[HHMM[SS]]Z", s)
	}
	return t, nil
}

// matchPatternList follows OpenSSH match_pattern_list: comma-separated
// glob patterns (* and ?), a leading ! negates, and any negated match
// wins over positive matches.
func matchPatternList(s, list string) bool {
	positive := false
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if globMatch(s, p) {
			if neg {
				return false
			}
			positive = true
		}
	}
	return positive
}

func globMatch(s, p string) bool {
	for p != "" {
		switch p[0] {
		case '*':
			for p != "" && p[0] == '*' {
				p = p[1:]
			}
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if globMatch(s[i:], p) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
		}
		s, p = s[1:], p[1:]
	}
	return s == ""
}

// lookup returns the principals under which key may sign in namespace at
// now. found says whether the key is listed at all; when found but no
// line applies, why says what stopped it.
func (as *AllowedSigners) lookup(key ssh.PublicKey, namespace string, now time.Time) (principals []string, found bool, why string) {
	blob := string(key.Marshal())
	seen := map[string]bool{}
	for _, e := range as.entries {
		if e.keyBlob != blob {
			continue
		}
		found = true
		switch {
		case e.hasNS && !matchPatternList(namespace, e.namespaces):
			why = fmt.Sprintf("allowed_signers line %d does not permit namespace %q", e.line, namespace)
			continue
		case !e.validAfter.IsZero() && now.Before(e.validAfter):
			why = fmt.Sprintf("allowed_signers line %d: key is not valid until %s", e.line, e.validAfter.Format(time.RFC3339))
			continue
		case !e.validBefore.IsZero() && !now.Before(e.validBefore):
			why = fmt.Sprintf("allowed_signers line %d: key expired at %s", e.line, e.validBefore.Format(time.RFC3339))
			continue
		}
		for _, p := range e.principals {
			if !seen[p] {
				seen[p] = true
				principals = append(principals, p)
			}
		}
	}
	sort.Strings(principals)
	return principals, found, why
}

// group returns the signer group of a listed key.
func (as *AllowedSigners) groupOf(key ssh.PublicKey) int { return as.groups[string(key.Marshal())] }

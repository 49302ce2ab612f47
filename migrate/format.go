package migrate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/cardgate/cardgate/cardscan"
	"github.com/cardgate/cardgate/vaultclient"
)

// Limits of the format.
const (
	// MaxLineBytes bounds one line, newline included. A card, its name
	// (at most vaultclient.MaxNameBytes) and an id fit in far less; a
	// longer line is refused (line_too_long) without being held.
	MaxLineBytes = 4096
	// MaxIDBytes bounds the sender's id.
	MaxIDBytes = 128
)

// Card is one line of the migration format: a JSON object on one line,
// with exactly these members (unknown members are refused):
//
//	{"id":"cus_123/card_1","number":"4242424242424242","exp_month":12,"exp_year":2030,"name":"Jane Doe","cvc":"123"}
//
// id is the sender's own id for the card, 1–128 bytes of printable ASCII
// holding no card-like digit run; it is what the mapping file names. name
// and cvc may be left out. number, exp_month, exp_year, name and cvc are
// checked exactly as POST /v1/cards checks them (vaultclient). An export
// writes the same format, with the token as the id and never a CVC.
//
// Card's secret fields are plain strings because encoding/json needs
// them so; Card has a masking String and LogValue, and is never logged.
type Card struct {
	ID       string `json:"id"`
	Number   string `json:"number"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
	Name     string `json:"name,omitempty"`
	CVC      string `json:"cvc,omitempty"`
}

// String masks every secret field.
func (c Card) String() string { return "migrate.Card{…}" }

// GoString masks %#v.
func (c Card) GoString() string { return c.String() }

// Input is the card as vaultclient takes it.
func (c *Card) Input() vaultclient.CardInput {
	return vaultclient.CardInput{Number: c.Number, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear, CVC: c.CVC, Name: c.Name}
}

// Refusal codes for a line, besides vaultclient's validation codes
// (invalid_card_number, invalid_expiry, card_expired, invalid_cvc,
// invalid_name).
const (
	CodeLineTooLong = "line_too_long"
	CodeMalformed   = "malformed_line" // not one JSON object of the format
	CodeInvalidID   = "invalid_id"
	CodeDuplicateID = "duplicate_id" // an earlier line has the same id
)

// LineError refuses one line. It names the line and a code, never the
// line's bytes: a line is card data.
type LineError struct {
	Line int
	Code string
}

func (e *LineError) Error() string { return fmt.Sprintf("migrate: line %d: %s", e.Line, e.Code) }

// Reader reads the migration format one line at a time, holding at most
// one line (MaxLineBytes) and its bufio buffer, however long the input.
type Reader struct {
	br   *bufio.Reader
	line int
}

// NewReader reads lines from r (plaintext: an age.Decrypt reader).
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, MaxLineBytes)}
}

// Line is the number of the last line Next read, from 1.
func (r *Reader) Line() int { return r.line }

// Next reads the next card. Blank lines are passed over (but counted).
// A line that cannot be a card is a *LineError, after which Next may be
// called again; io.EOF ends the input; any other error is the
// underlying reader's (for age, a damaged or truncated file) and ends it.
func (r *Reader) Next(c *Card) error {
	for {
		raw, err := r.readLine()
		if err != nil {
			return err
		}
		if r.line == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark, as some exporters write
		}
		raw = bytes.TrimSpace(raw) // and "\r" before "\n"
		if len(raw) == 0 {
			continue
		}
		return decodeLine(raw, r.line, c)
	}
}

// readLine returns the next line without its newline. The slice is valid
// until the next call. A line longer than MaxLineBytes is read to its end
// and dropped, and refused.
func (r *Reader) readLine() ([]byte, error) {
	b, err := r.br.ReadSlice('\n')
	if err == nil || (errors.Is(err, io.EOF) && len(b) > 0) {
		r.line++
		return b, nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	r.line++
	clear(b)
	for errors.Is(err, bufio.ErrBufferFull) {
		b, err = r.br.ReadSlice('\n')
		clear(b)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return nil, &LineError{Line: r.line, Code: CodeLineTooLong}
}

// decodeLine decodes one line strictly: one object, known members only,
// each spelled exactly and at most once, nothing after it.
func decodeLine(raw []byte, line int, c *Card) error {
	*c = Card{}
	// encoding/json would replace bad bytes and carry on: a name in
	// another encoding must not be stored altered.
	if !utf8.Valid(raw) || !exactMembers(raw) {
		return &LineError{Line: line, Code: CodeMalformed}
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(c); err != nil {
		*c = Card{}
		return &LineError{Line: line, Code: CodeMalformed}
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		*c = Card{}
		return &LineError{Line: line, Code: CodeMalformed}
	}
	if !ValidID(c.ID) {
		return &LineError{Line: line, Code: CodeInvalidID}
	}
	return nil
}

// members are the format's member names, as spelled exactly.
var members = map[string]bool{"id": true, "number": true, "exp_month": true, "exp_year": true, "name": true, "cvc": true}

// exactMembers reports whether raw is one flat object whose keys are
// members, each spelled exactly (encoding/json matches keys without case)
// and given once (encoding/json keeps the last silently): a line must not
// be read as another card than the sender's tools read it.
func exactMembers(raw []byte) bool {
	d := json.NewDecoder(bytes.NewReader(raw))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	seen := map[string]bool{}
	for d.More() {
		t, err := d.Token()
		k, ok := t.(string)
		if err != nil || !ok || !members[k] || seen[k] {
			return false
		}
		seen[k] = true
		if t, err := d.Token(); err != nil {
			return false
		} else if _, nested := t.(json.Delim); nested {
			return false // the format's values are all scalars
		}
	}
	t, err := d.Token()
	return err == nil && t == json.Delim('}')
}

// ValidID reports whether id may name a card in the format: 1–128 bytes
// of printable ASCII (no controls, so it cannot break a log line) with no
// card-like digit run, so that a sender who used the card number as its
// id is refused rather than having it copied into the mapping file.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return !cardscan.ContainsAnyWindow(id)
}

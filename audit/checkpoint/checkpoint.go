package checkpoint

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Checkpoint is the text of a checkpoint: a log's origin, its size and its
// root hash.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   [32]byte
}

// ErrMalformed is wrapped by Parse's errors.
var ErrMalformed = errors.New("checkpoint: malformed")

// Text returns the note text: three lines, each ending in a newline.
func (c Checkpoint) Text() string {
	return c.Origin + "\n" + strconv.FormatUint(c.Size, 10) + "\n" + base64.StdEncoding.EncodeToString(c.Root[:]) + "\n"
}

// ValidOrigin reports whether s can be a checkpoint's origin: non-empty
// printable ASCII without spaces (C2SP recommends a schema-less URL), so
// that it is also a valid note key name, as a log's key name should be.
func ValidOrigin(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '+' {
			return false
		}
	}
	return true
}

// Parse reads a note text (note.Open's Note.Text) as a checkpoint. Lines
// after the third (extension lines) are refused: cardgate writes none.
func Parse(text string) (Checkpoint, error) {
	var c Checkpoint
	lines := strings.SplitAfter(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return c, fmt.Errorf("%w: want three lines", ErrMalformed)
	}
	origin := strings.TrimSuffix(lines[0], "\n")
	if !ValidOrigin(origin) {
		return c, fmt.Errorf("%w: origin line", ErrMalformed)
	}
	sz := strings.TrimSuffix(lines[1], "\n")
	n, err := strconv.ParseUint(sz, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != sz {
		return c, fmt.Errorf("%w: size line", ErrMalformed)
	}
	root, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(lines[2], "\n"))
	if err != nil || len(root) != 32 {
		return c, fmt.Errorf("%w: root hash line", ErrMalformed)
	}
	c.Origin, c.Size = origin, n
	copy(c.Root[:], root)
	if !bytes.Equal([]byte(c.Text()), []byte(text)) {
		return c, fmt.Errorf("%w: not in canonical form", ErrMalformed)
	}
	return c, nil
}

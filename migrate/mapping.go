package migrate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cardgate/cardgate/vaultclient"
)

// MappingLine is one line of the mapping file: the input line, the
// sender's id and the token its card is now held under. There is no card
// data in it, nor anything derived from one.
type MappingLine struct {
	Line  int    `json:"line"`
	ID    string `json:"id"`
	Token string `json:"token"`
}

// Mapping is an import's mapping file, JSON lines of MappingLine in
// increasing line order. Lines are appended in batches, each made
// durable (fsync) by Commit before the next batch is tokenized, and a
// process holds the file under an exclusive lock while it imports, so
// that two runs cannot interleave.
type Mapping struct {
	path      string
	f         *os.File
	w         *bufio.Writer
	last      int
	lastToken string
	lines     int
}

// mappingLineStart is how every line Add writes begins.
const mappingLineStart = `{"line":`

// maxMappingLine bounds a mapping line when a resumed run reads the file.
const maxMappingLine = 1024

// OpenMapping opens or creates (mode 0600) the mapping file at path and
// locks it. An existing file is read to find where the earlier run
// stopped: every complete line must be a MappingLine, in increasing line
// order; an incomplete last line (a crash while a batch was written) is
// cut off, since the lines before it say all that the cut-off run
// committed. The caller then checks Last against its derived tokens.
func OpenMapping(path string) (*Mapping, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("migrate: open mapping file: %w", err)
	}
	m := &Mapping{path: path, f: f}
	if err := m.open(); err != nil {
		f.Close()
		return nil, fmt.Errorf("migrate: mapping file %s: %w", path, err)
	}
	m.w = bufio.NewWriterSize(f, 64<<10)
	return m, nil
}

func (m *Mapping) open() error {
	if err := lockFile(m.f); err != nil {
		return err
	}
	fi, err := m.f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	good, err := m.scan()
	if err != nil {
		return err
	}
	if good != fi.Size() {
		if err := m.f.Truncate(good); err != nil {
			return fmt.Errorf("cut off incomplete last line: %w", err)
		}
	}
	if _, err := m.f.Seek(good, io.SeekStart); err != nil {
		return err
	}
	if err := m.f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	// A new file is lost in a crash unless its directory entry is
	// durable too.
	d, err := os.Open(filepath.Dir(m.path))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	return nil
}

// scan reads the file and returns the offset after its last complete
// line.
func (m *Mapping) scan() (int64, error) {
	br := bufio.NewReaderSize(m.f, maxMappingLine)
	var off int64
	for n := 1; ; n++ {
		b, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, io.EOF):
			// b, if any, is an incomplete line, cut off, if it begins
			// as Add writes a line: anything else is not a mapping file
			// (another file given by mistake), and is left as it is.
			if len(b) > 0 && !bytes.HasPrefix(b, []byte(mappingLineStart)) && !bytes.HasPrefix([]byte(mappingLineStart), b) {
				return 0, fmt.Errorf("line %d is not a mapping; refusing to resume from it", n)
			}
			return off, nil
		case errors.Is(err, bufio.ErrBufferFull):
			return 0, fmt.Errorf("line %d is too long to be a mapping", n)
		case err != nil:
			return 0, err
		}
		var ml MappingLine
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(&ml); err != nil || !vaultclient.ValidToken(ml.Token) || !ValidID(ml.ID) || ml.Line <= m.last {
			return 0, fmt.Errorf("line %d is not a mapping in order; refusing to resume from it", n)
		}
		m.last, m.lastToken = ml.Line, ml.Token
		m.lines++
		off += int64(len(b))
	}
}

// Last returns the input line and token of the last mapping, 0 and ""
// when there is none.
func (m *Mapping) Last() (line int, token string) { return m.last, m.lastToken }

// Lines is how many mappings the file holds.
func (m *Mapping) Lines() int { return m.lines }

// Add appends one mapping; it is durable after the next Commit.
func (m *Mapping) Add(l MappingLine) error {
	if l.Line <= m.last {
		return fmt.Errorf("migrate: mapping for line %d after line %d", l.Line, m.last)
	}
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("migrate: encode mapping for line %d: %w", l.Line, err)
	}
	m.w.Write(b)
	if err := m.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("migrate: write mapping file: %w", err)
	}
	m.last, m.lastToken = l.Line, l.Token
	m.lines++
	return nil
}

// Commit writes the mappings added so far and fsyncs the file.
func (m *Mapping) Commit() error {
	if err := m.w.Flush(); err != nil {
		return fmt.Errorf("migrate: write mapping file: %w", err)
	}
	if err := m.f.Sync(); err != nil {
		return fmt.Errorf("migrate: fsync mapping file: %w", err)
	}
	return nil
}

// Close commits and closes the file, which releases the lock.
func (m *Mapping) Close() error {
	err := m.Commit()
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}

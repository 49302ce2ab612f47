package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"time"

	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/vaultclient"
)

// Scanner lists the store's tokens: vaultclient.RewrapStore's Scan (a
// token may come more than once).
type Scanner interface {
	Scan(ctx context.Context, cursor string, limit int) (tokens []string, next string, err error)
}

// Detokenizer reads a card without its CVC, and without marking it used
// (an export is not a use: it must not restart retention):
// *vaultclient.Vault.
type Detokenizer interface {
	DetokenizeForExport(ctx context.Context, token string) (*vaultclient.Card, error)
}

// ExportOptions configures Export. Every field but Report and Progress is
// required.
type ExportOptions struct {
	Store Scanner
	Vault Detokenizer
	// Audit receives one audit.KindExported record per card, before the
	// card is written. A failed append stops the export.
	Audit Auditor
	// RunID and Caller go into the audit records; Recipient (the
	// allowlist's export id) and the allowlist's version and sha256 too.
	RunID            string
	Caller           string
	Recipient        string
	AllowlistVersion uint64
	AllowlistSHA256  string
	// Report receives a line per card left out for a reason the operator
	// must act on ("tok_…: not exported: key_retired"). nil discards.
	Report io.Writer
	// Progress: as ImportOptions.Progress.
	Progress io.Writer
}

// ExportCounts are an export's outcomes.
type ExportCounts struct {
	Exported int
	Expired  int // past their expiry month: not exported
	Gone     int // deleted between the scan and the read
	Failed   int // unreadable (key_retired, record_corrupt); reported by token
}

// scanBatch is how many tokens one Scan call asks for.
const scanBatch = 500

// Export writes every readable, unexpired card in the store to w in the
// migration format, with its token as the id and never a CVC (CVCs are
// transient and never leave the gateway). w must be an age writer: Export
// writes plaintext into it and nowhere else. Each card is audited before
// it is written. A store or key-backend outage, or an audit failure,
// stops it with an error; the caller then discards the output.
func Export(ctx context.Context, w io.Writer, o ExportOptions) (ExportCounts, error) {
	var c ExportCounts
	if o.Store == nil || o.Vault == nil || o.Audit == nil || o.Recipient == "" || o.AllowlistSHA256 == "" {
		return c, errors.New("migrate: export: store, vault, audit, recipient and allowlist are required")
	}
	if o.Report == nil {
		o.Report = io.Discard
	}
	prog := newProgress(o.Progress)
	seed := maphash.MakeSeed()
	seen := map[uint64]struct{}{}
	buf := make([]byte, 0, MaxLineBytes)
	defer func() { clear(buf[:cap(buf)]) }()
	cursor := ""
	for {
		tokens, next, err := o.Store.Scan(ctx, cursor, scanBatch)
		if err != nil {
			return c, fmt.Errorf("migrate: export: scan: %w", err)
		}
		for _, tok := range tokens {
			h := maphash.String(seed, tok)
			if _, dup := seen[h]; dup {
				continue
			}
			seen[h] = struct{}{}
			if buf, err = exportOne(ctx, w, tok, &o, &c, buf); err != nil {
				return c, err
			}
		}
		prog.updateExport(&c)
		if next == "" {
			prog.doneExport(&c)
			return c, nil
		}
		cursor = next
	}
}

func exportOne(ctx context.Context, w io.Writer, tok string, o *ExportOptions, c *ExportCounts, buf []byte) ([]byte, error) {
	card, err := o.Vault.DetokenizeForExport(ctx, tok)
	var ve *vaultclient.Error
	if errors.As(err, &ve) {
		switch ve.Code {
		case vaultclient.CodeCardExpired:
			c.Expired++
			return buf, nil
		case vaultclient.CodeTokenNotFound:
			c.Gone++
			return buf, nil
		case vaultclient.CodeKeyRetired, vaultclient.CodeRecordCorrupt:
			c.Failed++
			fmt.Fprintf(o.Report, "%s: not exported: %s\n", tok, ve.Code)
			return buf, nil
		}
	}
	if err != nil {
		return buf, fmt.Errorf("migrate: export %s: %w", tok, err)
	}
	defer card.Wipe()
	if _, err := o.Audit.Append(ctx, audit.Record{
		Kind: audit.KindExported, RequestID: o.RunID, Caller: o.Caller, Token: tok,
		Destination: o.Recipient, AllowlistVersion: o.AllowlistVersion, AllowlistSHA256: o.AllowlistSHA256,
		Decision: audit.DecisionAllow,
	}); err != nil {
		return buf, fmt.Errorf("migrate: export %s: audit: %w", tok, err)
	}
	line := Card{ID: tok, Number: card.Number.Reveal(), ExpMonth: card.ExpMonth, ExpYear: card.ExpYear, Name: card.Name.Reveal()}
	buf, err = appendJSONLine(buf[:0], &line)
	if err != nil {
		return buf, fmt.Errorf("migrate: export %s: encode: %w", tok, err)
	}
	_, err = w.Write(buf)
	clear(buf)
	if err != nil {
		return buf, fmt.Errorf("migrate: export: write: %w", err)
	}
	c.Exported++
	return buf, nil
}

// appendJSONLine appends c's JSON and a newline to buf.
func appendJSONLine(buf []byte, c *Card) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return buf, err
	}
	buf = append(buf, b...)
	clear(b)
	return append(buf, '\n'), nil
}

func (p *progress) updateExport(c *ExportCounts) {
	if p.w == nil || time.Since(p.last) < progressEvery {
		return
	}
	p.last = time.Now()
	p.printExport(c)
}

func (p *progress) printExport(c *ExportCounts) {
	fmt.Fprintf(p.w, "\r\x1b[K%d exported, %d expired, %d unreadable", c.Exported, c.Expired, c.Failed)
}

func (p *progress) doneExport(c *ExportCounts) {
	if p.w != nil {
		p.printExport(c)
		fmt.Fprintln(p.w)
	}
}

package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/vaultclient"
)

// repeatingScanner returns every token twice, as a Redis SCAN may.
type repeatingScanner struct{ s Scanner }

func (r repeatingScanner) Scan(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	toks, next, err := r.s.Scan(ctx, cursor, limit)
	return append(toks, toks...), next, err
}

// TestExport writes every stored card once, without its CVC, audits each,
// and leaves out expired cards; nothing but the export itself holds card
// data.
func TestExport(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			ctx := context.Background()
			want := map[string]Card{}
			for _, c := range testCards {
				info, err := e.vault.Tokenize(ctx, c.Input())
				if err != nil {
					t.Fatal(err)
				}
				want[info.Token] = Card{ID: info.Token, Number: c.Number, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear, Name: c.Name}
			}
			// A card that expires before the export runs.
			expiring, err := e.vault.Tokenize(ctx, vaultclient.CardInput{Number: "4242424242424242", ExpMonth: int(testNow.Month()), ExpYear: testNow.Year()})
			if err != nil {
				t.Fatal(err)
			}
			later, err := vaultclient.New(e.store, e.keys, vaultclient.Options{Now: func() time.Time { return testNow.AddDate(0, 1, 0) }})
			if err != nil {
				t.Fatal(err)
			}
			var out, report bytes.Buffer
			c, err := Export(ctx, &out, ExportOptions{
				Store: repeatingScanner{e.scanner}, Vault: later, Audit: e.audit, RunID: "exp_1", Caller: "cardgate-cli/cards-export",
				Recipient: "newvault", AllowlistVersion: 2, AllowlistSHA256: strings.Repeat("b", 64), Report: &report,
			})
			if err != nil {
				t.Fatalf("Export: %v", err)
			}
			if diff := cmp.Diff(ExportCounts{Exported: len(testCards), Expired: 1}, c); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
			got := map[string]Card{}
			for _, l := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
				var card Card
				dec := json.NewDecoder(bytes.NewReader(l))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&card); err != nil {
					t.Fatalf("export line: %v", err)
				}
				if _, dup := got[card.ID]; dup {
					t.Errorf("token %s exported twice", card.ID)
				}
				got[card.ID] = card
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("exported cards (-want +got):\n%s", diff)
			}
			if _, ok := got[expiring.Token]; ok {
				t.Error("an expired card was exported")
			}
			if n := e.auditKinds(t)[audit.KindExported]; n != len(testCards) {
				t.Errorf("audit holds %d exported records, want %d", n, len(testCards))
			}
			auditLog, _ := os.ReadFile(e.auditPath)
			for what, b := range map[string][]byte{"report": report.Bytes(), "audit": auditLog, "logs": e.logs.Bytes()} {
				checkNoLeak(t, what, b, secretsOf(testCards))
			}
		})
	}
}

// failingAudit refuses every record.
type failingAudit struct{}

func (failingAudit) Append(context.Context, audit.Record) (audit.Record, error) {
	return audit.Record{}, errors.New("audit sink down")
}

// TestExportStopsWithoutAudit: a card that cannot be audited is not
// written (fail closed).
func TestExportStopsWithoutAudit(t *testing.T) {
	e := newEnv(t, "bolt")
	if _, err := e.vault.Tokenize(context.Background(), testCards[0].Input()); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c, err := Export(context.Background(), &out, ExportOptions{Store: e.scanner, Vault: e.vault, Audit: failingAudit{},
		RunID: "exp_1", Caller: "c", Recipient: "newvault", AllowlistSHA256: strings.Repeat("b", 64)})
	if err == nil || c.Exported != 0 || out.Len() != 0 {
		t.Errorf("Export with a failing audit = %+v, %v, %d bytes written; want an error and nothing written", c, err, out.Len())
	}
}

// TestExportIsNotAUse: an export reads every card but does not mark any
// used, so it does not restart retention: a card's last use stays the
// time it was tokenized. On Redis and on bolt.
func TestExportIsNotAUse(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			ctx := context.Background()
			info, err := e.vault.Tokenize(ctx, testCards[0].Input())
			if err != nil {
				t.Fatal(err)
			}
			before, err := e.vault.Metadata(ctx, info.Token)
			if err != nil {
				t.Fatal(err)
			}
			later, err := vaultclient.New(e.store, e.keys, vaultclient.Options{Now: func() time.Time { return testNow.AddDate(0, 0, 30) }})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Export(ctx, io.Discard, ExportOptions{
				Store: e.scanner, Vault: later, Audit: e.audit, RunID: "exp_1", Caller: "cardgate-cli/cards-export",
				Recipient: "newvault", AllowlistVersion: 2, AllowlistSHA256: strings.Repeat("b", 64),
			}); err != nil {
				t.Fatalf("Export: %v", err)
			}
			after, err := e.vault.Metadata(ctx, info.Token)
			if err != nil {
				t.Fatal(err)
			}
			if !after.LastUsedAt.Equal(before.LastUsedAt) {
				t.Errorf("LastUsedAt after Export = %v, want %v (as tokenized)", after.LastUsedAt, before.LastUsedAt)
			}
		})
	}
}

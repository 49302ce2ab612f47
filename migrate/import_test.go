package migrate

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/vaultclient"
)

// mixedSecrets are the card data in testdata/mixed.jsonl.
var mixedSecrets = []string{
	"4242424242424242", "4242424242424241", "4111111111111111", "5555555555554444", "378282246310005",
	"4000056655665556", "4111 1111 1111 1111", "4242 4242 4242 4242", "Jane Q. Cardholder", "John Roe", "Amy Amex",
	`"123"`, `"7890"`, `"12"`, "AAAAAAAA",
}

// TestImportMixed imports a file of good and bad lines: each bad line is
// refused by number and code, the rest are stored and mapped, and no card
// data reaches the report, the mapping file, the audit log or the logs.
func TestImportMixed(t *testing.T) {
	plain, err := os.ReadFile("testdata/mixed.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			id := newIdentity(t)
			path := encryptFile(t, id, bytes.NewReader(plain))
			mapPath := filepath.Join(t.TempDir(), "mapping.jsonl")
			var report bytes.Buffer
			c, err := e.importFile(t, id, path, mapPath, nil, &report)
			if err != nil {
				t.Fatalf("import: %v", err)
			}
			want := Counts{Lines: 13, Imported: 3, Refused: 10, RefusedBy: map[string]int{
				vaultclient.CodeInvalidCardNumber: 1, CodeMalformed: 2, vaultclient.CodeCardExpired: 1, CodeDuplicateID: 1,
				CodeInvalidID: 2, vaultclient.CodeInvalidCVC: 1, CodeLineTooLong: 1, vaultclient.CodeInvalidName: 1,
			}}
			if diff := cmp.Diff(want, c); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
			wantReport := strings.Join([]string{
				"line 2: refused: invalid_card_number",
				"line 4: refused: malformed_line",
				"line 5: refused: malformed_line",
				"line 6: refused: card_expired",
				"line 7: refused: duplicate_id",
				"line 8: refused: invalid_id",
				"line 9: refused: invalid_cvc",
				"line 10: refused: line_too_long",
				"line 12: refused: invalid_id",
				"line 13: refused: invalid_name",
			}, "\n") + "\n"
			if diff := cmp.Diff(wantReport, sortedLines(report.String())); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			m := readMapping(t, mapPath)
			gotIDs := []string{}
			for _, ml := range m {
				gotIDs = append(gotIDs, ml.ID)
			}
			if diff := cmp.Diff([]string{"cus_1", "cus_10", "cus_13"}, gotIDs); diff != "" {
				t.Errorf("mapped ids (-want +got):\n%s", diff)
			}
			wantNumbers := map[string]string{"cus_1": "4242424242424242", "cus_10": "5555555555554444", "cus_13": "378282246310005"}
			for _, ml := range m {
				card, err := e.vault.Detokenize(context.Background(), ml.Token)
				if err != nil {
					t.Fatalf("Detokenize(%s): %v", ml.Token, err)
				}
				if card.Number.Reveal() != wantNumbers[ml.ID] {
					t.Errorf("card mapped from %s is %s, want the number of its line", ml.ID, card.Number)
				}
			}
			if n := len(e.tokens(t)); n != 3 {
				t.Errorf("store holds %d records, want 3", n)
			}
			if got := e.auditKinds(t)[audit.KindImported]; got != 3 {
				t.Errorf("audit holds %d imported records, want 3", got)
			}
			mapping, _ := os.ReadFile(mapPath)
			auditLog, _ := os.ReadFile(e.auditPath)
			for what, b := range map[string][]byte{"report": report.Bytes(), "mapping": mapping, "audit": auditLog, "logs": e.logs.Bytes()} {
				checkNoLeak(t, what, b, mixedSecrets)
			}
		})
	}
}

// sortedLines orders report lines by line number (the report writes a
// batch's read-time refusals before its tokenize-time ones).
func sortedLines(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	num := func(l string) int {
		n := 0
		for _, c := range strings.TrimPrefix(l, "line ") {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	for i := 1; i < len(lines); i++ {
		for j := i; j > 0 && num(lines[j]) < num(lines[j-1]); j-- {
			lines[j], lines[j-1] = lines[j-1], lines[j]
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// failingVault fails call number failAt as a store outage does, and
// passes every other call to v. With several workers, the cards of the
// batch after the failing line are stored, and not mapped: the crash
// window a resumed run must close without duplicates.
type failingVault struct {
	v      *vaultclient.Vault
	failAt int64
	n      atomic.Int64
}

func (f *failingVault) TokenizeAs(ctx context.Context, token string, in vaultclient.CardInput) (*vaultclient.TokenInfo, error) {
	if f.n.Add(1) == f.failAt {
		return nil, &vaultclient.Error{Code: vaultclient.CodeStoreUnavailable, Message: "card store unavailable", Err: errors.New("test outage")}
	}
	return f.v.TokenizeAs(ctx, token, in)
}

// manyCards is n lines of the test cards, each with its own id.
func manyCards(n int) []Card {
	out := make([]Card, n)
	for i := range out {
		out[i] = testCards[i%len(testCards)]
	}
	return out
}

// TestImportResume cuts imports off in the ways a run ends early, then
// resumes them: every card ends up stored once and mapped once.
func TestImportResume(t *testing.T) {
	const n = 500
	cards := manyCards(n)
	tests := []struct {
		name string
		// cut runs the first, interrupted run and returns how the mapping
		// file is left.
		cut func(t *testing.T, e *env, run func(Tokenizer) (Counts, error), mapPath string)
		// minRecovered is the fewest cards the resumed run must find
		// stored but not mapped; minSkipped the fewest lines it skips.
		minRecovered, minSkipped int
	}{
		{"store outage mid-batch", func(t *testing.T, e *env, run func(Tokenizer) (Counts, error), _ string) {
			// Two workers per batch stored cards beyond the line that
			// failed.
			if _, err := run(&failingVault{v: e.vault, failAt: 150}); err == nil {
				t.Fatal("first run succeeded, want the outage")
			}
		}, 1, 128},
		{"crash while writing the mapping", func(t *testing.T, e *env, run func(Tokenizer) (Counts, error), mapPath string) {
			if _, err := run(&failingVault{v: e.vault, failAt: 300}); err == nil {
				t.Fatal("first run succeeded, want the outage")
			}
			// A crash tore the last line, and lost the one before.
			b, _ := os.ReadFile(mapPath)
			lines := bytes.SplitAfter(b, []byte("\n"))
			torn := append(bytes.Join(lines[:len(lines)-3], nil), lines[len(lines)-3][:10]...)
			if err := os.WriteFile(mapPath, torn, 0o600); err != nil {
				t.Fatal(err)
			}
		}, 3, 256},
		{"mapping file lost", func(t *testing.T, e *env, run func(Tokenizer) (Counts, error), mapPath string) {
			if _, err := run(&failingVault{v: e.vault, failAt: 200}); err == nil {
				t.Fatal("first run succeeded, want the outage")
			}
			os.Remove(mapPath)
		}, 199, 0},
		{"completed, run again", func(t *testing.T, e *env, run func(Tokenizer) (Counts, error), _ string) {
			if _, err := run(nil); err != nil {
				t.Fatalf("first run: %v", err)
			}
		}, 0, n},
	}
	for _, kind := range storeKinds {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, kind)
				id := newIdentity(t)
				path := encryptFile(t, id, strings.NewReader(cardLines(cards)))
				mapPath := filepath.Join(t.TempDir(), "mapping.jsonl")
				var report bytes.Buffer
				run := func(tok Tokenizer) (Counts, error) { return e.importFile(t, id, path, mapPath, tok, &report) }
				tt.cut(t, e, run, mapPath)
				c, err := run(nil)
				if err != nil {
					t.Fatalf("resumed run: %v", err)
				}
				if c.Lines != n || c.Imported+c.Recovered+c.Skipped != n || c.Refused != 0 {
					t.Errorf("resumed run counts = %+v, want %d lines imported, recovered or skipped", c, n)
				}
				if c.Recovered < tt.minRecovered || c.Skipped < tt.minSkipped {
					t.Errorf("resumed run counts = %+v, want at least %d recovered and %d skipped", c, tt.minRecovered, tt.minSkipped)
				}
				m := readMapping(t, mapPath)
				seenIDs := map[string]bool{}
				seenTokens := map[string]bool{}
				for i, ml := range m {
					if seenIDs[ml.ID] || seenTokens[ml.Token] {
						t.Fatalf("mapping line %d repeats an id or a token", i+1)
					}
					seenIDs[ml.ID], seenTokens[ml.Token] = true, true
				}
				if len(m) != n {
					t.Errorf("mapping holds %d lines, want %d", len(m), n)
				}
				stored := e.tokens(t)
				if len(stored) != n {
					t.Errorf("store holds %d records, want %d (no duplicates)", len(stored), n)
				}
				for _, tok := range stored {
					if !seenTokens[tok] {
						t.Errorf("stored token %s is not in the mapping", tok)
					}
				}
				if got := e.auditKinds(t)[audit.KindImported]; got < n {
					t.Errorf("audit holds %d imported records, want at least %d", got, n)
				}
				if report.Len() != 0 {
					t.Errorf("report = %q, want nothing refused", report.String())
				}
			})
		}
	}
}

// TestImportRefusesAnotherInputsMapping: a mapping file resumes only the
// file (and identity) that wrote it.
func TestImportRefusesAnotherInputsMapping(t *testing.T) {
	e := newEnv(t, "bolt")
	id := newIdentity(t)
	mapPath := filepath.Join(t.TempDir(), "mapping.jsonl")
	first := encryptFile(t, id, strings.NewReader(cardLines(testCards)))
	if _, err := e.importFile(t, id, first, mapPath, nil, nil); err != nil {
		t.Fatalf("first import: %v", err)
	}
	// The same cards, encrypted again: another file.
	second := encryptFile(t, id, strings.NewReader(cardLines(testCards)))
	_, err := e.importFile(t, id, second, mapPath, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "another input file") {
		t.Errorf("import of another file with the first's mapping = %v, want a refusal", err)
	}
}

// TestMappingLocked: two runs cannot share a mapping file.
func TestMappingLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mapping.jsonl")
	m, err := OpenMapping(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := OpenMapping(path); err == nil || !strings.Contains(err.Error(), "another import") {
		t.Errorf("second OpenMapping = %v, want a refusal", err)
	}
}

// TestMappingRefusesGarbage: a mapping file that is not one is never
// resumed from (the run would skip lines it never imported).
func TestMappingRefusesGarbage(t *testing.T) {
	tests := map[string]string{
		"not json":     "hello\n",
		"out of order": `{"line":5,"id":"a","token":"tok_abcdefghijklmnopqrstuvwxyz234567"}` + "\n" + `{"line":4,"id":"b","token":"tok_bbcdefghijklmnopqrstuvwxyz234567"}` + "\n",
		"bad token":    `{"line":1,"id":"a","token":"4242424242424242"}` + "\n",
		"extra member": `{"line":1,"id":"a","token":"tok_abcdefghijklmnopqrstuvwxyz234567","number":"x"}` + "\n",
		// Another file given by mistake, with no newline: it is not an
		// incomplete mapping line, and must not be cut off to nothing.
		"one line without a newline": `{"operator":"notes"}`,
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mapping.jsonl")
			os.WriteFile(path, []byte(content), 0o600)
			if m, err := OpenMapping(path); err == nil {
				m.Close()
				t.Errorf("OpenMapping(%s) succeeded, want a refusal", name)
			} else if strings.Contains(err.Error(), "4242") {
				t.Errorf("OpenMapping error quotes the file: %v", err)
			}
			if b, _ := os.ReadFile(path); string(b) != content {
				t.Errorf("OpenMapping(%s) changed the file it refused", name)
			}
		})
	}
}

package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
)

func armorReader(r io.Reader) io.Reader { return armor.NewReader(r) }

// migrationEnv is an env whose gateway is never started: the cards
// commands open its store, keys and audit log themselves.
type migrationEnv struct {
	*env
	config string // the configuration file the commands are given
}

// newMigrationEnv prepares an env on store ("redis" or "bolt"), with an
// allowlist that names exportTo as the export recipient "newvault".
func newMigrationEnv(t *testing.T, store string, exportTo *age.X25519Identity) *migrationEnv {
	t.Helper()
	e := &migrationEnv{env: newEnv(t)}
	e.config = e.storeConfig(store, "a")
	e.signAllowlist(e.allowlistYAML(1) + "exports:\n  - id: newvault\n    purpose: the migration test\n    owner: payments@cardgate.test\n    recipient: " + exportTo.Recipient().String() + "\n")
	return e
}

// storeConfig writes a copy of the configuration on store, under its own
// key space (name): a second vault on the same Redis or in another bolt
// file, with the same keyring, allowlist and audit log.
func (e *migrationEnv) storeConfig(store, name string) string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "cardgate.yaml"))
	if err != nil {
		e.t.Fatal(err)
	}
	redisStore := fmt.Sprintf("store:\n  backend: redis\n  redis:\n    addrs: [%s]\n", e.redis.Addr())
	if !bytes.Contains(b, []byte(redisStore)) {
		e.t.Fatalf("configuration has no store section to replace:\n%s", b)
	}
	var repl string
	switch store {
	case "redis":
		repl = redisStore + "    prefix: \"" + name + ":\"\n"
	case "bolt":
		repl = fmt.Sprintf("store:\n  backend: bolt\n  bolt:\n    path: %s\n", filepath.Join(e.dir, name+".db"))
		b = bytes.Replace(b, []byte("  threshold: 1\n"), fmt.Appendf(nil, "  threshold: 1\n  state_file: %s\n", filepath.Join(e.dir, name+".allowlist-state")), 1)
		b = fmt.Appendf(b, "killswitch:\n  file: %s\n", filepath.Join(e.dir, name+".killswitch.json"))
	}
	return e.write("cardgate-"+store+"-"+name+".yaml", bytes.Replace(b, []byte(redisStore), []byte(repl), 1))
}

// writeIdentity writes id as age-keygen does, mode 0600.
func (e *migrationEnv) writeIdentity(name string, id *age.X25519Identity) string {
	return e.write(name, []byte("# created: by the test\n"+id.String()+"\n"))
}

// encrypt writes plain, age-encrypted to id, to the file name.
func (e *migrationEnv) encrypt(name string, id *age.X25519Identity, plain []byte) string {
	e.t.Helper()
	return e.encryptTo(name, id.Recipient(), plain)
}

func (e *migrationEnv) encryptTo(name string, r age.Recipient, plain []byte) string {
	e.t.Helper()
	var b bytes.Buffer
	w, err := age.Encrypt(&b, r)
	if err != nil {
		e.t.Fatal(err)
	}
	w.Write(plain)
	if err := w.Close(); err != nil {
		e.t.Fatal(err)
	}
	return e.write(name, b.Bytes())
}

// decrypt reads the age file at path with id.
func (e *migrationEnv) decrypt(path string, id *age.X25519Identity) []byte {
	e.t.Helper()
	f, err := os.Open(path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	r, err := age.Decrypt(f, id)
	if err != nil {
		e.t.Fatalf("decrypt %s: %v", path, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		e.t.Fatalf("decrypt %s: %v", path, err)
	}
	return b
}

// cardsCLI runs a cards command and returns its exit code, stdout and
// stderr, each checked for card data.
func (e *migrationEnv) cardsCLI(args ...string) (int, string, string) {
	e.t.Helper()
	cmd := exec.Command(binary, append([]string{"cards"}, args...)...)
	cmd.Dir = e.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("cardgate cards %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	e.assertNoCardsIn("cards "+args[0]+" stdout", stdout.Bytes())
	e.assertNoCardsIn("cards "+args[0]+" stderr", stderr.Bytes())
	return code, stdout.String(), stderr.String()
}

// migrationLine is a line of the migration format.
type migrationLine struct {
	ID       string `json:"id"`
	Number   string `json:"number"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
	Name     string `json:"name,omitempty"`
	CVC      string `json:"cvc,omitempty"`
}

// senderFile is n cards in the migration format, the test cards in turn
// under ids "cus_1"…, each with a CVC and a name.
func senderFile(n int) ([]byte, map[string]migrationLine) {
	var b bytes.Buffer
	byID := map[string]migrationLine{}
	cvcs := map[string]string{visa: testCVC, visa2: testCVC, mastercard: testCVC, amex: "7373"}
	for i := range n {
		l := migrationLine{ID: fmt.Sprintf("cus_%d", i+1), Number: testCards[i%len(testCards)], ExpMonth: 1 + i%12, ExpYear: 2030 + i%5, Name: "Migrated Holder", CVC: cvcs[testCards[i%len(testCards)]]}
		j, _ := json.Marshal(l)
		b.Write(j)
		b.WriteByte('\n')
		byID[l.ID] = l
	}
	return b.Bytes(), byID
}

// readLines decodes JSON lines.
func readLines[T any](t *testing.T, b []byte) []T {
	t.Helper()
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %d: %v", len(out)+1, err)
		}
		out = append(out, v)
	}
	return out
}

type mappingLine struct {
	Line  int    `json:"line"`
	ID    string `json:"id"`
	Token string `json:"token"`
}

// TestCardsMigrationRoundTrip: a sender's file is imported into vault A,
// exported from A to the allowlist's recipient (vault B's identity), and
// that export imported into B; B then exports the same cards. Nothing in
// the output, the mapping files or the audit log holds a card. On Redis
// and on bolt.
func TestCardsMigrationRoundTrip(t *testing.T) {
	for _, store := range []string{"redis", "bolt"} {
		t.Run(store, func(t *testing.T) {
			idB, _ := age.GenerateX25519Identity()
			e := newMigrationEnv(t, store, idB)
			configB := e.storeConfig(store, "b")
			// Vault A's import identity is sealed under its key backend;
			// vault B's is an age-keygen file.
			identA := filepath.Join(e.dir, "import-a.sealed")
			code, stdout, stderr := e.cardsCLI("import-key", "-config", e.config, "-out", identA)
			if code != 0 {
				t.Fatalf("import-key exited %d:\n%s\n%s", code, stdout, stderr)
			}
			_, rcptText, _ := strings.Cut(stdout, "recipient: ")
			rcptA, err := age.ParseX25519Recipient(strings.TrimSpace(rcptText))
			if err != nil {
				t.Fatalf("import-key printed no recipient: %q", stdout)
			}
			if b := mustRead(t, identA); bytes.Contains(b, []byte("AGE-SECRET-KEY")) {
				t.Fatal("the sealed identity file holds the identity in clear")
			}
			plain, byID := senderFile(40)
			// Two lines the import refuses: a number that fails Luhn, and
			// a repeated id.
			plain = append(plain, []byte(`{"id":"cus_bad","number":"4242424242424241","exp_month":1,"exp_year":2031}`+"\n"+
				`{"id":"cus_1","number":"`+visa+`","exp_month":1,"exp_year":2031}`+"\n")...)
			in := e.encryptTo("sender.age", rcptA, plain)
			identB := e.writeIdentity("import-b.key", idB)
			mapA := filepath.Join(e.dir, "mapping-a.jsonl")

			code, stdout, stderr = e.cardsCLI("import", "-config", e.config, "-identity", identA, "-in", in, "-mapping", mapA)
			if code != 0 {
				t.Fatalf("import exited %d:\n%s\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stdout, "42 lines: 40 imported, 0 recovered, 0 skipped, 2 refused (duplicate_id 1, invalid_card_number 1)") {
				t.Errorf("import stdout = %q, want the counts", stdout)
			}
			for _, want := range []string{"line 41: refused: invalid_card_number", "line 42: refused: duplicate_id"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("import stderr lacks %q:\n%s", want, stderr)
				}
			}
			mappingA, _ := os.ReadFile(mapA)
			e.assertNoCardsIn("mapping file", mappingA)
			tokenOf := map[string]string{}
			for _, m := range readLines[mappingLine](t, mappingA) {
				tokenOf[m.Token] = m.ID
			}
			if len(tokenOf) != 40 {
				t.Fatalf("mapping A holds %d tokens, want 40", len(tokenOf))
			}

			outA := filepath.Join(e.dir, "export-a.age")
			if code, stdout, stderr := e.cardsCLI("export", "-config", e.config, "-to", "newvault", "-out", outA); code != 0 {
				t.Fatalf("export exited %d:\n%s\n%s", code, stdout, stderr)
			}
			exported := readLines[migrationLine](t, e.decrypt(outA, idB))
			if len(exported) != 40 {
				t.Fatalf("export holds %d cards, want 40", len(exported))
			}
			for _, x := range exported {
				sent, ok := byID[tokenOf[x.ID]]
				switch {
				case !ok:
					t.Errorf("exported id %s is not a mapped token", x.ID)
				case x.Number != sent.Number || x.ExpMonth != sent.ExpMonth || x.ExpYear != sent.ExpYear || x.Name != sent.Name:
					t.Errorf("exported card %s differs from the imported one", x.ID)
				case x.CVC != "":
					t.Errorf("exported card %s holds a CVC; CVCs are never exported", x.ID)
				}
			}

			// Vault B imports A's export: the ids are A's tokens.
			mapB := filepath.Join(e.dir, "mapping-b.jsonl")
			if code, stdout, stderr := e.cardsCLI("import", "-config", configB, "-identity", identB, "-in", outA, "-mapping", mapB); code != 0 {
				t.Fatalf("import into B exited %d:\n%s\n%s", code, stdout, stderr)
			}
			outB := filepath.Join(e.dir, "export-b.age")
			if code, stdout, stderr := e.cardsCLI("export", "-config", configB, "-to", "newvault", "-out", outB); code != 0 {
				t.Fatalf("export from B exited %d:\n%s\n%s", code, stdout, stderr)
			}
			aTokenOfB := map[string]string{}
			mappingB, _ := os.ReadFile(mapB)
			for _, m := range readLines[mappingLine](t, mappingB) {
				aTokenOfB[m.Token] = m.ID
			}
			exportedB := readLines[migrationLine](t, e.decrypt(outB, idB))
			if len(exportedB) != 40 {
				t.Fatalf("B's export holds %d cards, want 40", len(exportedB))
			}
			for _, x := range exportedB {
				sent, ok := byID[tokenOf[aTokenOfB[x.ID]]]
				if !ok || x.Number != sent.Number || x.ExpMonth != sent.ExpMonth || x.Name != sent.Name {
					t.Errorf("B's card %s is not the sender's card behind it", x.ID)
				}
			}

			auditLog, _ := os.ReadFile(filepath.Join(e.dir, "audit.log"))
			e.assertNoCardsIn("audit log", auditLog)
			kinds := map[string]int{}
			for _, r := range readLines[map[string]any](t, auditLog) {
				kinds[r["kind"].(string)]++
			}
			if kinds["imported"] != 80 || kinds["exported"] != 80 {
				t.Errorf("audit kinds = %v, want 80 imported and 80 exported", kinds)
			}
			if code, out := runCLI(t, e.dir, "audit", "verify", filepath.Join(e.dir, "audit.log")); code != 0 {
				t.Errorf("audit verify exited %d:\n%s", code, out)
			}
		})
	}
}

// TestCardsExportRefusesUnlistedRecipient: an export to an id the signed
// allowlist does not name as an export recipient (a destination id, an
// unknown id) writes nothing and is audited as denied; an allowlist whose
// signature does not verify refuses every export.
func TestCardsExportRefusesUnlistedRecipient(t *testing.T) {
	idB, _ := age.GenerateX25519Identity()
	e := newMigrationEnv(t, "redis", idB)
	for _, to := range []string{"acme-charges", "othervault", "4242424242424242"} {
		out := filepath.Join(e.dir, "export-"+to+".age")
		code, stdout, stderr := e.cardsCLI("export", "-config", e.config, "-to", to, "-out", out)
		if code == 0 || !strings.Contains(stderr, "export_recipient_not_allowed") {
			t.Errorf("export -to %s exited %d, want a refusal:\n%s\n%s", to, code, stdout, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("export -to %s left a file", to)
		}
	}
	auditLog, _ := os.ReadFile(filepath.Join(e.dir, "audit.log"))
	e.assertNoCardsIn("audit log", auditLog)
	denied := 0
	for _, r := range readLines[map[string]any](t, auditLog) {
		if r["kind"] == "denied" && r["reason"] == "export_recipient_not_allowed" {
			denied++
		}
	}
	if denied != 3 {
		t.Errorf("audit holds %d denied exports, want 3", denied)
	}

	// The recipient added to the document without a new signature: the
	// document no longer verifies, and nothing is exported.
	raw, _ := os.ReadFile(filepath.Join(e.dir, "allowlist.yaml"))
	other, _ := age.GenerateX25519Identity()
	e.write("allowlist.yaml", append(raw, []byte("  - id: othervault\n    purpose: p\n    owner: o\n    recipient: "+other.Recipient().String()+"\n")...))
	out := filepath.Join(e.dir, "export-unsigned.age")
	if code, stdout, stderr := e.cardsCLI("export", "-config", e.config, "-to", "othervault", "-out", out); code == 0 {
		t.Errorf("export with an unsigned recipient exited 0:\n%s\n%s", stdout, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("export with an unsigned recipient left a file")
	}
}

// TestCardsImportKilledAndResumed kills the import process mid-run
// (SIGKILL: no cleanup at all) and runs it again: every card ends up
// stored once, under the token the mapping names. On Redis and on bolt.
func TestCardsImportKilledAndResumed(t *testing.T) {
	const n = 6000
	for _, store := range []string{"redis", "bolt"} {
		t.Run(store, func(t *testing.T) {
			idA, _ := age.GenerateX25519Identity()
			idB, _ := age.GenerateX25519Identity()
			e := newMigrationEnv(t, store, idB)
			plain, _ := senderFile(n)
			in := e.encrypt("sender.age", idA, plain)
			ident := e.writeIdentity("import.key", idA)
			mapPath := filepath.Join(e.dir, "mapping.jsonl")

			p, err := startProcess(t, binary, "cards", "import", "-config", e.config, "-identity", ident, "-in", in, "-mapping", mapPath, "-batch", "64")
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for {
				if fi, err := os.Stat(mapPath); err == nil && fi.Size() > 64*1024 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the import wrote no mapping in time:\n%s", p.log())
				}
				time.Sleep(5 * time.Millisecond)
			}
			// Into the next batch, so that some of its cards are stored
			// and not yet mapped (unless the machine is slow; the
			// migrate tests close that window deterministically).
			time.Sleep(15 * time.Millisecond)
			p.signal(syscall.SIGKILL)
			if _, err := p.wait(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			e.assertNoCardsIn("killed import output", []byte(p.log()))
			before := len(readLines[mappingLine](t, mustRead(t, mapPath)))
			if before == 0 || before >= n {
				t.Fatalf("killed import mapped %d cards, want some but not all of %d", before, n)
			}

			code, stdout, stderr := e.cardsCLI("import", "-config", e.config, "-identity", ident, "-in", in, "-mapping", mapPath)
			if code != 0 {
				t.Fatalf("resumed import exited %d:\n%s\n%s", code, stdout, stderr)
			}
			if want := fmt.Sprintf("%d skipped, 0 refused", before); !strings.Contains(stdout, want) {
				t.Errorf("resumed import stdout = %q, want %q", stdout, want)
			}
			t.Logf("killed after %d mappings; resumed: %s", before, stdout)
			m := readLines[mappingLine](t, mustRead(t, mapPath))
			ids, tokens := map[string]bool{}, map[string]bool{}
			for _, l := range m {
				if ids[l.ID] || tokens[l.Token] {
					t.Fatalf("mapping repeats id or token at line %d", l.Line)
				}
				ids[l.ID], tokens[l.Token] = true, true
			}
			if len(m) != n {
				t.Errorf("mapping holds %d lines, want %d; resumed run: %s", len(m), n, stdout)
			}

			// The store holds exactly the mapped tokens: the export lists
			// every record.
			out := filepath.Join(e.dir, "export.age")
			if code, stdout, stderr := e.cardsCLI("export", "-config", e.config, "-to", "newvault", "-out", out); code != 0 {
				t.Fatalf("export exited %d:\n%s\n%s", code, stdout, stderr)
			}
			exported := readLines[migrationLine](t, e.decrypt(out, idB))
			if len(exported) != n {
				t.Errorf("store holds %d cards, want %d (no duplicates)", len(exported), n)
			}
			for _, x := range exported {
				if !tokens[x.ID] {
					t.Errorf("stored token %s is not in the mapping", x.ID)
				}
			}
			e.assertNoCardsIn("mapping file", mustRead(t, mapPath))
			e.assertNoCardsIn("audit log", mustRead(t, filepath.Join(e.dir, "audit.log")))
		})
	}
}

// TestCardsExportStdout: "-out -" writes the ciphertext to stdout when it
// is a pipe or a file, and refuses a character device (a terminal; here
// /dev/null, which is one too) before anything is read.
func TestCardsExportStdout(t *testing.T) {
	idB, _ := age.GenerateX25519Identity()
	e := newMigrationEnv(t, "redis", idB)
	idA, _ := age.GenerateX25519Identity()
	plain, _ := senderFile(4)
	in := e.encrypt("sender.age", idA, plain)
	if code, stdout, stderr := e.cardsCLI("import", "-config", e.config, "-identity", e.writeIdentity("a.key", idA), "-in", in, "-mapping", filepath.Join(e.dir, "m.jsonl")); code != 0 {
		t.Fatalf("import exited %d:\n%s\n%s", code, stdout, stderr)
	}

	code, stdout, stderr := e.cardsCLI("export", "-config", e.config, "-to", "newvault", "-out", "-", "-armor")
	if code != 0 {
		t.Fatalf("export to a pipe exited %d:\n%s", code, stderr)
	}
	if !strings.HasPrefix(stdout, "-----BEGIN AGE ENCRYPTED FILE-----") {
		t.Errorf("export -armor stdout starts %q, want an armored age file", stdout[:min(len(stdout), 40)])
	}
	path := e.write("export.age.asc", []byte(stdout))
	f, _ := os.Open(path)
	defer f.Close()
	r, err := age.Decrypt(armorReader(f), idB)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	b, _ := io.ReadAll(r)
	if n := len(readLines[migrationLine](t, b)); n != 4 {
		t.Errorf("export holds %d cards, want 4", n)
	}

	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	cmd := exec.Command(binary, "cards", "export", "-config", e.config, "-to", "newvault", "-out", "-")
	cmd.Stdout = devNull
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err == nil || !strings.Contains(errb.String(), "stdout is a terminal") {
		t.Errorf("export to a character device = %v, %q; want a refusal", err, errb.String())
	}
}

// TestCardsHelp: the cards commands print their usage and exit 0.
func TestCardsHelp(t *testing.T) {
	for _, args := range [][]string{{"cards", "-h"}, {"cards", "import", "-h"}, {"cards", "export", "-h"}, {"cards", "import-key", "-h"}} {
		code, out := runCLI(t, t.TempDir(), args...)
		if code != 0 || !strings.Contains(out, "usage: cardgate cards") {
			t.Errorf("cardgate %s exited %d:\n%s", strings.Join(args, " "), code, out)
		}
	}
	if code, out := runCLI(t, t.TempDir(), "cards", "import", "-in", "x"); code != 1 {
		t.Errorf("cards import without its flags exited %d, want 1:\n%s", code, out)
	}
}

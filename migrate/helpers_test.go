package migrate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/internal/redistest"
	"github.com/cardgate/cardgate/vaultclient"
)

// testCards are standard test numbers from the networks' published lists.
var testCards = []Card{
	{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2030, Name: "Jane Q. Cardholder", CVC: "123"},
	{Number: "4111111111111111", ExpMonth: 1, ExpYear: 2031, Name: "John Roe"},
	{Number: "5555555555554444", ExpMonth: 6, ExpYear: 2029, CVC: "456"},
	{Number: "378282246310005", ExpMonth: 3, ExpYear: 2032, Name: "Amy Amex", CVC: "7890"},
	{Number: "4000056655665556", ExpMonth: 9, ExpYear: 2030},
}

// secretsOf lists what must never appear outside the vault: numbers,
// spaced or not, names, and CVCs as JSON strings.
func secretsOf(cards []Card) []string {
	var out []string
	for _, c := range cards {
		out = append(out, c.Number, spaced(c.Number))
		if c.Name != "" {
			out = append(out, c.Name)
		}
		if c.CVC != "" {
			out = append(out, `"`+c.CVC+`"`)
		}
	}
	return out
}

func spaced(n string) string {
	var b strings.Builder
	for i := 0; i < len(n); i++ {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(n[i])
	}
	return b.String()
}

// checkNoLeak fails if any secret is in b (what). It reports the secret's
// index, never the secret.
func checkNoLeak(t *testing.T, what string, b []byte, secrets []string) {
	t.Helper()
	for i, s := range secrets {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s holds secret #%d", what, i)
		}
	}
}

// env is a vault over one store kind, a real audit file and a log buffer.
type env struct {
	vault     *vaultclient.Vault
	store     vaultclient.Store
	keys      vaultclient.Keyer
	scanner   Scanner
	scan      func(ctx context.Context, cursor string, limit int) ([]string, string, error)
	audit     *audit.Log
	auditPath string
	logs      *syncBuffer
	keyring   string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// testNow is inside every test card's validity.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

var storeKinds = []string{"bolt", "redis"}

// newEnv opens a vault on kind ("bolt" or "redis") with a local keyring,
// and an audit log on a file.
func newEnv(t testing.TB, kind string) *env {
	t.Helper()
	dir := t.TempDir()
	keyring := filepath.Join(dir, "keyring.json")
	if err := vaultclient.CreateLocalKeyring(keyring); err != nil {
		t.Fatalf("CreateLocalKeyring: %v", err)
	}
	keys, err := vaultclient.OpenLocalKeyring(keyring)
	if err != nil {
		t.Fatalf("OpenLocalKeyring: %v", err)
	}
	t.Cleanup(func() { keys.Close() })
	return newEnvWith(t, kind, keys)
}

func newEnvWith(t testing.TB, kind string, keys vaultclient.Keyer) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{logs: &syncBuffer{}, keys: keys}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: dropTime}))
	var store vaultclient.Store
	switch kind {
	case "bolt":
		b, err := vaultclient.OpenBoltStore(filepath.Join(dir, "cards.db"))
		if err != nil {
			t.Fatalf("OpenBoltStore: %v", err)
		}
		t.Cleanup(func() { b.Close() })
		store, e.scan = b, b.Scan
	case "redis":
		srv := redistest.Start(t)
		r := vaultclient.NewRedisStore(srv.Client(), "cardgate:")
		store, e.scan = r, r.Scan
	default:
		t.Fatalf("unknown store kind %q", kind)
	}
	v, err := vaultclient.New(store, keys, vaultclient.Options{Now: func() time.Time { return testNow }, Logger: log, KeyTimeout: 10 * time.Second, StoreTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("vaultclient.New: %v", err)
	}
	e.vault, e.store, e.scanner = v, store, store.(Scanner)
	e.auditPath = filepath.Join(dir, "audit.log")
	sink, err := audit.OpenFileSink(e.auditPath)
	if err != nil {
		t.Fatalf("OpenFileSink: %v", err)
	}
	t.Cleanup(func() { sink.Close() })
	if e.audit, err = audit.New(audit.Options{Sinks: []audit.Sink{sink}, Logger: log}); err != nil {
		t.Fatalf("audit.New: %v", err)
	}
	return e
}

// tokens lists every token in the store.
func (e *env) tokens(t testing.TB) []string {
	t.Helper()
	var all []string
	cursor := ""
	for {
		toks, next, err := e.scan(context.Background(), cursor, 1000)
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		all = append(all, toks...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

// auditKinds counts the audit file's records by kind.
func (e *env) auditKinds(t testing.TB) map[audit.Kind]int {
	t.Helper()
	b, err := os.ReadFile(e.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	out := map[audit.Kind]int{}
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var r audit.Record
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("audit line: %v", err)
		}
		out[r.Kind]++
	}
	return out
}

// encryptFile writes plain, age-encrypted to id's recipient, to a new
// file and returns its path.
func encryptFile(t testing.TB, id *age.X25519Identity, plain io.Reader) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cards.age")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := age.Encrypt(f, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func newIdentity(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// cardLines renders cards in the format, with ids "cus_<i>".
func cardLines(cards []Card) string {
	var b strings.Builder
	for i, c := range cards {
		c.ID = fmt.Sprintf("cus_%d", i+1)
		j, _ := json.Marshal(c)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// importFile runs one import of path with a mapping file at mapPath.
func (e *env) importFile(t testing.TB, id *age.X25519Identity, path, mapPath string, tok Tokenizer, report io.Writer) (Counts, error) {
	t.Helper()
	in, err := OpenInput(path, id)
	if err != nil {
		t.Fatalf("OpenInput: %v", err)
	}
	defer in.Close()
	key, err := TokenKey([]byte(id.String()), in.SHA256())
	if err != nil {
		t.Fatal(err)
	}
	m, err := OpenMapping(mapPath)
	if err != nil {
		t.Fatalf("OpenMapping: %v", err)
	}
	defer m.Close()
	if tok == nil {
		tok = e.vault
	}
	c, err := Import(context.Background(), in, ImportOptions{
		Vault: tok, Audit: e.audit, Mapping: m, TokenKey: key,
		RunID: "imp_test", Caller: "cardgate-cli/cards-import", Report: report, Batch: 64,
	})
	if err == nil {
		err = in.Check()
	}
	return c, err
}

// readMapping returns the mapping file's lines.
func readMapping(t testing.TB, path string) []MappingLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []MappingLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ml MappingLine
		if err := json.Unmarshal(sc.Bytes(), &ml); err != nil {
			t.Fatalf("mapping line: %v", err)
		}
		out = append(out, ml)
	}
	return out
}

// dropTime removes a log record's time: its digits can spell a test
// expiry year or CVC, which the leak checks look for.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

package migrate

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
)

func TestLoadIdentity(t *testing.T) {
	id := newIdentity(t)
	other := newIdentity(t)
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // "" for success, else a part of the error
	}{
		{"age-keygen file", "# created: 2026-12-07\n# public key: " + id.Recipient().String() + "\n" + id.String() + "\n", 0o600, ""},
		{"owner read-only", id.String() + "\n", 0o400, ""},
		{"group readable", id.String() + "\n", 0o640, "chmod 600"},
		{"world readable", id.String() + "\n", 0o604, "chmod 600"},
		{"two identities", id.String() + "\n" + other.String() + "\n", 0o600, "exactly one"},
		{"garbage", "AGE-SECRET-KEY-1NOTAKEY\n", 0o600, "no age identity"},
		{"empty", "", 0o600, "no age identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "import.key")
			if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, tt.mode)
			got, err := LoadIdentity(context.Background(), path)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("LoadIdentity = %v, want the identity", err)
			case tt.want == "" && got.String() != id.String():
				t.Errorf("LoadIdentity gave another identity")
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("LoadIdentity = %v, want an error containing %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "AGE-SECRET-KEY") {
				t.Errorf("LoadIdentity error quotes the file: %v", err)
			}
		})
	}
}

func TestOpenInput(t *testing.T) {
	id := newIdentity(t)
	plain := cardLines(testCards)
	binary := encryptFile(t, id, strings.NewReader(plain))
	var armored bytes.Buffer
	aw := armor.NewWriter(&armored)
	w, _ := age.Encrypt(aw, id.Recipient())
	io.WriteString(w, plain)
	w.Close()
	aw.Close()
	armoredPath := filepath.Join(t.TempDir(), "cards.age.asc")
	os.WriteFile(armoredPath, armored.Bytes(), 0o600)

	for name, path := range map[string]string{"binary": binary, "armored": armoredPath} {
		t.Run(name, func(t *testing.T) {
			in, err := OpenInput(path, id)
			if err != nil {
				t.Fatalf("OpenInput: %v", err)
			}
			defer in.Close()
			got, err := io.ReadAll(in)
			if err != nil || string(got) != plain {
				t.Errorf("plaintext = %d bytes, %v; want the file", len(got), err)
			}
			if err := in.Check(); err != nil {
				t.Errorf("Check = %v", err)
			}
		})
	}

	t.Run("another recipient", func(t *testing.T) {
		if _, err := OpenInput(binary, newIdentity(t)); err == nil || !strings.Contains(err.Error(), "not encrypted to the import identity") {
			t.Errorf("OpenInput = %v, want a refusal", err)
		}
	})
	t.Run("plaintext", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "cards.jsonl")
		os.WriteFile(path, []byte(plain), 0o600)
		_, err := OpenInput(path, id)
		if err == nil || !strings.Contains(err.Error(), "not an age file") {
			t.Errorf("OpenInput(plaintext) = %v, want a refusal", err)
		}
		if err != nil && strings.Contains(err.Error(), "4242") {
			t.Errorf("OpenInput error quotes the file: %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		b, _ := os.ReadFile(binary)
		path := filepath.Join(t.TempDir(), "cut.age")
		os.WriteFile(path, b[:len(b)-20], 0o600)
		in, err := OpenInput(path, id)
		if err != nil {
			t.Fatalf("OpenInput: %v", err)
		}
		defer in.Close()
		if _, err := io.ReadAll(in); err == nil || !strings.Contains(err.Error(), "damaged or truncated") {
			t.Errorf("reading a truncated file = %v, want an error", err)
		}
	})
	t.Run("changed while read", func(t *testing.T) {
		b, _ := os.ReadFile(binary)
		path := filepath.Join(t.TempDir(), "grows.age")
		os.WriteFile(path, b, 0o600)
		in, err := OpenInput(path, id)
		if err != nil {
			t.Fatalf("OpenInput: %v", err)
		}
		defer in.Close()
		io.ReadAll(in)
		f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		f.Write([]byte("more"))
		f.Close()
		if err := in.Check(); err == nil {
			t.Error("Check after the file changed = nil, want an error")
		}
	})
}

// TestImportProgress: progress lines go only where asked (the command
// asks only when stderr is a terminal), and are cleared before a
// refusal is written. The second run imports the same file into the same
// store, with a new mapping file: it recovers every card, storing none
// twice.
func TestImportProgress(t *testing.T) {
	e := newEnv(t, "bolt")
	id := newIdentity(t)
	lines := cardLines(testCards) + "{\"id\":\"x\"}\n"
	path := encryptFile(t, id, strings.NewReader(lines))
	for _, withProgress := range []bool{false, true} {
		var out bytes.Buffer
		in, err := OpenInput(path, id)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := TokenKey([]byte(id.String()), in.SHA256())
		m, err := OpenMapping(filepath.Join(t.TempDir(), "m.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		o := ImportOptions{Vault: e.vault, Audit: e.audit, Mapping: m, TokenKey: key, RunID: "imp_p", Caller: "test", Report: &out}
		if withProgress {
			o.Progress = &out
		}
		if _, err := Import(context.Background(), in, o); err != nil {
			t.Fatalf("Import: %v", err)
		}
		m.Close()
		in.Close()
		got := out.String()
		if has := strings.Contains(got, "\r\x1b[K"); has != withProgress {
			t.Errorf("progress shown = %v, want %v: %q", has, withProgress, got)
		}
		if withProgress && !strings.Contains(got, "6 lines: 0 imported, 5 recovered, 0 skipped, 1 refused") {
			t.Errorf("progress = %q, want the final counts", got)
		}
		checkNoLeak(t, "progress", out.Bytes(), secretsOf(testCards))
	}
}

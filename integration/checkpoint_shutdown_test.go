package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// memHashes is a tlog.HashReader over every stored hash.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m[x]
	}
	return out, nil
}

// SIGTERM while a forward is held at the processor: the drain lets it
// finish, its result record is written, and the checkpoint published at
// shutdown covers the whole audit file, result included. Checked as an
// auditor would, with the note and tlog packages only.
func TestCheckpointAfterSIGTERMCoversTheForward(t *testing.T) {
	e := newEnv(t)
	slow := startUpstream(t, e.procCA)
	e.signAllowlist(e.allowlistYAML(1) + drillEntry("drill-slow", slow.addr))
	const origin = "cardgate.test/audit/integration-1"
	keyFile, cpFile, logFile := filepath.Join(e.dir, "checkpoint.key"), filepath.Join(e.dir, "checkpoint"), filepath.Join(e.dir, "audit.log")
	out, err := exec.Command(binary, "audit", "checkpoint-key", "--origin", origin, "--out", keyFile).Output()
	if err != nil {
		t.Fatalf("checkpoint-key: %v", err)
	}
	vkey := strings.TrimSpace(string(out))
	// An hour between checkpoints: only the one signed at shutdown can
	// cover the forward's result.
	e.writeConfig(fmt.Sprintf("audit:\n  file: %s\n  checkpoint:\n    origin: %s\n    file: %s\n    signer: local\n    key_file: %s\n    unsafe_local_outside_dev: true\n    interval: 1h\n    timeout: 10s\n",
		logFile, origin, cpFile, keyFile))
	e.start()
	c := e.client(billing)
	tok := e.tokenize(c, visa)

	var wg sync.WaitGroup
	var res result
	wg.Go(func() {
		res = e.forward(context.Background(), c, drillBody(tok, "drill-slow", "https://"+slow.addr+"/v1/charges"))
	})
	waitUntil(t, "the processor holds the forward", drillBound, func() bool { got, _, _ := slow.counts(); return got == 1 })
	if err := e.gw.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the gateway logs its shutdown", drillBound, func() bool {
		return len(e.gw.logLines("shutting down: finishing requests in flight")) == 1
	})
	slow.Release()
	wg.Wait()
	if res.err != nil || res.status != 200 || res.outcome != "answered" {
		t.Fatalf("held forward = %v, want 200 answered", res)
	}
	if code, err := e.gw.wait(drillBound); err != nil || code != 0 {
		t.Fatalf("after SIGTERM: exit %d, %v\nlog:\n%s", code, err, e.gw.log())
	}

	msg, err := os.ReadFile(cpFile)
	if err != nil {
		t.Fatalf("no checkpoint published: %v\nlog:\n%s", err, e.gw.log())
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint does not verify: %v\n%s", err, msg)
	}
	cl := strings.Split(n.Text, "\n")
	if len(cl) != 4 || cl[0] != origin {
		t.Fatalf("checkpoint text %q", n.Text)
	}
	size, err := strconv.ParseInt(cl[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if int64(len(lines)) != size {
		t.Fatalf("the final checkpoint covers %d lines, the audit file holds %d\nlog:\n%s", size, len(lines), e.gw.log())
	}
	if !strings.Contains(string(raw), `"kind":"result"`) {
		t.Errorf("no result record in the audit file")
	}
	var hs memHashes
	for i, l := range lines {
		h, err := tlog.StoredHashes(int64(i), []byte(l), hs)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h...)
	}
	root, err := tlog.TreeHash(size, hs)
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.StdEncoding.EncodeToString(root[:]); got != cl[2] {
		t.Errorf("the file's root %s is not the checkpoint's %s", got, cl[2])
	}

	// A hostile operator with write access to the files: every change
	// to the history the last checkpoint signed stops the next start.
	cpRaw := msg
	otherKey := filepath.Join(e.dir, "other.key")
	if out, err := exec.Command(binary, "audit", "checkpoint-key", "--origin", origin, "--out", otherKey).CombinedOutput(); err != nil {
		t.Fatalf("checkpoint-key: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name   string
		tamper func()
	}{
		{"last line cut", func() {
			os.WriteFile(logFile, []byte(strings.Join(lines[:len(lines)-1], "\n")+"\n"), 0o600)
		}},
		{"file emptied", func() { os.WriteFile(logFile, nil, 0o600) }},
		{"a line rewritten", func() {
			ls := append([]string(nil), lines...)
			ls[0] = strings.Replace(ls[0], `"kind":`, `"kind" :`, 1)
			os.WriteFile(logFile, []byte(strings.Join(ls, "\n")+"\n"), 0o600)
		}},
		{"two lines swapped", func() {
			ls := append([]string(nil), lines...)
			ls[0], ls[1] = ls[1], ls[0]
			os.WriteFile(logFile, []byte(strings.Join(ls, "\n")+"\n"), 0o600)
		}},
		{"checkpoint a named pipe", func() { os.Remove(cpFile); syscall.Mkfifo(cpFile, 0o644) }},
		{"checkpoint a directory", func() { os.Remove(cpFile); os.Mkdir(cpFile, 0o755) }},
		{"checkpoint with trailing data", func() { os.WriteFile(cpFile, append(bytes.Clone(cpRaw), "junk\n"...), 0o644) }},
		{"checkpoint with CRLF", func() { os.WriteFile(cpFile, bytes.ReplaceAll(cpRaw, []byte("\n"), []byte("\r\n")), 0o644) }},
		{"checkpoint signed by another key", func() {
			sk, _ := os.ReadFile(otherKey)
			s, err := note.NewSigner(strings.TrimSpace(string(sk)))
			if err != nil {
				t.Fatal(err)
			}
			forged, err := note.Sign(&note.Note{Text: n.Text}, s)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(cpFile, forged, 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tamperAndStart(t, e, logFile, cpFile, raw, cpRaw, tc.tamper) })
	}
}

// tamperAndStart restores the audit file and checkpoint saved after a clean
// shutdown, applies tamper and starts the gateway, which must refuse to
// start, promptly, naming a checkpoint problem.
func tamperAndStart(t *testing.T, e *env, logFile, cpFile string, logRaw, cpRaw []byte, tamper func()) {
	t.Helper()
	os.RemoveAll(cpFile)
	if err := os.WriteFile(logFile, logRaw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cpFile, cpRaw, 0o644); err != nil {
		t.Fatal(err)
	}
	tamper()
	p, err := startProcess(t, binary, "serve", "-config", filepath.Join(e.dir, "cardgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	code, err := p.wait(drillBound)
	if err != nil {
		p.signal(syscall.SIGKILL)
		t.Fatalf("the gateway did not stop on a tampered audit file or checkpoint: %v\nlog:\n%s", err, p.log())
	}
	if code == 0 || !strings.Contains(p.log(), "checkpoint") {
		t.Errorf("exit %d, want a refusal that names the checkpoint\nlog:\n%s", code, p.log())
	}
}

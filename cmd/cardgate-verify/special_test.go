//go:build unix

package main

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A checkpoint, proof or audit file replaced by a named pipe, a
// directory or a device fails at once: a hostile operator must not be
// able to hang the auditor's check (opening a FIFO for reading blocks
// until a writer appears).
func TestSpecialFilesFail(t *testing.T) {
	f := newFixture(t)
	f.forward(t, "fwd_a")
	cp := f.checkpoint(t)
	fifo := filepath.Join(f.dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"checkpoint fifo", []string{"checkpoint", "--key", f.vkey, fifo}},
		{"checkpoint directory", []string{"checkpoint", "--key", f.vkey, f.dir}},
		{"key file fifo", []string{"checkpoint", "--key-file", fifo, cp}},
		{"proofs fifo", []string{"inclusion", "--key", f.vkey, fifo}},
		{"consistency proof fifo", []string{"consistency", "--key", f.vkey, cp, cp, fifo}},
		{"log checkpoint fifo", []string{"log", "--key", f.vkey, "--checkpoint", fifo, f.log}},
		{"audit file fifo", []string{"log", "--key", f.vkey, "--checkpoint", cp, fifo}},
		{"audit file directory", []string{"log", "--key", f.vkey, "--checkpoint", cp, f.dir}},
		{"audit file device", []string{"log", "--key", f.vkey, "--checkpoint", cp, os.DevNull}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := verify(t, tc.args...)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || errors.Is(err, errUsage) {
					t.Errorf("run = %v, want a failure", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("run hung on a special file")
			}
		})
	}
}

// "cardgate allowlist sign": SSHSIG signatures from a key file or ssh-agent.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/internal/fileread"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func allowlistSign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sign", "(--key PRIVATE_KEY | --agent FINGERPRINT) [--out FILE.sig] FILE",
		"Signs the exact bytes of FILE in namespace "+allowlist.Namespace+".\n"+
			"The output is what `ssh-keygen -Y sign -n "+allowlist.Namespace+"` writes.\n"+
			"FILE must parse as an allowlist; review it (show, diff) before signing.\n"+
			"Passphrase-protected and hardware (sk) keys: load them into ssh-agent and\n"+
			"use --agent, or sign with ssh-keygen -Y sign directly.", stderr)
	keyPath := fs.String("key", "", "OpenSSH private key `file` (unencrypted)")
	agentFP := fs.String("agent", "", "sign with the ssh-agent key (SSH_AUTH_SOCK) whose fingerprint is `SHA256:…`")
	out := fs.String("out", "", "signature `file` (default FILE.sig); never overwritten unless --force")
	force := fs.Bool("force", false, "overwrite an existing signature file")
	if err := parseFlags(fs, args, 1); err != nil || fs.NArg() == 0 {
		return err
	}
	file := fs.Arg(0)
	if (*keyPath == "") == (*agentFP == "") {
		fmt.Fprintln(stderr, "cardgate allowlist sign: give exactly one of --key or --agent")
		fs.Usage()
		return errUsage
	}
	raw, err := allowlist.ReadDocument(ctx, file)
	if err != nil {
		return fmt.Errorf("allowlist sign: %w", err)
	}
	doc, err := allowlist.ParseUnverified(raw)
	if err != nil {
		return fmt.Errorf("allowlist sign: refusing to sign a document the gateway would reject: %w", err)
	}
	var signer ssh.Signer
	if *keyPath != "" {
		pem, err := fileread.Read(ctx, *keyPath, maxPrivateKeyBytes)
		if err != nil {
			return fmt.Errorf("allowlist sign: %w", err)
		}
		signer, err = ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return errors.New("allowlist sign: the key is passphrase-protected: add it to ssh-agent and use --agent")
		}
		if err != nil {
			return fmt.Errorf("allowlist sign: %s: %w", *keyPath, err)
		}
	} else {
		var closeAgent func()
		signer, closeAgent, err = agentSigner(*agentFP)
		if err != nil {
			return fmt.Errorf("allowlist sign: %w", err)
		}
		defer closeAgent()
	}
	armored, err := allowlist.Sign(raw, signer)
	if err != nil {
		return err
	}
	if *out == "" {
		*out = file + ".sig"
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if *force {
		// O_NONBLOCK: --force over a FIFO fails at once (no reader)
		// instead of waiting for one; the check below refuses the rest.
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC | syscall.O_NONBLOCK
	}
	f, err := os.OpenFile(*out, flags, 0o644)
	if err != nil {
		return fmt.Errorf("allowlist sign: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("allowlist sign: %s: not a regular file", *out)
	}
	if _, err := f.Write(armored); err != nil {
		f.Close()
		return fmt.Errorf("allowlist sign: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("allowlist sign: %w", err)
	}
	fmt.Fprintf(stdout, "signed %s (version %d, environment %s, sha256 %s) with %s %s\nwrote %s\n",
		file, doc.Version, doc.Environment, allowlist.SHA256Hex(raw), signer.PublicKey().Type(), ssh.FingerprintSHA256(signer.PublicKey()), *out)
	return nil
}

// maxPrivateKeyBytes caps a --key file; an RSA-16384 key in PEM is far
// smaller.
const maxPrivateKeyBytes = 64 << 10

// Bounds on talking to ssh-agent.
const (
	agentDialTimeout = 5 * time.Second
	agentTimeout     = 2 * time.Minute
)

// agentSigner finds the key with fingerprint fp in the ssh-agent at
// SSH_AUTH_SOCK. Hardware keys then ask for a touch on the device.
func agentSigner(fp string) (ssh.Signer, func(), error) {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, nil, errors.New("--agent: SSH_AUTH_SOCK is not set")
	}
	conn, err := net.DialTimeout("unix", sock, agentDialTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("--agent: %w", err)
	}
	// A wedged agent must not hang the auditor's shell; the bound is long
	// enough for a touch on a hardware key.
	if err := conn.SetDeadline(time.Now().Add(agentTimeout)); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("--agent: %w", err)
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("--agent: %w", err)
	}
	for _, s := range signers {
		if ssh.FingerprintSHA256(s.PublicKey()) == fp {
			return s, func() { conn.Close() }, nil
		}
	}
	conn.Close()
	return nil, nil, fmt.Errorf("--agent: no key with fingerprint %s in the agent (ssh-add -l lists them)", fp)
}

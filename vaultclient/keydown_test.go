package vaultclient

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDrillTransitDown is the key-backend-down fault drill: the Vault
// server behind the Transit backend goes away (connections refused), then
// hangs (accepts, never answers), then comes back. Every call in between
// fails typed (key_backend_unavailable) within a bound, nothing is written
// to the store, and the same backend recovers without being reopened.
func TestDrillTransitDown(t *testing.T) {
	ctx := context.Background()
	sv := newVaultStandIn(t)
	admin := openTestTransit(t, sv.adminConfig(t))
	if _, err := admin.InitKeys(ctx); err != nil {
		t.Fatalf("InitKeys: %v", err)
	}
	proxy := startFaultProxy(t, sv.srv.Listener.Addr().String())
	cfg := sv.config(t)
	cfg.Address = "https://" + proxy.addr
	gw := openTestTransit(t, cfg)
	store, srv := newTestRedis(t)
	const keyTimeout = 500 * time.Millisecond
	v := newTestVault(t, store, gw, Options{KeyTimeout: keyTimeout})
	info, err := v.Tokenize(ctx, testCards[0].input())
	if err != nil {
		t.Fatalf("Tokenize with Vault up: %v", err)
	}
	keys, err := srv.Client().DBSize(ctx).Result()
	if err != nil {
		t.Fatalf("DBSIZE: %v", err)
	}

	// Generous: the backend's own retries come on top of the key timeout,
	// and a loaded CI machine is slow. A hang would blow well past it.
	const bound = 10 * time.Second
	for _, phase := range []struct {
		name string
		set  func()
	}{
		{"refused", proxy.down},
		{"hangs", proxy.hang},
	} {
		t.Run(phase.name, func(t *testing.T) {
			phase.set()
			for _, op := range []struct {
				name string
				call func() error
			}{
				{"Detokenize", func() error { _, err := v.Detokenize(ctx, info.Token); return err }},
				{"Tokenize", func() error { _, err := v.Tokenize(ctx, testCards[1].input()); return err }},
				{"Ping", func() error { return v.Ping(ctx) }},
			} {
				start := time.Now()
				err := op.call()
				if d := time.Since(start); d > bound {
					t.Errorf("%s with Vault %s took %v, want under %v", op.name, phase.name, d, bound)
				}
				if code(err) != CodeKeyBackendUnavailable {
					t.Errorf("%s with Vault %s = %v, want %s", op.name, phase.name, err, CodeKeyBackendUnavailable)
				}
			}
			if n, err := srv.Client().DBSize(ctx).Result(); err != nil || n != keys {
				t.Errorf("the store holds %d keys (%v) after tokenizing with Vault %s, want %d: nothing written", n, err, phase.name, keys)
			}
		})
	}

	proxy.up()
	deadline := time.Now().Add(bound)
	for {
		card, err := v.Detokenize(ctx, info.Token)
		if err == nil {
			if card.Number.Reveal() != testCards[0].digits {
				t.Errorf("Detokenize after Vault came back = %v, want the stored card", card.Number)
			}
			card.Wipe()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Detokenize still fails %v after Vault came back: %v", bound, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := v.Tokenize(ctx, testCards[1].input()); err != nil {
		t.Errorf("Tokenize after Vault came back = %v", err)
	}
}

// faultProxy is a TCP proxy on a fixed loopback port that forwards to a
// target (up), holds connections without forwarding (hang), or does not
// listen at all (down).
type faultProxy struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener // nil while down
	hold  bool
	conns map[net.Conn]bool
}

func startFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	p := &faultProxy{t: t, target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *faultProxy) serve(ln net.Listener) {
	p.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns[c] = true
			hold := p.hold
			p.mu.Unlock()
			if hold {
				continue // accepted, never answered; down closes it
			}
			go p.pipe(c)
		}
	}()
}

func (p *faultProxy) pipe(c net.Conn) {
	u, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[u] = true
	p.mu.Unlock()
	go func() { io.Copy(u, c); u.Close() }()
	io.Copy(c, u)
	c.Close()
}

// down closes the listener and every connection: dials are refused.
func (p *faultProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// hang listens again but holds every new connection unanswered.
func (p *faultProxy) hang() { p.relisten(true) }

// up listens again and forwards.
func (p *faultProxy) up() { p.relisten(false) }

func (p *faultProxy) relisten(hold bool) {
	p.t.Helper()
	p.down()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = hold
	// The same port, as a restarted server would have. A port just closed
	// can be briefly busy; retry within a bound.
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("fault proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// Package redistest starts a throwaway redis-server for tests.
//
// Each Server is a real redis-server process from PATH, listening on a free
// loopback port, with its own temporary directory, stopped when the test
// ends. It is not a fake: tests that pass against it pass against Redis.
// A missing redis-server fails the test with instructions; it never skips,
// so a green run always means the Redis paths ran.
//
// It must never be imported by non-test code.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startTimeout bounds how long Start waits for the server to answer PING.
const startTimeout = 10 * time.Second

// Options change how the server runs. The zero value is a server without
// persistence.
type Options struct {
	// Persist turns RDB snapshots on (appendonly stays off), so that data
	// survives Restart. Without it, Restart comes back empty (unless RDB
	// was called, which saves).
	Persist bool
	// Args are extra redis-server arguments, for example
	// []string{"--maxmemory", "1mb"}.
	Args []string
	// TLS, when set, adds a TLS port (TLSAddr) next to the plain one,
	// which stays for the package's own readiness checks.
	TLS *TLS
}

// TLS names PEM files for a server's TLS port.
type TLS struct {
	CertFile, KeyFile string
	// CAFile verifies client certificates; with it set, clients must
	// present one (tls-auth-clients yes).
	CAFile string
}

// Server is a running redis-server: a plain server, a Cluster node or a
// Sentinel.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	opts Options
	// busPort is the Cluster bus port of a Cluster node, 0 otherwise.
	busPort int
	// tlsPort is the TLS port when Options.TLS is set, 0 otherwise.
	tlsPort int
	// sentinelConf is a Sentinel's own (rewritable) configuration file,
	// "" for a data server.
	sentinelConf string

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil when stopped
	exited chan struct{} // closed when cmd has exited
	out    *syncBuffer   // stdout and stderr of the current process
}

// syncBuffer is a bytes.Buffer that the process's output copier and Logs
// may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Start starts a redis-server without persistence and stops it in
// t.Cleanup.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith starts a redis-server with o and stops it in t.Cleanup.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	s := newServer(t, o)
	s.launch(false)
	return s
}

func newServer(t testing.TB, o Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found in PATH: the Redis tests need a real server. " +
			"Install it (Debian/Ubuntu: sudo apt-get install -y redis-server; macOS: brew install redis) " +
			"or run the README's test command, which installs it")
	}
	return &Server{t: t, bin: bin, dir: t.TempDir(), opts: o}
}

// launch picks free ports (and a bus port for a Cluster node) and starts
// the server, and stops it in t.Cleanup.
func (s *Server) launch(clusterNode bool) {
	s.t.Helper()
	// A port found free can be taken before redis-server binds it; try a
	// few.
	var err, lastErr error
	for range 5 {
		if s.port, err = freePort(); err != nil {
			s.t.Fatalf("redistest: find a free port: %v", err)
		}
		if clusterNode {
			// Not port+10000, the default, which can lie past 65535.
			if s.busPort, err = freePort(); err != nil {
				s.t.Fatalf("redistest: find a free port: %v", err)
			}
		}
		if s.opts.TLS != nil {
			if s.tlsPort, err = freePort(); err != nil {
				s.t.Fatalf("redistest: find a free port: %v", err)
			}
		}
		if lastErr = s.start(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		s.t.Fatalf("redistest: %v", lastErr)
	}
	s.t.Cleanup(s.Stop)
}

// Port returns the server's port.
func (s *Server) Port() int { return s.port }

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// TLSAddr returns host:port of the TLS port, "" without Options.TLS.
func (s *Server) TLSAddr() string {
	if s.tlsPort == 0 {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.tlsPort))
}

// Dir returns the server's working directory (where dump.rdb goes).
func (s *Server) Dir() string { return s.dir }

// Client returns a new client for the server, closed in t.Cleanup. It
// reconnects on its own after Restart.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DB: 0})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Stop stops the server and waits for it to exit. Stopping a stopped
// server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	// SIGKILL, not SHUTDOWN: a fault drill wants the server gone now, and
	// with persistence on, what survives is what was saved, as after a
	// crash.
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart stops the server and starts it again on the same port and
// directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

func (s *Server) args() []string {
	common := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "",
	}
	if s.sentinelConf != "" {
		// A Sentinel takes its own file first; it rewrites it with what it
		// learns, so a restarted Sentinel remembers the topology.
		return append(append([]string{s.sentinelConf, "--sentinel"}, common...), s.opts.Args...)
	}
	args := append(common,
		"--appendonly", "no",
		// Uncompressed, so an RDB read by RDB shows values as stored.
		"--rdbcompression", "no",
	)
	if !s.opts.Persist {
		args = append(args, "--save", "")
	}
	if tc := s.opts.TLS; tc != nil {
		args = append(args, "--tls-port", strconv.Itoa(s.tlsPort), "--tls-cert-file", tc.CertFile, "--tls-key-file", tc.KeyFile)
		if tc.CAFile != "" {
			args = append(args, "--tls-ca-cert-file", tc.CAFile, "--tls-auth-clients", "yes")
		} else {
			args = append(args, "--tls-auth-clients", "no")
		}
	}
	if s.busPort != 0 {
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-port", strconv.Itoa(s.busPort),
			// In the server's own directory, so a restarted node keeps its
			// identity and slots.
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(int(clusterNodeTimeout/time.Millisecond)),
		)
	}
	return append(args, s.opts.Args...)
}

func (s *Server) start() error {
	args := s.args()
	out := new(syncBuffer)
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()

	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, out.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on port %d did not answer PING within %v: %v; output: %s", s.port, startTimeout, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	s.cmd, s.exited, s.out = cmd, exited, out
	s.mu.Unlock()
	return nil
}

// Dump returns every key and value in every type, read with SCAN and the
// type's read commands, as "key\nvalue\n…" lines, sorted by key. It is for
// asserting what the server holds (for example that no card number is in
// clear); the format is for grepping, not parsing.
func (s *Server) Dump() []byte {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()

	var keys []string
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		s.t.Fatalf("redistest: dump: scan: %v", err)
	}
	slices.Sort(keys)
	var b bytes.Buffer
	for _, k := range keys {
		vals, err := readKey(ctx, c, k)
		if errors.Is(err, redis.Nil) {
			continue // expired between SCAN and the read
		}
		if err != nil {
			s.t.Fatalf("redistest: dump: read %q: %v", k, err)
		}
		b.WriteString(k)
		b.WriteByte('\n')
		for _, v := range vals {
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func readKey(ctx context.Context, c *redis.Client, k string) ([]string, error) {
	typ, err := c.Type(ctx, k).Result()
	if err != nil {
		return nil, err
	}
	switch typ {
	case "none":
		return nil, redis.Nil
	case "string":
		v, err := c.Get(ctx, k).Result()
		return []string{v}, err
	case "hash":
		m, err := c.HGetAll(ctx, k).Result()
		var out []string
		for f, v := range m {
			out = append(out, f, v)
		}
		slices.Sort(out)
		return out, err
	case "list":
		return c.LRange(ctx, k, 0, -1).Result()
	case "set":
		return c.SMembers(ctx, k).Result()
	case "zset":
		return c.ZRange(ctx, k, 0, -1).Result()
	case "stream":
		msgs, err := c.XRange(ctx, k, "-", "+").Result()
		var out []string
		for _, m := range msgs {
			out = append(out, m.ID, fmt.Sprint(m.Values))
		}
		return out, err
	default:
		return nil, fmt.Errorf("type %s not supported", typ)
	}
}

// RDB makes the server SAVE and returns the RDB file's bytes: the on-disk
// form, as a backup would hold it. The server writes it uncompressed.
func (s *Server) RDB() []byte {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	if err := c.Save(ctx).Err(); err != nil {
		s.t.Fatalf("redistest: SAVE: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, "dump.rdb"))
	if err != nil {
		s.t.Fatalf("redistest: read RDB: %v", err)
	}
	return b
}

// Logs returns what the current server process has written.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Bounds for the topologies. Generous: a loaded CI machine under -race
// is slow, and a wait that ends early only turns a pass into a fail.
const (
	// clusterNodeTimeout is cluster-node-timeout: how long a node may be
	// unreachable before the others mark it failing.
	clusterNodeTimeout = 2 * time.Second
	// topologyTimeout bounds forming a cluster, a replica's first sync,
	// and Sentinels discovering each other.
	topologyTimeout = 30 * time.Second
	// failoverTimeout bounds a Sentinel failover, from killing the master
	// to the promoted replica answering as master.
	failoverTimeout = 30 * time.Second
	// sentinelDownAfter is down-after-milliseconds: how long the master
	// must be silent before a Sentinel calls it down. Short, so a drill's
	// failover takes seconds.
	sentinelDownAfter = time.Second
)

// clusterSlots is the number of hash slots in a Redis Cluster.
const clusterSlots = 16384

// Cluster is a running three-master Redis Cluster without replicas, each
// node a Server in its own directory on free loopback ports.
type Cluster struct {
	t     testing.TB
	Nodes []*Server
}

// StartCluster starts three cluster nodes, splits the 16384 slots among
// them, joins them with CLUSTER MEET, waits until every node reports
// cluster_state:ok, and stops them in t.Cleanup.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	for range 3 {
		s := newServer(t, Options{})
		s.launch(true)
		c.Nodes = append(c.Nodes, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), topologyTimeout)
	defer cancel()
	per := clusterSlots / len(c.Nodes)
	for i, n := range c.Nodes {
		lo, hi := i*per, (i+1)*per-1
		if i == len(c.Nodes)-1 {
			hi = clusterSlots - 1
		}
		if err := n.do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi); err != nil {
			t.Fatalf("redistest: cluster: node %s: CLUSTER ADDSLOTSRANGE %d %d: %v", n.Addr(), lo, hi, err)
		}
	}
	for _, n := range c.Nodes[1:] {
		if err := c.Nodes[0].do(ctx, "CLUSTER", "MEET", "127.0.0.1", n.port, n.busPort); err != nil {
			t.Fatalf("redistest: cluster: CLUSTER MEET %s: %v", n.Addr(), err)
		}
	}
	c.waitOK(ctx)
	return c
}

// waitOK waits until every node sees all nodes and all slots served.
func (c *Cluster) waitOK(ctx context.Context) {
	c.t.Helper()
	want := fmt.Sprintf("cluster_known_nodes:%d", len(c.Nodes))
	var last string
	for _, n := range c.Nodes {
		err := poll(ctx, func() bool {
			info, err := n.info(ctx, "CLUSTER", "INFO")
			last = info
			return err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, want)
		})
		if err != nil {
			c.t.Fatalf("redistest: cluster: node %s not ok within %v: %s\nlog:\n%s", n.Addr(), topologyTimeout, last, n.Logs())
		}
	}
}

// Addrs returns every node's host:port.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr())
	}
	return out
}

// Client returns a new cluster client, closed in t.Cleanup.
func (c *Cluster) Client() *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	c.t.Cleanup(func() { cc.Close() })
	return cc
}

// Dump concatenates every node's Dump.
func (c *Cluster) Dump() []byte {
	c.t.Helper()
	var b bytes.Buffer
	for _, n := range c.Nodes {
		b.Write(n.Dump())
	}
	return b.Bytes()
}

// SentinelOptions change how StartSentinel runs.
type SentinelOptions struct {
	// Sentinels is 1 (the default) or 3. With three, the quorum is two.
	Sentinels int
	// Data are Options for the master and the replica.
	Data Options
}

// MasterName is the name the Sentinels monitor the master under.
const MasterName = "cardgate-test"

// Sentinel is a master with one replica, watched by one or three
// Sentinels, every process on free loopback ports.
type Sentinel struct {
	t testing.TB
	// Data holds the master and the replica, in start order; which one is
	// master changes with Failover.
	Data      []*Server
	Sentinels []*Server
}

// StartSentinel starts a master, a replica of it and the Sentinels, waits
// until the replica is in sync and every Sentinel knows the replica and
// its peers, and stops everything in t.Cleanup.
func StartSentinel(t testing.TB, o SentinelOptions) *Sentinel {
	t.Helper()
	if o.Sentinels == 0 {
		o.Sentinels = 1
	}
	if o.Sentinels != 1 && o.Sentinels != 3 {
		t.Fatalf("redistest: %d sentinels: use 1 or 3", o.Sentinels)
	}
	s := &Sentinel{t: t}
	master := StartWith(t, o.Data)
	replOpts := o.Data
	replOpts.Args = append(slices.Clone(o.Data.Args), "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	replica := StartWith(t, replOpts)
	s.Data = []*Server{master, replica}

	ctx, cancel := context.WithTimeout(context.Background(), topologyTimeout)
	defer cancel()
	if err := poll(ctx, func() bool {
		info, err := replica.info(ctx, "INFO", "replication")
		return err == nil && strings.Contains(info, "master_link_status:up")
	}); err != nil {
		t.Fatalf("redistest: sentinel: replica %s did not sync with %s within %v\nlog:\n%s", replica.Addr(), master.Addr(), topologyTimeout, replica.Logs())
	}

	quorum := o.Sentinels/2 + 1
	for range o.Sentinels {
		sn := newServer(t, Options{})
		sn.sentinelConf = filepath.Join(sn.dir, "sentinel.conf")
		if err := os.WriteFile(sn.sentinelConf, nil, 0o600); err != nil {
			t.Fatalf("redistest: sentinel: %v", err)
		}
		sn.launch(false)
		for _, cmd := range [][]any{
			{"SENTINEL", "MONITOR", MasterName, "127.0.0.1", master.port, quorum},
			{"SENTINEL", "SET", MasterName, "down-after-milliseconds", sentinelDownAfter.Milliseconds()},
			// Bounds how long a failover may stall before another try.
			{"SENTINEL", "SET", MasterName, "failover-timeout", (failoverTimeout / 3).Milliseconds()},
		} {
			if err := sn.do(ctx, cmd...); err != nil {
				t.Fatalf("redistest: sentinel %s: %v: %v", sn.Addr(), cmd, err)
			}
		}
		s.Sentinels = append(s.Sentinels, sn)
	}
	// A failover needs a Sentinel that knows the replica and, with three,
	// peers to vote; both are learned over the master within seconds.
	for _, sn := range s.Sentinels {
		err := poll(ctx, func() bool {
			return sn.count(ctx, "REPLICAS") == 1 && sn.count(ctx, "SENTINELS") == o.Sentinels-1
		})
		if err != nil {
			t.Fatalf("redistest: sentinel %s did not discover the replica and its %d peers within %v\nlog:\n%s",
				sn.Addr(), o.Sentinels-1, topologyTimeout, sn.Logs())
		}
	}
	return s
}

// count returns how many REPLICAS or SENTINELS a Sentinel knows for
// MasterName, or -1 on error.
func (s *Server) count(ctx context.Context, what string) int {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	v, err := c.Do(ctx, "SENTINEL", what, MasterName).Slice()
	if err != nil {
		return -1
	}
	return len(v)
}

// Addrs returns the Sentinels' host:port.
func (s *Sentinel) Addrs() []string {
	var out []string
	for _, sn := range s.Sentinels {
		out = append(out, sn.Addr())
	}
	return out
}

// Client returns a new failover client, closed in t.Cleanup.
func (s *Sentinel) Client() *redis.Client {
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: MasterName, SentinelAddrs: s.Addrs()})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// MasterAddr returns the master's address as the first Sentinel that
// answers reports it.
func (s *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	var errs []error
	for _, sn := range s.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), MaxRetries: -1})
		addr, err := c.GetMasterAddrByName(ctx, MasterName).Result()
		c.Close()
		if err == nil && len(addr) == 2 {
			return addr[0] + ":" + addr[1], nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("redistest: no sentinel names the master: %w", errors.Join(errs...))
}

// Master returns the data server the Sentinels name as master.
func (s *Sentinel) Master() *Server {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, err := s.MasterAddr(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, d := range s.Data {
		if d.Addr() == addr {
			return d
		}
	}
	s.t.Fatalf("redistest: sentinels name %s as master, which is none of the data servers", addr)
	return nil
}

// Failover kills the master (SIGKILL, as a crash) and waits until the
// Sentinels have promoted the replica and it answers as master. It returns
// the new master. The old master stays down; Restart it to have the
// Sentinels turn it into a replica.
func (s *Sentinel) Failover() *Server {
	s.t.Helper()
	old := s.Master()
	old.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), failoverTimeout)
	defer cancel()
	var promoted *Server
	err := poll(ctx, func() bool {
		addr, err := s.MasterAddr(ctx)
		if err != nil || addr == old.Addr() {
			return false
		}
		for _, d := range s.Data {
			if d.Addr() == addr {
				info, err := d.info(ctx, "INFO", "replication")
				if err == nil && strings.Contains(info, "role:master") {
					promoted = d
					return true
				}
			}
		}
		return false
	})
	if err != nil {
		var logs strings.Builder
		for _, sn := range s.Sentinels {
			fmt.Fprintf(&logs, "sentinel %s:\n%s\n", sn.Addr(), sn.Logs())
		}
		s.t.Fatalf("redistest: sentinel: no replica promoted within %v after killing %s\n%s", failoverTimeout, old.Addr(), logs.String())
	}
	return promoted
}

// do runs one command on the server with a fresh connection.
func (s *Server) do(ctx context.Context, args ...any) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	return c.Do(ctx, args...).Err()
}

// info runs a command that answers with text, such as INFO or CLUSTER
// INFO.
func (s *Server) info(ctx context.Context, args ...any) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	return c.Do(ctx, args...).Text()
}

// poll calls ok every 50ms until it is true or ctx is done.
func poll(ctx context.Context, ok func() bool) error {
	for {
		if ok() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

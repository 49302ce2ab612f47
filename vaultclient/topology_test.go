package vaultclient

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cardgate/cardgate/internal/redistest"
)

// The store suite against the two Redis topologies other than a single
// node: a three-master Cluster, where the put script and MGET only work
// because a card's keys share a hash tag, and a Sentinel-watched master
// that fails over.

func TestRedisStoreCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	c := cl.Client()
	n := 0
	testStore(t, func(t *testing.T) Store {
		n++
		return NewRedisStore(c, "cluster"+strconv.Itoa(n)+":")
	})

	// Enough cards that every node holds some: the hash tag spreads
	// tokens over the cluster while keeping each card's keys together.
	ctx := context.Background()
	k, _ := newTestKeyring(t)
	v := newTestVault(t, NewRedisStore(c, "cardgate:"), k, Options{})
	for i := range 30 {
		tc := testCards[i%len(testCards)]
		info, err := v.Tokenize(ctx, tc.input())
		if err != nil {
			t.Fatalf("Tokenize(%s) on the cluster: %v", tc.name, err)
		}
		card, err := v.Detokenize(ctx, info.Token)
		if err != nil {
			t.Fatalf("Detokenize(%s) on the cluster: %v", info.Token, err)
		}
		if card.Number.Reveal() != tc.digits || !card.CVC.IsZero() {
			t.Errorf("Detokenize(%s) = %v with cvc %v, want the %s card without its CVC", info.Token, card.Number, !card.CVC.IsZero(), tc.name)
		}
		card.Wipe()
		card, err = v.DetokenizeConsumingCVC(ctx, info.Token)
		if err != nil {
			t.Fatalf("DetokenizeConsumingCVC(%s) on the cluster: %v", info.Token, err)
		}
		if card.Number.Reveal() != tc.digits || card.CVC.IsZero() {
			t.Errorf("DetokenizeConsumingCVC(%s) = %v with cvc %v, want the %s card with its CVC", info.Token, card.Number, !card.CVC.IsZero(), tc.name)
		}
		card.Wipe()
	}
	for _, node := range cl.Nodes {
		if size := node.Client().DBSize(ctx).Val(); size == 0 {
			t.Errorf("node %s holds no key after 30 cards; want them spread over the cluster", node.Addr())
		}
	}
	dump := cl.Dump()
	for _, tc := range testCards {
		if bytes.Contains(dump, []byte(tc.digits)) {
			t.Errorf("the cluster holds the %s number in clear", tc.name)
		}
	}
}

func TestRedisStoreSentinelFailover(t *testing.T) {
	s := redistest.StartSentinel(t, redistest.SentinelOptions{})
	c := s.Client()
	n := 0
	testStore(t, func(t *testing.T) Store {
		n++
		return NewRedisStore(c, "sentinel"+strconv.Itoa(n)+":")
	})

	ctx := context.Background()
	k, _ := newTestKeyring(t)
	v := newTestVault(t, NewRedisStore(c, "cardgate:"), k, Options{})
	before, err := v.Tokenize(ctx, testCards[0].input())
	if err != nil {
		t.Fatalf("Tokenize before failover: %v", err)
	}
	// Replication is asynchronous: a write the replica has not received
	// is lost in a failover. WAIT makes this one reach it, as a deployment
	// that cannot lose cards would (min-replicas-to-write, or WAIT).
	if got, err := c.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || got != 1 {
		t.Fatalf("WAIT 1 = %d, %v; want the replica to acknowledge", got, err)
	}
	s.Failover()

	// The client finds the promoted replica through the Sentinel.
	var after *TokenInfo
	waitRedis(t, c, 30*time.Second)
	if after, err = v.Tokenize(ctx, testCards[1].input()); err != nil {
		t.Fatalf("Tokenize after failover: %v", err)
	}
	for _, tc := range []struct {
		info *TokenInfo
		want string
	}{{before, testCards[0].digits}, {after, testCards[1].digits}} {
		card, err := v.Detokenize(ctx, tc.info.Token)
		if err != nil {
			t.Fatalf("Detokenize(%s) after failover: %v", tc.info.Token, err)
		}
		if card.Number.Reveal() != tc.want {
			t.Errorf("Detokenize(%s) after failover = %v, want the card stored", tc.info.Token, card.Number)
		}
		card.Wipe()
	}
}

// waitRedis waits until c answers PING, or fails the test after limit.
func waitRedis(t *testing.T, c redis.UniversalClient, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis did not answer within %v: %v", limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

package integration

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cardgate/cardgate/vaultclient"
)

// TestCardsMigrationKeepsRedisRetention: with cards.retention set on
// Redis, a card that cards import stores expires like one the gateway
// stores (its record key has a TTL), and cards export, which only reads
// the cards, neither removes that TTL nor marks the cards used.
func TestCardsMigrationKeepsRedisRetention(t *testing.T) {
	idB, _ := age.GenerateX25519Identity()
	e := newMigrationEnv(t, "redis", idB)
	b, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	e.write(filepath.Base(e.config), append(b, "cards:\n  retention: 720h\n"...))
	idA, _ := age.GenerateX25519Identity()
	plain, _ := senderFile(3)
	in := e.encrypt("sender.age", idA, plain)
	ident := e.writeIdentity("import.key", idA)
	if code, stdout, stderr := e.cardsCLI("import", "-config", e.config, "-identity", ident, "-in", in, "-mapping", filepath.Join(e.dir, "mapping.jsonl")); code != 0 {
		t.Fatalf("import exited %d:\n%s\n%s", code, stdout, stderr)
	}
	ctx := context.Background()
	rdb := e.redis.Client()
	cardKeys, err := rdb.Keys(ctx, "a:{tok_*}:card").Result()
	if err != nil || len(cardKeys) != 3 {
		t.Fatalf("Keys = %d keys, %v; want 3", len(cardKeys), err)
	}
	check := func(when string) {
		t.Helper()
		for _, k := range cardKeys {
			if ttl, err := rdb.PTTL(ctx, k).Result(); err != nil || ttl <= 0 {
				t.Errorf("%s: PTTL(%s) = %v, %v; want the retention", when, k, ttl, err)
			}
		}
	}
	check("after import")
	used := func() int {
		n := 0
		for _, k := range cardKeys {
			n += int(rdb.Exists(ctx, strings.TrimSuffix(k, ":card")+":used").Val())
		}
		return n
	}
	before := used()
	out := filepath.Join(e.dir, "export.age")
	if code, stdout, stderr := e.cardsCLI("export", "-config", e.config, "-to", "newvault", "-out", out); code != 0 {
		t.Fatalf("export exited %d:\n%s\n%s", code, stdout, stderr)
	}
	check("after export")
	if after := used(); after != before {
		t.Errorf("export wrote last-use markers: %d before, %d after; an export is not a use", before, after)
	}
}

// TestCardsExportHonoursKillSwitch: the operators' emergency stop, for
// every destination or for the export's id, stops an export too: nothing
// is written, and the refusal is audited.
func TestCardsExportHonoursKillSwitch(t *testing.T) {
	for _, id := range []string{"--all", "newvault"} {
		t.Run(strings.TrimPrefix(id, "--"), func(t *testing.T) {
			idB, _ := age.GenerateX25519Identity()
			e := newMigrationEnv(t, "redis", idB)
			idA, _ := age.GenerateX25519Identity()
			plain, _ := senderFile(2)
			in := e.encrypt("sender.age", idA, plain)
			ident := e.writeIdentity("import.key", idA)
			if code, stdout, stderr := e.cardsCLI("import", "-config", e.config, "-identity", ident, "-in", in, "-mapping", filepath.Join(e.dir, "mapping.jsonl")); code != 0 {
				t.Fatalf("import exited %d:\n%s\n%s", code, stdout, stderr)
			}
			if code, out := runCLI(t, e.dir, "destinations", "-config", e.config, "disable", id, "--reason", "incident"); code != 0 {
				t.Fatalf("destinations disable exited %d:\n%s", code, out)
			}
			out := filepath.Join(e.dir, "export.age")
			code, stdout, stderr := e.cardsCLI("export", "-config", e.config, "-to", "newvault", "-out", out)
			if code == 0 || !strings.Contains(stderr, "destination_disabled") {
				t.Errorf("export with the kill switch on exited %d:\n%s\n%s; want a destination_disabled refusal", code, stdout, stderr)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("export with the kill switch on left %s (%v)", out, err)
			}
			audit, _ := os.ReadFile(filepath.Join(e.dir, "audit.log"))
			if bytes.Contains(audit, []byte(`"kind":"exported"`)) || !bytes.Contains(audit, []byte(`"reason":"destination_disabled"`)) {
				t.Errorf("audit log: want no exported record and a destination_disabled denial")
			}
		})
	}
}

// TestCardsExportBoltLeavesOutRetainedTooLong: on bolt, whose retention
// is a sweep that the stopped gateway no longer runs, an export does not
// write a card unused for longer than cards.retention.
func TestCardsExportBoltLeavesOutRetainedTooLong(t *testing.T) {
	idB, _ := age.GenerateX25519Identity()
	e := newMigrationEnv(t, "bolt", idB)
	b, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	e.write(filepath.Base(e.config), append(b, "cards:\n  retention: 720h\n"...))
	idA, _ := age.GenerateX25519Identity()
	plain, _ := senderFile(3)
	in := e.encrypt("sender.age", idA, plain)
	ident := e.writeIdentity("import.key", idA)
	mapping := filepath.Join(e.dir, "mapping.jsonl")
	if code, stdout, stderr := e.cardsCLI("import", "-config", e.config, "-identity", ident, "-in", in, "-mapping", mapping); code != 0 {
		t.Fatalf("import exited %d:\n%s\n%s", code, stdout, stderr)
	}
	// The first card was last used 60 days ago.
	first := readLines[mappingLine](t, mustRead(t, mapping))[0].Token
	s, err := vaultclient.OpenBoltStore(filepath.Join(e.dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Touch(context.Background(), first, time.Now().Add(-60*24*time.Hour))
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(e.dir, "export.age")
	if code, stdout, stderr := e.cardsCLI("export", "-config", e.config, "-to", "newvault", "-out", out); code != 0 {
		t.Fatalf("export exited %d:\n%s\n%s", code, stdout, stderr)
	}
	exported := readLines[migrationLine](t, e.decrypt(out, idB))
	for _, c := range exported {
		if c.ID == first {
			t.Errorf("export holds card %s, unused for longer than the retention", first)
		}
	}
	if len(exported) != 2 {
		t.Errorf("export holds %d cards, want 2", len(exported))
	}
}

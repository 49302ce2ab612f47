package integration

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/client"
	"github.com/cardgate/cardgate/internal/redistest"
)

// TestInitRedisSection follows the Redis comment of the configuration
// `cardgate init` writes on the built binary with a real redis-server:
// backend redis, the commented lines uncommented (with this Redis's
// address), the killswitch section and allowlist.state_file removed. The
// gateway starts, and, as the comment promises, takes Idempotency-Keys:
// the client's forward is answered and its key replays it.
func TestInitRedisSection(t *testing.T) {
	rdb := redistest.Start(t)
	dir := filepath.Join(t.TempDir(), "gw")
	procLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer procLn.Close()
	procURL := "https://" + procLn.Addr().String() + "/v1/charges"
	if out, err := exec.Command(binary, "init", "-processor", procURL, dir).CombinedOutput(); err != nil {
		t.Fatalf("cardgate init: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(dir, "cardgate.yaml")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(raw), "  backend: bolt\n", "  backend: redis\n", 1)
	cfg = strings.NewReplacer("  # redis:\n", "  redis:\n",
		"  #   addrs: [127.0.0.1:6379]", "    addrs: ["+rdb.Addr()+"]",
		"  #   password:", "    password:").Replace(cfg)
	cfg = regexp.MustCompile(`(?m)^killswitch:\n  file: .*\n`).ReplaceAllLiteralString(cfg, "")
	cfg = regexp.MustCompile(`(?m)^  state_file: .*\n`).ReplaceAllLiteralString(cfg, "")
	if cfg == string(raw) || strings.Contains(cfg, "  backend: bolt\n") || !strings.Contains(cfg, "addrs: ["+rdb.Addr()+"]") {
		t.Fatalf("the Redis comment's steps did not apply; has init's configuration changed?\n%s", cfg)
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	proc := serveProcessor(t, procLn, dir)
	t.Setenv("CARDGATE_LISTEN_ADDR", "127.0.0.1:0")
	gw, err := startProcess(t, binary, "serve", "-config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := gw.waitForLog("cardgate listening", "addr", 15*time.Second)
	if err != nil {
		t.Fatalf("the gateway did not start on init's configuration switched to Redis: %v\n%s", err, gw.log())
	}
	if strings.Contains(gw.log(), "allowlist.state") {
		t.Errorf("the gateway still keeps the allowlist mark in a file:\n%s", gw.log())
	}

	c, err := client.New("https://"+addr, client.WithPEMFiles(filepath.Join(dir, "caller.crt"), filepath.Join(dir, "caller.key"), filepath.Join(dir, "ca.pem")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := c.Tokenize(ctx, client.Card{Number: visa, ExpMonth: 12, ExpYear: time.Now().Year() + 2})
	if err != nil {
		t.Fatalf("Tokenize: %v", err)
	}
	req := &client.ForwardRequest{Destination: "example-local-processor", URL: procURL, Method: http.MethodPost, Card: tok.Token,
		Headers: http.Header{"Content-Type": {"application/json"}}, Body: `{"number":"{{card.number}}"}`}
	first, err := c.Forward(ctx, req)
	if err != nil || first.Outcome != client.Answered || first.IdempotencyKey == "" {
		t.Fatalf("Forward with an Idempotency-Key = %+v, %v; want answered", first, err)
	}
	again := *req
	again.IdempotencyKey = first.IdempotencyKey
	replay, err := c.Forward(ctx, &again)
	if err != nil || !replay.Replayed || replay.ForwardID != first.ForwardID {
		t.Fatalf("Forward with the same key = %+v, %v; want the replay of %s", replay, err, first.ForwardID)
	}
	if n := proc.count(); n != 1 {
		t.Errorf("the processor received %d forwards, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "cards.db")); !os.IsNotExist(err) {
		t.Errorf("cards.db: %v; want no bolt store beside Redis", err)
	}
}

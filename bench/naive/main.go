// Command naive is the benchmark's peer: the card forwarder a competent team
// would write in a day instead of running cardgate. It does the same durable
// work per forward, the plain way:
//
//   - net/http serves POST /forward with {"token","url","body"}, where body is
//     a template holding {{card.number}}, {{card.exp_month}}, {{card.exp_year}};
//   - go-redis GETs the token's JSON record, whose AES-256-GCM ciphertext is
//     opened with the token as additional data;
//   - the URL's host must be on a static in-memory allowlist;
//   - an intent line is appended to the audit file and fsynced before the
//     request is sent, and a result line appended and fsynced before the
//     answer: one fsync per record, no group commit (-fsync=false skips both);
//   - one shared, pooled http.Client verifies the upstream's TLS certificate;
//   - a regexp plus a Luhn check masks card numbers in the answer, which goes
//     back as {"status","body"}.
//
// It is deliberately not slow: the client pools connections, the audit file
// is opened once with O_APPEND and written without a lock (each line is one
// write(2)), and concurrent forwards fsync concurrently. It is a benchmark
// tool, never a deployment.
//
//	naive seed -redis ADDR -db N -key FILE -token TOKEN   store the test card
//	naive -addr ADDR -redis ADDR -db N -key FILE -ca FILE -allow HOST:PORT -audit FILE [-fsync=false]
package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "seed" {
		if err := seed(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
		return
	}
	fs := flag.NewFlagSet("naive", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	redisAddr := fs.String("redis", "127.0.0.1:6379", "Redis address")
	db := fs.Int("db", 0, "Redis database")
	keyFile := fs.String("key", "", "file holding the AES-256 key, hex")
	caFile := fs.String("ca", "", "CA that signed the upstream's certificate")
	allow := fs.String("allow", "", "comma-separated host:port list that may receive cards")
	auditFile := fs.String("audit", "naive-audit.jsonl", "audit file")
	doSync := fs.Bool("fsync", true, "fsync each audit line before going on")
	fs.Parse(os.Args[1:])

	aead, err := loadAEAD(*keyFile)
	if err != nil {
		log.Fatal(err)
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		log.Fatal("naive: no certificate in -ca")
	}
	f, err := os.OpenFile(*auditFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	s := newServer(redis.NewClient(&redis.Options{Addr: *redisAddr, DB: *db}), aead, roots, strings.Split(*allow, ","), f, *doSync)
	srv := &http.Server{Addr: *addr, Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func newServer(rdb *redis.Client, aead cipher.AEAD, roots *x509.CertPool, allow []string, audit *os.File, sync bool) *server {
	s := &server{
		rdb:   rdb,
		aead:  aead,
		allow: map[string]bool{},
		audit: audit,
		sync:  sync,
		client: &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
				MaxIdleConns:        512,
				MaxIdleConnsPerHost: 512,
				IdleConnTimeout:     90 * time.Second,
				ForceAttemptHTTP2:   true,
			},
			// A redirect's target was never checked against the allowlist.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	for _, h := range allow {
		if h != "" {
			s.allow[h] = true
		}
	}
	return s
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /forward", s.forward)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	return mux
}

type server struct {
	rdb    *redis.Client
	aead   cipher.AEAD
	allow  map[string]bool
	audit  *os.File
	sync   bool
	client *http.Client
}

type forwardRequest struct {
	Token string `json:"token"`
	URL   string `json:"url"`
	Body  string `json:"body"`
}

// record is what Redis holds under "card:"+token.
type record struct {
	Nonce []byte `json:"nonce"`
	CT    []byte `json:"ct"`
}

type card struct {
	Number   string `json:"number"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
}

func (s *server) forward(w http.ResponseWriter, r *http.Request) {
	var req forwardRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	u, err := url.Parse(req.URL)
	if err != nil || u.Scheme != "https" || !s.allow[u.Host] {
		http.Error(w, "destination not allowed", http.StatusForbidden)
		return
	}
	ctx := r.Context()
	c, err := s.card(ctx, req.Token)
	if err != nil {
		http.Error(w, "card not found", http.StatusNotFound)
		return
	}
	body := strings.NewReplacer(
		"{{card.number}}", c.Number,
		"{{card.exp_month}}", strconv.Itoa(c.ExpMonth),
		"{{card.exp_year}}", strconv.Itoa(c.ExpYear),
	).Replace(req.Body)

	id := newID()
	if err := s.log(map[string]any{"type": "intent", "id": id, "token": req.Token, "host": u.Host, "at": time.Now().UTC()}); err != nil {
		http.Error(w, "audit unavailable", http.StatusServiceUnavailable)
		return
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, strings.NewReader(body))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	out.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(out)
	status := 0
	var answer []byte
	if err == nil {
		status = resp.StatusCode
		answer, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}
	if lerr := s.log(map[string]any{"type": "result", "id": id, "status": status, "ok": err == nil, "at": time.Now().UTC()}); lerr != nil {
		http.Error(w, "audit unavailable", http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		http.Error(w, "upstream failed", http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}{status, mask(string(answer))})
}

// card reads and opens the token's record.
func (s *server) card(ctx context.Context, token string) (*card, error) {
	raw, err := s.rdb.Get(ctx, "card:"+token).Bytes()
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, err
	}
	pt, err := s.aead.Open(nil, rec.Nonce, rec.CT, []byte(token))
	if err != nil {
		return nil, err
	}
	var c card
	if err := json.Unmarshal(pt, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// log appends one line to the audit file and, with -fsync, fsyncs it.
func (s *server) log(v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := s.audit.Write(append(line, '\n')); err != nil {
		return err
	}
	if s.sync {
		return s.audit.Sync()
	}
	return nil
}

var panRE = regexp.MustCompile(`[0-9](?:[ -]?[0-9]){12,18}`)

// mask replaces every Luhn-valid 13–19 digit run (spaces and dashes allowed
// between digits) with asterisks and its last four digits.
func mask(s string) string {
	return panRE.ReplaceAllStringFunc(s, func(m string) string {
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, m)
		if !luhn(digits) {
			return m
		}
		return strings.Repeat("*", len(digits)-4) + digits[len(digits)-4:]
	})
}

func luhn(d string) bool {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if (len(d)-1-i)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func loadAEAD(path string) (cipher.AEAD, error) {
	h, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(h)))
	if err != nil || len(key) != 32 {
		return nil, errors.New("naive: -key must hold 32 bytes in hex")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seed stores a test card under a token, encrypted as card reads it.
func seed(args []string) error {
	fs := flag.NewFlagSet("naive seed", flag.ExitOnError)
	redisAddr := fs.String("redis", "127.0.0.1:6379", "Redis address")
	db := fs.Int("db", 0, "Redis database")
	keyFile := fs.String("key", "", "file holding the AES-256 key, hex")
	token := fs.String("token", "tok_bench", "token to store the card under")
	number := fs.String("number", "4242424242424242", "test card number")
	fs.Parse(args)
	aead, err := loadAEAD(*keyFile)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: *redisAddr, DB: *db})
	defer rdb.Close()
	return store(context.Background(), rdb, aead, *token, *number)
}

// store encrypts a card with the token as additional data and stores it.
func store(ctx context.Context, rdb *redis.Client, aead cipher.AEAD, token, number string) error {
	pt, err := json.Marshal(card{Number: number, ExpMonth: 12, ExpYear: 2030})
	if err != nil {
		return err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	raw, err := json.Marshal(record{Nonce: nonce, CT: aead.Seal(nil, nonce, pt, []byte(token))})
	if err != nil {
		return err
	}
	if err := rdb.Set(ctx, "card:"+token, raw, 0).Err(); err != nil {
		return fmt.Errorf("naive seed: %w", err)
	}
	return nil
}

// Command upstream is the benchmark's stand-in processor: an HTTPS server
// with a certificate from a throwaway CA, which answers every request with a
// small JSON body (or, with -resp-bytes, one padded to about that size) and
// counts TLS handshakes so the benchmark can show that connections are
// reused. It is a benchmark tool, never a deployment.
package main

import (
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/cardgate/cardgate/cardscan"
	"github.com/cardgate/cardgate/internal/testpki"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	caOut := flag.String("ca-out", "", "write the CA certificate (PEM) here")
	addrOut := flag.String("addr-out", "", "write the bound address here")
	respBytes := flag.Int("resp-bytes", 0, "pad the JSON answer to about this many bytes (0: the small answer)")
	flag.Parse()
	if *respBytes < 0 {
		log.Fatal("-resp-bytes must not be negative")
	}
	body := responseBody(*respBytes)

	ca, err := testpki.NewCA("cardgate bench CA")
	if err != nil {
		log.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.Leaf{DNSNames: []string{"upstream.bench"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		log.Fatal(err)
	}
	var handshakes, requests atomic.Int64
	cfg := &tls.Config{
		Certificates: []tls.Certificate{leaf.TLS},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
		VerifyConnection: func(tls.ConnectionState) error {
			handshakes.Add(1)
			return nil
		},
	}
	ln, err := tls.Listen("tcp", *addr, cfg)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "{\"handshakes\":%d,\"requests\":%d}\n", handshakes.Load(), requests.Load())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	if *caOut != "" {
		if err := os.WriteFile(*caOut, ca.PEM(), 0o600); err != nil {
			log.Fatal(err)
		}
	}
	if *addrOut != "" {
		if err := os.WriteFile(*addrOut, []byte(ln.Addr().String()), 0o600); err != nil {
			log.Fatal(err)
		}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// baseBody is the answer without padding.
const baseBody = `{"id":"ch_bench","status":"succeeded","amount":1000,"currency":"usd"}`

// responseBody returns baseBody, or with size > 0 baseBody with a "padding"
// field that brings the whole body to size bytes (or a little over, when
// size is below the smallest padded body). The padding looks like what a
// processor sends back and cardgate must scan for card numbers: JSON events
// with ids, timestamps, amounts, 16-digit references and free text, full of
// digit runs of which none is a card number (every long run fails Luhn).
// The generator is seeded, so every run sends the same bytes.
func responseBody(size int) []byte {
	if size <= 0 {
		return []byte(baseBody)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	b.WriteString(baseBody[:len(baseBody)-1])
	b.WriteString(`,"padding":{"events":[`)
	const tail = `],"note":""}}`
	for i := 0; ; i++ {
		ev := event(rng, i)
		for cardscan.Contains(ev) { // not by construction; never send one
			ev = event(rng, i)
		}
		sep := 0
		if i > 0 {
			sep = 1
		}
		if b.Len()+sep+len(ev)+len(tail) > size {
			break
		}
		if sep > 0 {
			b.WriteByte(',')
		}
		b.Write(ev)
	}
	// The rest goes to a note of plain text, so the size is exact.
	b.WriteString(`],"note":"`)
	const words = "settlement batch closed by the acquirer; funds follow on the next business day. "
	for j := 0; b.Len()+len(`"}}`) < size; j++ {
		b.WriteByte(words[j%len(words)])
	}
	b.WriteString(`"}}`)
	out := b.Bytes()
	if cardscan.Contains(out) {
		log.Fatal("upstream: padded body holds a card number")
	}
	return out
}

// event is one padding entry, numbered i.
func event(rng *rand.Rand, i int) []byte {
	ts := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.IntN(365*24*3600)) * time.Second)
	amount := rng.IntN(1_000_000)
	kinds := []string{"charge.succeeded", "charge.captured", "refund.created", "payout.paid", "dispute.closed"}
	return fmt.Appendf(nil, `{"id":"evt_%010d","type":%q,"created":%q,"created_unix":%d,`+
		`"order_id":"ord-%04d-%04d-%02d","amount":"%d.%02d","currency":"usd","reference":"%s",`+
		`"description":"Invoice %06d settled on %s, batch %04d, terminal %04d, auth code %06d, line %d of %d"}`,
		rng.Int64N(10_000_000_000), kinds[rng.IntN(len(kinds))], ts.Format(time.RFC3339), ts.Unix(),
		rng.IntN(10000), rng.IntN(10000), rng.IntN(100), amount/100, amount%100, notLuhn(rng, 16),
		rng.IntN(1_000_000), ts.Format("2006-01-02"), rng.IntN(10000), rng.IntN(10000), rng.IntN(1_000_000), i+1, i+5)
}

// notLuhn returns n random digits that fail the Luhn check: the last digit
// is any but the one that would make them pass.
func notLuhn(rng *rand.Rand, n int) string {
	d := make([]byte, n)
	for k := range d[:n-1] {
		d[k] = byte('0' + rng.IntN(10))
	}
	sum := 0
	for k := n - 2; k >= 0; k-- { // doubling from the digit left of the check digit
		v := int(d[k] - '0')
		if (n-2-k)%2 == 0 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	check := (10 - sum%10) % 10
	d[n-1] = byte('0' + (check+1+rng.IntN(9))%10)
	if cardscan.Luhn(d) {
		panic("notLuhn: Luhn-valid")
	}
	return string(d)
}

// Command upstream is the benchmark's stand-in processor: an HTTPS server
// with a certificate from a throwaway CA, which answers every request with a
// small JSON body and counts TLS handshakes so the benchmark can show that
// connections are reused. It is a benchmark tool, never a deployment.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/cardgate/cardgate/internal/testpki"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	caOut := flag.String("ca-out", "", "write the CA certificate (PEM) here")
	addrOut := flag.String("addr-out", "", "write the bound address here")
	flag.Parse()

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
	body := []byte(`{"id":"ch_bench","status":"succeeded","amount":1000,"currency":"usd"}`)
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

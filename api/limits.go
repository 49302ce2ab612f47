package api

import (
	"net/http"
	"strconv"
)

// ServerMaxHeaderBytes is the http.Server MaxHeaderBytes to pair with a
// handler whose Options.MaxHeaderBytes is limit: four times the limit, and
// at least 64 KiB. Between the two the handler answers the documented JSON
// 431; net/http's own limit only stops a flood larger than that, before a
// request exists, with its plain-text 431 and a closed connection.
func ServerMaxHeaderBytes(limit int) int {
	if limit <= 0 {
		limit = DefaultMaxHeaderBytes
	}
	return max(4*limit, 64<<10)
}

// limitHeaders refuses a request whose request line and headers exceed
// Options.MaxHeaderBytes, with the JSON error every other refusal has.
func (s *server) limitHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if headerBytes(r) > s.o.MaxHeaderBytes {
			// Nothing of the request is read further; close the
			// connection rather than drain a body after a flood.
			w.Header().Set("Connection", "close")
			writeError(w, r, &Error{Code: CodeHeadersTooLarge, Message: "the request line and headers are larger than " + strconv.Itoa(s.o.MaxHeaderBytes) + " bytes"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// headerBytes is the size of r's request line and header block as an
// HTTP/1.1 client sends them: "METHOD TARGET PROTO\r\n", "Host: …\r\n",
// "Name: value\r\n" per value, and the closing "\r\n". An HTTP/2 request
// is measured as if it had been sent that way.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2
	if r.Host != "" {
		n += len("Host: ") + len(r.Host) + 2
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n + 2
}

func (s *server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.o.MaxRequestBytes)
		next.ServeHTTP(w, r)
	})
}

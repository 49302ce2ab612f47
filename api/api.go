package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cardgate/cardgate/forwarder"
	"github.com/cardgate/cardgate/internal/randid"
	"github.com/cardgate/cardgate/vaultclient"
)

// Tokenizer turns a card into a token.
type Tokenizer interface {
	Tokenize(ctx context.Context, in vaultclient.CardInput) (*vaultclient.TokenInfo, error)
}

// Forwarder sends one forward.
type Forwarder interface {
	Forward(ctx context.Context, r *forwarder.Request) (*forwarder.Response, error)
}

// Check is one readiness probe. It returns a short, card-free detail.
type Check struct {
	Name  string
	Check func(ctx context.Context) (detail string, err error)
}

// Options configures the handler. Cards and Forwarder are required.
type Options struct {
	Cards     Tokenizer
	Forwarder Forwarder
	// Ready are run by /readyz, each with ReadyTimeout.
	Ready        []Check
	ReadyTimeout time.Duration // zero means DefaultReadyTimeout
	// MaxRequestBytes caps every request body; zero means DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// MaxHeaderBytes caps the request line and headers; zero means
	// DefaultMaxHeaderBytes. A request over it gets the JSON 431
	// request_headers_too_large. The http.Server must let such requests
	// through to the handler: set its MaxHeaderBytes to
	// ServerMaxHeaderBytes(MaxHeaderBytes).
	MaxHeaderBytes int
	// DevCallers accepts the development caller identity (see DevCallerHeader)
	// on plain-HTTP loopback connections. Only dev mode sets it.
	DevCallers bool
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// CardCalls configures the card calls' permissions, budgets and the
	// lifecycle routes (cards.go).
	CardCalls CardOptions
}

// Defaults for Options.
const (
	DefaultReadyTimeout    = 2 * time.Second
	DefaultMaxRequestBytes = 256 << 10
	DefaultMaxHeaderBytes  = 32 << 10
)

// RequestIDHeader carries the request id back to the caller.
const RequestIDHeader = "X-Request-Id"

// New returns the router.
func New(o Options) (http.Handler, error) {
	if o.Cards == nil || o.Forwarder == nil {
		return nil, errors.New("api: Cards and Forwarder are required")
	}
	if err := o.CardCalls.check(); err != nil {
		return nil, err
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{o: o}
	r := chi.NewRouter()
	r.Use(s.requestID, s.recoverer, s.limitHeaders, s.limitBody)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, &Error{Code: CodeNotFound, Message: "no such route"})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		// The route's pattern and a known method only: both raw values
		// are caller input.
		route := "this route"
		if rc := chi.RouteContext(req.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		// RFC 9110 §15.5.6: a 405 lists the methods the route has.
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
			if r.Match(chi.NewRouteContext(), m, req.URL.Path) {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, req, &Error{Code: CodeMethodNotAllowed, Message: knownMethod(req.Method) + " is not allowed on " + route})
	})
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate)
		r.With(s.cardGuard(OpTokenize)).Post("/v1/cards", s.tokenize)
		r.Post("/v1/forward", s.forward)
		s.cardRoutes(r)
	})
	return r, nil
}

type server struct {
	o Options
}

type ctxKey int

const (
	requestIDKey ctxKey = iota
	callerKey
)

// RequestID returns the id the router gave the request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func (s *server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The id is ours, never the caller's: a caller-chosen id could be
		// used to forge or collide audit records. randid's alphabet keeps
		// Luhn-valid digit runs, which the audit log refuses, out of it.
		id := randid.New("req_")
		w.Header().Set(RequestIDHeader, id)
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
		// The route pattern and a known method, never the raw path or
		// method: both are caller-chosen and could carry a card number.
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		s.o.Logger.LogAttrs(r.Context(), slog.LevelInfo, "http request",
			slog.String("request_id", id),
			slog.String("method", knownMethod(r.Method)),
			slog.String("route", route),
			slog.Int("status", sw.status),
			slog.Duration("duration", time.Since(start)))
	})
}

func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// recoverer turns a panic into a 500. It logs the stack but not the panic
// value, which could hold anything the panicking code was handed.
func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.o.Logger.Error("panic in handler",
					slog.String("request_id", RequestID(r.Context())),
					slog.String("panic_type", fmt.Sprintf("%T", v)),
					slog.String("stack", string(debug.Stack())))
				writeError(w, r, &Error{Code: CodeInternal, Message: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type readyReport struct {
	Status string                 `json:"status"`
	Checks map[string]readyResult `json:"checks"`
}

type readyResult struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	rep := readyReport{Status: "ready", Checks: map[string]readyResult{}}
	code := http.StatusOK
	for _, c := range s.o.Ready {
		ctx, cancel := context.WithTimeout(r.Context(), s.o.ReadyTimeout)
		detail, err := c.Check(ctx)
		cancel()
		res := readyResult{OK: err == nil, Detail: detail}
		if err != nil {
			code = http.StatusServiceUnavailable
			rep.Status = "unavailable"
			if res.Detail == "" {
				res.Detail = publicMessage(err)
			}
		}
		rep.Checks[c.Name] = res
	}
	writeJSON(w, code, rep)
}

func (s *server) tokenize(w http.ResponseWriter, r *http.Request) {
	var in vaultclient.CardInput
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, r, err)
		return
	}
	info, err := s.o.Cards.Tokenize(r.Context(), in)
	if err != nil {
		s.logFailure(r, "tokenize", err)
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, info)
}

func (s *server) forward(w http.ResponseWriter, r *http.Request) {
	var req forwarder.Request
	if err := decodeForward(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	req.Caller = Caller(r.Context())
	req.RequestID = RequestID(r.Context())
	if keys := r.Header.Values(IdempotencyKeyHeader); len(keys) > 1 {
		writeError(w, r, &Error{Code: forwarder.CodeInvalidIdempotencyKey, Message: "send one Idempotency-Key header"})
		return
	} else if len(keys) == 1 {
		// The forwarder checks its syntax; an empty value is malformed,
		// not "no key".
		req.IdempotencyKey = keys[0]
		if req.IdempotencyKey == "" {
			writeError(w, r, &Error{Code: forwarder.CodeInvalidIdempotencyKey, Message: "Idempotency-Key is empty"})
			return
		}
	}
	resp, err := s.o.Forwarder.Forward(r.Context(), &req)
	if err != nil {
		s.logFailure(r, "forward", err)
		var fe *forwarder.Error
		if errors.As(err, &fe) && fe.Replayed {
			w.Header().Set(IdempotentReplayedHeader, "true")
		}
		writeError(w, r, err)
		return
	}
	if resp.Replayed {
		w.Header().Set(IdempotentReplayedHeader, "true")
	}
	writeJSON(w, http.StatusOK, resp)
}

// Idempotency headers: the caller's key on /v1/forward, and the mark on an
// answer replayed from an earlier request with the same key (nothing was
// sent for the replay).
const (
	IdempotencyKeyHeader     = "Idempotency-Key"
	IdempotentReplayedHeader = "Idempotent-Replayed"
)

// logFailure records why a request failed. The error's code is always
// safe; its text is safe because every package keeps card data out of its
// errors, and a test of the whole binary checks the log for card numbers.
func (s *server) logFailure(r *http.Request, op string, err error) {
	s.o.Logger.LogAttrs(r.Context(), slog.LevelWarn, op+" refused",
		slog.String("request_id", RequestID(r.Context())),
		slog.String("caller", Caller(r.Context())),
		slog.String("code", errorCode(err)),
		slog.String("error", err.Error()))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

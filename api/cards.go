package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/vaultclient"
)

// CardOp names a card call that a caller must be permitted. Forwards are
// not among them: the signed allowlist decides those.
type CardOp string

// The card operations, as the configuration's callers section names them.
const (
	OpTokenize CardOp = "tokenize" // POST /v1/cards
	OpRead     CardOp = "read"     // GET /v1/cards/{token}
	// OpUpdate covers PATCH /v1/cards/{token} and POST
	// /v1/cards/{token}/cvc: both change a stored card. A caller that may
	// only tokenize can create cards, never alter one it did not create.
	OpUpdate CardOp = "update"
	OpDelete CardOp = "delete" // DELETE /v1/cards/{token}
)

// Codes of the card calls owned by the API layer.
const (
	// CodeOperationNotPermitted: the configuration does not let this
	// caller do this card operation. [403]
	CodeOperationNotPermitted = "operation_not_permitted"
	// CodeAuditUnavailable: the audit record could not be made durable,
	// so nothing was changed. [503]
	CodeAuditUnavailable = "audit_unavailable"
)

// Lifecycle serves the card calls after tokenizing. *vaultclient.Vault
// implements it.
type Lifecycle interface {
	Metadata(ctx context.Context, token string) (*vaultclient.CardMeta, error)
	// ValidateUpdate checks an update without the store, before the
	// audit record is written.
	ValidateUpdate(u vaultclient.CardUpdate) error
	Update(ctx context.Context, token string, u vaultclient.CardUpdate) (*vaultclient.CardMeta, error)
	CollectCVC(ctx context.Context, token, cvc string) (*vaultclient.CVCInfo, error)
	Delete(ctx context.Context, token string) error
}

// Permissions says whether caller may do op. It must fail closed: an
// unknown caller or operation is not permitted.
type Permissions interface {
	Permitted(ctx context.Context, caller string, op CardOp) bool
}

// Budget admits one card call by caller, or returns a coded error:
// rate_limited (with a RetryAfter() method) or rate_limit_unavailable.
// *ratelimit.Redis and *ratelimit.Memory implement it, with the operation
// in place of the destination.
type Budget interface {
	Allow(ctx context.Context, caller, op string) error
}

// Auditor makes a record durable. *audit.Log implements it.
type Auditor interface {
	Append(ctx context.Context, rec audit.Record) (audit.Record, error)
}

// CardOptions configures the card calls. Nil Permissions permits every
// caller everything (for handlers built by hand in tests; cmd/cardgate
// always sets it from the configuration); nil Budget means no budget. Lifecycle nil serves
// tokenizing only (the other card routes answer not_found); when it is
// set, Auditor is required: no card is changed or deleted unaudited.
type CardOptions struct {
	Lifecycle   Lifecycle
	Permissions Permissions
	Budget      Budget
	Auditor     Auditor
}

func (o CardOptions) check() error {
	if o.Lifecycle != nil && o.Auditor == nil {
		return errors.New("api: Cards.Auditor is required with Cards.Lifecycle")
	}
	return nil
}

// permitAll lets every caller do everything: the default when
// CardOptions.Permissions is nil, for tests that build a handler by hand.
// cmd/cardgate always sets Permissions from the configuration.
type permitAll struct{}

func (permitAll) Permitted(context.Context, string, CardOp) bool { return true }

// cardRoutes adds the lifecycle routes to the authenticated group.
// They are always routed, so the router matches openapi.yaml; without a
// Lifecycle they answer not_found, as an unrouted path would.
func (s *server) cardRoutes(r chi.Router) {
	r.With(s.cardGuard(OpRead)).Get("/v1/cards/{token}", s.cardMetadata)
	r.With(s.cardGuard(OpUpdate)).Patch("/v1/cards/{token}", s.cardUpdate)
	r.With(s.cardGuard(OpUpdate)).Post("/v1/cards/{token}/cvc", s.cardCVC)
	r.With(s.cardGuard(OpDelete)).Delete("/v1/cards/{token}", s.cardDelete)
}

// cardGuard refuses a caller the configuration does not permit op
// (operation_not_permitted), then spends one unit of the caller's card
// budget (rate_limited with Retry-After, or rate_limit_unavailable). The
// permission comes first, so that a refused caller spends no budget.
func (s *server) cardGuard(op CardOp) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			caller := Caller(r.Context())
			perms := s.o.CardCalls.Permissions
			if perms == nil {
				perms = permitAll{}
			}
			if op != OpTokenize && s.o.CardCalls.Lifecycle == nil {
				writeError(w, r, &Error{Code: CodeNotFound, Message: "no such route"})
				return
			}
			if !perms.Permitted(r.Context(), caller, op) {
				err := &Error{Code: CodeOperationNotPermitted, Message: "this caller is not permitted to " + string(op) + " cards; see the callers section of the configuration"}
				s.logFailure(r, string(op), err)
				writeError(w, r, err)
				return
			}
			if b := s.o.CardCalls.Budget; b != nil {
				if err := b.Allow(r.Context(), caller, string(op)); err != nil {
					var ra interface{ RetryAfter() time.Duration }
					if errors.As(err, &ra) && ra.RetryAfter() > 0 {
						// Whole seconds, rounded up, as for forwards.
						w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(ra.RetryAfter().Seconds())), 10))
					}
					s.logFailure(r, string(op), err)
					writeError(w, r, err)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// pathToken returns the {token} path segment if it is spelled like a
// token, else "". A malformed value is caller input (it could be a card
// number): it goes nowhere, and the call answers token_not_found, as
// the vault does for a token it does not hold.
func pathToken(r *http.Request) string {
	tok := chi.URLParam(r, "token")
	if !vaultclient.ValidToken(tok) {
		return ""
	}
	return tok
}

func tokenNotFound() error {
	return &vaultclient.Error{Code: vaultclient.CodeTokenNotFound, Message: "token not found"}
}

func (s *server) cardMetadata(w http.ResponseWriter, r *http.Request) {
	tok := pathToken(r)
	if tok == "" {
		writeError(w, r, tokenNotFound())
		return
	}
	m, err := s.o.CardCalls.Lifecycle.Metadata(r.Context(), tok)
	if err != nil {
		s.logFailure(r, "read", err)
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// cardPatch is the PATCH body. Number and CVC are decoded only to be
// refused with a message that says why.
type cardPatch struct {
	ExpMonth *int            `json:"exp_month"`
	ExpYear  *int            `json:"exp_year"`
	Name     *string         `json:"name"`
	Number   json.RawMessage `json:"number"`
	CVC      json.RawMessage `json:"cvc"`
}

func (s *server) cardUpdate(w http.ResponseWriter, r *http.Request) {
	var p cardPatch
	err := decodeJSON(r, &p)
	defer clear(p.Number)
	defer clear(p.CVC)
	if err != nil {
		writeError(w, r, err)
		return
	}
	switch {
	case p.Number != nil:
		writeError(w, r, &vaultclient.Error{Code: vaultclient.CodeInvalidUpdate, Message: "the number of a token never changes: tokenize the new number for a new token"})
		return
	case p.CVC != nil:
		writeError(w, r, &vaultclient.Error{Code: vaultclient.CodeInvalidUpdate, Message: "send a new cvc to POST /v1/cards/{token}/cvc"})
		return
	}
	tok := pathToken(r)
	if tok == "" {
		writeError(w, r, tokenNotFound())
		return
	}
	u := vaultclient.CardUpdate{ExpMonth: p.ExpMonth, ExpYear: p.ExpYear, Name: p.Name}
	if err := s.o.CardCalls.Lifecycle.ValidateUpdate(u); err != nil {
		writeError(w, r, err) // a refused update writes no audit record
		return
	}
	if !s.audit(w, r, audit.KindCardUpdated, tok) {
		return
	}
	m, err := s.o.CardCalls.Lifecycle.Update(r.Context(), tok, u)
	if err != nil {
		s.logFailure(r, "update", err)
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

type cvcBody struct {
	CVC string `json:"cvc"`
}

func (s *server) cardCVC(w http.ResponseWriter, r *http.Request) {
	var b cvcBody
	if err := decodeJSON(r, &b); err != nil {
		writeError(w, r, err)
		return
	}
	tok := pathToken(r)
	if tok == "" {
		writeError(w, r, tokenNotFound())
		return
	}
	if err := vaultclient.ValidateCVC(b.CVC); err != nil {
		writeError(w, r, err) // its length by brand is checked after the record is read
		return
	}
	if !s.audit(w, r, audit.KindCVCCollected, tok) {
		return
	}
	info, err := s.o.CardCalls.Lifecycle.CollectCVC(r.Context(), tok, b.CVC)
	if err != nil {
		s.logFailure(r, "cvc", err)
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *server) cardDelete(w http.ResponseWriter, r *http.Request) {
	tok := pathToken(r)
	if tok == "" {
		writeError(w, r, tokenNotFound())
		return
	}
	if !s.audit(w, r, audit.KindCardDeleted, tok) {
		return
	}
	if err := s.o.CardCalls.Lifecycle.Delete(r.Context(), tok); err != nil {
		s.logFailure(r, "delete", err)
		writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// audit makes the record of a change durable before the change is tried,
// so that no card is changed or deleted without a record: a record whose
// change then failed (the caller got the error) means "permitted and
// tried". It names the caller and the token, never the new values. On
// failure it answers audit_unavailable and reports false.
func (s *server) audit(w http.ResponseWriter, r *http.Request, kind audit.Kind, tok string) bool {
	_, err := s.o.CardCalls.Auditor.Append(r.Context(), audit.Record{
		Kind: kind, RequestID: RequestID(r.Context()), Caller: Caller(r.Context()), Token: tok, Decision: audit.DecisionAllow,
	})
	if err == nil {
		return true
	}
	// The cause can quote the record's fields; the code is enough.
	s.o.Logger.LogAttrs(r.Context(), slog.LevelError, "card call refused: audit record not durable",
		slog.String("request_id", RequestID(r.Context())), slog.String("kind", string(kind)))
	writeError(w, r, &Error{Code: CodeAuditUnavailable, Message: "the audit log is unavailable; nothing was changed"})
	return false
}

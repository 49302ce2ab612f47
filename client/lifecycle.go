package client

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// retryCards are the codes of a card call (Card, UpdateCard, CollectCVC,
// DeleteCard) that a later attempt may get past: in each, the gateway
// changed nothing.
var retryCards = map[Code]bool{
	ErrRateLimited:           true,
	ErrRateLimitUnavailable:  true,
	ErrStoreUnavailable:      true,
	ErrKeyBackendUnavailable: true,
	ErrAuditUnavailable:      true,
}

// CardMeta is a stored card's metadata: never the number, the CVC or the
// name. Printing it shows the expiry masked.
type CardMeta struct {
	Token       string    `json:"token"`
	Brand       string    `json:"brand"`
	Last4       string    `json:"last4"`
	ExpMonth    int       `json:"exp_month"`
	ExpYear     int       `json:"exp_year"`
	Fingerprint string    `json:"fingerprint"`
	CreatedAt   time.Time `json:"created_at"`
	// LastUsedAt is the last tokenize, update, CVC collection or forward;
	// the gateway records a forward at most once a minute per token.
	LastUsedAt time.Time `json:"last_used_at"`
	CVCHeld    bool      `json:"cvc_held"`
}

// String shows the card without its expiry, which is card data.
func (m CardMeta) String() string {
	return "client.CardMeta{Token:" + m.Token + " Brand:" + m.Brand + " Last4:" + m.Last4 +
		" Exp:[set] CVCHeld:" + strconv.FormatBool(m.CVCHeld) + "}"
}

// GoString is String, for %#v.
func (m CardMeta) GoString() string { return m.String() }

// LogValue is String, for slog.
func (m CardMeta) LogValue() slog.Value { return slog.StringValue(m.String()) }

// CardUpdate is a change to a stored card: a new expiry (ExpMonth and
// ExpYear together), a new Name (a pointer to "" removes it), or both.
// Zero fields and a nil Name are left as they are. The number never
// changes: tokenize a new number for a new token. Printing it shows which
// fields are set, never their values.
type CardUpdate struct {
	ExpMonth int
	ExpYear  int
	Name     *string
}

func (u CardUpdate) String() string {
	set := func(ok bool) string {
		if ok {
			return "[set]"
		}
		return "[empty]"
	}
	return "client.CardUpdate{Exp:" + set(u.ExpMonth != 0 || u.ExpYear != 0) + " Name:" + set(u.Name != nil) + "}"
}

// GoString is String, for %#v.
func (u CardUpdate) GoString() string { return u.String() }

// Format prints String for every verb.
func (u CardUpdate) Format(f fmt.State, verb rune) { formatMasked(f, verb, u.String()) }

// LogValue is String, for slog.
func (u CardUpdate) LogValue() slog.Value { return slog.StringValue(u.String()) }

// MarshalJSON masks the update; the wire form is built apart.
func (u CardUpdate) MarshalJSON() ([]byte, error) { return json.Marshal(u.String()) }

type cardUpdateWire struct {
	ExpMonth *int    `json:"exp_month,omitempty"`
	ExpYear  *int    `json:"exp_year,omitempty"`
	Name     *string `json:"name,omitempty"`
}

func (u CardUpdate) wire() cardUpdateWire {
	var w cardUpdateWire
	if u.ExpMonth != 0 {
		w.ExpMonth = &u.ExpMonth
	}
	if u.ExpYear != 0 {
		w.ExpYear = &u.ExpYear
	}
	w.Name = u.Name
	return w
}

// CVCInfo is the answer to CollectCVC.
type CVCInfo struct {
	Token        string    `json:"token"`
	CVCHeld      bool      `json:"cvc_held"`
	CVCExpiresAt time.Time `json:"cvc_expires_at"`
}

// cardPath returns the path of token's card, or an *Error when token is
// not spelled like a token: such a value is never put into a URL, where
// proxies and access logs would keep it (it could be a card number).
func cardPath(op, token, suffix string) (string, error) {
	if !validToken(token) {
		return "", &Error{Op: op, Code: ErrTokenNotFound, Status: http.StatusNotFound,
			Message: "not a token (tok_ and letters or digits); nothing was sent"}
	}
	return "/v1/cards/" + token + suffix, nil
}

func validToken(s string) bool {
	if len(s) <= 4 || len(s) > 128 || s[:4] != "tok_" {
		return false
	}
	for i := 4; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Card returns the metadata of the card behind token. The caller needs
// the read permission at the gateway.
func (c *Client) Card(ctx context.Context, token string) (*CardMeta, error) {
	path, err := cardPath("card", token, "")
	if err != nil {
		return nil, err
	}
	var out CardMeta
	if _, err := c.call(ctx, call{op: "card", method: http.MethodGet, path: path, status: http.StatusOK, card: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateCard gives the card behind token a new expiry, name or both, and
// returns its metadata afterwards. The caller needs the update permission.
func (c *Client) UpdateCard(ctx context.Context, token string, u CardUpdate) (*CardMeta, error) {
	path, err := cardPath("update_card", token, "")
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(u.wire())
	if err != nil {
		return nil, fmt.Errorf("client: update card: encode: %w", err)
	}
	defer clear(body) // the expiry and name, once the call is over
	var out CardMeta
	if _, err := c.call(ctx, call{op: "update_card", method: http.MethodPatch, path: path, body: body, status: http.StatusOK, card: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CollectCVC stores a freshly collected CVC for the card behind token; the
// gateway keeps it for cards.cvc_ttl and deletes it at the first forward
// that uses it. The caller needs the update permission.
func (c *Client) CollectCVC(ctx context.Context, token string, cvc CVC) (*CVCInfo, error) {
	path, err := cardPath("collect_cvc", token, "/cvc")
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(struct {
		CVC string `json:"cvc"`
	}{string(cvc)})
	if err != nil {
		return nil, fmt.Errorf("client: collect cvc: encode: %w", err)
	}
	defer clear(body)
	var out CVCInfo
	if _, err := c.call(ctx, call{op: "collect_cvc", path: path, body: body, status: http.StatusOK, card: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteCard deletes the card behind token and any CVC held for it.
// Afterwards the token is unknown to the gateway (ErrTokenNotFound), as
// is one that never existed; deleting it again is ErrTokenNotFound too.
// The caller needs the delete permission.
func (c *Client) DeleteCard(ctx context.Context, token string) error {
	path, err := cardPath("delete_card", token, "")
	if err != nil {
		return err
	}
	_, err = c.call(ctx, call{op: "delete_card", method: http.MethodDelete, path: path, status: http.StatusNoContent, card: true}, nil)
	return err
}

package config

import (
	"fmt"
	"slices"
	"time"
)

// Card operations a caller may be permitted (section callers). Forwards
// are not among them: the signed allowlist decides those.
const (
	OpTokenize = "tokenize" // POST /v1/cards
	OpRead     = "read"     // GET /v1/cards/{token}
	OpUpdate   = "update"   // PATCH /v1/cards/{token}, POST /v1/cards/{token}/cvc
	OpDelete   = "delete"   // DELETE /v1/cards/{token}
)

// CardOps lists the operations, in the order the docs give them.
var cardOps = []string{OpTokenize, OpRead, OpUpdate, OpDelete}

// CardOps returns the card operations a caller may be permitted.
func CardOps() []string { return slices.Clone(cardOps) }

// AnyCaller, as a callers entry's caller, applies the entry to every
// authenticated caller.
const AnyCaller = "*"

// MinRetention is the shortest cards.retention accepted (0 turns retention
// off): a retention is a policy of months or years, and anything shorter
// than a day is almost surely a unit mistake.
const MinRetention = 24 * time.Hour

// Caller permits one caller identity the card operations in Allow.
//
// Without a callers section the defaults keep configurations written
// before it working, and are logged loudly at start:
//
//   - in dev mode every caller may do every operation;
//   - in production every authenticated caller may tokenize (as before),
//     and no caller may read, update or delete a card.
//
// With a callers section, a caller may do exactly what its entries (its
// own and a "*" entry) allow, and nothing else: an empty section
// (callers: []) refuses every card call, tokenize included.
type Caller struct {
	// Caller is the identity as the allowlist names callers: a SPIFFE ID,
	// a DNS SAN, dev:NAME in dev mode; or "*" for every caller.
	Caller string `yaml:"caller"`
	// Allow lists operations: tokenize, read, update (which also covers
	// re-collecting a CVC), delete.
	Allow []string `yaml:"allow"`
}

// validateCards checks the callers section and the card lifecycle keys of
// the cards section.
func (c *Config) validateCards(bad func(key, format string, args ...any)) {
	seen := map[string]int{}
	for i, e := range c.Callers {
		key := fmt.Sprintf("callers[%d]", i)
		if !validCallerID(e.Caller) {
			bad(key+".caller", "must be a caller identity of 1-128 of A-Z a-z 0-9 . _ : / @ - (as the allowlist names callers), or \"*\" for every caller")
		} else if j, dup := seen[e.Caller]; dup {
			bad(key+".caller", "repeats callers[%d]: give each caller one entry", j)
		} else {
			seen[e.Caller] = i
		}
		if len(e.Allow) == 0 {
			bad(key+".allow", "must list at least one of %v; remove the entry to permit nothing", cardOps)
		}
		ops := map[string]bool{}
		for _, op := range e.Allow {
			switch {
			case !slices.Contains(cardOps, op):
				bad(key+".allow", "%q is not an operation: use %v", op, cardOps)
			case ops[op]:
				bad(key+".allow", "lists %q twice", op)
			}
			ops[op] = true
		}
	}

	r := c.Cards.Retention
	switch {
	case r < 0:
		bad("cards.retention", "must not be negative: 0 keeps unused cards for ever, a duration such as \"8760h\" expires them")
	case r > 0 && r < MinRetention:
		bad("cards.retention", "%v is shorter than %v: write the retention policy's period, such as \"8760h\" for a year", r, MinRetention)
	case r > 0 && r <= c.Cards.CVCTTL:
		bad("cards.retention", "must be longer than cards.cvc_ttl")
	}
	l := c.Cards.PerCaller
	switch {
	case l.Rate < 0:
		bad("cards.per_caller.rate", "must not be negative: 0 means no limit")
	case l.Rate == 0:
	case l.Per <= 0:
		bad("cards.per_caller.per", "must be a positive duration such as \"1s\" when rate is set")
	case l.Burst < 1:
		bad("cards.per_caller.burst", "must be at least 1 when rate is set: the number of calls admitted at once")
	case l.Per/time.Duration(l.Rate) <= 0:
		bad("cards.per_caller.rate", "%d per %v is more than one a nanosecond: lower the rate or lengthen per", l.Rate, l.Per)
	}
}

// validCallerID is the grammar of a caller identity the API accepts.
func validCallerID(s string) bool {
	if s == AnyCaller {
		return true
	}
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && !slices.Contains([]byte("._:/@-"), c) {
			return false
		}
	}
	return true
}

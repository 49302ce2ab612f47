package vaultclient

// Card is a detokenized card. Its secret fields mask themselves when
// printed, logged or marshalled; only Reveal gives the digits.
type Card struct {
	Token    string
	Number   PAN
	ExpMonth int  // 1–12
	ExpYear  int  // four digits
	CVC      CVC  // empty when none is held (it is transient)
	Name     Name // may be empty
	Brand    string
	Last4    string
}

// PAN is a primary account number.
type PAN struct {
	_ [0]func() // not comparable: compare with Equal, in constant time
	v string
}

// Reveal returns the digits. Call it only to write the card into an
// outbound request.
func (p PAN) Reveal() string { return p.v }

// CVC is a card verification code.
type CVC struct {
	_ [0]func()
	v string
}

// Reveal returns the code.
func (c CVC) Reveal() string { return c.v }

// Name is the cardholder name.
type Name struct {
	_ [0]func()
	v string
}

// Reveal returns the name.
func (n Name) Reveal() string { return n.v }

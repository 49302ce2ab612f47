package vaultclient

import (
	"context"
	"errors"
)

// CardInput is what POST /v1/cards accepts.
type CardInput struct {
	Number   string `json:"number"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
	CVC      string `json:"cvc,omitempty"`
	Name     string `json:"name,omitempty"`
}

// TokenInfo is what tokenizing returns: never the number or the CVC.
type TokenInfo struct {
	Token       string `json:"token"`
	Last4       string `json:"last4"`
	Brand       string `json:"brand"`
	ExpMonth    int    `json:"exp_month"`
	ExpYear     int    `json:"exp_year"`
	Fingerprint string `json:"fingerprint"`
}

// Vault tokenizes and detokenizes cards.
type Vault struct{}

// Tokenize validates in, encrypts it and stores it under a new token.
func (v *Vault) Tokenize(ctx context.Context, in CardInput) (*TokenInfo, error) {
	return nil, errors.New("vaultclient: not implemented")
}

// Detokenize returns the card behind token.
func (v *Vault) Detokenize(ctx context.Context, token string) (*Card, error) {
	return nil, errors.New("vaultclient: not implemented")
}

// ConsumeCVC deletes the transient CVC held for token.
func (v *Vault) ConsumeCVC(ctx context.Context, token string) error {
	return errors.New("vaultclient: not implemented")
}

// Ping checks the store and the key backend, for /readyz.
func (v *Vault) Ping(ctx context.Context) error { return errors.New("vaultclient: not implemented") }

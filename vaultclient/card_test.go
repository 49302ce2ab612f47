package vaultclient

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

const (
	secretPAN  = "4242424242424242"
	secretCVC  = "987"
	secretName = "Jane Q. Cardholder"
)

func secretCard() *Card {
	return &Card{
		Token:    "tok_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		Number:   NewPAN(secretPAN),
		ExpMonth: 12,
		ExpYear:  2030,
		CVC:      NewCVC(secretCVC),
		Name:     NewName(secretName),
		Brand:    BrandVisa,
		Last4:    "4242",
	}
}

// assertNoSecret fails if out holds the test number, CVC or name.
func assertNoSecret(t *testing.T, what string, out []byte) {
	t.Helper()
	for _, s := range []string{secretPAN, secretPAN[:12], secretCVC, secretName, "Cardholder"} {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("%s leaks %q: %s", what, s, out)
		}
	}
}

func TestSecretsMaskedByFmt(t *testing.T) {
	c := secretCard()
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T %v"} {
		for name, v := range map[string]any{"card": c, "*card": *c, "pan": c.Number, "cvc": c.CVC, "name": c.Name, "&pan": &c.Number} {
			out := fmt.Sprintf(format, v)
			assertNoSecret(t, fmt.Sprintf("Sprintf(%q, %s)", format, name), []byte(out))
		}
	}
	if got, want := fmt.Sprint(c.Number), "****4242"; got != want {
		t.Errorf("Sprint(pan) = %q, want %q", got, want)
	}
	if got, want := fmt.Sprintf("%q", c.CVC), `"***"`; got != want {
		t.Errorf("Sprintf(%%q, cvc) = %q, want %q", got, want)
	}
	if got, want := fmt.Sprintf("%#v", c.Name), `vaultclient.Name("[redacted]")`; got != want {
		t.Errorf("Sprintf(%%#v, name) = %q, want %q", got, want)
	}
	if got := fmt.Sprint(NewPAN("4242")); got != "****" {
		t.Errorf("Sprint(short pan) = %q, want %q: a short value must not show digits", got, "****")
	}
	if got := fmt.Sprint(CVC{}); got != "" {
		t.Errorf("Sprint(empty cvc) = %q, want empty", got)
	}
}

func TestSecretsMaskedBySlog(t *testing.T) {
	c := secretCard()
	// No timestamp: its milliseconds can spell the test CVC ("…26.987Z").
	noTime := &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	for _, h := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, noTime) }},
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, noTime) }},
	} {
		var buf bytes.Buffer
		log := slog.New(h.new(&buf))
		log.Info("detokenized", "card", c, "pan", c.Number, "cvc", c.CVC, "name", c.Name,
			slog.Any("any", c.Number), slog.Group("g", "pan", c.Number))
		assertNoSecret(t, h.name+" log", buf.Bytes())
		if !strings.Contains(buf.String(), "****4242") {
			t.Errorf("%s log has no mask: %s", h.name, buf.String())
		}
	}
}

func TestSecretsMaskedByEncoders(t *testing.T) {
	c := secretCard()
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	assertNoSecret(t, "json", j)
	if !strings.Contains(string(j), `"Number":"****4242"`) || !strings.Contains(string(j), `"CVC":"***"`) {
		t.Errorf("json = %s, want masks", j)
	}
	x, err := xml.Marshal(c)
	if err != nil {
		t.Fatalf("xml.Marshal: %v", err)
	}
	assertNoSecret(t, "xml", x)
	text, err := c.Number.MarshalText()
	if err != nil || string(text) != "****4242" {
		t.Errorf("MarshalText = %q, %v; want %q", text, err, "****4242")
	}
}

func TestSecretsMaskedInErrors(t *testing.T) {
	c := secretCard()
	err := fmt.Errorf("forward %v failed: %w", c.Number, errors.New("x"))
	err = fmt.Errorf("wrapped %+v %s %q: %w", c, c.CVC, c.Name, err)
	assertNoSecret(t, "error", []byte(err.Error()))
	func() {
		defer func() {
			r := recover()
			assertNoSecret(t, "panic value", []byte(fmt.Sprint(r)))
		}()
		panic(c.Number)
	}()
}

func TestSecretsNotComparable(t *testing.T) {
	for _, v := range []any{PAN{}, CVC{}, Name{}, Card{}} {
		if reflect.TypeOf(v).Comparable() {
			t.Errorf("%T is comparable, want not: == would compare in variable time", v)
		}
	}
}

func TestSecretsEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"4242424242424242", "4242424242424242", true},
		{"4242424242424242", "4242424242424241", false},
		{"4242424242424242", "424242424242424", false},
		{"", "", true},
	}
	for _, tt := range tests {
		if got := NewPAN(tt.a).Equal(NewPAN(tt.b)); got != tt.want {
			t.Errorf("PAN(%q).Equal(%q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := NewCVC(tt.a).Equal(NewCVC(tt.b)); got != tt.want {
			t.Errorf("CVC(%q).Equal(%q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := NewName(tt.a).Equal(NewName(tt.b)); got != tt.want {
			t.Errorf("Name(%q).Equal(%q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestCardWipe(t *testing.T) {
	c := secretCard()
	c.Wipe()
	if !c.Number.IsZero() || !c.CVC.IsZero() || !c.Name.IsZero() || c.Last4 != "" {
		t.Errorf("after Wipe: %+v, want zero", c)
	}
	var nilCard *Card
	nilCard.Wipe() // must not panic
}

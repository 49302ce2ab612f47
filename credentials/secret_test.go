package credentials

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The value is chosen so that every printing of it is recognisable:
// plain, hex, base64 and quoted forms are all checked.
const leakValue = "sk_live_51LeakCanaryValue"

func leaks(out string) bool {
	for _, form := range []string{leakValue, fmt.Sprintf("%x", leakValue), "c2tfbGl2ZV81MUxlYWtDYW5hcnlWYWx1ZQ", "115 107 95"} {
		if strings.Contains(out, form) {
			return true
		}
	}
	return false
}

func TestSecretPrintsMask(t *testing.T) {
	s := secretOf(t, "acme-live-key", leakValue)
	type wrapper struct {
		Exported Secret
		hidden   Secret
		Ptr      *Secret
	}
	w := wrapper{Exported: s, hidden: s, Ptr: &s}
	var logJSON, logText bytes.Buffer
	slog.New(slog.NewJSONHandler(&logJSON, nil)).Info("m", "secret", s, "wrapper", w, slog.Any("any", s))
	slog.New(slog.NewTextHandler(&logText, nil)).Info("m", "secret", s, "wrapper", w)
	js, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	mapJSON, _ := json.Marshal(map[string]Secret{"k": s})
	text, _ := s.MarshalText()
	appended, _ := s.AppendText([]byte("x="))
	outputs := map[string]string{
		"verbs":     fmt.Sprintf("%v %+v %#v %s %q %x %X %d %T", s, s, s, s, s, s, s, s, s),
		"wrapper":   fmt.Sprintf("%v %+v %#v", w, w, w),
		"pointer":   fmt.Sprintf("%v %+v %s", &s, &s, &s),
		"slice":     fmt.Sprint([]Secret{s}),
		"String":    s.String(),
		"GoString":  s.GoString(),
		"slog json": logJSON.String(),
		"slog text": logText.String(),
		"json":      string(js),
		"json map":  string(mapJSON),
		"text":      string(text),
		"append":    string(appended),
		"error":     fmt.Errorf("wrapped %v", s).Error(),
	}
	for name, out := range outputs {
		if leaks(out) {
			t.Errorf("%s: %q holds the value", name, out)
		}
	}
	if got, want := s.String(), "[secret.acme-live-key]"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := string(js), `{"Exported":"[secret.acme-live-key]","Ptr":"[secret.acme-live-key]"}`; got != want {
		t.Errorf("json.Marshal = %s, want %s", got, want)
	}
	if !strings.Contains(logJSON.String(), `"secret":"[secret.acme-live-key]"`) {
		t.Errorf("slog JSON = %s, want the mask", logJSON.String())
	}
	if got := (Secret{}).String(); got != "[secret]" {
		t.Errorf("zero String() = %q, want [secret]", got)
	}
}

func TestSecretSignerPrintsMask(t *testing.T) {
	pemKey := mustRead(t, "testdata/ed25519.pem")
	s := mustStore(t, []Spec{{Name: "signing", Source: Env{Var: "K"}, Kind: KindEd25519PrivateKey}},
		Options{Getenv: envOf(map[string]string{"K": string(pemKey)})})
	sec, _ := s.Get("signing")
	signer, err := sec.Signer()
	if err != nil {
		t.Fatal(err)
	}
	priv := signer.(*keySigner).k.(ed25519.PrivateKey)
	js, _ := json.Marshal(struct{ S crypto.Signer }{signer})
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "signer", signer)
	out := fmt.Sprintf("%v %+v %#v %s %x", signer, signer, signer, signer, signer) + string(js) + buf.String()
	for _, form := range []string{fmt.Sprintf("%x", []byte(priv.Seed())), fmt.Sprint([]byte(priv.Seed())[:4])} {
		if strings.Contains(out, strings.Trim(form, "[]")) {
			t.Errorf("signer printing %q holds the key", out)
		}
	}
	if !strings.Contains(out, "[secret.signing]") {
		t.Errorf("signer printing %q, want the mask", out)
	}
}

func TestSecretNotComparable(t *testing.T) {
	if reflect.TypeOf(Secret{}).Comparable() {
		t.Error("Secret is comparable; == would compare in variable time")
	}
	if reflect.TypeOf(keySigner{}).Comparable() {
		t.Error("keySigner is comparable")
	}
}

func TestSecretEqual(t *testing.T) {
	a := secretOf(t, "a", "value-one")
	a2 := secretOf(t, "a", "value-one")
	b := secretOf(t, "b", "value-two")
	tests := []struct {
		name string
		x, y Secret
		want bool
	}{
		{"same bytes", a, a2, true},
		{"itself", a, a, true},
		{"different bytes", a, b, false},
		{"zero and value", Secret{}, a, false},
		{"value and zero", a, Secret{}, false},
		{"zero and zero", Secret{}, Secret{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.x.Equal(tt.y); got != tt.want {
				t.Errorf("Equal = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSecretReveal(t *testing.T) {
	s := secretOf(t, "a", leakValue)
	got := s.Reveal()
	if string(got) != leakValue {
		t.Fatalf("Reveal() = %d bytes, want the value", len(got))
	}
	clear(got) // the caller's copy: clearing it must not touch the Secret
	if string(s.Reveal()) != leakValue {
		t.Error("clearing Reveal's result changed the Secret")
	}
	if (Secret{}).Reveal() != nil {
		t.Error("zero Secret revealed bytes")
	}
	if s.Name() != "a" || s.Kind() != KindSecret || s.Source() != SourceEnv || s.Version() != 0 || s.IsZero() {
		t.Errorf("accessors = %q %q %q %d %v", s.Name(), s.Kind(), s.Source(), s.Version(), s.IsZero())
	}
	if _, err := s.Signer(); !errors.Is(err, ErrWrongKind) {
		t.Errorf("Signer() on a secret = %v, want ErrWrongKind", err)
	}
}

// TestValueWipedWhenUnreachable checks that a replaced value's bytes are
// zeroed once nothing refers to it, and not before.
func TestValueWipedWhenUnreachable(t *testing.T) {
	b := []byte(leakValue)
	func() {
		held := Secret{v: newValue("x", KindSecret, SourceEnv, 0, b, nil, nil)}
		for range 3 {
			runtime.GC()
		}
		time.Sleep(10 * time.Millisecond)
		if string(b) != leakValue {
			t.Fatal("the bytes were wiped while a Secret still held them")
		}
		runtime.KeepAlive(held)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for string(b) != string(make([]byte, len(b))) {
		if time.Now().After(deadline) {
			t.Fatal("the bytes were not wiped after the last Secret was dropped")
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSignerKeepsKeyAlive: a Signer held after its Secret and store are
// dropped still signs with the real key (the wipe waits for it).
func TestSignerKeepsKeyAlive(t *testing.T) {
	pemKey := mustRead(t, "testdata/ed25519.pem")
	signer := func() crypto.Signer {
		s := mustStore(t, []Spec{{Name: "k", Source: Env{Var: "K"}, Kind: KindEd25519PrivateKey}},
			Options{Getenv: envOf(map[string]string{"K": string(pemKey)})})
		sec, _ := s.Get("k")
		sg, err := sec.Signer()
		if err != nil {
			t.Fatal(err)
		}
		return sg
	}()
	pub := append(ed25519.PublicKey(nil), signer.Public().(ed25519.PublicKey)...)
	for range 5 {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	msg := []byte("message")
	sig, err := signer.Sign(nil, msg, crypto.Hash(0))
	if err != nil || !ed25519.Verify(pub, msg, sig) {
		t.Errorf("the held Signer's key was wiped (%v)", err)
	}
}

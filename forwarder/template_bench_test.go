package forwarder

import (
	"testing"

	"github.com/cardgate/cardgate/vaultclient"
)

// BenchmarkRender measures parsing a body template and rendering it with a
// card, for JSON and form bodies. Allocation budget (measured: see
// README "Performance"): parse ≤ 4 allocs (the placeholder list grows);
// render into a reused buffer ≤ 2 allocs for JSON (the expiry numbers'
// strconv) and ≤ 3 for a form body (url.QueryEscape of the name).
func BenchmarkRender(b *testing.B) {
	card := &vaultclient.Card{
		Number: vaultclient.NewPAN("4242424242424242"), CVC: vaultclient.NewCVC("123"),
		Name: vaultclient.NewName(`Zoë "Q" O'Brien & Sons`), ExpMonth: 3, ExpYear: 2031,
	}
	tests := []struct {
		name string
		kind bodyKind
		body string
	}{
		{"json", bodyJSON, `{"amount":1000,"currency":"usd","source":{"number":"{{card.number}}","cvc":"{{card.cvc}}","exp_month":{{card.exp_month}},"exp_year":{{card.exp_year}},"name":"{{card.name}}"}}`},
		{"form", bodyForm, `amount=1000&currency=usd&card[number]={{card.number}}&card[cvc]={{card.cvc}}&card[exp_month]={{card.exp_month}}&card[exp_year]={{card.exp_year}}&card[name]={{card.name}}`},
	}
	for _, tt := range tests {
		b.Run(tt.name+"/parse", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, e := parsePlaceholders(tt.body, "body"); e != nil {
					b.Fatal(e)
				}
			}
		})
		phs, e := parsePlaceholders(tt.body, "body")
		if e != nil {
			b.Fatal(e)
		}
		if tt.kind == bodyJSON {
			// Marks the bare (numeric) placeholders, as the forward path does.
			if e := checkJSONBody(tt.body, phs); e != nil {
				b.Fatal(e)
			}
		}
		sl := slot{text: tt.body, phs: phs}
		b.Run(tt.name+"/render", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				var e *Error
				if buf, e = renderBody(buf[:0], sl, tt.kind, cardValues{card: card}); e != nil {
					b.Fatal(e)
				}
			}
		})
	}
}

// TestRenderAllocationBudget holds template parsing and rendering to the
// README's budgets.
func TestRenderAllocationBudget(t *testing.T) {
	card := &vaultclient.Card{
		Number: vaultclient.NewPAN("4242424242424242"), CVC: vaultclient.NewCVC("123"),
		Name: vaultclient.NewName(`Zoë "Q" O'Brien & Sons`), ExpMonth: 3, ExpYear: 2031,
	}
	tests := []struct {
		kind                bodyKind
		body                string
		parseMax, renderMax float64
	}{
		{bodyJSON, `{"number":"{{card.number}}","cvc":"{{card.cvc}}","exp_month":{{card.exp_month}},"exp_year":{{card.exp_year}},"name":"{{card.name}}"}`, 4, 2},
		{bodyForm, `card[number]={{card.number}}&card[cvc]={{card.cvc}}&card[exp_month]={{card.exp_month}}&card[exp_year]={{card.exp_year}}&card[name]={{card.name}}`, 4, 3},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, func() { _, _ = parsePlaceholders(tt.body, "body") }); got > tt.parseMax {
			t.Errorf("kind %d: parse allocates %.1f times, budget %.0f", tt.kind, got, tt.parseMax)
		}
		phs, e := parsePlaceholders(tt.body, "body")
		if e != nil {
			t.Fatal(e)
		}
		if tt.kind == bodyJSON {
			if e := checkJSONBody(tt.body, phs); e != nil {
				t.Fatal(e)
			}
		}
		sl := slot{text: tt.body, phs: phs}
		buf := make([]byte, 0, 1024)
		got := testing.AllocsPerRun(100, func() {
			var e *Error
			if buf, e = renderBody(buf[:0], sl, tt.kind, cardValues{card: card}); e != nil {
				t.Fatal(e)
			}
		})
		if got > tt.renderMax {
			t.Errorf("kind %d: render allocates %.1f times, budget %.0f", tt.kind, got, tt.renderMax)
		}
	}
}

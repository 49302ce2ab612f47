package vaultclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/cardgate/cardgate/vaultclient"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "vaultclient-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// Development setup: a local keyring file and a bolt store.
	keyring := filepath.Join(dir, "keyring.json")
	if err := vaultclient.CreateLocalKeyring(keyring); err != nil {
		log.Fatal(err)
	}
	keys, err := vaultclient.OpenLocalKeyring(keyring)
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	store, err := vaultclient.OpenBoltStore(filepath.Join(dir, "cards.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	v, err := vaultclient.New(store, keys, vaultclient.Options{})
	if err != nil {
		log.Fatal(err)
	}

	info, err := v.Tokenize(ctx, vaultclient.CardInput{Number: "4242 4242 4242 4242", ExpMonth: 12, ExpYear: time.Now().Year() + 3, CVC: "123"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Brand, info.Last4)

	// Detokenize returns the card without its CVC, and leaves the CVC held.
	card, err := v.Detokenize(ctx, info.Token)
	if err != nil {
		log.Fatal(err)
	}
	defer card.Wipe()
	fmt.Printf("%v cvc=%t\n", card.Number, !card.CVC.IsZero()) // secrets print masked

	// Only when the CVC is about to be sent: read it, and delete it in the
	// same store operation.
	card, err = v.DetokenizeConsumingCVC(ctx, info.Token)
	if err != nil {
		log.Fatal(err)
	}
	defer card.Wipe()
	fmt.Printf("%v %v\n", card.Number, card.CVC)
	card, err = v.DetokenizeConsumingCVC(ctx, info.Token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("cvc after use=%t\n", !card.CVC.IsZero())
	card.Wipe()

	_, err = v.Tokenize(ctx, vaultclient.CardInput{Number: "4242424242424241", ExpMonth: 12, ExpYear: time.Now().Year() + 3})
	var e *vaultclient.Error
	if errors.As(err, &e) {
		fmt.Println(e.ErrorCode(), "—", e.PublicMessage())
	}
	// Output:
	// visa 4242
	// ****4242 cvc=false
	// ****4242 ***
	// cvc after use=false
	// invalid_card_number — number must be 13 to 19 digits and pass the Luhn check
}

package main

import (
	"fmt"
	"io"

	"github.com/cardgate/cardgate/vaultclient"
)

func runKeys(args []string, stdout, stderr io.Writer) error {
	if len(args) != 2 || args[0] != "init" {
		fmt.Fprintln(stderr, "usage: cardgate keys init FILE\n\ncreates a development keyring (mode 0600); it refuses to overwrite a file")
		return errUsage
	}
	if err := vaultclient.CreateLocalKeyring(args[1]); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "created development keyring", args[1])
	return nil
}

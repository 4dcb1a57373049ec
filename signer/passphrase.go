package signer

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/term"
)

// PassphraseEnv names the environment variable Passphrase reads first.
const PassphraseEnv = "SIGNET_PASSPHRASE"

// Passphrase returns $SIGNET_PASSPHRASE if it is set (even to ""), else asks on the
// terminal without echo (twice when confirm, for a new key), else fails saying to set
// SIGNET_PASSPHRASE. Prompts go to stderr so stdout stays clean for scripts.
func Passphrase(confirm bool) ([]byte, error) {
	if p, ok := os.LookupEnv(PassphraseEnv); ok {
		return append([]byte{}, p...), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, fmt.Errorf("no terminal to ask for the key passphrase on: set %s", PassphraseEnv)
	}
	fmt.Fprint(os.Stderr, "Key passphrase: ")
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, fmt.Errorf("reading the passphrase: %w", err)
	}
	if !confirm {
		return append([]byte{}, p...), nil
	}
	if len(p) == 0 {
		return nil, errors.New("empty passphrase: a key needs one (development keys are made by trustctl up)")
	}
	fmt.Fprint(os.Stderr, "Repeat it: ")
	again, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, fmt.Errorf("reading the passphrase: %w", err)
	}
	if string(again) != string(p) {
		return nil, errors.New("the two passphrases differ: try again")
	}
	return p, nil
}

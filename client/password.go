package client

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// ReadPassword reads a password: all of stdin (one trailing newline dropped) when
// fromStdin, else from the terminal without echo, asked twice when confirm. With
// neither a terminal nor fromStdin it says to use --password-stdin: a password is
// never taken from a flag, where ps and shell history would show it.
func ReadPassword(stdin *os.File, prompts io.Writer, fromStdin bool, prompt string, confirm bool) (string, error) {
	if fromStdin {
		b, err := io.ReadAll(io.LimitReader(stdin, 4096))
		if err != nil {
			return "", fmt.Errorf("reading the password from stdin: %w", err)
		}
		p := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if p == "" {
			return "", errors.New("--password-stdin: stdin held no password")
		}
		return p, nil
	}
	fd := int(stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", errors.New("no terminal to ask for the password on: pipe it in with --password-stdin")
	}
	fmt.Fprint(prompts, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(prompts)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	if len(b) == 0 {
		return "", errors.New("empty password")
	}
	if confirm {
		fmt.Fprint(prompts, "Repeat it: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(prompts)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		if string(again) != string(b) {
			return "", errors.New("the two passwords differ: try again")
		}
	}
	return string(b), nil
}

// ReadLine asks for one line on the terminal (a user name, say); without a terminal
// it returns an error that names the flag to use instead.
func ReadLine(stdin *os.File, prompts io.Writer, prompt, flag string) (string, error) {
	if !term.IsTerminal(int(stdin.Fd())) {
		return "", fmt.Errorf("no terminal to ask on: pass %s", flag)
	}
	fmt.Fprint(prompts, prompt)
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

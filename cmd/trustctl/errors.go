package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
)

// interruptible returns a context that Ctrl-C (SIGINT) or SIGTERM cancels,
// and a function that says which signal did (nil: none). Only the first is
// caught: a second Ctrl-C ends the process at once, as without trustctl's
// handler.
func interruptible(parent context.Context) (context.Context, func() os.Signal) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var mu sync.Mutex
	var got os.Signal
	go func() {
		s := <-sigs
		signal.Stop(sigs)
		mu.Lock()
		got = s
		mu.Unlock()
		cancel()
	}()
	return ctx, func() os.Signal {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

// reportError prints err, the failure of cmd (nil when cobra found no
// command), on stderr, as {"error", "code"} under --output json, and returns
// the exit code. A command a signal stopped exits 130 (SIGINT) or 143
// (SIGTERM), whatever error its cancelled context caused.
func reportError(root, cmd *cobra.Command, err error, sig os.Signal) int {
	code := exitCode(err)
	msg := err.Error()
	switch {
	case sig == os.Interrupt:
		code, msg = codeInterrupted, "interrupted"
	case sig != nil:
		code, msg = codeTerminated, "terminated"
	case cmd != nil && isUsageError(err):
		msg += "\nUsage: " + cmd.UseLine() + "\nRun '" + cmd.CommandPath() + " --help' for more."
	}
	if f := root.PersistentFlags().Lookup("output"); f != nil && f.Value.String() == "json" {
		b, _ := json.Marshal(struct {
			Error string `json:"error"`
			Code  int    `json:"code"`
		}{msg, code})
		fmt.Fprintln(os.Stderr, string(b))
		return code
	}
	fmt.Fprintln(os.Stderr, "trustctl:", msg)
	return code
}

// usageError is a command line cobra refused: wrong arguments or flags.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// isUsageError reports whether err is a command line cobra or a command
// refused, which the command's usage line helps with. cobra's error for a
// required flag not set is untyped: it is known by its words.
func isUsageError(err error) bool {
	var ue *usageError
	return errors.As(err, &ue) || strings.HasPrefix(err.Error(), "required flag(s)")
}

// strictUsage makes every command under root refuse a bad command line with
// its usage line (reportError adds it to a usageError), and every group of
// commands (org, keys, ...) refuse an unknown subcommand with cobra's
// suggestions, exiting 1, instead of printing its help and exiting 0.
func strictUsage(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if args := c.Args; args != nil {
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return &usageError{err}
				}
				return nil
			}
		}
		if c != root && c.HasSubCommands() && !c.Runnable() {
			c.RunE = unknownSubcommand
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// unknownSubcommand runs a group of commands: its help without arguments, an
// error naming the likely subcommands with one it does not have.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return fmt.Errorf("%s (its commands: %s); run '%s --help' for more", msg, strings.Join(names, ", "), cmd.CommandPath())
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/trust"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// session opens the trust session of a command acting on --registry (or the
// registry last logged in to); host, when given, names it instead.
func (g *globals) session(ctx context.Context, host string) (*trust.Session, error) {
	if host == "" {
		host = g.registry
	}
	return trust.Open(ctx, host, os.Stderr)
}

func newTrustCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "trust", Short: "Pin the trust root of a registry"}
	var yes bool
	var fingerprint string
	add := &cobra.Command{
		Use:   "add HOST",
		Short: "Show a registry's root fingerprint and pin its root.json for every later verification",
		Long: `add reads the registry's /.well-known/signet.json (trustd's URL and the sha256 of
its current root), fetches the root from trustd, checks it against that sha256,
shows its fingerprint and, once you confirm (--yes for scripts), pins it in
$SIGNET_HOME/trust/HOST/root.json. Every later verification starts from the pinned
root, as ssh trusts a known host key. Compare the fingerprint with one your
operators published; scripts pass it as --fingerprint, which pins only that
root and refuses any other, showing both fingerprints.`,
		Example: `  trustctl trust add 127.0.0.1:5000
  trustctl trust add registry.example.com --fingerprint SHA256:227514f1e166ad83...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			info, err := trust.DiscoverRoot(ctx, nil, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "The trust root of %s (trustd %s):\n  fingerprint  %s\n  version      %d, expires %s\n  root keys    %s\n",
				info.Registry, info.Trustd, info.Fingerprint(), info.Version, info.Expires, strings.Join(info.RootKeys, "\n               "))
			if info.Checked {
				fmt.Fprintln(os.Stderr, "  the registry names the same sha256.")
			} else {
				fmt.Fprintln(os.Stderr, "  the registry names no sha256 to check it against: compare the fingerprint yourself.")
			}
			if fingerprint != "" {
				if !info.HasFingerprint(fingerprint) {
					return fmt.Errorf("not pinned: the root of %s has fingerprint %s, not the expected %s: the registry or trustd serves another root than the one you were given (or the fingerprint is out of date)",
						info.Registry, info.Fingerprint(), fingerprint)
				}
				fmt.Fprintln(os.Stderr, "  the fingerprint is the one expected (--fingerprint).")
			} else if !yes {
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return errors.New("not pinned: confirm on a terminal, or pass --yes once you have compared the fingerprint")
				}
				answer, err := client.ReadLine(os.Stdin, os.Stderr, "Pin this root? [y/N] ", "--yes")
				if err != nil {
					return err
				}
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return errors.New("not pinned")
				}
			}
			home, err := client.SignetHome()
			if err != nil {
				return err
			}
			if err := trust.PinRoot(home, info); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(info)
			}
			fmt.Printf("Pinned the root of %s (%s).\n", info.Registry, info.Fingerprint())
			return nil
		},
	}
	add.Flags().BoolVarP(&yes, "yes", "y", false, "pin without asking (after comparing the fingerprint)")
	add.Flags().StringVar(&fingerprint, "fingerprint", "", "pin without asking if the root's fingerprint is this one (SHA256:<hex>, as add shows it), refuse otherwise: for scripts and CI")
	cmd.AddCommand(add)
	return cmd
}

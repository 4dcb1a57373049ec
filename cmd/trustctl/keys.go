package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/signer"
)

// keyStore opens the key store in $SIGNET_HOME/keys, asking for passphrases with
// $SIGNET_PASSPHRASE or the terminal.
func keyStore() (signer.KeyStore, string, error) {
	home, err := client.SignetHome()
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Join(home, "keys")
	return signer.NewFileKeyStore(dir, signer.Passphrase), dir, nil
}

// loadKey loads a signing key from the key store, warning on stderr when it is a
// development key.
func loadKey(ctx context.Context, ks signer.KeyStore, name string) (*signer.Key, error) {
	k, err := ks.Load(ctx, name)
	if err != nil {
		return nil, err
	}
	warnDevelopment(&k.KeyInfo)
	return k, nil
}

func warnDevelopment(k *signer.KeyInfo) {
	if w := k.DevelopmentWarning(); w != "" {
		fmt.Fprintln(os.Stderr, w)
	}
}

func newKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage signing keys in $SIGNET_HOME/keys",
		Long: `Signing keys live in $SIGNET_HOME/keys (default ~/.signet/keys): NAME.key is the
private key, encrypted with a passphrase in sigstore's format (cosign reads it:
COSIGN_PASSWORD=... cosign sign --key NAME.key), NAME.pub the public key. The
passphrase comes from $SIGNET_PASSPHRASE, else is asked on the terminal.
Keys named dev-* are development keys made by trustctl up: not encrypted, not
for anything that matters.`,
	}
	var alg string
	generate := &cobra.Command{
		Use:     "generate NAME",
		Short:   "Generate a key pair (refuses a name that exists)",
		Example: `  SIGNET_PASSPHRASE=... trustctl keys generate alice`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, dir, err := keyStore()
			if err != nil {
				return err
			}
			info, err := ks.Generate(cmd.Context(), args[0], signer.Algorithm(alg))
			if err != nil {
				return err
			}
			warnDevelopment(info)
			if g.output == "json" {
				return printJSON(info)
			}
			fmt.Printf("Generated key %s (%s)\n  TUF key ID: %s\n  private:    %s\n  public:     %s\n",
				info.Name, info.Algorithm, info.ID,
				filepath.Join(dir, info.Name+".key"), filepath.Join(dir, info.Name+".pub"))
			return nil
		},
	}
	generate.Flags().StringVar(&alg, "algorithm", string(signer.DefaultAlgorithm), fmt.Sprintf("key algorithm: one of %v", signer.Algorithms()))

	list := &cobra.Command{
		Use:   "list",
		Short: "List the keys: name, TUF key ID, algorithm",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ks, _, err := keyStore()
			if err != nil {
				return err
			}
			keys, err := ks.List(cmd.Context())
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(keys)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKEY ID\tALGORITHM\t")
			for _, k := range keys {
				dev := ""
				if k.Development {
					dev = "development"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, k.ID, k.Algorithm, dev)
			}
			return tw.Flush()
		},
	}

	export := &cobra.Command{
		Use:     "export NAME",
		Short:   "Print a key's public key (PEM) on stdout",
		Example: `  trustctl keys export alice > alice.pub`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, _, err := keyStore()
			if err != nil {
				return err
			}
			info, err := ks.Public(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			warnDevelopment(info)
			_, err = os.Stdout.Write(info.PublicPEM)
			return err
		},
	}
	cmd.AddCommand(generate, list, export)
	return cmd
}

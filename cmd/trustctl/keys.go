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
	"github.com/signet-oss/signet/signer/agent"
)

// keyStore opens the key store in $SIGNET_HOME/keys, asking for passphrases with
// $SIGNET_PASSPHRASE or the terminal, behind the signing agent when
// $SIGNET_AGENT_SOCK is set.
func keyStore() (signer.KeyStore, string, error) {
	home, err := client.SignetHome()
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Join(home, "keys")
	return agent.Wrap(signer.NewFileKeyStore(dir, signer.Passphrase)), dir, nil
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
Keys are ECDSA P-256 unless --algorithm asks for ed25519 or rsa-pss-3072; keys
import imports a key cosign generated. Keys named dev-* are development keys
made by trustctl up: not encrypted, not for anything that matters.

With --pkcs11 URI (RFC 7512), generate makes the key inside a hardware token
(an HSM, a YubiKey, SoftHSM2) and import takes a key already there: the store
keeps NAME.pkcs11, the URI without the PIN, and NAME.pub; the private key never
leaves the token and no command can write it out. The PIN comes from the URI
(pin-value, or pin-source=file:PATH), else $SIGNET_PKCS11_PIN, else the
terminal; one login is tried per command, never retried.`,
	}
	var alg, pkcs11URI, importURI string
	generate := &cobra.Command{
		Use:   "generate NAME",
		Short: "Generate a key pair (refuses a name that exists)",
		Example: `  SIGNET_PASSPHRASE=... trustctl keys generate alice
  SIGNET_PASSPHRASE=... trustctl keys generate bob --algorithm ed25519
  SIGNET_PKCS11_PIN=... trustctl keys generate release \
    --pkcs11 'pkcs11:token=signet?module-path=/usr/lib/softhsm/libsofthsm2.so'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, dir, err := keyStore()
			if err != nil {
				return err
			}
			if pkcs11URI != "" {
				info, err := tokenKeys(ks).GenerateInToken(cmd.Context(), args[0], pkcs11URI, signer.Algorithm(alg))
				return printTokenKey(g, "Generated", info, dir, err)
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
	generate.Flags().StringVar(&alg, "algorithm", string(signer.DefaultAlgorithm), fmt.Sprintf("key algorithm: one of %v (in a token: %v)", signer.Algorithms(), signer.TokenAlgorithms()))
	generate.Flags().StringVar(&pkcs11URI, "pkcs11", "", "generate the key inside the PKCS#11 token this RFC 7512 URI names (pkcs11:token=LABEL[;object=LABEL]?module-path=MODULE.so)")

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
				if k.PKCS11 != "" {
					dev = "token"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, k.ID, k.Algorithm, dev)
			}
			return tw.Flush()
		},
	}

	export := &cobra.Command{
		Use:     "export NAME",
		Short:   "Print a key's public key (PEM) on stdout; a private key is never exported",
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
			if g.output == "json" {
				return printJSON(exportedKey{info, string(info.PublicPEM)})
			}
			_, err = os.Stdout.Write(info.PublicPEM)
			return err
		},
	}
	var cosignKey string
	importCmd := &cobra.Command{
		Use:   "import NAME --cosign cosign.key | --pkcs11 URI",
		Short: "Import a cosign private key, re-encrypted with a Signet passphrase, or a key in a PKCS#11 token",
		Long: `Reads a private key written by cosign generate-key-pair (ECDSA P-256 by default;
Ed25519 and RSA 3072 keys are taken too), decrypts it with its cosign password
($COSIGN_PASSWORD, else asked on the terminal) and stores it under NAME encrypted
with a Signet passphrase ($SIGNET_PASSPHRASE, else asked twice). The key keeps
its public key, so what cosign signed with it still verifies.

With --pkcs11 URI it records a key pair already in a token, named by the URI's
object (its label) and/or id, and signs with it there.`,
		Example: `  COSIGN_PASSWORD=... SIGNET_PASSPHRASE=... trustctl keys import alice --cosign cosign.key
  SIGNET_PKCS11_PIN=... trustctl keys import ci \
    --pkcs11 'pkcs11:token=ci;object=signing?module-path=/usr/lib/softhsm/libsofthsm2.so'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (cosignKey == "") == (importURI == "") {
				return fmt.Errorf("say which key to import: --cosign PATH (the cosign.key file) or --pkcs11 URI (a key in a token)")
			}
			if importURI != "" {
				ks, dir, err := keyStore()
				if err != nil {
					return err
				}
				info, err := tokenKeys(ks).ImportFromToken(cmd.Context(), args[0], importURI)
				return printTokenKey(g, "Imported", info, dir, err)
			}
			if err := signer.ValidateName(args[0]); err != nil {
				return err
			}
			keyPEM, err := os.ReadFile(cosignKey)
			if err != nil {
				return err
			}
			password, err := signer.CosignPassphrase()
			if err != nil {
				return err
			}
			priv, err := signer.ParseCosignPrivateKey(keyPEM, password)
			if err != nil {
				return fmt.Errorf("%s: %w", cosignKey, err)
			}
			ks, dir, err := keyStore()
			if err != nil {
				return err
			}
			info, err := ks.Import(cmd.Context(), args[0], priv)
			if err != nil {
				return err
			}
			warnDevelopment(info)
			if g.output == "json" {
				return printJSON(info)
			}
			fmt.Printf("Imported key %s (%s) from %s\n  TUF key ID: %s\n  private:    %s\n  public:     %s\n",
				info.Name, info.Algorithm, cosignKey, info.ID,
				filepath.Join(dir, info.Name+".key"), filepath.Join(dir, info.Name+".pub"))
			return nil
		},
	}
	importCmd.Flags().StringVar(&cosignKey, "cosign", "", "the cosign private key file to import (cosign.key)")
	importCmd.Flags().StringVar(&importURI, "pkcs11", "", "record the key pair in the PKCS#11 token this RFC 7512 URI names (its object and/or id)")

	cmd.AddCommand(generate, list, export, importCmd)
	return cmd
}

// tokenKeys is the key store's side for keys in a PKCS#11 token.
func tokenKeys(ks signer.KeyStore) signer.TokenKeyStore {
	return ks.(signer.TokenKeyStore) // NewFileKeyStore's stores are
}

// printTokenKey reports a key entry made for a key in a token.
func printTokenKey(g *globals, verb string, info *signer.KeyInfo, dir string, err error) error {
	if err != nil {
		return err
	}
	if g.output == "json" {
		return printJSON(info)
	}
	fmt.Printf("%s key %s (%s) in a PKCS#11 token: the private key stays there\n  TUF key ID: %s\n  token key:  %s\n  public:     %s\n",
		verb, info.Name, info.Algorithm, info.ID, info.PKCS11, filepath.Join(dir, info.Name+".pub"))
	return nil
}

// exportedKey is what keys export prints with --output json: the key's entry
// and its public key in PEM.
type exportedKey struct {
	*signer.KeyInfo
	PublicKey string `json:"publicKey"`
}

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-oss/signet/client/notation"
	"github.com/signet-oss/signet/client/signed"
	"github.com/signet-oss/signet/reference"
)

func newNotationCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notation",
		Short: "Sign with notation using Signet keys, and verify with notation against the trust graph",
		Long: `notation (the Notary Project CLI) signs and verifies with X.509 certificates;
Signet's trust graph delegates keys. These commands bridge the two:

  setup KEY          makes KEY's certificate (once; kept as $SIGNET_HOME/keys/KEY.crt),
                     installs the notation-signet plugin into notation and registers
                     KEY with it, so that notation sign --key KEY signs with the Signet
                     key, which never leaves Signet's key store in the clear;
  policy REPO...     writes a notation trust store and trust policy holding the
                     certificates of exactly the keys the trust graph delegates for
                     each repository now, for notation verify on its own.

Limits: notation cannot use Ed25519 keys (nor Signet's RSA keys, which sign with
one scheme notation does not use for them): use ECDSA P-256 keys, the default.
A certificate's validity (10 years) is a second expiry besides the trust
graph's. A standalone notation verify sees revocations only when trustctl
notation policy is run again; the registry's gate sees them at once.`,
	}
	cmd.AddCommand(newNotationSetupCmd(g), newNotationPolicyCmd(g))
	return cmd
}

// findPlugin finds the notation-signet plugin: next to trustctl (they are
// built and shipped together), else on PATH.
func findPlugin() (string, error) {
	const file = "notation-" + notation.PluginName
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), file)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(file); err == nil {
		return filepath.Abs(p)
	}
	return "", fmt.Errorf("no %s next to trustctl or on PATH: build it (make build) or name it with --plugin PATH", file)
}

func newNotationPolicyCmd(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "policy HOST/ORG/REPO...",
		Short: "Write a notation trust store and trust policy from the trust graph",
		Long: `policy reads, for each repository, the keys the trust graph delegates it to now
(verified from the root pinned by trustctl trust add), finds each key's
certificate, and writes into notation's configuration directory ($NOTATION_CONFIG,
else ~/.config/notation; or --dir):

  truststore/x509/ca/<store>/<TUF key ID>.crt   exactly the delegated keys' certificates
  trustpolicy.json                              one statement per repository,
                                                "signet:HOST/ORG/REPO", strict, that store

A certificate comes from the local key store (a key's own, trustctl notation
setup makes it), or, for another signer's key, from that signer's notation
signatures in the registry: it is taken only if its public key's TUF key ID is
delegated for the repository and the signature verifies with it. A delegated
key with no certificate anywhere is listed: its holder runs trustctl notation
setup and signs once with notation.

Run it again after delegations change: notation on its own keeps trusting what
was written last. Statements of your own for other scopes are kept.`,
		Example: `  trustctl notation policy 127.0.0.1:5000/acme/app
  notation verify 127.0.0.1:5000/acme/app@sha256:...`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if dir == "" {
				d, err := notation.ConfigDir()
				if err != nil {
					return err
				}
				dir = d
			}
			ks, keyDir, err := keyStore()
			if err != nil {
				return err
			}
			local, err := ks.List(ctx)
			if err != nil {
				return err
			}
			col := &notation.Collector{KeyDir: keyDir, Local: local}
			var repos []notation.Repository
			var out []notationPolicyRepo
			clients := map[string]*signed.Client{}
			for _, arg := range args {
				host, repo, ok := strings.Cut(arg, "/")
				if !ok || !strings.ContainsAny(host, ".:") && host != "localhost" {
					return fmt.Errorf("%q: name the repository as HOST/ORG/REPO", arg)
				}
				if err := reference.ValidateEnforcedName(repo); err != nil {
					return fmt.Errorf("%q: %w", arg, err)
				}
				c := clients[host]
				if c == nil {
					if c, err = signed.NewClient(ctx, host); err != nil {
						return err
					}
					clients[host] = c
				}
				d, err := c.Delegation(ctx, repo)
				if err != nil {
					return &exitError{code: signed.Code(err), err: err}
				}
				r, err := c.Repository(ctx, repo)
				if err != nil {
					return err
				}
				trusted, missing, err := col.Collect(ctx, d.KeyIDs, r, d.Digests)
				if err != nil {
					return &exitError{code: signed.Code(err), err: err}
				}
				repos = append(repos, notation.Repository{Scope: arg, Certificates: trusted})
				pr := notationPolicyRepo{Scope: arg, Store: notation.StoreName(arg), Missing: missing}
				for _, t := range trusted {
					pr.Trusted = append(pr.Trusted, notationTrusted{KeyID: t.KeyID, From: t.From, NotAfter: t.Certificate.NotAfter})
				}
				out = append(out, pr)
			}
			if err := notation.WriteTrustPolicy(dir, repos); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(struct {
					Dir          string               `json:"dir"`
					Repositories []notationPolicyRepo `json:"repositories"`
				}{dir, out})
			}
			fmt.Printf("Wrote %s\n", notation.PolicyPath(dir))
			for _, r := range out {
				fmt.Printf("%s: trust store ca:%s, %d certificate(s)\n", r.Scope, r.Store, len(r.Trusted))
				for _, t := range r.Trusted {
					fmt.Printf("  %s  from %s, valid until %s\n", t.KeyID, t.From, t.NotAfter.Format(time.DateOnly))
				}
				for _, id := range r.Missing {
					fmt.Printf("  %s  delegated, but no certificate found: its holder runs trustctl notation setup and signs with notation once (an Ed25519 key cannot)\n", id)
				}
				if len(r.Trusted) == 0 {
					fmt.Printf("  warning: notation verify will accept no signature in %s\n", r.Scope)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "notation's configuration directory to write into (default: $NOTATION_CONFIG, else the user's notation directory)")
	return cmd
}

// notationPolicyRepo is what policy reports of one repository.
type notationPolicyRepo struct {
	Scope   string            `json:"scope"`
	Store   string            `json:"trustStore"`
	Trusted []notationTrusted `json:"trusted"`
	Missing []string          `json:"missing,omitempty"`
}

type notationTrusted struct {
	KeyID    string    `json:"keyID"`
	From     string    `json:"from"`
	NotAfter time.Time `json:"notAfter"`
}

package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-oss/signet/client/notation"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/signer/agent"
)

// notationSetupOptions are setup's flags.
type notationSetupOptions struct {
	pluginPath, notationPath, passphraseFile string
	renew, printOnly                         bool
}

// notationSetup is what setup did, printed as text or with --output json.
type notationSetup struct {
	Key         string    `json:"key"`
	KeyID       string    `json:"keyId"`
	Certificate string    `json:"certificate"`
	NotAfter    time.Time `json:"notAfter"`
	// Commands are the notation commands setup ran, or that the user is to run
	// (Installed false).
	Commands     []string `json:"commands"`
	Installed    bool     `json:"installed"`
	AlreadyAdded bool     `json:"alreadyAdded,omitempty"`
}

func newNotationSetupCmd(g *globals) *cobra.Command {
	var o notationSetupOptions
	cmd := &cobra.Command{
		Use:   "setup KEY",
		Short: "Make KEY's certificate, install the notation-signet plugin and register KEY with notation",
		Long: `setup loads KEY (an ECDSA P-256 key; its passphrase from SIGNET_PASSPHRASE or
the terminal), makes its self-signed code-signing certificate if it has none
(subject CN=KEY, valid 10 years; --renew makes a new one), then runs

  notation plugin install --file PATH/notation-signet --force
  notation key add --plugin signet --id KEY KEY

with the notation on PATH (or --notation), or prints them with --print or when
there is no notation. The plugin is found next to trustctl, else on PATH, or
given with --plugin. Notation then signs with

  notation sign --key KEY HOST/REPO@DIGEST

the plugin asking for KEY's passphrase on the terminal, or reading it from
SIGNET_PASSPHRASE or from the file named by --passphrase-file here (kept in
notation's key configuration as the plugin config passphrase-file=PATH).`,
		Example: `  trustctl notation setup alice
  trustctl notation setup alice --passphrase-file ~/.signet/alice.pass --print`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := runNotationSetup(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(res)
			}
			fmt.Printf("Certificate of key %s: %s (TUF key ID %s, valid until %s)\n",
				res.Key, res.Certificate, res.KeyID, res.NotAfter.Format(time.DateOnly))
			switch {
			case !res.Installed:
				fmt.Printf("Run:\n  %s\n", strings.Join(res.Commands, "\n  "))
			default:
				if res.AlreadyAdded {
					fmt.Printf("notation already has a key named %s (notation key ls shows it).\n", res.Key)
				}
				fmt.Printf("Installed the notation plugin %s and added key %s: notation sign --key %s HOST/REPO@DIGEST signs with it.\n", notation.PluginName, res.Key, res.Key)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.pluginPath, "plugin", "", "the notation-signet plugin file (default: next to trustctl, else on PATH)")
	cmd.Flags().StringVar(&o.notationPath, "notation", "", "the notation CLI to run (default: notation on PATH)")
	cmd.Flags().StringVar(&o.passphraseFile, "passphrase-file", "", "a file holding KEY's passphrase, for the plugin to read when notation signs")
	cmd.Flags().BoolVar(&o.renew, "renew", false, "make a new certificate even if KEY has one")
	cmd.Flags().BoolVar(&o.printOnly, "print", false, "print the notation commands instead of running them")
	return cmd
}

// runNotationSetup makes name's certificate and installs the plugin and the key
// into notation, or only says how when there is no notation or o.printOnly.
func runNotationSetup(ctx context.Context, name string, o notationSetupOptions) (*notationSetup, error) {
	ks, dir, err := keyStore()
	if err != nil {
		return nil, err
	}
	if o.passphraseFile != "" {
		// The file the plugin will read serves this load too.
		ks = agent.Wrap(signer.NewFileKeyStore(dir, func(bool) ([]byte, error) { return notation.ReadPassphraseFile(o.passphraseFile) }))
	}
	info, err := ks.Public(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := notation.CheckKey(info); err != nil {
		return nil, err
	}
	key, err := loadKey(ctx, ks, name)
	if err != nil {
		return nil, err
	}
	cert, err := notation.Certificate(ctx, dir, key, time.Now(), o.renew)
	if err != nil {
		return nil, err
	}
	if o.pluginPath == "" {
		if o.pluginPath, err = findPlugin(); err != nil {
			return nil, err
		}
	}
	install := []string{"plugin", "install", "--file", o.pluginPath, "--force"}
	add := []string{"key", "add", "--plugin", notation.PluginName, "--id", name}
	if o.passphraseFile != "" {
		abs, err := filepath.Abs(o.passphraseFile)
		if err != nil {
			return nil, err
		}
		add = append(add, "--plugin-config", notation.PassphraseFileConfig+"="+abs)
	}
	add = append(add, name)
	res := &notationSetup{Key: name, KeyID: info.ID, Certificate: notation.CertificatePath(dir, name), NotAfter: cert.NotAfter}
	for _, a := range [][]string{install, add} {
		res.Commands = append(res.Commands, "notation "+strings.Join(a, " "))
	}
	if o.notationPath == "" && !o.printOnly {
		o.notationPath, _ = exec.LookPath("notation")
	}
	if o.notationPath == "" || o.printOnly {
		return res, nil
	}
	for _, a := range [][]string{install, add} {
		out, err := exec.CommandContext(ctx, o.notationPath, a...).CombinedOutput()
		if err != nil && a[0] == "key" && strings.Contains(string(out), "already exists") {
			res.AlreadyAdded = true
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("notation %s: %v\n%s", strings.Join(a, " "), err, out)
		}
	}
	res.Installed = true
	return res, nil
}

// Command trustctl is Signet's CLI: it starts a local stack (up), logs in the way
// docker does (login), and manages accounts, organisations and robot tokens through
// trustd's API. Its logic lives in package client; this command is wiring only.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/internal/version"
	"github.com/spf13/cobra"
)

func main() {
	ctx, caught := interruptible(context.Background())
	root := newRootCmd()
	// One probe per loopback registry for the process (client.BaseURL).
	cmd, err := root.ExecuteContextC(client.WithSchemeCache(ctx))
	if err != nil {
		os.Exit(reportError(root, cmd, err, caught()))
	}
}

// globals are the flags every command shares.
type globals struct {
	registry string
	output   string
	cacert   string
	// clientCert and clientKey are the client certificate trustctl presents to
	// servers that ask for one (trustd with tls.clientCA).
	clientCert, clientKey string
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "trustctl",
		Short: "Signet's CLI: run a local stack, log in, manage organisations and tokens",
		Long: `trustctl runs a local Signet stack (trustctl up), logs in to a Signet registry
the way docker does (trustctl login), and manages users, organisations and robot
tokens through trustd.

It keeps its login in $SIGNET_HOME/config.json (default ~/.signet), a docker
config file: DOCKER_CONFIG=$SIGNET_HOME makes docker, crane and oras use it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "text" && g.output != "json" {
				return fmt.Errorf("--output: %q is not text or json", g.output)
			}
			if g.cacert != "" {
				if err := trustCA(g.cacert); err != nil {
					return err
				}
			}
			return useClientCert(g.clientCert, g.clientKey)
		},
	}
	root.PersistentFlags().StringVar(&g.registry, "registry", "", "the Signet registry (host:port) to act on (default: the one last logged in to, from $SIGNET_HOME)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	root.PersistentFlags().StringVar(&g.cacert, "cacert", "", "PEM CA certificates to trust, besides the system's, for HTTPS to registries and trustd (SSL_CERT_FILE replaces the system's instead)")
	root.PersistentFlags().StringVar(&g.clientCert, "client-cert", "", "PEM client certificate to present to servers that ask for one (trustd with tls.clientCA), with --client-key")
	root.PersistentFlags().StringVar(&g.clientKey, "client-key", "", "PEM private key of --client-cert")
	root.AddCommand(newUpCmd(), newLoginCmd(g), newUserCmd(g), newOrgCmd(g), newTokenCmd(g))
	root.AddCommand(newKeysCmd(g), newAgentCmd(g))
	root.AddCommand(newInitCmd(g), newSignCmd(g), newTrustCmd(g), newRootRoleCmd(g), newTargetsCmd(g))
	root.AddCommand(newPushCmd(g), newCopyCmd(g), newVerifyCmd(g), newPullCmd(g))
	root.AddCommand(newAuditCmd(g), newPolicyCmd(g))
	root.AddCommand(newNotationCmd(g))
	addEverydayCmds(root, g)
	version.Attach(root, &g.output)
	addCompletions(root, g)
	strictUsage(root)
	return root
}

// trustd opens an authenticated trustd client from the login in $SIGNET_HOME.
func (g *globals) trustd(ctx context.Context) (*client.Trustd, error) {
	home, err := client.LoadHome()
	if err != nil {
		return nil, err
	}
	return client.OpenTrustd(ctx, home, g.registry, &client.TokenClient{})
}

// registryName is the registry the commands act on, for the lines they print:
// --registry, else the one last logged in to.
func (g *globals) registryName() string {
	if g.registry != "" {
		return g.registry
	}
	if home, err := client.LoadHome(); err == nil && home.Signet().Registry != "" {
		return home.Signet().Registry
	}
	return "REGISTRY"
}

// printJSON writes v as indented JSON on stdout.
func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

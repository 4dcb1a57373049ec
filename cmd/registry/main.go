// Command registry serves Signet's OCI Distribution registry.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/signet-oss/signet/registry"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "registry:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "registry",
		Short:         "Signet's OCI Distribution registry",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd())
	return root
}

func newServeCmd() *cobra.Command {
	var configPath, addr, data, storageDriver, trustdURL string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the registry API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := registry.LoadConfig(configPath)
			if err != nil {
				return err
			}
			flags := cmd.Flags()
			if flags.Changed("addr") {
				cfg.Addr = addr
			}
			if flags.Changed("data") {
				cfg.Data = data
			}
			if flags.Changed("storage") {
				cfg.Storage.Driver = storageDriver
			}
			if flags.Changed("trustd") {
				if cfg.Auth.Token == nil {
					cfg.Auth.Token = &registry.TokenAuthConfig{}
				}
				cfg.Auth.Token.Trustd = trustdURL
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return registry.Serve(ctx, cfg, cfg.Log.NewLogger(os.Stderr))
		},
	}
	def := registry.Defaults()
	cmd.Flags().StringVar(&configPath, "config", "", "YAML configuration file (every key is documented in the README)")
	cmd.Flags().StringVar(&addr, "addr", def.Addr, "listen address (port 0 picks a free port)")
	cmd.Flags().StringVar(&data, "data", def.Data, "data directory of the filesystem driver")
	cmd.Flags().StringVar(&storageDriver, "storage", def.Storage.Driver, "storage driver: filesystem or inmemory")
	cmd.Flags().StringVar(&trustdURL, "trustd", "", "trust service URL: turns on token authentication, with /token passed to it")
	return cmd
}

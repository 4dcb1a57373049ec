// Command trustd serves Signet's trust service: accounts, organisations, robots,
// grants and the token endpoint.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-oss/signet/internal/version"
	"github.com/signet-oss/signet/storage/driver/driverconfig"
	"github.com/signet-oss/signet/trustd"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "trustd:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "trustd",
		Short:         "Signet's trust service and token server",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newBackupCmd(), newRestoreCmd())
	version.Attach(root, nil)
	return root
}

func newServeCmd() *cobra.Command {
	var shutdownTimeout time.Duration
	var configPath, addr, data, metricsAddr string
	var storage driverconfig.Flags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the token endpoint and the management API",
		Long: `Serve the token endpoint and the management API.

On first start trustd creates the admin account: its name is adminUser
(SIGNET_ADMIN_USER), its password adminPassword (SIGNET_ADMIN_PASSWORD), or,
when neither is set, a generated one printed once on stderr.

Behind a registry's /token, give both the same proxy secret (proxySecret here,
auth.token.proxySecret there, or SIGNET_PROXY_SECRET for both): only then does
trustd believe the client address the registry forwards, and limit failed
logins per client rather than per registry.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := trustd.LoadConfig(configPath)
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
			storage.Apply(flags, &cfg.Storage)
			if flags.Changed("shutdown-timeout") {
				cfg.ShutdownTimeout = shutdownTimeout
			}
			if flags.Changed("metrics-addr") {
				cfg.Metrics.Addr = metricsAddr
			}
			for flag, key := range map[string]*string{"tls-cert": &cfg.TLS.Cert, "tls-key": &cfg.TLS.Key, "tls-client-ca": &cfg.TLS.ClientCA} {
				if flags.Changed(flag) {
					*key, _ = flags.GetString(flag)
				}
			}
			if flags.Changed("tls-require-client-cert") {
				cfg.TLS.RequireClientCert, _ = flags.GetBool("tls-require-client-cert")
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return trustd.Serve(ctx, cfg, cfg.Log.NewLogger(os.Stderr))
		},
	}
	def := trustd.Defaults()
	cmd.Flags().StringVar(&configPath, "config", "", "YAML configuration file (every key is documented in trustd/config.go)")
	cmd.Flags().StringVar(&addr, "addr", def.Addr, "listen address (port 0 picks a free port)")
	cmd.Flags().StringVar(&data, "data", def.Data, "data directory of the filesystem driver")
	storage.Register(cmd.Flags(), def.Storage.Driver)
	cmd.Flags().DurationVar(&shutdownTimeout, "shutdown-timeout", def.ShutdownTimeout, "how long SIGTERM lets requests in flight finish before cutting them off")
	cmd.Flags().StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (default off; port 0 picks a free port)")
	cmd.Flags().String("tls-cert", "", "PEM certificate chain: serve HTTPS (reloaded when the file changes)")
	cmd.Flags().String("tls-key", "", "PEM private key of --tls-cert")
	cmd.Flags().String("tls-client-ca", "", "PEM CA bundle client certificates are verified against: a verified one authenticates the management API as its CommonName's account")
	cmd.Flags().Bool("tls-require-client-cert", false, "the management API refuses requests without a verified client certificate (needs --tls-client-ca)")
	return cmd
}

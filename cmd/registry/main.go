// Command registry serves Signet's OCI Distribution registry.
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signet-oss/signet/internal/version"
	"github.com/signet-oss/signet/registry"
	"github.com/signet-oss/signet/storage/driver/driverconfig"
	"github.com/signet-oss/signet/ui"
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
	root.AddCommand(newServeCmd(), newGCCmd(), newNotificationsCmd())
	version.Attach(root, nil)
	return root
}

// configFlags are the flags every command that opens the store shares; each
// overrides its config key when given.
type configFlags struct {
	path, data string
	storage    driverconfig.Flags
}

func (f *configFlags) register(fs *pflag.FlagSet) {
	def := registry.Defaults()
	fs.StringVar(&f.path, "config", "", "YAML configuration file (every key is documented in the README)")
	fs.StringVar(&f.data, "data", def.Data, "data directory of the filesystem driver")
	f.storage.Register(fs, def.Storage.Driver)
}

func (f *configFlags) load(fs *pflag.FlagSet) (registry.Config, error) {
	cfg, err := registry.LoadConfig(f.path)
	if err != nil {
		return cfg, err
	}
	if fs.Changed("data") {
		cfg.Data = f.data
	}
	f.storage.Apply(fs, &cfg.Storage)
	return cfg, nil
}

func newServeCmd() *cobra.Command {
	var cf configFlags
	var addr, trustdURL, trustRoot, trustUser, metricsAddr string
	var tlsCert, tlsKey, tlsCA string
	var open []string
	var webUI bool
	var refresh, shutdownTimeout, maxStaleness time.Duration
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the registry API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := cmd.Flags()
			cfg, err := cf.load(flags)
			if err != nil {
				return err
			}
			if flags.Changed("addr") {
				cfg.Addr = addr
			}
			if flags.Changed("trustd") {
				if cfg.Auth.Token == nil {
					cfg.Auth.Token = &registry.TokenAuthConfig{}
				}
				cfg.Auth.Token.Trustd = trustdURL
			}
			if flags.Changed("trust-root") {
				cfg.Trust.Root = trustRoot
			}
			if flags.Changed("trust-user") {
				cfg.Trust.Username = trustUser
			}
			if flags.Changed("trust-refresh") {
				cfg.Trust.RefreshInterval = refresh
			}
			if flags.Changed("open") {
				cfg.Trust.Open = append(cfg.Trust.Open, open...)
			}
			if flags.Changed("shutdown-timeout") {
				cfg.ShutdownTimeout = shutdownTimeout
			}
			if flags.Changed("trust-max-staleness") {
				cfg.Trust.MaxStaleness = maxStaleness
			}
			if flags.Changed("metrics-addr") {
				cfg.Metrics.Addr = metricsAddr
			}
			for flag, key := range map[string]*string{"tls-cert": &cfg.TLS.Cert, "tls-key": &cfg.TLS.Key, "tls-ca": &cfg.TLS.CA} {
				if flags.Changed(flag) {
					*key, _ = flags.GetString(flag)
				}
			}
			if flags.Changed("ui") {
				cfg.UI.Disabled = !webUI
			}
			cfg.UI.New = newUI
			if err := cfg.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return registry.Serve(ctx, cfg, cfg.Log.NewLogger(os.Stderr))
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().StringVar(&addr, "addr", registry.Defaults().Addr, "listen address (port 0 picks a free port)")
	cmd.Flags().StringVar(&trustdURL, "trustd", "", "trust service URL: turns on token authentication, with /token passed to it")
	cmd.Flags().StringVar(&trustRoot, "trust-root", "", "pinned root.json: turns the admission gate on (every repository enforced but --open ones)")
	cmd.Flags().StringVar(&trustUser, "trust-user", "", "the registry's trustd account, to read every role (password: SIGNET_REGISTRY_PASSWORD)")
	cmd.Flags().DurationVar(&refresh, "trust-refresh", 30*time.Second, "how often the trust metadata is refreshed: revocation bites within it")
	cmd.Flags().DurationVar(&shutdownTimeout, "shutdown-timeout", registry.Defaults().ShutdownTimeout, "how long SIGTERM lets requests in flight finish before cutting them off")
	cmd.Flags().StringVar(&tlsCert, "tls-cert", "", "PEM certificate chain: serve HTTPS (reloaded when the file changes)")
	cmd.Flags().StringVar(&tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	cmd.Flags().StringVar(&tlsCA, "tls-ca", "", "PEM CA bundle trusted, besides the system's, for the calls to trustd")
	cmd.Flags().StringArrayVar(&open, "open", nil, "repository pattern admitted without signatures (repeatable; * one component, ** any)")
	cmd.Flags().DurationVar(&maxStaleness, "trust-max-staleness", 0, "how old the last trust refresh may grow before /readyz answers 503 (default 3 × --trust-refresh)")
	cmd.Flags().BoolVar(&webUI, "ui", true, "serve the web UI at /ui/ (needs --trustd; --ui=false turns it off, as ui.disabled does)")
	cmd.Flags().StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (default off; port 0 picks a free port)")
	return cmd
}

// newUI builds the web UI the registry mounts: it is set here, since the
// registry links no client code and the UI is a client.
func newUI(env registry.UIEnv) (http.Handler, error) {
	return ui.New(ui.Config{Registry: env.Registry, Trustd: env.Trustd, Transport: env.Transport, Secure: env.Secure,
		TrustRoot: env.TrustRoot, Open: env.Open, CacheDir: env.CacheDir, Log: env.Log,
		ClientHeader: registry.UIClientHeader, ClientSecret: env.ClientSecret})
}

func newGCCmd() *cobra.Command {
	var cf configFlags
	var dryRun, untagged bool
	var grace time.Duration
	var output string
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Collect garbage: unreferenced blobs, stale uploads and, with --untagged, untagged manifests",
		Long: "gc collects garbage online: the registry may keep serving and taking pushes meanwhile.\n" +
			"Nothing younger than the grace period is taken.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := cmd.Flags()
			cfg, err := cf.load(flags)
			if err != nil {
				return err
			}
			if flags.Changed("grace") {
				cfg.GC.Grace = grace
			}
			if flags.Changed("untagged") {
				cfg.GC.Untagged = untagged
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			store, err := registry.OpenStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			rep, err := store.GC(cmd.Context(), cfg.GC.Options(dryRun))
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(rep)
			}
			verb := "freed"
			if dryRun {
				verb = "would free"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %d bytes: %d blobs, %d blob links, %d manifests, %d upload sessions (%d repositories)\n",
				verb, rep.BytesFreed, rep.BlobsDeleted, rep.LinksDeleted, rep.ManifestsDeleted, rep.UploadsDeleted, rep.Repositories)
			return nil
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be freed, delete nothing")
	cmd.Flags().BoolVar(&untagged, "untagged", false, "also collect manifests that no tag reaches")
	cmd.Flags().DurationVar(&grace, "grace", registry.Defaults().GC.Grace, "minimum age of anything collected")
	cmd.Flags().StringVar(&output, "output", "text", "text or json")
	return cmd
}

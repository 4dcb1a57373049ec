package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/internal/atomicfile"
	"github.com/signet-oss/signet/internal/logging"
	"github.com/signet-oss/signet/internal/tlsserve"
	"github.com/signet-oss/signet/registry"
	"github.com/signet-oss/signet/tokenauth"
	"github.com/signet-oss/signet/trustd"
	"github.com/signet-oss/signet/ui"
	"github.com/spf13/cobra"
)

func newUpCmd() *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the registry and trustd together on embedded defaults, logged in as admin",
		Long: `up runs Signet's registry and trustd in one process, with their data under
--data (DIR/registry and DIR/trustd), the registry sending clients to trustd for
tokens. On the first start it creates the admin account: its password comes from
SIGNET_ADMIN_PASSWORD, or is generated and shown once. It logs in as admin and keeps
the login in $SIGNET_HOME/config.json (default ~/.signet), so the next trustctl
commands just work and DOCKER_CONFIG=$SIGNET_HOME lends it to docker, crane and oras.

It binds both addresses before it creates anything. A first start cut short (a
crash, a failure) is finished by the next one: what it set up is kept in
DIR/setup.json until every step is done. The stack keeps its identity across
restarts: its development trust root's keys live in DIR/keys, and when it starts
on other addresses than last time (recorded in DIR/up.json) the login and the pin
it keeps in $SIGNET_HOME move to the new ones.

Port 0 in an address picks a free port; the lines printed once both servers answer
name the ones chosen. The log says what happens (a push admitted or denied, and
why; a publish; a refused login), one line each; --log-level debug adds both
servers' own lines, every request among them.

With --tls both serve HTTPS with a development CA it makes in DIR/tls (reused on
the next start), and it prints how each client trusts that CA.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUp(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.data, "data", "./data", "data directory: the registry's under DIR/registry, trustd's under DIR/trustd")
	cmd.Flags().StringVar(&o.registryAddr, "registry-addr", "127.0.0.1:5000", "the registry's listen address")
	cmd.Flags().StringVar(&o.trustdAddr, "trustd-addr", "127.0.0.1:5001", "trustd's listen address")
	cmd.Flags().StringArrayVar(&o.open, "open", nil, "repository pattern the registry admits without signatures (repeatable; * one component, ** any); every other repository is enforced")
	cmd.Flags().BoolVar(&o.useTLS, "tls", false, "serve HTTPS with a development CA and server certificate kept in DIR/tls")
	cmd.Flags().DurationVar(&o.refresh, "trust-refresh", 30*time.Second, "how often the registry refreshes the trust metadata: revocation bites within it")
	cmd.Flags().StringVar(&o.metrics.registry, "metrics-addr", "", "serve the registry's Prometheus metrics at /metrics on this address (default off)")
	cmd.Flags().StringVar(&o.metrics.trustd, "trustd-metrics-addr", "", "serve trustd's Prometheus metrics at /metrics on this address (default off)")
	cmd.Flags().StringVar(&o.log.Level, "log-level", "info", "debug, info, warn or error: info is one line per event (push, denial, publish, refused login); debug adds both servers' own lines")
	cmd.Flags().StringVar(&o.log.Format, "log-format", "text", "text or json, as the servers' log.format")
	return cmd
}

// upOptions are up's flags.
type upOptions struct {
	data, registryAddr, trustdAddr string
	open                           []string
	refresh                        time.Duration
	metrics                        upMetrics
	useTLS                         bool
	log                            logging.Config
}

// upMetrics are the metrics listeners of up's two servers ("" for none).
type upMetrics struct{ registry, trustd string }

func runUp(ctx context.Context, o upOptions) error {
	data, err := filepath.Abs(o.data)
	if err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	log, err := newUpLogger(os.Stderr, o.log)
	if err != nil {
		return err
	}
	// Every address is bound before anything is created: a port in use fails
	// the start with nothing made, rather than after trustd made the admin.
	lns, err := bindUp(o)
	if err != nil {
		return err
	}
	defer lns.close()
	regAddr := lns.registry.Addr().String()
	scheme := "http://"
	var tlsFiles tlsserve.DevFiles
	if o.useTLS {
		if tlsFiles, err = upTLS(os.Stderr, data, o.registryAddr, o.trustdAddr); err != nil {
			return err
		}
		scheme = "https://"
	}
	trustdURL := scheme + lns.trustd.Addr().String()
	homeDir, err := client.SignetHome()
	if err != nil {
		return err
	}
	if err := moveStack(data, homeDir, regAddr, trustdURL); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	tcfg, err := trustd.LoadConfig("") // the defaults, with SIGNET_ADMIN_USER/PASSWORD applied
	if err != nil {
		return err
	}
	tcfg.Addr, tcfg.Data = lns.trustd.Addr().String(), filepath.Join(data, "trustd")
	// The registry's /token hop to trustd is authenticated by a secret made
	// for this run and held only in this process (SIGNET_PROXY_SECRET, when
	// set, overrides it on both sides): trustd then believes the client address
	// the registry forwards, and nothing else on the host can name one.
	proxySecret := tokenauth.ProxySecret(newProxySecret())
	tcfg.ProxySecret = proxySecret
	tcfg.Metrics.Addr = o.metrics.trustd
	setup, err := beginSetup(data, tcfg.Data, tcfg.AdminUser, tcfg.AdminPassword)
	if err != nil {
		return err
	}
	if setup != nil {
		tcfg.AdminPassword = setup.AdminPassword // the admin's, made with it by the first attempt
	}
	if o.useTLS {
		tcfg.TLS.Cert, tcfg.TLS.Key = tlsFiles.ServerCert, tlsFiles.ServerKey
	}
	if err := tcfg.Validate(); err != nil {
		return fmt.Errorf("trustd: %w", err)
	}

	tln := lns.take(&lns.trustd)
	td := startServer(ctx, "trustd listening", log.server("trustd"), func(ctx context.Context, log *slog.Logger) error {
		return trustd.ServeListener(ctx, tcfg, tln, log)
	})
	if _, err := td.waitAddr(ctx); err != nil {
		return setup.failed(fmt.Errorf("trustd: %w", err))
	}

	rcfg := registry.Defaults()
	rcfg.Addr, rcfg.Data = regAddr, filepath.Join(data, "registry")
	rcfg.Auth.Token = &registry.TokenAuthConfig{Trustd: trustdURL, ProxySecret: proxySecret}
	rcfg.Trust.Open, rcfg.Trust.RefreshInterval = o.open, o.refresh
	rcfg.Metrics.Addr = o.metrics.registry
	rcfg.Events = []registry.EventListener{log.registryEvent}
	rcfg.UI.New = newUI
	if o.useTLS {
		rcfg.TLS = registry.TLSConfig{Cert: tlsFiles.ServerCert, Key: tlsFiles.ServerKey, CA: tlsFiles.CACert}
	}
	// stop ends the servers started and returns the first error either gave.
	servers := []*server{td}
	stop := func(err error) error {
		cancel()
		for _, s := range servers {
			err = errors.Join(err, s.wait())
		}
		return setup.failed(err)
	}
	if err := setUpGate(ctx, &rcfg, regAddr, trustdURL, data, tcfg.AdminUser, tcfg.AdminPassword, setup != nil, log.events); err != nil {
		if setup != nil {
			return stop(err) // the first start must make the gate, or say why
		}
		log.events.Warn("the admission gate is off", "err", err)
	}
	if err := rcfg.Validate(); err != nil {
		return stop(fmt.Errorf("registry: %w", err))
	}
	rln := lns.take(&lns.registry)
	reg := startServer(ctx, "registry listening", log.server("registry"), func(ctx context.Context, log *slog.Logger) error {
		return registry.ServeListener(ctx, rcfg, rln, log)
	})
	servers = append(servers, reg)
	if _, err := reg.waitAddr(ctx); err != nil {
		return stop(fmt.Errorf("registry: %w", addrHint(err, "--registry-addr")))
	}

	readyCtx, readyCancel := context.WithTimeout(ctx, 30*time.Second)
	err = client.WaitReady(readyCtx, scheme+regAddr, trustdURL)
	readyCancel()
	if err != nil {
		return stop(err)
	}
	home, loggedIn, err := loginAdmin(ctx, regAddr, tcfg.AdminUser, tcfg.AdminPassword)
	if err != nil {
		return stop(err)
	}
	if err := setup.done(); err != nil {
		return stop(err)
	}

	password := ""
	if setup != nil && setup.Generated {
		password = setup.AdminPassword
	}
	printTryLines(os.Stdout, home.Path, scheme, regAddr, trustdURL, tcfg.AdminUser, password, loggedIn)
	if o.useTLS {
		printTLSLines(os.Stdout, tlsFiles, regAddr)
	}

	select {
	case <-ctx.Done():
		return stop(nil)
	case err := <-td.errc:
		td.errc <- err
		return stop(fmt.Errorf("trustd stopped: %w", err))
	case err := <-reg.errc:
		reg.errc <- err
		return stop(fmt.Errorf("registry stopped: %w", err))
	}
}

// loginAdmin logs in as the admin in $SIGNET_HOME when the password is known
// to this run, and otherwise says whether a login kept from an earlier run
// still works.
func loginAdmin(ctx context.Context, regAddr, user, password string) (home *client.ConfigFile, loggedIn bool, err error) {
	if home, err = client.LoadHome(); err != nil {
		return nil, false, err
	}
	if password == "" {
		_, err := client.OpenTrustd(ctx, home, regAddr, &client.TokenClient{})
		return home, err == nil, nil
	}
	res, err := client.Login(ctx, client.LoginOptions{
		Registry: regAddr, User: user, Password: password,
		Home: home, Tokens: &client.TokenClient{},
	})
	if err != nil {
		return nil, false, fmt.Errorf("logging in as %s: %w", user, err)
	}
	return home, res.Trustd != "", nil
}

// setUpGate turns the registry's admission gate on: on first start it makes the
// development trust root and the registry's own trustd account; every start pins
// the gate to the root pinned for the registry's address. resume is true while
// the first start's setup is unfinished: its steps are then run again, each
// taking up what an earlier attempt made.
func setUpGate(ctx context.Context, rcfg *registry.Config, regAddr, trustdURL, data, adminUser, adminPassword string, resume bool, log *slog.Logger) error {
	homeDir, err := client.SignetHome()
	if err != nil {
		return err
	}
	var td *client.Trustd
	if adminPassword != "" {
		if td, err = adminTrustd(ctx, trustdURL, adminUser, adminPassword); err != nil {
			return err
		}
	}
	if err := initDevTrust(ctx, os.Stdout, homeDir, data, regAddr, trustdURL, td); err != nil {
		if resume {
			return fmt.Errorf("the development trust root: %w", err)
		}
		log.Warn("no development trust root", "err", err)
	}
	// The registry keeps its own copy of the root it was first pinned to, so a
	// later `trust add` in the user's home does not move it.
	rootPath := filepath.Join(data, "registry-root.json")
	if _, err := os.Stat(rootPath); err != nil {
		root, err := trust.PinnedRoot(homeDir, regAddr)
		if err != nil {
			return err
		}
		if err := atomicfile.Write(rootPath, root, 0o600); err != nil {
			return err
		}
	}
	acct, err := ensureRegistryAccount(ctx, filepath.Join(data, "registry-account.json"), td, resume)
	if err != nil {
		return err
	}
	rcfg.Trust.Root, rcfg.Trust.Trustd = rootPath, trustdURL
	rcfg.Trust.Username, rcfg.Trust.Password = acct.Username, acct.Password
	return nil
}

// printTryLines prints the banner: where the stack is, the login, the
// generated admin password when this start finished the first start's setup
// (password; "" for none), and what to try.
func printTryLines(w io.Writer, homeConfig, scheme, regAddr, trustdURL, admin, password string, loggedIn bool) {
	homeDir := filepath.Dir(homeConfig)
	fmt.Fprintf(w, "Signet is up: registry %s, trustd %s\n", regAddr, trustdURL)
	if loggedIn {
		fmt.Fprintf(w, "Logged in as %s; the login is kept in %s.\n", admin, homeConfig)
	} else {
		fmt.Fprintf(w, "Not logged in (the admin password is not known to this run): trustctl login %s -u %s\n", regAddr, admin)
	}
	// After the login line: scripts read the two lines above as the banner.
	fmt.Fprintf(w, "Web UI: %s%s%s\n", scheme, regAddr, ui.Prefix)
	if password != "" {
		fmt.Fprintf(w, "\nCreated the admin account %q with this password, shown only once (set SIGNET_ADMIN_PASSWORD to choose it):\n\n    %s\n",
			admin, password)
	}
	fmt.Fprintf(w, `
The whole story in five lines (the registry admits only what the trust graph signs):
  trustctl keys generate alice                                  # a publisher key
  trustctl org create acme                                      # an org, delegated its namespace
  trustctl org delegate acme/app --key alice                    # alice may sign acme/app
  trustctl push ./image-layout %[1]s/acme/app:v1 --key alice     # signed push (an OCI layout or docker save tarball)
  trustctl pull %[1]s/acme/app:v1 ./pulled                      # verified pull

An unsigned push is refused: crane push image.tar %[1]s/acme/app:v2 gets DENIED.
Other clients use the same login: export DOCKER_CONFIG=%[2]s
`, regAddr, homeDir)
}

// addrHint adds what to do to a listen error on an address in use.
func addrHint(err error, flag string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		how := flag
		if v := makeVars[flag]; v != "" {
			how += " (make run " + v + "=ADDR)"
		}
		return fmt.Errorf("%w: another process listens there; choose another address with %s; port 0 picks a free one", err, how)
	}
	return err
}

// makeVars are the variables of `make run` that set up's address flags.
var makeVars = map[string]string{"--registry-addr": "REGISTRY_ADDR", "--trustd-addr": "TRUSTD_ADDR"}

// isEmptyDir reports whether dir is missing or holds nothing: trustd's first start.
func isEmptyDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	return errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0)
}

// newPassword returns 144 random bits, base64url: 24 characters.
func newPassword() string {
	var b [18]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newProxySecret returns 256 random bits, base64url.
func newProxySecret() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// server is one of the two servers up runs, in a goroutine.
type server struct {
	addrc chan string
	errc  chan error
}

// startServer runs serve with a logger that reports the addr of the record whose
// message is listening: that is how a port 0 becomes known.
func startServer(ctx context.Context, listening string, log *slog.Logger, serve func(context.Context, *slog.Logger) error) *server {
	s := &server{addrc: make(chan string, 1), errc: make(chan error, 1)}
	h := &addrWatcher{Handler: log.Handler(), msg: listening, addrc: s.addrc}
	go func() { s.errc <- serve(ctx, slog.New(h)) }()
	return s
}

func (s *server) waitAddr(ctx context.Context) (string, error) {
	select {
	case a := <-s.addrc:
		return a, nil
	case err := <-s.errc:
		if err == nil {
			err = errors.New("stopped before listening")
		}
		s.errc <- err
		return "", err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// wait returns the server's error once it has stopped.
func (s *server) wait() error {
	err := <-s.errc
	s.errc <- err
	return err
}

// addrWatcher passes every record on, and sends the addr attribute of the first
// record whose message is msg.
type addrWatcher struct {
	slog.Handler
	msg   string
	addrc chan string
}

func (h *addrWatcher) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "addr" {
				select {
				case h.addrc <- a.Value.String():
				default:
				}
				return false
			}
			return true
		})
	}
	return h.Handler.Handle(ctx, r)
}

func (h *addrWatcher) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &addrWatcher{Handler: h.Handler.WithAttrs(attrs), msg: h.msg, addrc: h.addrc}
}

func (h *addrWatcher) WithGroup(name string) slog.Handler {
	return &addrWatcher{Handler: h.Handler.WithGroup(name), msg: h.msg, addrc: h.addrc}
}

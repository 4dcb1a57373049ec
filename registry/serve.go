package registry

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/signet-oss/signet/audit/auditlog"
	"github.com/signet-oss/signet/internal/graceful"
	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/verify"
)

// Serve runs the registry until ctx is done, then drains requests in flight for
// up to cfg.ShutdownTimeout. It logs "registry listening" with the bound address
// once it accepts connections (an addr with port 0 gets a free port).
func Serve(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("addr: %w", err)
	}
	return ServeListener(ctx, cfg, ln, log)
}

// ServeListener is Serve on a listener the caller opened (cfg.Addr is not used):
// a caller that must know the registry's address before it starts, such as
// `trustctl up` pinning a trust root for it, binds first.
func ServeListener(ctx context.Context, cfg Config, ln net.Listener, log *slog.Logger) error {
	defer ln.Close()
	if err := cfg.Validate(); err != nil {
		return err
	}
	obs, err := newObservability(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer obs.Close()
	store, err := obs.openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("opening storage: %w", err)
	}
	tokenAuth := cfg.Auth.Token
	if tokenAuth != nil {
		rt, err := cfg.TLS.transport()
		if err != nil {
			return err
		}
		withTransport := *tokenAuth
		withTransport.Transport = rt
		tokenAuth = &withTransport
	}
	tlsCfg, err := cfg.TLS.serving().ServerConfig("tls", log)
	if err != nil {
		return err
	}
	api, err := NewServer(store, log, tokenAuth)
	if err != nil {
		return err
	}
	api.EnableAudit(auditlog.New(store.Driver(), AuditRoot, "registry"))
	for _, l := range cfg.Events {
		api.OnEvent(l)
	}
	index, err := openGate(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	if index != nil {
		api.EnableGate(index, cfg.Trust.Open, verify.CheckReferrer)
		interval := cfg.Trust.RefreshInterval
		if interval <= 0 {
			interval = 30 * time.Second
		}
		go api.gate.refreshLoop(ctx, interval)
		log.Info("admission gate on: every repository is enforced but the open ones", "open", cfg.Trust.Open, "refreshInterval", interval)
	} else {
		log.Warn("NO TRUST ROOT IS CONFIGURED: every repository admits unsigned content (set trust.root)")
	}
	uiCleanup, err := mountUI(api, cfg, ln.Addr(), tlsCfg != nil, log)
	if err != nil {
		return fmt.Errorf("ui: %w", err)
	}
	defer uiCleanup()
	if err := obs.attach(api, index, cfg); err != nil {
		return err
	}
	stopNotifications, err := startNotifications(ctx, cfg, store, api, ln.Addr(), log)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           obs.Handler(api),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if a := api.auth; a == nil {
		log.Warn("NO AUTHENTICATION IS CONFIGURED: anyone who reaches this address can push, pull and delete (set auth.token or --trustd)")
	} else {
		log.Info("token authentication on", "service", a.cfg.Service, "issuer", a.cfg.Issuer, "trustd", a.cfg.Trustd)
		if a.proxy != nil && !a.proxyAuthenticated {
			log.Warn("no auth.token.proxySecret: trustd limits failed logins through /token by this registry's address, not each client's; set the same secret as trustd's proxySecret")
		}
	}
	log.Info("registry listening", "addr", ln.Addr().String(), "storage", store.Driver().Name(), "tls", tlsCfg != nil)
	srv.TLSConfig = tlsCfg
	obs.Start(ctx)
	if cfg.GC.Interval > 0 {
		go collectGarbage(ctx, store, cfg.GC, log, obs.gcDone)
	}
	err = graceful.Serve(ctx, srv, ln, graceful.Config{Delay: cfg.ShutdownDelay, Timeout: cfg.ShutdownTimeout}, "registry", log)
	// The requests are done and their events queued: hand over the open pull
	// batch and deliver what is due, briefly; the rest stays queued for the
	// next start or another replica.
	sctx, cancel := context.WithTimeout(context.Background(), min(cfg.ShutdownTimeout, notifyStopTimeout))
	defer cancel()
	stopNotifications(sctx)
	return err
}

// notifyStopTimeout bounds the deliveries a stopping registry still makes.
const notifyStopTimeout = 5 * time.Second

// GCOptions turns the gc configuration into the store's options.
func (c GCConfig) Options(dryRun bool) storage.GCOptions {
	return storage.GCOptions{DryRun: dryRun, Grace: c.Grace, UploadGrace: c.UploadGrace, DeleteUntagged: c.Untagged}
}

// OpenStore opens the store cfg describes, for commands that work on it offline
// (registry gc).
func OpenStore(ctx context.Context, cfg Config) (*storage.Store, error) {
	d, err := cfg.Storage.Open(ctx, cfg.Data)
	if err != nil {
		return nil, err
	}
	return storage.New(ctx, d, storage.Options{MaxManifestSize: cfg.MaxManifestSize})
}

// collectGarbage runs a collection every cfg.Interval until ctx is done,
// telling done the outcome of each.
func collectGarbage(ctx context.Context, store *storage.Store, cfg GCConfig, log *slog.Logger, done func(*storage.GCReport, error)) {
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		rep, err := store.GC(ctx, cfg.Options(false))
		done(rep, err)
		if err != nil {
			log.Error("garbage collection failed", "err", err)
			continue
		}
		log.Info("garbage collected", "blobs", rep.BlobsDeleted, "bytes", rep.BytesFreed, "links", rep.LinksDeleted,
			"manifests", rep.ManifestsDeleted, "uploads", rep.UploadsDeleted, "dur", time.Since(start))
	}
}

// Package trustd is Signet's trust service over HTTP: the token endpoint that
// turns accounts into short-lived access tokens (distribution's token spec) for
// the registry and for trustd's own management API, the JWKS, the management API,
// the audit log's queries, and the routes of the TUF repository (package tuf).
// Who may do what (people, organisations and their members, robots, grants,
// refresh tokens) is package directory's: trustd authenticates requests, asks
// it, and maps its errors to the API's codes (errors.go). The management API's
// bodies are package api's.
//
// Its main invariant: a token never grants more than the subject's current rights
// allow (the intersection of what was asked and what is allowed), and a robot
// never more than the scopes it was made with.
package trustd

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/signet-oss/signet/audit/auditlog"
	"github.com/signet-oss/signet/internal/graceful"
	"github.com/signet-oss/signet/internal/logging"
	"github.com/signet-oss/signet/internal/requestid"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/tokenauth"
	"github.com/signet-oss/signet/trustd/directory"
	"github.com/signet-oss/signet/trustd/tuf"
)

// Serve runs trustd until ctx is done, then drains requests in flight for up to
// cfg.ShutdownTimeout. It logs "trustd listening" with the bound address once it
// accepts connections (an addr with port 0 gets a free port). A generated admin
// password is printed once on stderr, never to the logger.
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
// `trustctl up` binds every address it serves before it creates anything, so a
// port in use fails the start before trustd makes its admin account.
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
	tlsCfg, err := cfg.TLS.serving().ServerConfig("tls", log)
	if err != nil {
		return err
	}
	d, err := cfg.Storage.Open(ctx, cfg.Data)
	if err != nil {
		return fmt.Errorf("opening storage: %w", err)
	}
	d = obs.WrapDriver(d)
	s, err := New(ctx, cfg, d, log, os.Stderr)
	if err != nil {
		return err
	}
	if err := obs.attach(s, d); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           obs.Handler(s),
		ReadHeaderTimeout: 30 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("trustd listening", "addr", ln.Addr().String(), "storage", d.Name(), "issuer", cfg.Issuer, "kid", s.key.KeyID(), "tls", tlsCfg != nil)
	srv.TLSConfig = tlsCfg
	obs.Start(ctx)
	go s.pruneLoop(ctx, time.Hour)
	if cfg.ReloadInterval > 0 {
		go s.reloadLoop(ctx, cfg.ReloadInterval)
	}
	go s.tuf.Run(ctx)
	return graceful.Serve(ctx, srv, ln, graceful.Config{Delay: cfg.ShutdownDelay, Timeout: cfg.ShutdownTimeout}, "trustd", log)
}

// Server is trustd's HTTP API: the token endpoint, the JWKS, the management API
// and the TUF repository's routes. Who may do what is the directory's to say
// (package directory); the server authenticates requests, asks it, and answers.
type Server struct {
	ids      *requestid.Source
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	dir      *directory.Directory
	key      *tokenauth.SigningKey
	issuer   *tokenauth.Issuer
	verifier *tokenauth.Verifier
	jwks     []byte
	proxies  []netip.Prefix
	router   *mux.Router
	tuf      *tuf.Repo
	audit    *auditlog.Log // see audit.go

	// proxySecret is the sha256 of the registry's proxy secret, nil without one.
	proxySecret []byte
}

// New loads trustd's state from d: the signing key (made on first start), every
// record, and the admin account (made on first start; a generated password is
// written once to notice).
func New(ctx context.Context, cfg Config, d driver.Driver, log *slog.Logger, notice io.Writer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	proxies, _ := parsePrefixes(cfg.TrustedProxies)
	s := &Server{
		ids:     requestid.NewSource(),
		cfg:     cfg,
		log:     log,
		now:     time.Now,
		proxies: proxies,
		audit:   auditlog.New(d, auditRoot, "trustd"),
	}
	if secret, err := tokenauth.LoadProxySecret("proxySecret", cfg.ProxySecret, cfg.ProxySecretFile); err != nil {
		return nil, err
	} else if secret != "" {
		sum := sha256.Sum256([]byte(secret))
		s.proxySecret = sum[:]
	}
	var err error
	if s.key, err = loadSigningKey(ctx, d); err != nil {
		return nil, err
	}
	s.issuer = &tokenauth.Issuer{Name: cfg.Issuer, Key: s.key, TTL: cfg.TokenTTL, Now: s.clock}
	s.verifier = tokenauth.NewVerifier(cfg.Issuer, cfg.Service, tokenauth.StaticKeySet(tokenauth.JWKS(s.key)))
	if s.jwks, err = json.Marshal(tokenauth.JWKS(s.key)); err != nil {
		return nil, err
	}
	s.dir, err = directory.Open(ctx, d, directory.Config{
		AnonymousPull:   cfg.AnonymousPull,
		RefreshTokenTTL: cfg.RefreshTokenTTL,
		BcryptCost:      cfg.BcryptCost,
		UserFailures:    cfg.RateLimit.UserFailures,
		IPFailures:      cfg.RateLimit.IPFailures,
		Now:             s.clock,
		Log:             log,
	})
	if err != nil {
		return nil, fmt.Errorf("loading trustd's records: %w", err)
	}
	if err := s.ensureAdmin(ctx, notice); err != nil {
		return nil, fmt.Errorf("creating the admin account: %w", err)
	}
	s.tuf, err = tuf.New(ctx, d, tuf.Config{
		TimestampExpiry: cfg.TUF.TimestampExpiry,
		SnapshotExpiry:  cfg.TUF.SnapshotExpiry,
		ResignBefore:    cfg.TUF.ResignBefore,
		Now:             s.clock,
		Log:             log,
		OnPublish:       s.recordPublish,
		OnRelease:       s.recordRelease,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the TUF repository: %w", err)
	}
	s.router = s.routes()
	return s, nil
}

// every calls fn every interval until ctx is done.
func every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// reloadLoop re-reads the records every interval until ctx is done, so that
// replicas on one store converge.
func (s *Server) reloadLoop(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() {
		if err := s.dir.Reload(ctx); err != nil {
			s.log.Warn("reloading trustd's records failed", "err", err)
		}
	})
}

// pruneLoop drops expired refresh tokens every interval until ctx is done, so
// their records do not pile up between restarts.
func (s *Server) pruneLoop(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() { s.dir.PruneRefreshTokens(ctx) })
}

// clock is the time source, through s.now so tests can move it.
func (s *Server) clock() time.Time { return s.now() }

// signingKeyPath is where the token signing key lives, PKCS#8 PEM (the layout
// is in trustd/directory/store.go).
const signingKeyPath = directory.Root + "/keys/token-signing.pem"

// loadSigningKey reads the token signing key, making it on first start. Two
// replicas starting together race with put-if-absent: the loser reads the
// winner's key, so every replica signs with the one key the JWKS publishes.
func loadSigningKey(ctx context.Context, d driver.Driver) (*tokenauth.SigningKey, error) {
	data, _, err := d.GetContent(ctx, signingKeyPath)
	if errors.Is(err, driver.ErrNotFound) {
		k, gerr := tokenauth.GenerateSigningKey()
		if gerr != nil {
			return nil, gerr
		}
		pemBytes, gerr := k.MarshalPEM()
		if gerr != nil {
			return nil, gerr
		}
		_, err = d.PutContentIf(ctx, signingKeyPath, pemBytes, driver.Condition{IfAbsent: true})
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, driver.ErrPreconditionFailed) {
			return nil, fmt.Errorf("storing the token signing key: %w", err)
		}
		data, _, err = d.GetContent(ctx, signingKeyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the token signing key: %w", err)
	}
	k, err := tokenauth.ParseSigningKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("the token signing key at %s: %w", signingKeyPath, err)
	}
	return k, nil
}

// ensureAdmin creates the admin account if it does not exist. A generated
// password is written once to notice.
func (s *Server) ensureAdmin(ctx context.Context, notice io.Writer) error {
	name := s.cfg.AdminUser
	pw, err := s.dir.EnsureAdmin(ctx, name, s.cfg.AdminPassword)
	if err != nil {
		return err
	}
	if pw != "" && notice != nil {
		fmt.Fprintf(notice, "trustd: created the admin account %q with the password below; it is shown only once (set SIGNET_ADMIN_PASSWORD to choose it):\n\n    %s\n\n", name, pw)
	}
	return nil
}

func (s *Server) routes() *mux.Router {
	r := mux.NewRouter()
	r.Use(logging.NoteRoute)
	r.HandleFunc("/.well-known/jwks.json", s.serveJWKS).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/token", s.token).Methods(http.MethodGet, http.MethodPost)
	s.apiRoutes(r.PathPrefix("/api/v1").Subrouter())
	s.tuf.Register(r, "/tuf", tufAuth{s})
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, newAPIError(CodeNotFound, r.Method+" "+r.URL.Path+" is not an endpoint of trustd"))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, newAPIError(CodeUnsupported, r.Method+" is not supported on "+r.URL.Path))
	})
	return r
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Write(s.jwks)
}

// ServeHTTP serves the API, logging one line per request (see accesslog.go). It
// takes the caller's X-Request-ID (the registry sends its own on every call it
// makes for a request) or makes one, and echoes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := logging.NewRecorder(w)
	id := s.ids.FromRequest(r)
	rec.Header()[requestid.Header] = []string{id}
	ri := &logging.RequestInfo{}
	r = r.WithContext(logging.WithRequestInfo(requestid.NewContext(r.Context(), id), ri))
	s.router.ServeHTTP(&rec, r)
	s.logRequest(r, &rec, ri, id, start)
}

// clientIP is the request's client address, for rate limiting: the connection's
// peer, or the last address X-Forwarded-For names when the request came through
// a proxy trustd trusts: the registry's /token, proved by the proxy secret, or a
// peer in trustedProxies. A peer address alone is never enough by default: every
// process on a host shares its loopback address, and one that could name any
// client would escape the per-client limit.
func (s *Server) clientIP(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	addr := ap.Addr().Unmap()
	if s.forwardedByTrusted(r, addr) {
		if xff := lastForwardedFor(r.Header.Values("X-Forwarded-For")); xff.IsValid() {
			return xff.String()
		}
	}
	return addr.String()
}

// forwardedByTrusted reports whether r came through a proxy whose
// X-Forwarded-For is believed. The secret is compared in constant time (as
// sha256 sums, so its length does not show either).
func (s *Server) forwardedByTrusted(r *http.Request, peer netip.Addr) bool {
	if got := r.Header.Get(tokenauth.ProxySecretHeader); got != "" && s.proxySecret != nil {
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], s.proxySecret) == 1 {
			return true
		}
	}
	for _, p := range s.proxies {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

func lastForwardedFor(values []string) netip.Addr {
	if len(values) == 0 {
		return netip.Addr{}
	}
	last := values[len(values)-1]
	for i := len(last) - 1; i >= 0; i-- {
		if last[i] == ',' {
			last = last[i+1:]
			break
		}
	}
	a, err := netip.ParseAddr(strings.TrimSpace(last))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

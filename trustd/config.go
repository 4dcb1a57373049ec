package trustd

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/signet-oss/signet/internal/logging"
	"github.com/signet-oss/signet/internal/serverconfig"
	"github.com/signet-oss/signet/storage/driver/driverconfig"
	"github.com/signet-oss/signet/tokenauth"
	"github.com/signet-oss/signet/trustd/directory"

	"golang.org/x/crypto/bcrypt"
)

// Config is trustd's configuration: a YAML file whose keys are these fields' yaml
// names, overridden by the environment (SIGNET_ADMIN_USER, SIGNET_ADMIN_PASSWORD) and
// then by command-line flags. Every key is optional; Defaults gives the value of each
// one left out.
type Config struct {
	// Addr is the listen address (addr, default 127.0.0.1:5001).
	Addr string `yaml:"addr"`
	// Data is the data directory of the filesystem driver (data, default ./data-trustd).
	Data string `yaml:"data"`
	// Storage selects the storage driver.
	Storage StorageConfig `yaml:"storage"`
	// Log sets logging.
	Log logging.Config `yaml:"log"`
	// Service is trustd's own name as an audience: tokens for its management API
	// carry aud = Service (service, default trustd).
	Service string `yaml:"service"`
	// Issuer is the iss claim of every token (issuer, default signet-trustd).
	Issuer string `yaml:"issuer"`
	// Services are the other audiences trustd issues tokens for, such as the
	// registry's service name (services, default [signet-registry]).
	Services []string `yaml:"services"`
	// TokenTTL is the lifetime of an access token, at least 60s, as the token
	// spec asks (tokenTTL, default 5m).
	TokenTTL time.Duration `yaml:"tokenTTL"`
	// RefreshTokenTTL is the lifetime of a refresh token (refreshTokenTTL,
	// default 2160h, 90 days).
	RefreshTokenTTL time.Duration `yaml:"refreshTokenTTL"`
	// AnonymousPull lists the repository patterns anyone may pull without
	// credentials ("*" is one name component, "**" any number) (anonymousPull,
	// default [], nothing).
	AnonymousPull []string `yaml:"anonymousPull"`
	// AdminUser is the account created with admin rights on first start
	// (adminUser, default admin; SIGNET_ADMIN_USER overrides).
	AdminUser string `yaml:"adminUser"`
	// AdminPassword is the admin's password on first start; when empty, one is
	// generated and printed once on stderr (adminPassword, default empty;
	// SIGNET_ADMIN_PASSWORD overrides). It is never changed on later starts.
	AdminPassword string `yaml:"adminPassword"`
	// BcryptCost is the bcrypt work factor of new passwords (bcryptCost, default 10).
	BcryptCost int `yaml:"bcryptCost"`
	// RateLimit bounds failed sign-in attempts.
	RateLimit RateLimitConfig `yaml:"rateLimit"`
	// TrustedProxies are the addresses (CIDR) of proxies in front of trustd whose
	// X-Forwarded-For header names the client, for the per-client login limits
	// (trustedProxies, default [], no one). Any process on a listed address can
	// name any client, so never list an address that untrusted processes share,
	// such as loopback: the registry's /token authenticates with proxySecret.
	TrustedProxies []string `yaml:"trustedProxies"`
	// ProxySecret authenticates the registry's /token hop: a request carrying
	// it in the Signet-Proxy-Secret header came through the registry, whose
	// X-Forwarded-For then names the client. The registry's
	// auth.token.proxySecret must be the same; at least 16 characters
	// (proxySecret, or proxySecretFile naming a file that holds it;
	// SIGNET_PROXY_SECRET overrides both; default none: the registry's /token
	// calls are then limited by the registry's own address).
	ProxySecret     tokenauth.ProxySecret `yaml:"proxySecret"`
	ProxySecretFile string                `yaml:"proxySecretFile"`
	// ShutdownTimeout is how long a stopping trustd lets requests in flight
	// finish (shutdownTimeout, default 30s).
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
	// ShutdownDelay is how long a stopping trustd keeps serving, with /readyz
	// answering 503, before it drains: time for load balancers to stop sending
	// it requests (shutdownDelay, default 0).
	ShutdownDelay time.Duration `yaml:"shutdownDelay"`
	// TLS serves HTTPS, and client certificates for the management API.
	TLS TLSConfig `yaml:"tls"`
	// TUF sets the online signing of the TUF repository.
	TUF TUFConfig `yaml:"tuf"`
	// Metrics configures the metrics listener (metrics.*, default off).
	Metrics MetricsConfig `yaml:"metrics"`
	// ReloadInterval is how often the records (accounts, orgs, robots, grants,
	// refresh tokens) are read again from the store, so that replicas sharing
	// it converge; 0 turns it off (reloadInterval, default 10s).
	ReloadInterval time.Duration `yaml:"reloadInterval"`
}

// TUFConfig sets how trustd signs the TUF repository's online roles.
type TUFConfig struct {
	// TimestampExpiry is the lifetime of each timestamp trustd signs
	// (tuf.timestampExpiry, default 24h).
	TimestampExpiry time.Duration `yaml:"timestampExpiry"`
	// SnapshotExpiry is the lifetime of each snapshot trustd signs
	// (tuf.snapshotExpiry, default 168h).
	SnapshotExpiry time.Duration `yaml:"snapshotExpiry"`
	// ResignBefore: trustd re-signs the timestamp, and the snapshot, when it
	// would expire within this long, so clients never see them expire while
	// trustd runs (tuf.resignBefore, default 6h; under tuf.timestampExpiry).
	ResignBefore time.Duration `yaml:"resignBefore"`
}

// StorageConfig selects the storage driver (the storage.* keys).
type StorageConfig = driverconfig.Config

// RateLimitConfig bounds failed sign-in attempts with token buckets: each failure
// takes a token, a bucket refills at its rate per minute up to that many, and an
// empty bucket refuses every attempt (even a correct one) with 429 until it refills.
type RateLimitConfig struct {
	// UserFailures is the failures allowed per account name per minute
	// (rateLimit.userFailures, default 10).
	UserFailures int `yaml:"userFailures"`
	// IPFailures is the failures allowed per client IP per minute
	// (rateLimit.ipFailures, default 30).
	IPFailures int `yaml:"ipFailures"`
}

// Defaults returns the configuration with every default filled in.
func Defaults() Config {
	return Config{
		Addr:            "127.0.0.1:5001",
		Data:            "./data-trustd",
		Storage:         StorageConfig{Driver: "filesystem"},
		Log:             logging.Defaults(),
		Service:         "trustd",
		Issuer:          "signet-trustd",
		Services:        []string{"signet-registry"},
		TokenTTL:        5 * time.Minute,
		RefreshTokenTTL: 90 * 24 * time.Hour,
		AnonymousPull:   []string{},
		AdminUser:       "admin",
		BcryptCost:      bcrypt.DefaultCost,
		RateLimit:       RateLimitConfig{UserFailures: 10, IPFailures: 30},
		TrustedProxies:  []string{},
		ShutdownTimeout: 30 * time.Second,
		ReloadInterval:  10 * time.Second,
		TUF:             TUFConfig{TimestampExpiry: 24 * time.Hour, SnapshotExpiry: 7 * 24 * time.Hour, ResignBefore: 6 * time.Hour},
	}
}

// LoadConfig reads the YAML file at path over the defaults (an empty path means
// none), then applies the environment: SIGNET_ADMIN_USER and SIGNET_ADMIN_PASSWORD
// override adminUser and adminPassword. Unknown keys are errors.
func LoadConfig(path string) (Config, error) {
	cfg := Defaults()
	if path != "" {
		if err := serverconfig.Decode(path, &cfg); err != nil {
			return cfg, err
		}
	}
	if v := os.Getenv("SIGNET_ADMIN_USER"); v != "" {
		cfg.AdminUser = v
	}
	if v := os.Getenv("SIGNET_ADMIN_PASSWORD"); v != "" {
		cfg.AdminPassword = v
	}
	return cfg, nil
}

// Validate checks every key, naming the one that is wrong.
func (c Config) Validate() error {
	errs := serverconfig.Common(c.Addr, c.Data, c.Storage, c.Log, c.TLS.validate())
	if c.Service == "" {
		errs = append(errs, errors.New("service: must not be empty"))
	}
	if c.Issuer == "" {
		errs = append(errs, errors.New("issuer: must not be empty"))
	}
	for i, s := range c.Services {
		if s == "" || s == c.Service {
			errs = append(errs, fmt.Errorf("services[%d]: %q must be non-empty and differ from service", i, s))
		}
	}
	if c.TokenTTL < time.Minute {
		errs = append(errs, fmt.Errorf("tokenTTL: %s is under the token spec's minimum of 60s", c.TokenTTL))
	}
	if c.RefreshTokenTTL <= 0 {
		errs = append(errs, errors.New("refreshTokenTTL: must be positive"))
	}
	for i, p := range c.AnonymousPull {
		if err := directory.ValidatePattern(p); err != nil {
			errs = append(errs, fmt.Errorf("anonymousPull[%d]: %w", i, err))
		}
	}
	if err := directory.ValidateAccountName(c.AdminUser); err != nil {
		errs = append(errs, fmt.Errorf("adminUser: %w", err))
	}
	if c.AdminPassword != "" {
		if err := directory.ValidatePassword(c.AdminPassword); err != nil {
			errs = append(errs, fmt.Errorf("adminPassword (or SIGNET_ADMIN_PASSWORD): %w", err))
		}
	}
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		errs = append(errs, fmt.Errorf("bcryptCost: %d is outside %d..%d", c.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost))
	}
	if c.RateLimit.UserFailures <= 0 {
		errs = append(errs, errors.New("rateLimit.userFailures: must be positive"))
	}
	if c.RateLimit.IPFailures <= 0 {
		errs = append(errs, errors.New("rateLimit.ipFailures: must be positive"))
	}
	if _, err := parsePrefixes(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("trustedProxies: %w", err))
	}
	if _, err := tokenauth.LoadProxySecret("proxySecret", c.ProxySecret, c.ProxySecretFile); err != nil {
		errs = append(errs, err)
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("shutdownTimeout: must not be negative"))
	}
	if c.ShutdownDelay < 0 {
		errs = append(errs, errors.New("shutdownDelay: must not be negative"))
	}
	if c.TUF.TimestampExpiry <= 0 {
		errs = append(errs, errors.New("tuf.timestampExpiry: must be positive"))
	}
	if c.TUF.SnapshotExpiry <= 0 {
		errs = append(errs, errors.New("tuf.snapshotExpiry: must be positive"))
	}
	if c.TUF.ResignBefore <= 0 || c.TUF.ResignBefore >= c.TUF.TimestampExpiry || c.TUF.ResignBefore >= c.TUF.SnapshotExpiry {
		errs = append(errs, fmt.Errorf("tuf.resignBefore: %s must be positive and shorter than tuf.timestampExpiry and tuf.snapshotExpiry", c.TUF.ResignBefore))
	}
	errs = append(errs, c.validateObservability()...)
	return errors.Join(errs...)
}

// audiences returns every service trustd issues tokens for, its own first.
func (c Config) audiences() []string {
	return append([]string{c.Service}, c.Services...)
}

func parsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR prefix such as 10.0.0.0/8", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

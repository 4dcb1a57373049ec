package registry

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/signet-oss/signet/internal/logging"
	"github.com/signet-oss/signet/internal/serverconfig"
	"github.com/signet-oss/signet/registry/notify"
	"github.com/signet-oss/signet/storage/driver/driverconfig"
	"github.com/signet-oss/signet/tokenauth"
)

// Config is the registry's configuration: a YAML file whose keys are these fields'
// yaml names, overridden by command-line flags. Every key is optional; Defaults
// gives the value of each one left out.
type Config struct {
	// Addr is the listen address (addr, default 127.0.0.1:5000).
	Addr string `yaml:"addr"`
	// Data is the data directory of the filesystem driver (data, default ./data).
	Data string `yaml:"data"`
	// Storage selects the storage driver.
	Storage StorageConfig `yaml:"storage"`
	// Log sets logging.
	Log logging.Config `yaml:"log"`
	// Auth configures authentication; without it the registry is open to all.
	Auth AuthConfig `yaml:"auth"`
	// GC schedules online garbage collection.
	GC GCConfig `yaml:"gc"`
	// Trust turns the admission gate on; without a trust root every repository
	// admits anything.
	Trust TrustConfig `yaml:"trust"`
	// TLS serves HTTPS and sets what the registry's calls to trustd trust.
	TLS TLSConfig `yaml:"tls"`
	// MaxManifestSize is the largest manifest accepted, in bytes
	// (maxManifestSize, default 4194304).
	MaxManifestSize int64 `yaml:"maxManifestSize"`
	// Metrics configures the metrics listener (metrics.*, default off).
	Metrics MetricsConfig `yaml:"metrics"`
	// ShutdownTimeout is how long a stopping registry lets requests in flight
	// finish (shutdownTimeout, default 30s).
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
	// ShutdownDelay is how long a stopping registry keeps serving, with /readyz
	// answering 503, before it drains: time for load balancers to stop sending
	// it requests (shutdownDelay, default 0).
	ShutdownDelay time.Duration `yaml:"shutdownDelay"`
	// Notifications sends events to webhooks (notifications.*).
	Notifications notify.Config `yaml:"notifications"`
	// UI serves the web UI on the registry's origin (ui.*).
	UI UIConfig `yaml:"ui"`
	// Events are called with every event of the API, beside the audit log and
	// notifications: a program that embeds the registry (`trustctl up`) says
	// from them what was pushed or denied, and why. Not a file key.
	Events []EventListener `yaml:"-"`
}

// StorageConfig selects the storage driver (the storage.* keys).
type StorageConfig = driverconfig.Config

// GCConfig schedules online garbage collection (also run by hand: registry gc).
type GCConfig struct {
	// Interval between collections; 0 turns the schedule off (gc.interval,
	// default 0).
	Interval time.Duration `yaml:"interval"`
	// Grace is the minimum age of anything collected; it must exceed the
	// longest push plus 6h (gc.grace, default 24h).
	Grace time.Duration `yaml:"grace"`
	// UploadGrace is how long an untouched upload session is kept
	// (gc.uploadGrace, default 24h).
	UploadGrace time.Duration `yaml:"uploadGrace"`
	// Untagged also collects manifests no tag reaches (gc.untagged, default false).
	Untagged bool `yaml:"untagged"`
}

// AuthConfig configures authentication.
type AuthConfig struct {
	// Token enables bearer-token authentication (auth.token.*; default off).
	Token *TokenAuthConfig `yaml:"token"`
}

// Defaults returns the configuration with every default filled in.
func Defaults() Config {
	return Config{
		Addr:            "127.0.0.1:5000",
		Data:            "./data",
		Storage:         StorageConfig{Driver: "filesystem"},
		Log:             logging.Defaults(),
		MaxManifestSize: 4 << 20,
		ShutdownTimeout: 30 * time.Second,
		GC:              GCConfig{Grace: 24 * time.Hour, UploadGrace: 24 * time.Hour},
		Notifications:   notify.Defaults(),
	}
}

// LoadConfig reads the YAML file at path over the defaults. Unknown keys are errors.
func LoadConfig(path string) (Config, error) {
	cfg := Defaults()
	if path == "" {
		return cfg, nil
	}
	err := serverconfig.Decode(path, &cfg)
	return cfg, err
}

// Validate checks every key, naming the one that is wrong.
func (c Config) Validate() error {
	errs := serverconfig.Common(c.Addr, c.Data, c.Storage, c.Log, c.TLS.validate())
	if t := c.Auth.Token; t != nil && t.Trustd == "" && t.JWKS == "" {
		errs = append(errs, errors.New("auth.token: set trustd (the token service's URL) or jwks"))
	}
	if t := c.Auth.Token; t != nil {
		if _, err := tokenauth.LoadProxySecret("auth.token.proxySecret", t.ProxySecret, t.ProxySecretFile); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Trust.Root != "" && c.Trust.Trustd == "" && (c.Auth.Token == nil || c.Auth.Token.Trustd == "") {
		errs = append(errs, errors.New("trust.trustd: the gate needs trustd's URL (trust.trustd or auth.token.trustd)"))
	}
	if c.Trust.RefreshInterval < 0 {
		errs = append(errs, errors.New("trust.refreshInterval: must not be negative"))
	}
	for _, p := range c.Trust.Open {
		if p == "" || strings.Contains(p, "***") {
			errs = append(errs, fmt.Errorf("trust.open: %q is not a repository pattern", p))
		}
	}
	if c.MaxManifestSize <= 0 {
		errs = append(errs, errors.New("maxManifestSize: must be positive"))
	}
	if c.GC.Interval < 0 || c.GC.Grace <= 0 || c.GC.UploadGrace <= 0 {
		errs = append(errs, errors.New("gc: interval must not be negative, grace and uploadGrace must be positive"))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("shutdownTimeout: must not be negative"))
	}
	if c.ShutdownDelay < 0 {
		errs = append(errs, errors.New("shutdownDelay: must not be negative"))
	}
	errs = append(errs, c.validateObservability()...)
	if err := c.Notifications.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

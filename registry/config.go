package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/signet-oss/signet/registry/storage/driver/s3"
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
	Log LogConfig `yaml:"log"`
	// Auth configures authentication; without it the registry is open to all.
	Auth AuthConfig `yaml:"auth"`
	// GC schedules online garbage collection.
	GC GCConfig `yaml:"gc"`
	// Trust turns the admission gate on; without a trust root every repository
	// admits anything.
	Trust TrustConfig `yaml:"trust"`
	// MaxManifestSize is the largest manifest accepted, in bytes
	// (maxManifestSize, default 4194304).
	MaxManifestSize int64 `yaml:"maxManifestSize"`
	// ShutdownTimeout is how long a stopping registry lets requests in flight
	// finish (shutdownTimeout, default 30s).
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
}

// StorageConfig selects the storage driver.
type StorageConfig struct {
	// Driver is "filesystem" (under Data), "s3" (an S3-compatible bucket) or
	// "inmemory" (lost at exit) (storage.driver, default filesystem).
	Driver string `yaml:"driver"`
	// S3 configures the s3 driver.
	S3 S3Config `yaml:"s3"`
}

// S3Config configures the s3 driver (storage.s3.endpoint, .bucket, .region,
// .prefix). Credentials come from the standard AWS environment variables
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...).
type S3Config = s3.Settings

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

// LogConfig sets logging.
type LogConfig struct {
	// Level is debug, info, warn or error (log.level, default info).
	Level string `yaml:"level"`
	// Format is text or json (log.format, default text).
	Format string `yaml:"format"`
}

// Defaults returns the configuration with every default filled in.
func Defaults() Config {
	return Config{
		Addr:            "127.0.0.1:5000",
		Data:            "./data",
		Storage:         StorageConfig{Driver: "filesystem"},
		Log:             LogConfig{Level: "info", Format: "text"},
		MaxManifestSize: 4 << 20,
		ShutdownTimeout: 30 * time.Second,
		GC:              GCConfig{Grace: 24 * time.Hour, UploadGrace: 24 * time.Hour},
	}
}

// LoadConfig reads the YAML file at path over the defaults. Unknown keys are errors.
func LoadConfig(path string) (Config, error) {
	cfg := Defaults()
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // an empty file is all defaults
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks every key, naming the one that is wrong.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("addr: must not be empty"))
	}
	switch c.Storage.Driver {
	case "filesystem":
		if c.Data == "" {
			errs = append(errs, errors.New("data: the filesystem driver needs a data directory"))
		}
	case "s3":
		if c.Storage.S3.Bucket == "" {
			errs = append(errs, errors.New("storage.s3.bucket: the s3 driver needs a bucket"))
		}
	case "inmemory":
	default:
		errs = append(errs, fmt.Errorf("storage.driver: %q is not a driver (filesystem, s3, inmemory)", c.Storage.Driver))
	}
	if _, err := c.Log.level(); err != nil {
		errs = append(errs, err)
	}
	if f := c.Log.Format; f != "text" && f != "json" {
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", f))
	}
	if t := c.Auth.Token; t != nil && t.Trustd == "" && t.JWKS == "" {
		errs = append(errs, errors.New("auth.token: set trustd (the token service's URL) or jwks"))
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
	return errors.Join(errs...)
}

func (l LogConfig) level() (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(l.Level))); err != nil {
		return 0, fmt.Errorf("log.level: %q is not debug, info, warn or error", l.Level)
	}
	return lv, nil
}

// NewLogger returns the logger the configuration asks for, writing to w's file.
func (l LogConfig) NewLogger(w *os.File) *slog.Logger {
	lv, _ := l.level()
	opts := &slog.HandlerOptions{Level: lv}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

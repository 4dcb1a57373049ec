// Package logging is the log.* section of the registry's and trustd's
// configuration files: a log/slog logger, text or JSON, at a level.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Config sets logging.
type Config struct {
	// Level is debug, info, warn or error (log.level, default info).
	Level string `yaml:"level"`
	// Format is text or json (log.format, default text).
	Format string `yaml:"format"`
}

// Defaults is info, text.
func Defaults() Config { return Config{Level: "info", Format: "text"} }

// Validate names the key that is wrong.
func (c Config) Validate() error {
	if _, err := c.level(); err != nil {
		return err
	}
	if c.Format != "text" && c.Format != "json" {
		return fmt.Errorf("log.format: %q is not text or json", c.Format)
	}
	return nil
}

func (c Config) level() (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(c.Level))); err != nil {
		return 0, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Level)
	}
	return lv, nil
}

// NewLogger returns the logger the section asks for, writing to w.
func (c Config) NewLogger(w io.Writer) *slog.Logger {
	lv, _ := c.level()
	opts := &slog.HandlerOptions{Level: lv}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

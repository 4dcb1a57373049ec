// Package serverconfig is what the registry's and trustd's configuration
// files have in common: how a file is read over the defaults, and the checks
// of the keys both have (addr, data and storage, log, tls). Each server keeps
// its own Config type, its defaults and the checks of its own keys.
package serverconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/signet-oss/signet/internal/logging"
	"github.com/signet-oss/signet/storage/driver/driverconfig"

	"gopkg.in/yaml.v3"
)

// Decode reads the YAML file at path over cfg, a pointer to a Config holding
// the defaults. Unknown keys are errors; an empty file leaves the defaults.
func Decode(path string, cfg any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) { // an empty file is all defaults
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// Common checks the keys every server has, naming the one that is wrong: addr,
// storage (with data, the filesystem driver's directory) and log; tlsErr is
// the server's own check of its tls section. A server appends the errors of
// its own keys and joins them.
func Common(addr, data string, storage driverconfig.Config, log logging.Config, tlsErr error) []error {
	var errs []error
	if addr == "" {
		errs = append(errs, errors.New("addr: must not be empty"))
	}
	if err := storage.Validate(data); err != nil {
		errs = append(errs, err)
	}
	if err := log.Validate(); err != nil {
		errs = append(errs, err)
	}
	if tlsErr != nil {
		errs = append(errs, tlsErr)
	}
	return errs
}

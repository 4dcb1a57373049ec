// Package softhsmtest makes SoftHSM2 tokens for tests: real PKCS#11 tokens
// kept in files under a test's temporary directory, through the real module
// (Debian's softhsm2, installed by testtools on first use).
package softhsmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/signet-oss/signet/internal/testtools"
)

// SOPin is the security officer's PIN of every test token.
const SOPin = "so-pin-not-secret"

// Dir is a SoftHSM2 configuration whose tokens live in one directory.
type Dir struct {
	// Conf is the configuration file: SOFTHSM2_CONF=Conf selects it.
	Conf string
	// Module is the PKCS#11 module's path.
	Module string
	util   string
}

// New makes a SoftHSM2 configuration with its token directory under t's
// temporary directory.
func New(t testing.TB) *Dir {
	t.Helper()
	util := testtools.MustPath(t, "softhsm2-util")
	module := testtools.MustPath(t, "libsofthsm2.so")
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return &Dir{Conf: conf, Module: module, util: util}
}

// Env is the environment entry that points SoftHSM2 at this configuration.
func (d *Dir) Env() string { return "SOFTHSM2_CONF=" + d.Conf }

// InitToken initialises a token labelled label with user PIN pin in a free
// slot, and returns a PKCS#11 URI naming it (without a PIN or a key).
func (d *Dir) InitToken(t testing.TB, label, pin string) string {
	t.Helper()
	cmd := exec.Command(d.util, "--init-token", "--free", "--label", label, "--so-pin", SOPin, "--pin", pin)
	cmd.Env = append(os.Environ(), d.Env())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token --label %s: %v\n%s", label, err, out)
	}
	return "pkcs11:token=" + label + "?module-path=" + d.Module
}

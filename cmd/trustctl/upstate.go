package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/internal/atomicfile"
)

// What `trustctl up` keeps in its data directory besides the servers' data:
//
//   - setup.json, while the first start's setup is unfinished: the admin's
//     password (0600), so that a start cut short (a crash, a failed step) is
//     finished by the next one, which can still log in and make what is missing;
//   - up.json: the addresses of the last start, so that a start on other
//     addresses moves the login and the pin kept in $SIGNET_HOME to the new ones;
//   - keys/: the development trust root's keys (see updev.go).

// upListeners are the addresses up serves, bound before anything is created.
type upListeners struct{ registry, trustd net.Listener }

// bindUp binds the registry's and trustd's addresses, and checks that the
// metrics addresses are free, so that a port in use fails the start at once.
func bindUp(o upOptions) (*upListeners, error) {
	var lns upListeners
	var err error
	if lns.trustd, err = net.Listen("tcp", o.trustdAddr); err != nil {
		return nil, fmt.Errorf("trustd: %w", addrHint(err, "--trustd-addr"))
	}
	if lns.registry, err = net.Listen("tcp", o.registryAddr); err != nil {
		lns.close()
		return nil, fmt.Errorf("registry: %w", addrHint(err, "--registry-addr"))
	}
	for _, m := range []struct{ addr, flag string }{{o.metrics.registry, "--metrics-addr"}, {o.metrics.trustd, "--trustd-metrics-addr"}} {
		if m.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", m.addr)
		if err != nil {
			lns.close()
			return nil, fmt.Errorf("%s: %w", m.flag, addrHint(err, m.flag))
		}
		ln.Close()
	}
	return &lns, nil
}

// take hands a listener over to the server that will close it.
func (l *upListeners) take(ln *net.Listener) net.Listener {
	taken := *ln
	*ln = nil
	return taken
}

// close closes the listeners no server has taken.
func (l *upListeners) close() {
	for _, ln := range []net.Listener{l.registry, l.trustd} {
		if ln != nil {
			ln.Close()
		}
	}
}

// upSetup is the first start's setup while it is unfinished (DIR/setup.json).
type upSetup struct {
	AdminUser     string `json:"adminUser"`
	AdminPassword string `json:"adminPassword"`
	// Generated is true when up chose the password (it is shown once the
	// setup is done), false when it came from SIGNET_ADMIN_PASSWORD.
	Generated bool `json:"generated"`

	path string
}

// beginSetup returns the unfinished setup of the stack in data: the one an
// earlier start left, or a new one on the first start (trustd's data is
// empty), recorded before trustd creates the admin with its password. It
// returns nil for a stack set up long ago.
func beginSetup(data, trustdData, adminUser, envPassword string) (*upSetup, error) {
	path := filepath.Join(data, "setup.json")
	b, err := os.ReadFile(path)
	if err == nil {
		s := &upSetup{path: path}
		if err := json.Unmarshal(b, s); err != nil || s.AdminPassword == "" {
			return nil, fmt.Errorf("%s is not the record of an unfinished setup: remove it, and log in with `trustctl login`", path)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if !isEmptyDir(trustdData) {
		return nil, nil
	}
	s := &upSetup{AdminUser: adminUser, AdminPassword: envPassword, path: path}
	if s.AdminPassword == "" {
		// Chosen here rather than by trustd, so that up can log in with it.
		s.AdminPassword, s.Generated = newPassword(), true
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	b, _ = json.Marshal(s)
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

// failed says, with err, that the next start finishes the setup.
func (s *upSetup) failed(err error) error {
	if s == nil || err == nil {
		return err
	}
	return fmt.Errorf("%w\nThe first start's setup is unfinished; it is kept in %s, and the next `trustctl up` on this data directory finishes it", err, s.path)
}

// done removes the record of a setup every step of which is done.
func (s *upSetup) done() error {
	if s == nil {
		return nil
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// upAddrs are the addresses of a start (DIR/up.json).
type upAddrs struct {
	Registry string `json:"registry"`
	Trustd   string `json:"trustd"`
}

// moveStack follows the stack in data to the addresses it now listens on:
// when the last start (DIR/up.json) was on others, the logins $SIGNET_HOME
// keeps for them and the root pinned for the old registry move to the new
// ones. Only addresses up recorded itself are followed: a refresh token must
// never go where something merely presents this stack's (public) root. The
// old entries are removed, since another process may take those ports.
func moveStack(data, homeDir, regAddr, trustdURL string) error {
	path := filepath.Join(data, "up.json")
	var last upAddrs
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &last)
	}
	if last.Registry != "" && (last.Registry != regAddr || last.Trustd != trustdURL) {
		if err := moveLogins(homeDir, last, upAddrs{Registry: regAddr, Trustd: trustdURL}); err != nil {
			return fmt.Errorf("moving the login from %s to %s: %w", last.Registry, regAddr, err)
		}
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	b, _ := json.Marshal(upAddrs{Registry: regAddr, Trustd: trustdURL})
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

func moveLogins(homeDir string, from, to upAddrs) error {
	home, err := client.LoadConfigFile(filepath.Join(homeDir, "config.json"))
	if err != nil {
		return err
	}
	changed := false
	oldTD, _ := client.HostOf(from.Trustd)
	newTD, _ := client.HostOf(to.Trustd)
	if oldTD != "" && newTD != "" && home.MoveLogin(oldTD, newTD) {
		changed = true
	}
	if home.MoveLogin(from.Registry, to.Registry) {
		changed = true
	}
	if sig := home.Signet(); sig.Registry == from.Registry {
		home.SetSignet(client.Signet{Registry: to.Registry, Trustd: to.Trustd})
		changed = true
	}
	if changed {
		if err := home.Save(); err != nil {
			return err
		}
	}
	if from.Registry == to.Registry {
		return nil
	}
	// The same stack, by up's own record: its root is what the new address
	// serves, whatever was pinned there before.
	root, err := trust.PinnedRoot(homeDir, from.Registry)
	if err != nil {
		return nil // nothing pinned to follow
	}
	return trust.Pin(homeDir, to.Registry, root)
}

package client

import (
	"context"
	"fmt"
	"strings"
)

// LogoutResult says what a logout removed.
type LogoutResult struct {
	// Registry is the registry logged out of.
	Registry string `json:"registry"`
	// Removed lists where a login was removed from: config files, and
	// credential helpers as "docker-credential-NAME".
	Removed []string `json:"removed"`
}

// Logout removes the login for registry (host:port; "" means the one last
// logged in to) that Login stored: its refresh tokens in home (the registry's,
// and trustd's when it is the registry home names), the "signet" section when
// it names registry, and the registry's entry in docker's config, through its
// credential helper if it names one (docker nil leaves it alone). The refresh
// tokens are forgotten here, not revoked at trustd: anyone who copied them
// keeps them until they expire.
func Logout(ctx context.Context, registry string, home, docker *ConfigFile) (*LogoutResult, error) {
	sig := home.Signet()
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(registry, "https://"), "http://"), "/")
	if host == "" {
		host = sig.Registry
	}
	if host == "" {
		return nil, fmt.Errorf("not logged in (%s names no registry): name one, `trustctl logout HOST`", home.Path)
	}
	res := &LogoutResult{Registry: host, Removed: []string{}}
	changed := home.removeLogin(host)
	if sig.Registry == host {
		if sig.Trustd != "" {
			if th, err := HostOf(sig.Trustd); err == nil {
				home.removeLogin(th)
			}
		}
		home.SetSignet(Signet{})
		changed = true
	}
	if changed {
		if err := home.Save(); err != nil {
			return nil, fmt.Errorf("removing the login: %w", err)
		}
		res.Removed = append(res.Removed, home.Path)
	}
	if docker != nil && docker.Path != home.Path {
		if _, ok := docker.auths[host]; ok && docker.CredentialHelper(host) != "" {
			name := docker.CredentialHelper(host)
			h := Helper{Name: name}
			if err := h.Erase(ctx, host); err != nil {
				return nil, fmt.Errorf("removing the login from %s: %w", h.Program(), err)
			}
			res.Removed = append(res.Removed, h.Program())
		}
		if docker.removeLogin(host) {
			if err := docker.Save(); err != nil {
				return nil, fmt.Errorf("removing the docker login: %w", err)
			}
			res.Removed = append(res.Removed, docker.Path)
		}
	}
	if len(res.Removed) == 0 {
		return nil, fmt.Errorf("not logged in to %s: %s holds no login for it", host, home.Path)
	}
	return res, nil
}

// removeLogin drops host's entry from auths, reporting whether there was one.
func (c *ConfigFile) removeLogin(host string) bool {
	if _, ok := c.auths[host]; !ok {
		return false
	}
	delete(c.auths, host)
	return true
}

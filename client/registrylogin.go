package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// RegistryLogin is what a client presents to a registry: an identity (refresh)
// token, or a user name and password, or nothing (anonymous).
type RegistryLogin struct {
	Username, Password string
	IdentityToken      string
}

// Anonymous reports whether the login holds no credential.
func (l RegistryLogin) Anonymous() bool {
	return l.IdentityToken == "" && l.Password == ""
}

// LookupRegistryLogin finds the credentials for host (host:port) the way
// registry clients do: the Signet login in $SIGNET_HOME first, then docker's
// config.json (its inline "auth" or "identitytoken", or the credential helper
// it names for host). No credentials is not an error: the login is anonymous.
func LookupRegistryLogin(ctx context.Context, host string) (RegistryLogin, error) {
	if home, err := LoadHome(); err == nil {
		if user, tok := home.Login(host); tok != "" {
			return RegistryLogin{Username: user, IdentityToken: tok}, nil
		}
	}
	cfg, err := LoadDockerConfig()
	if err != nil {
		return RegistryLogin{}, err
	}
	return cfg.RegistryLogin(ctx, host)
}

// RegistryLogin returns the credentials the config holds for host: through its
// credential helper if it names one, else inline. Docker Hub's entry is keyed
// https://index.docker.io/v1/.
func (c *ConfigFile) RegistryLogin(ctx context.Context, host string) (RegistryLogin, error) {
	keys := []string{host, "https://" + host, "http://" + host}
	if host == "docker.io" || host == "registry-1.docker.io" || host == "index.docker.io" {
		keys = append(keys, "https://index.docker.io/v1/")
	}
	if name := c.CredentialHelper(host); name != "" {
		creds, err := Helper{Name: name}.Get(ctx, host)
		if errors.Is(err, ErrCredentialsNotFound) {
			return RegistryLogin{}, nil
		}
		if err != nil {
			return RegistryLogin{}, err
		}
		if creds.Username == TokenUsername {
			return RegistryLogin{IdentityToken: creds.Secret}, nil
		}
		return RegistryLogin{Username: creds.Username, Password: creds.Secret}, nil
	}
	for _, k := range keys {
		e := c.auths[k]
		if e == nil {
			continue
		}
		var auth, user, password, identity string
		json.Unmarshal(e["auth"], &auth)
		json.Unmarshal(e["username"], &user)
		json.Unmarshal(e["password"], &password)
		json.Unmarshal(e["identitytoken"], &identity)
		if dec, err := base64.StdEncoding.DecodeString(auth); err == nil && len(dec) > 0 {
			user, password, _ = strings.Cut(string(dec), ":")
		}
		if identity != "" {
			return RegistryLogin{Username: user, IdentityToken: identity}, nil
		}
		if password != "" {
			return RegistryLogin{Username: user, Password: password}, nil
		}
	}
	return RegistryLogin{}, nil
}

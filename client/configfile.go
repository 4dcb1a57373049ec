package client

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/signet-oss/signet/internal/atomicfile"
)

// ConfigFile is a docker config.json (docker's own, or $SIGNET_HOME/config.json,
// which has the same format plus a "signet" section). It is kept as raw JSON so
// that keys this package does not know (proxies, plugins, a credsStore's
// settings...) survive a rewrite byte for byte.
type ConfigFile struct {
	// Path is where Save writes.
	Path string

	top   map[string]json.RawMessage
	auths map[string]map[string]json.RawMessage
}

// Signet is the "signet" section of $SIGNET_HOME/config.json: where the stack the
// user last logged in to lives.
type Signet struct {
	// Registry is the registry's host:port, as clients name it.
	Registry string `json:"registry,omitempty"`
	// Trustd is trustd's base URL, e.g. http://127.0.0.1:5001.
	Trustd string `json:"trustd,omitempty"`
}

// LoadConfigFile reads the config file at path. A missing file is an empty config.
func LoadConfigFile(path string) (*ConfigFile, error) {
	c := &ConfigFile{Path: path, top: map[string]json.RawMessage{}, auths: map[string]map[string]json.RawMessage{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(b, &c.top); err != nil {
		return nil, fmt.Errorf("%s is not a JSON object (%v): fix or remove it", path, err)
	}
	if raw, ok := c.top["auths"]; ok {
		if err := json.Unmarshal(raw, &c.auths); err != nil {
			return nil, fmt.Errorf("%s: \"auths\" is not an object of objects (%v): fix or remove it", path, err)
		}
		if c.auths == nil {
			c.auths = map[string]map[string]json.RawMessage{}
		}
	}
	return c, nil
}

// CredentialHelper returns the name of the credential helper that holds host's
// credentials (credHelpers[host], else credsStore), or "" if they live in the file.
func (c *ConfigFile) CredentialHelper(host string) string {
	var helpers map[string]string
	if raw, ok := c.top["credHelpers"]; ok && json.Unmarshal(raw, &helpers) == nil {
		if h := helpers[host]; h != "" {
			return h
		}
	}
	var store string
	if raw, ok := c.top["credsStore"]; ok && json.Unmarshal(raw, &store) == nil {
		return store
	}
	return ""
}

// Login returns the user name and identity (refresh) token stored inline for host,
// or empty strings.
func (c *ConfigFile) Login(host string) (user, identityToken string) {
	e := c.auths[host]
	if e == nil {
		return "", ""
	}
	var auth string
	json.Unmarshal(e["auth"], &auth)
	json.Unmarshal(e["identitytoken"], &identityToken)
	if dec, err := base64.StdEncoding.DecodeString(auth); err == nil {
		user, _, _ = strings.Cut(string(dec), ":")
	}
	return user, identityToken
}

// SetLogin stores identityToken inline for host the way docker does after a login
// that returned one: "auth" holds "user:" (no password) and "identitytoken" the
// token. Other keys of the entry are kept, and a stale "password" is dropped.
func (c *ConfigFile) SetLogin(host, user, identityToken string) {
	e := c.auths[host]
	if e == nil {
		e = map[string]json.RawMessage{}
		c.auths[host] = e
	}
	for _, k := range []string{"username", "password", "registrytoken"} {
		delete(e, k)
	}
	e["auth"] = mustJSON(base64.StdEncoding.EncodeToString([]byte(user + ":")))
	e["identitytoken"] = mustJSON(identityToken)
}

// SetHelperEntry records that host's credentials live in a credential helper: an
// empty entry, as docker writes, so that `docker info` and other tools list it.
func (c *ConfigFile) SetHelperEntry(host string) {
	c.auths[host] = map[string]json.RawMessage{}
}

// Signet returns the "signet" section.
func (c *ConfigFile) Signet() Signet {
	var s Signet
	json.Unmarshal(c.top["signet"], &s)
	return s
}

// SetSignet replaces the "signet" section.
func (c *ConfigFile) SetSignet(s Signet) { c.top["signet"] = mustJSON(s) }

// Save writes the file atomically, 0600, creating its directory 0700.
func (c *ConfigFile) Save() error {
	dir := filepath.Dir(c.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if len(c.auths) > 0 || c.top["auths"] != nil {
		c.top["auths"] = mustJSON(c.auths)
	}
	b, err := json.MarshalIndent(c.top, "", "\t")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(c.Path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", c.Path, err)
	}
	return nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only strings and plain structs are marshalled here
	}
	return b
}

// SignetHome returns $SIGNET_HOME, else ~/.signet.
func SignetHome() (string, error) {
	if d := os.Getenv("SIGNET_HOME"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home directory (%v): set SIGNET_HOME", err)
	}
	return filepath.Join(home, ".signet"), nil
}

// DockerConfigDir returns $DOCKER_CONFIG, else ~/.docker, as docker does.
func DockerConfigDir() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home directory (%v): set DOCKER_CONFIG", err)
	}
	return filepath.Join(home, ".docker"), nil
}

// LoadHome loads $SIGNET_HOME/config.json.
func LoadHome() (*ConfigFile, error) {
	dir, err := SignetHome()
	if err != nil {
		return nil, err
	}
	return LoadConfigFile(filepath.Join(dir, "config.json"))
}

// LoadDockerConfig loads docker's config.json.
func LoadDockerConfig() (*ConfigFile, error) {
	dir, err := DockerConfigDir()
	if err != nil {
		return nil, err
	}
	return LoadConfigFile(filepath.Join(dir, "config.json"))
}

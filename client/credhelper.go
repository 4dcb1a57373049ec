package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// TokenUsername is the user name docker gives a credential helper when the secret
// is an identity (refresh) token rather than a password.
const TokenUsername = "<token>"

// ErrCredentialsNotFound is what a helper's get answers for a server it holds nothing
// for.
var ErrCredentialsNotFound = errors.New("credentials not found in native keychain")

// Credentials is the JSON a docker credential helper reads on store and writes on get.
type Credentials struct {
	ServerURL string `json:"ServerURL"`
	Username  string `json:"Username"`
	Secret    string `json:"Secret"`
}

// Helper runs a docker credential helper, the program docker-credential-<Name> on
// PATH, with the protocol docker uses: the action as the only argument, the input on
// stdin (JSON credentials for store, the server URL for get and erase), and for get
// the credentials as JSON on stdout. A failing helper prints its reason on stdout.
type Helper struct {
	Name string
}

// Program is the helper's executable name.
func (h Helper) Program() string { return "docker-credential-" + h.Name }

// Store saves creds.
func (h Helper) Store(ctx context.Context, creds Credentials) error {
	in, err := json.Marshal(creds)
	if err != nil {
		return err
	}
	_, err = h.run(ctx, "store", in)
	return err
}

// Get returns the credentials stored for serverURL, or an error wrapping
// ErrCredentialsNotFound.
func (h Helper) Get(ctx context.Context, serverURL string) (Credentials, error) {
	out, err := h.run(ctx, "get", []byte(serverURL))
	if err != nil {
		return Credentials{}, err
	}
	var c Credentials
	if err := json.Unmarshal(out, &c); err != nil {
		return Credentials{}, fmt.Errorf("%s get: unreadable answer: %v", h.Program(), err)
	}
	if c.ServerURL == "" {
		c.ServerURL = serverURL
	}
	return c, nil
}

// Erase removes the credentials stored for serverURL.
func (h Helper) Erase(ctx context.Context, serverURL string) error {
	_, err := h.run(ctx, "erase", []byte(serverURL))
	return err
}

func (h Helper) run(ctx context.Context, action string, in []byte) ([]byte, error) {
	path, err := exec.LookPath(h.Program())
	if err != nil {
		return nil, fmt.Errorf("the docker config names credential helper %q, but %s is not on PATH: install it, or remove the helper from the config", h.Name, h.Program())
	}
	cmd := exec.CommandContext(ctx, path, action)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stdout.String())
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		if strings.Contains(msg, ErrCredentialsNotFound.Error()) {
			return nil, fmt.Errorf("%s %s: %w", h.Program(), action, ErrCredentialsNotFound)
		}
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("%s %s: %s", h.Program(), action, msg)
	}
	return stdout.Bytes(), nil
}

// StoreDockerLogin stores an identity (refresh) token for host the way docker does:
// through the credential helper the config names for host (credHelpers, then
// credsStore), with the user name "<token>" and an empty entry left in the file;
// else inline in the file. The file is saved either way.
func StoreDockerLogin(ctx context.Context, cfg *ConfigFile, host, user, identityToken string) error {
	if name := cfg.CredentialHelper(host); name != "" {
		h := Helper{Name: name}
		if err := h.Store(ctx, Credentials{ServerURL: host, Username: TokenUsername, Secret: identityToken}); err != nil {
			return err
		}
		cfg.SetHelperEntry(host)
	} else {
		cfg.SetLogin(host, user, identityToken)
	}
	if err := cfg.Save(); err != nil {
		return fmt.Errorf("saving the docker login: %w", err)
	}
	return nil
}

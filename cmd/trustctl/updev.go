package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/internal/atomicfile"
	"github.com/signet-oss/signet/signer"
)

// adminTrustd returns a trustd client acting as the admin, for up's first-start
// chores.
func adminTrustd(ctx context.Context, trustdURL, user, password string) (*client.Trustd, error) {
	tc := &client.TokenClient{}
	realm, service, err := client.TrustdEndpoint(ctx, tc, trustdURL)
	if err != nil {
		return nil, err
	}
	tr, err := tc.PasswordGrant(ctx, realm, service, user, password)
	if err != nil {
		return nil, err
	}
	return &client.Trustd{Base: trustdURL, Token: tr.Access()}, nil
}

// initDevTrust gives a stack started by up a development trust root on its first
// start (trustd has none), with the keys dev-root and dev-targets in
// $SIGNET_HOME/keys, and pins it for the registry at regAddr. It runs before the
// registry starts, so that the registry's gate starts from that root.
func initDevTrust(ctx context.Context, w io.Writer, regAddr string, td *client.Trustd) error {
	homeDir, err := client.SignetHome()
	if err != nil {
		return err
	}
	s := &trust.Session{
		Home: homeDir, Registry: regAddr, Out: io.Discard,
		Trustd: td,
		Keys: signer.NewFileKeyStore(trust.KeyDir(homeDir), func(bool) ([]byte, error) {
			return nil, fmt.Errorf("the development keys need no passphrase")
		}),
	}
	res, err := s.DevInit(ctx)
	if err != nil || res == nil {
		return err
	}
	fmt.Fprintf(w, "Initialised a development trust root with the development keys %s (root) and %s (targets), unencrypted in %s.\n",
		strings.Join(res.RootKeys, ", "), strings.Join(res.TargetsKeys, ", "), trust.KeyDir(homeDir))
	fmt.Fprintf(w, "These are development keys, for this local stack only: a deployment that matters runs `trustctl init` instead.\n")
	fmt.Fprintf(w, "Root fingerprint SHA256:%s, pinned for %s.\n\n", res.RootSHA256, regAddr)
	return nil
}

// registryAccount is the registry's own trustd account, with which its gate
// reads every organisation's and repository's role. up keeps it in the data
// directory (0600).
type registryAccount struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// ensureRegistryAccount returns the registry's trustd account, creating it on
// first start: a user allowed to pull everything (which reading every role
// needs), with a random password.
func ensureRegistryAccount(ctx context.Context, path string, td *client.Trustd) (*registryAccount, error) {
	if b, err := os.ReadFile(path); err == nil {
		var a registryAccount
		if err := json.Unmarshal(b, &a); err != nil || a.Username == "" {
			return nil, fmt.Errorf("%s is not a registry account record", path)
		}
		return &a, nil
	}
	if td == nil {
		return nil, fmt.Errorf("%s is missing and the admin password is not known to this run", path)
	}
	a := &registryAccount{Username: "signet-registry", Password: newPassword()}
	if err := td.CreateUser(ctx, a.Username, a.Password); err != nil {
		return nil, err
	}
	if err := td.CreateGrant(ctx, a.Username, "**", "pull"); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(a)
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return nil, err
	}
	return a, nil
}

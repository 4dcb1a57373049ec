package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

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
// start (trustd has none), with the keys dev-root and dev-targets in the
// stack's own DIR/keys, and pins it for the registry at regAddr; a later start
// pins it again where nothing is pinned (the registry's address changed, or
// another $SIGNET_HOME runs up). It runs before the registry starts, so that
// the registry's gate starts from that root. td is nil when the admin password
// is not known to this run: a root is then pinned, never made.
func initDevTrust(ctx context.Context, w io.Writer, homeDir, data, regAddr, trustdURL string, td *client.Trustd) error {
	devDir := filepath.Join(data, "keys")
	keys := signer.NewFileKeyStore(devDir, func(bool) ([]byte, error) {
		return nil, fmt.Errorf("the development keys need no passphrase")
	})
	if err := adoptDevKeys(ctx, w, homeDir, devDir, trustdURL, keys); err != nil {
		return err
	}
	if err := trust.SetDevKeyDir(homeDir, regAddr, devDir); err != nil {
		return err
	}
	if td == nil {
		td = &client.Trustd{Base: trustdURL}
	}
	s := &trust.Session{Home: homeDir, Registry: regAddr, Out: io.Discard, Trustd: td, Keys: keys}
	res, err := s.DevInit(ctx)
	if err != nil || res == nil {
		return err
	}
	fmt.Fprintf(w, "Initialised a development trust root with the development keys %s (root) and %s (targets), unencrypted in %s.\n",
		strings.Join(res.RootKeys, ", "), strings.Join(res.TargetsKeys, ", "), devDir)
	fmt.Fprintf(w, "These are development keys, for this local stack only: a deployment that matters runs `trustctl init` instead.\n")
	fmt.Fprintf(w, "Root fingerprint SHA256:%s, pinned for %s.\n\n", res.RootSHA256, regAddr)
	return nil
}

// adoptDevKeys copies the development keys of a stack made before they lived
// with its data (in $SIGNET_HOME/keys) into the stack's DIR/keys: dev-root and
// dev-targets, when trustd's root is made with that dev-root. The copies in
// $SIGNET_HOME stay, since another stack may have been made with them too.
func adoptDevKeys(ctx context.Context, w io.Writer, homeDir, devDir, trustdURL string, keys signer.KeyStore) error {
	if _, err := keys.Public(ctx, signer.DevelopmentPrefix+"root"); err == nil {
		return nil
	}
	served, found, err := client.FetchRoot(ctx, nil, trustdURL)
	if err != nil || !found {
		return err
	}
	root, err := metadata.Root().FromBytes(served)
	if err != nil {
		return err
	}
	old := signer.NewFileKeyStore(trust.KeyDir(homeDir), nil)
	info, err := old.Public(ctx, signer.DevelopmentPrefix+"root")
	if err != nil || !info.Development || !slices.Contains(root.Signed.Roles[metadata.ROOT].KeyIDs, info.ID) {
		return nil // not made with this home's development keys
	}
	var copied []string
	for _, name := range []string{signer.DevelopmentPrefix + "root", signer.DevelopmentPrefix + "targets"} {
		k, err := old.Load(ctx, name)
		if errors.Is(err, signer.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if _, err := keys.Import(ctx, name, k.Signer); err != nil && !errors.Is(err, signer.ErrKeyExists) {
			return fmt.Errorf("copying the development key %s to %s: %w", name, devDir, err)
		}
		copied = append(copied, name)
	}
	fmt.Fprintf(w, "Copied the development keys %s of this stack's trust root from %s to %s, where they now live with its data.\n",
		strings.Join(copied, ", "), trust.KeyDir(homeDir), devDir)
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
//
// The record is written before the account is made, so that a setup cut short
// in between (resume) finds the password the account was made with, and makes
// what is missing of it.
func ensureRegistryAccount(ctx context.Context, path string, td *client.Trustd, resume bool) (*registryAccount, error) {
	var a registryAccount
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &a); err != nil || a.Username == "" {
			return nil, fmt.Errorf("%s is not a registry account record", path)
		}
		if !resume || td == nil {
			return &a, nil
		}
	case td == nil:
		return nil, fmt.Errorf("%s is missing and the admin password is not known to this run", path)
	default:
		a = registryAccount{Username: "signet-registry", Password: newPassword()}
		b, _ := json.Marshal(a)
		if err := atomicfile.Write(path, b, 0o600); err != nil {
			return nil, err
		}
	}
	if err := td.CreateUser(ctx, a.Username, a.Password); err != nil && !(resume && isConflict(err)) {
		return nil, err
	}
	if err := td.CreateGrant(ctx, a.Username, "**", "pull"); err != nil && !(resume && isConflict(err)) {
		return nil, err
	}
	return &a, nil
}

// isConflict reports whether trustd refused to make what exists already.
func isConflict(err error) bool {
	var ae *client.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusConflict
}

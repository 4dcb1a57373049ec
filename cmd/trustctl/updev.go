package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/signer"
)

// initDevTrust gives a stack started by up a development trust root on its first
// start (trustd has none), with the keys dev-root and dev-targets in
// $SIGNET_HOME/keys, and pins it for the registry. It runs before up logs in, so
// that the registry's first look at trustd's root already finds it.
func initDevTrust(ctx context.Context, w io.Writer, regAddr, trustdURL, user, password string) error {
	homeDir, err := client.SignetHome()
	if err != nil {
		return err
	}
	tc := &client.TokenClient{}
	realm, service, err := client.TrustdEndpoint(ctx, tc, trustdURL)
	if err != nil {
		return err
	}
	tr, err := tc.PasswordGrant(ctx, realm, service, user, password)
	if err != nil {
		return err
	}
	s := &trust.Session{
		Home: homeDir, Registry: regAddr, Out: io.Discard,
		Trustd: &client.Trustd{Base: trustdURL, Token: tr.Access()},
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

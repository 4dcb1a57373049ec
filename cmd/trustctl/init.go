package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/signet-oss/signet/client/trust"
	"github.com/spf13/cobra"
)

func newInitCmd(g *globals) *cobra.Command {
	var o trust.InitOptions
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the deployment's trust root: root and targets keys, root.json v1 (admin)",
		Long: `init is the ceremony that creates a deployment's trust graph. It uses the named
root and targets keys (--root-key, --targets-key), or generates root-1..N and
targets-1..N in $SIGNET_HOME/keys (encrypted with SIGNET_PASSPHRASE or a prompted
passphrase), builds root.json v1 naming them with their thresholds and trustd's
online snapshot and timestamp keys, and targets.json v1; signs both and sends them
to trustd, which publishes snapshot and timestamp. trustd never holds the root or
targets keys. The root is then pinned for the registry, as trust add does.

Keep the root keys offline afterwards: they are needed only to rotate keys.`,
		Example: `  trustctl init --root-keys 3 --root-threshold 2 --targets-keys 3 --targets-threshold 2`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := g.session(cmd.Context(), "")
			if err != nil {
				return err
			}
			res, err := s.Init(cmd.Context(), o)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(res)
			}
			if len(res.Generated) > 0 {
				fmt.Printf("Generated keys %s in %s.\n", strings.Join(res.Generated, ", "), trust.KeyDir(s.Home))
			}
			fmt.Printf("Initialised the trust root of %s: root keys %s (threshold %d), targets keys %s (threshold %d).\n",
				s.Registry, strings.Join(res.RootKeys, ", "), o.RootThreshold, strings.Join(res.TargetsKeys, ", "), o.TargetsThreshold)
			fmt.Printf("Root fingerprint SHA256:%s, pinned in %s.\n", res.RootSHA256, res.Pinned)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.RootKeys, "root-key", nil, "an existing key for the root role (repeat for several)")
	f.StringArrayVar(&o.TargetsKeys, "targets-key", nil, "an existing key for the targets role (repeat for several)")
	f.IntVar(&o.RootN, "root-keys", 1, "how many root keys to generate (without --root-key)")
	f.IntVar(&o.TargetsN, "targets-keys", 1, "how many targets keys to generate (without --targets-key)")
	f.IntVar(&o.RootThreshold, "root-threshold", 1, "signatures root needs")
	f.IntVar(&o.TargetsThreshold, "targets-threshold", 1, "signatures targets needs")
	f.DurationVar(&o.Expires, "expires", 8760*time.Hour, "lifetime of root and targets")
	return cmd
}

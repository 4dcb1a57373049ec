package main

import (
	"fmt"

	"github.com/signet-oss/signet/client/trust"
	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func newRootRoleCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "root", Short: "Manage the root role's keys (root key holders)"}
	var r trust.RootRotation
	rotate := &cobra.Command{
		Use:   "rotate [--role root|targets] [--add-key NAME ...] [--remove-key NAME ...] [--threshold K]",
		Short: "Publish a new root with keys added or removed, signed by the old and new root keys",
		Long: `rotate publishes root.json v+1 in which the keys of the root role (or, with
--role targets, of the targets role) are changed. It is signed by the current root
keys and by the new ones, each up to its threshold, as clients require to follow
the root chain; the keys must be in your key store. Clients that pinned an older
root follow the chain at their next refresh.`,
		Example: `  trustctl root rotate --add-key root-4 --remove-key root-1`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRootRotate(cmd, g, r)
		},
	}
	rotate.Flags().StringVar(&r.Role, "role", metadata.ROOT, "the role whose keys change: root or targets")
	rotate.Flags().StringArrayVar(&r.Add, "add-key", nil, "a key to add (repeat for several)")
	rotate.Flags().StringArrayVar(&r.Remove, "remove-key", nil, "a key to remove (repeat for several)")
	rotate.Flags().IntVar(&r.Threshold, "threshold", 0, "the role's new threshold (default: unchanged)")
	cmd.AddCommand(rotate)
	return cmd
}

func newTargetsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "targets", Short: "Manage the targets role's keys (root and targets key holders)"}
	var add, remove []string
	var threshold int
	rotate := &cobra.Command{
		Use:   "rotate-key --key NEW [--key NEW ...] --remove-key OLD [...]",
		Short: "Replace targets keys: targets is re-signed by old and new keys, then root names the new ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRootRotate(cmd, g, trust.RootRotation{Role: metadata.TARGETS, Add: add, Remove: remove, Threshold: threshold})
		},
	}
	rotate.Flags().StringArrayVar(&add, "key", nil, "a new targets key (repeat for several)")
	rotate.Flags().StringArrayVar(&remove, "remove-key", nil, "a targets key to remove (repeat for several)")
	rotate.Flags().IntVar(&threshold, "threshold", 0, "the new threshold (default: unchanged)")
	cmd.AddCommand(rotate)
	return cmd
}

func runRootRotate(cmd *cobra.Command, g *globals, r trust.RootRotation) error {
	s, err := g.session(cmd.Context(), "")
	if err != nil {
		return err
	}
	out, err := s.RotateRoot(cmd.Context(), r)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return printJSON(out)
	}
	for _, o := range out {
		fmt.Printf("Trust: %s.\n", o)
	}
	return nil
}

package main

import (
	"fmt"
	"strings"

	"github.com/signet-oss/signet/client/trust"
	"github.com/spf13/cobra"
)

// runOrgCreate creates an organisation and both sides of its trust delegation.
func runOrgCreate(cmd *cobra.Command, g *globals, org, keyName string) error {
	s, err := g.session(cmd.Context(), "")
	if err != nil {
		return err
	}
	res, err := s.CreateOrg(cmd.Context(), org, keyName, 1)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return printJSON(res)
	}
	if res.Created {
		fmt.Printf("Created organisation %s: its repositories are %s/...\n", org, org)
	} else {
		fmt.Printf("Organisation %s already exists.\n", org)
	}
	if res.NoTrustRoot {
		fmt.Println("Trust: trustd has no trust root yet; after `trustctl init`, run org create again to delegate the namespace.")
		return nil
	}
	if res.Generated {
		fmt.Printf("Generated its org key %s in %s.\n", res.Key, trust.KeyDir(s.Home))
	}
	for _, o := range res.Published {
		fmt.Printf("Trust: %s.\n", o)
	}
	if len(res.Published) == 0 {
		fmt.Printf("Trust: targets already delegates %s/* to its org role; nothing to change.\n", org)
	}
	return nil
}

func newOrgTrustCmds(g *globals) []*cobra.Command {
	var keys []string
	var threshold int
	delegate := &cobra.Command{
		Use:   "delegate ORG/REPO --key NAME [--key NAME ...] [--threshold K]",
		Short: "Have the org delegate a repository to publisher keys (org owner)",
		Long: `delegate publishes a new version of the org's role in which the repository is
delegated to exactly the given keys (names in your key store, or PEM files a
publisher exported with trustctl keys export), with a threshold of signatures. A
key left out of a new delegation is revoked: what it signed is no longer trusted at
clients' next refresh.`,
		Example: `  trustctl org delegate acme/app --key alice
  trustctl org delegate acme/svc --key a --key b --key c --threshold 2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.session(cmd.Context(), "")
			if err != nil {
				return err
			}
			res, err := s.Delegate(cmd.Context(), args[0], keys, threshold)
			if err != nil {
				return err
			}
			return printDelegation(g, res, fmt.Sprintf("%s is delegated to %s (threshold %d)", res.Repository, strings.Join(keys, ", "), threshold))
		},
	}
	delegate.Flags().StringArrayVar(&keys, "key", nil, "a publisher key (repeat for several)")
	delegate.Flags().IntVar(&threshold, "threshold", 1, "signatures needed")
	delegate.MarkFlagRequired("key")

	undelegate := &cobra.Command{
		Use:   "undelegate ORG/REPO",
		Short: "Remove a repository's delegation: nothing signed for it is trusted any more (org owner)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.session(cmd.Context(), "")
			if err != nil {
				return err
			}
			res, err := s.Undelegate(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printDelegation(g, res, fmt.Sprintf("%s is no longer delegated", res.Repository))
		},
	}

	var newKeys []string
	var orgThreshold int
	rotate := &cobra.Command{
		Use:   "rotate-key ORG --key NEW [--key NEW ...]",
		Short: "Replace the org's keys (generated if missing); re-signs the org role (targets key holders)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.session(cmd.Context(), "")
			if err != nil {
				return err
			}
			res, err := s.RotateOrgKey(cmd.Context(), args[0], newKeys, orgThreshold)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(res)
			}
			if len(res.Published) == 0 {
				fmt.Printf("%s already uses %s: nothing to change.\n", args[0], strings.Join(newKeys, ", "))
			}
			for _, o := range res.Published {
				fmt.Printf("Trust: %s.\n", o)
			}
			return nil
		},
	}
	rotate.Flags().StringArrayVar(&newKeys, "key", nil, "the new org key (repeat for several)")
	rotate.Flags().IntVar(&orgThreshold, "threshold", 1, "signatures the org role needs")
	rotate.MarkFlagRequired("key")
	return []*cobra.Command{delegate, undelegate, rotate}
}

func printDelegation(g *globals, res *trust.DelegateResult, what string) error {
	if g.output == "json" {
		return printJSON(res)
	}
	switch {
	case !res.Changed:
		fmt.Printf("%s already: nothing to change.\n", what)
	case res.Outcome.Staged:
		fmt.Printf("%s once the org role has its signatures: %s.\n", what, res.Outcome)
	case res.Outcome.Held && !waitsFor(res.Outcome, res.Repository):
		// A change of a published repository (a key revoked, an undelegation)
		// held because another repository's delegation is pending.
		fmt.Printf("%s once the org role is published: %s. This change waits with the pending delegation of %s; to publish it now, undelegate that (trustctl org undelegate) and delegate it again later.\n", what, res.Outcome, res.Outcome.WaitingFor())
	case res.Outcome.Held:
		fmt.Printf("%s: %s. The delegation takes effect with the repository's first signed version (the publisher's first push or sign); until then trustd holds this org role version, and later changes of the org role are built on it.\n", what, res.Outcome)
	case res.First != nil:
		fmt.Printf("%s (%s; %s, signed with the delegated keys here, so the delegation takes effect now).\n", what, res.Outcome, res.First)
	default:
		fmt.Printf("%s (%s).\n", what, res.Outcome)
	}
	return nil
}

// waitsFor reports whether a held outcome waits for repo's first version.
func waitsFor(o *trust.Outcome, repo string) bool {
	for _, w := range o.Waiting {
		if w.Repository == repo {
			return true
		}
	}
	return false
}

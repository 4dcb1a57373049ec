package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-oss/signet/trustd/api"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage an organisation's robot tokens (org owner or admin)",
		Long: `A robot token is a user name and secret that an organisation hands to CI and
other machines. It can never do more than its scopes, whatever its organisation
may do, and stops working when it expires or is revoked.`,
	}
	cmd.AddCommand(newTokenCreateCmd(g), newTokenListCmd(g), newTokenRevokeCmd(g))
	return cmd
}

func newTokenCreateCmd(g *globals) *cobra.Command {
	var org, name string
	var scopes []string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:     "create --org ORG --name NAME --scope SCOPE [--scope SCOPE] [--ttl 720h]",
		Short:   "Create a robot token scoped to some of an organisation's repositories",
		Example: `  trustctl token create --org acme --scope repository:acme/app:pull --ttl 720h --name ci-bot`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range scopes {
				if !strings.HasPrefix(s, "repository:"+org+"/") {
					return fmt.Errorf("--scope %q: a robot of %s may only have scopes repository:%s/NAME:ACTIONS, e.g. repository:%s/app:pull", s, org, org, org)
				}
			}
			if ttl <= 0 {
				return fmt.Errorf("--ttl %s: must be positive, e.g. 720h", ttl)
			}
			td, err := g.trustd(cmd.Context())
			if err != nil {
				return err
			}
			r, err := td.CreateRobot(cmd.Context(), org, api.RobotRequest{Name: name, Scopes: scopes, TTL: ttl.String()})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(r)
			}
			fmt.Printf("Created robot %s with %s, valid until %s.\n\n", r.Name, strings.Join(r.Scopes, " "), r.Expires.Format(time.RFC3339))
			fmt.Printf("  username: %s\n  secret:   %s\n\n", r.Name, r.Secret)
			fmt.Println("The secret is shown only now: keep it in your CI's secret store. Use it with any client, e.g.")
			fmt.Printf("  echo \"$SECRET\" | docker login %s -u '%s' --password-stdin\n", g.registryName(), r.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "organisation (required)")
	cmd.Flags().StringVar(&name, "name", "", "robot name, unique in the organisation: lower case, digits and . _ - (required)")
	cmd.Flags().StringArrayVar(&scopes, "scope", nil, "repository scope, repeatable: repository:ORG/REPO:pull[,push,delete] (required)")
	cmd.Flags().DurationVar(&ttl, "ttl", 30*24*time.Hour, "how long the token is valid")
	cmd.MarkFlagRequired("org")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("scope")
	return cmd
}

func newTokenListCmd(g *globals) *cobra.Command {
	var org string
	cmd := &cobra.Command{
		Use:   "list --org ORG",
		Short: "List an organisation's robot tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			td, err := g.trustd(cmd.Context())
			if err != nil {
				return err
			}
			robots, err := td.Robots(cmd.Context(), org)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(robots)
			}
			if len(robots) == 0 {
				fmt.Printf("%s has no robot tokens.\n", org)
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSCOPES\tEXPIRES\tCREATED")
			for _, r := range robots {
				created := "-"
				if !r.Created.IsZero() {
					created = r.Created.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, strings.Join(r.Scopes, " "), r.Expires.Format(time.RFC3339), created)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "organisation (required)")
	cmd.MarkFlagRequired("org")
	return cmd
}

func newTokenRevokeCmd(g *globals) *cobra.Command {
	var org string
	cmd := &cobra.Command{
		Use:     "revoke --org ORG NAME",
		Short:   "Revoke a robot token: it is refused from its next token exchange on",
		Example: `  trustctl token revoke --org acme ci-bot`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := strings.TrimPrefix(args[0], org+"+")
			td, err := g.trustd(cmd.Context())
			if err != nil {
				return err
			}
			if err := td.RevokeRobot(cmd.Context(), org, name); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(map[string]any{"org": org, "name": org + "+" + name, "revoked": true})
			}
			fmt.Printf("Revoked %s+%s: its secret and tokens are refused from their next exchange.\n", org, name)
			return nil
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "organisation (required)")
	cmd.MarkFlagRequired("org")
	return cmd
}

package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"
)

// roles are the organisation roles trustd knows.
var roles = []string{"owner", "publisher", "reader"}

func newOrgCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "org", Short: "Manage organisations and their members"}
	var orgKey string
	create := &cobra.Command{
		Use:   "create ORG [--key NAME]",
		Short: "Create an organisation and its trust delegation (admin); idempotent",
		Example: `  trustctl org create acme
  trustctl keys generate acme-org --pkcs11 'pkcs11:token=org?module-path=/usr/lib/softhsm/libsofthsm2.so'
  trustctl org create acme --key acme-org`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOrgCreate(cmd, g, args[0], orgKey)
		},
	}
	create.Flags().StringVar(&orgKey, "key", "", "the org key, a key of your store (one in a token, say); generated if missing (default org-ORG)")
	var role string
	addMember := &cobra.Command{
		Use:     "add-member ORG USER --role owner|publisher|reader",
		Short:   "Give a user a role in an organisation (org owner or admin)",
		Example: `  trustctl org add-member acme alice --role publisher`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(roles, role) {
				return fmt.Errorf("--role: %q is not a role: use owner (pull, push, delete, manage), publisher (pull, push) or reader (pull)", role)
			}
			td, err := g.trustd(cmd.Context())
			if err != nil {
				return err
			}
			if err := td.SetMember(cmd.Context(), args[0], args[1], role); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(map[string]string{"org": args[0], "user": args[1], "role": role})
			}
			fmt.Printf("%s is now a %s of %s.\n", args[1], role, args[0])
			return nil
		},
	}
	addMember.Flags().StringVar(&role, "role", "", "owner, publisher or reader (required)")
	addMember.MarkFlagRequired("role")
	cmd.AddCommand(create, addMember)
	cmd.AddCommand(newOrgTrustCmds(g)...)
	return cmd
}

package main

import (
	"fmt"
	"os"

	"github.com/signet-oss/signet/client"
	"github.com/spf13/cobra"
)

func newUserCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage people's accounts (admin)"}
	var passwordStdin bool
	create := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a person's account",
		Example: `  echo "$PASSWORD" | trustctl user create alice --password-stdin`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			password, err := client.ReadPassword(os.Stdin, os.Stderr, passwordStdin, "Password for "+args[0]+": ", true)
			if err != nil {
				return err
			}
			td, err := g.trustd(cmd.Context())
			if err != nil {
				return err
			}
			if err := td.CreateUser(cmd.Context(), args[0], password); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(map[string]string{"name": args[0]})
			}
			fmt.Printf("Created user %s. Add them to an organisation with: trustctl org add-member ORG %s --role reader\n", args[0], args[0])
			return nil
		},
	}
	create.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the new password from stdin (else asked twice on the terminal)")
	cmd.AddCommand(create)
	return cmd
}

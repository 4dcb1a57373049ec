package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/trustd/api"
)

// The everyday reads and undos: logout, whoami, the listings of orgs, members,
// users and pinned roots, unpinning, and a repository's tags with their
// signatures.

// addEverydayCmds adds them to root: logout, whoami and tags at the top, the
// others under org, user and trust.
func addEverydayCmds(root *cobra.Command, g *globals) {
	root.AddCommand(newLogoutCmd(g), newWhoamiCmd(g), newTagsCmd(g))
	for _, c := range root.Commands() {
		switch c.Name() {
		case "org":
			c.AddCommand(newOrgListCmd(g), newOrgMembersCmd(g))
		case "user":
			c.AddCommand(newUserListCmd(g))
		case "trust":
			c.AddCommand(newTrustListCmd(g), newTrustRemoveCmd(g))
		}
	}
}

func newLogoutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [HOST]",
		Short: "Forget the login to a registry (default: the one last logged in to)",
		Long: `logout removes what login stored for HOST: its refresh tokens (the registry's
and trustd's) in $SIGNET_HOME, and its entry in docker's config (through its
credential helper if it names one). The tokens are forgotten on this machine,
not revoked at trustd.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := client.LoadHome()
			if err != nil {
				return err
			}
			docker, err := client.LoadDockerConfig()
			if err != nil {
				return err
			}
			host := g.registry
			if len(args) == 1 {
				host = args[0]
			}
			res, err := client.Logout(cmd.Context(), host, home, docker)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(res)
			}
			fmt.Printf("Logged out of %s (removed from %s).\n", res.Registry, strings.Join(res.Removed, ", "))
			return nil
		},
	}
}

func newWhoamiCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the account you are logged in as, its organisations and roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			td, err := g.trustd(cmd.Context())
			if err != nil {
				return err
			}
			id, err := td.Whoami(cmd.Context())
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(id)
			}
			kind := id.Kind
			if id.Admin {
				kind += ", admin"
			}
			fmt.Printf("%s (%s) at %s\n", id.Name, kind, g.registryName())
			if len(id.Orgs) == 0 {
				fmt.Println("No organisations.")
			}
			for _, org := range slices.Sorted(maps.Keys(id.Orgs)) {
				fmt.Printf("  %s: %s\n", org, id.Orgs[org])
			}
			return nil
		},
	}
}

func newOrgListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the organisations you may read (all of them for an admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			td, err := g.trustd(cmd.Context())
			if err != nil {
				return err
			}
			orgs, err := td.Orgs(cmd.Context())
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(orgs)
			}
			if len(orgs) == 0 {
				fmt.Println("No organisations. An admin creates one with: trustctl org create ORG")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ORG\tMEMBERS")
			for _, o := range orgs {
				fmt.Fprintf(tw, "%s\t%d\n", o.Name, len(o.Members))
			}
			return tw.Flush()
		},
	}
}

func newOrgMembersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "members ORG",
		Short: "List an organisation's members and their roles (a member or admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			td, err := g.trustd(cmd.Context())
			if err != nil {
				return err
			}
			o, err := td.Org(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(o)
			}
			if len(o.Members) == 0 {
				fmt.Printf("%s has no members. Add one with: trustctl org add-member %s USER --role reader\n", o.Name, o.Name)
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tROLE")
			for _, u := range slices.Sorted(maps.Keys(o.Members)) {
				fmt.Fprintf(tw, "%s\t%s\n", u, o.Members[u])
			}
			return tw.Flush()
		},
	}
}

func newUserListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List people's accounts with their organisations (admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			td, err := g.trustd(cmd.Context())
			if err != nil {
				return err
			}
			users, err := td.Users(cmd.Context())
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(users)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tADMIN\tORGS")
			for _, u := range users {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, map[bool]string{true: "yes", false: "-"}[u.Admin], orgRoles(u))
			}
			return tw.Flush()
		},
	}
}

// orgRoles is "acme (owner), beta (reader)", or "-".
func orgRoles(id api.Identity) string {
	var parts []string
	for _, org := range slices.Sorted(maps.Keys(id.Orgs)) {
		parts = append(parts, org+" ("+id.Orgs[org]+")")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func newTrustListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the registries whose trust root is pinned, with its fingerprint and versions",
		Long: `list shows each pinned registry: the fingerprint of the root pinned by trust add
(compare it with the one your operators published), its version, and the
version and expiry of the newest root verified from it since (after root
rotations).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := client.SignetHome()
			if err != nil {
				return err
			}
			pins, err := trust.Pins(home)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(pins)
			}
			if len(pins) == 0 {
				fmt.Println("No trust root is pinned. Pin a registry's with: trustctl trust add HOST")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REGISTRY\tPINNED FINGERPRINT\tPINNED\tCURRENT\tEXPIRES")
			for _, p := range pins {
				fmt.Fprintf(tw, "%s\t%s\tv%d\tv%d\t%s\n", p.Registry, p.Fingerprint, p.Version, p.Current, p.Expires)
			}
			return tw.Flush()
		},
	}
}

func newTrustRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove HOST",
		Short: "Unpin a registry's trust root: verifying its images fails until trust add",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := client.SignetHome()
			if err != nil {
				return err
			}
			host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(args[0], "https://"), "http://"), "/")
			dir, err := trust.Unpin(home, host)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(map[string]string{"registry": host, "removed": dir})
			}
			fmt.Printf("Unpinned the trust root of %s (removed %s).\n", host, dir)
			return nil
		},
	}
}

func newTagsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tags HOST/ORG/REPO",
		Short: "List a repository's signed tags: by which keys, until when, and staged ones' signatures",
		Long: `tags reads the repository's role from the trust graph, verified from the pinned
root, and lists its tags with the delegated keys that signed them and the role's
expiry; tags of a version trustd holds staged for more signatures (a k-of-n
threshold) are listed as staged, with how many of the threshold have signed.`,
		Example: `  trustctl tags 127.0.0.1:5000/acme/app`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host, repo, ok := strings.Cut(args[0], "/")
			if !ok || repo == "" {
				return fmt.Errorf("%q: name the repository as HOST/ORG/REPO", args[0])
			}
			s, err := g.session(cmd.Context(), host)
			if err != nil {
				return err
			}
			list, err := s.Tags(cmd.Context(), repo)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(list)
			}
			fmt.Printf("%s: v%d, %d of %s must sign\n", list.Repository, list.Version, list.Threshold, strings.Join(list.Keys, ", "))
			if len(list.Tags) == 0 {
				fmt.Println("No signed tags.")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TAG\tDIGEST\tSTATUS\tSIGNED BY\tEXPIRES")
			for _, t := range list.Tags {
				status := t.Status
				if t.Status == "staged" {
					status = fmt.Sprintf("staged (%d of %d)", t.Signatures, t.Threshold)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(t.Tag), shortDigest(t.Digest), status, strings.Join(t.SignedBy, ", "), t.Expires)
			}
			return tw.Flush()
		},
	}
}

package main

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/signer"
)

// Shell completion (cobra's `trustctl completion bash|zsh|fish|powershell`)
// of what a user would otherwise look up: key names from the key store, org
// names from trustd when logged in, and the values of --output. A lookup that
// fails completes nothing, silently: completion must never print errors into
// a shell's command line.

// keyArgs are the commands whose positional arguments are key names.
var keyArgs = map[string]bool{"trustctl keys export": true, "trustctl agent add": true}

// orgArgs are the commands whose first positional argument is an org name
// (or, with a slash, an ORG/REPO: the org is completed with its slash).
var orgArgs = map[string]string{
	"trustctl org members": "", "trustctl org add-member": "", "trustctl org rotate-key": "",
	"trustctl org delegate": "/", "trustctl org undelegate": "/", "trustctl policy show": "",
}

// addCompletions registers the completions on every command of root.
func addCompletions(root *cobra.Command, g *globals) {
	root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	keys := func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return keyNames(), cobra.ShellCompDirectiveNoFileComp
	}
	orgs := func(suffix string) cobra.CompletionFunc {
		return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			names := orgNames(cmd, g)
			for i := range names {
				names[i] += suffix
			}
			if suffix != "" {
				return names, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		}
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Flags().Lookup("key") != nil {
			c.RegisterFlagCompletionFunc("key", keys)
		}
		if c.Flags().Lookup("org") != nil {
			c.RegisterFlagCompletionFunc("org", orgs(""))
		}
		if keyArgs[c.CommandPath()] && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = keys
		}
		if suffix, ok := orgArgs[c.CommandPath()]; ok && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = orgs(suffix)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// keyNames are the names in the key store; none when it cannot be read.
func keyNames() []string {
	home, err := client.SignetHome()
	if err != nil {
		return nil
	}
	infos, err := signer.NewFileKeyStore(trust.KeyDir(home), nil).List(context.Background())
	if err != nil {
		return nil
	}
	var out []string
	for _, k := range infos {
		out = append(out, k.Name)
	}
	return out
}

// orgNames are the orgs the login may read; none when not logged in.
func orgNames(cmd *cobra.Command, g *globals) []string {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	td, err := g.trustd(ctx)
	if err != nil {
		return nil
	}
	orgs, err := td.Orgs(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, o := range orgs {
		if !strings.ContainsAny(o.Name, " \t\n") {
			out = append(out, o.Name)
		}
	}
	return out
}

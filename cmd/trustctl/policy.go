package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/signet-oss/signet/client/signed"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/policy"
	"github.com/spf13/cobra"
)

const policyDocHelp = `A policy document names the repositories it applies to (a pattern starting
with the org's name: acme/app, acme/* for one more name component, acme/** for
every repository of acme), a mode (enforce, the default, or warn), and what an
image needs, all of it:

  {"repositories": "acme/app", "mode": "enforce", "require": [
    {"predicateType": "https://slsa.dev/provenance/v1",
     "match": {"runDetails.builder.id": "https://github.com/acme/*"}},
    {"signers": 2}
  ]}

A requirement with a predicateType asks for attestations of that type, by
"signers" distinct delegated keys (default 1), whose predicate has every
"match": a path of member names and decimal array indexes joined by '.', and a
value where '*' stands for any run of characters. One without asks for that
many distinct delegated keys to have signed the image itself.`

func newPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Manage an org's pull policies: what must accompany an image before anyone may pull it",
		Long: `An org's pull policies live in its role of the trust graph, signed with its
org key: the registry refuses to serve an image whose enforced policy is not met
(403 DENIED, naming what is missing), and trustctl verify and pull check the
same policy against the trust graph they verify themselves (exit code 14).

` + policyDocHelp,
	}
	set := &cobra.Command{
		Use:   "set FILE",
		Short: "Set the policy in a document (replacing the org's policy for the same pattern); signed with the org key",
		Long: `set reads and checks the policy document FILE ("-" for stdin), and publishes the
next version of its org's role with the document among the org's policies,
replacing the one for the same repositories pattern. It is signed with the org's
key from the local key store (the key trustctl org create made, named org-ORG).
The registry applies it within its trust refresh interval.

` + policyDocHelp,
		Example: `  trustctl policy set slsa.json
  echo '{"repositories":"acme/**","mode":"warn","require":[{"signers":2}]}' | trustctl policy set -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readPolicyFile(args[0])
			if err != nil {
				return err
			}
			s, err := g.session(cmd.Context(), "")
			if err != nil {
				return err
			}
			res, err := s.SetPolicy(cmd.Context(), data)
			if err != nil {
				return err
			}
			return printPolicyResult(g, res, "set")
		},
	}
	unset := &cobra.Command{
		Use:     "unset PATTERN",
		Short:   "Remove the org's policy for a repositories pattern; signed with the org key",
		Example: `  trustctl policy unset acme/app`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.session(cmd.Context(), "")
			if err != nil {
				return err
			}
			res, err := s.UnsetPolicy(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printPolicyResult(g, res, "removed")
		},
	}
	show := &cobra.Command{
		Use:   "show ORG/REPO|ORG",
		Short: "Show the policies in force for a repository, or all of an org's, as the verified trust graph says",
		Long: `show reads the org's policies from the trust graph, verified from the root
pinned by trustctl trust add (never from trustd's word alone), and prints those
that apply to the repository (all of them apply), or every policy of the org.`,
		Example: `  trustctl policy show acme/app
  trustctl policy show acme --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.session(cmd.Context(), "")
			if err != nil {
				return err
			}
			view, err := s.Policies(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(view)
			}
			printPolicies(os.Stdout, view)
			return nil
		},
	}
	test := &cobra.Command{
		Use:   "test HOST/ORG/REPO:TAG|HOST/ORG/REPO@DIGEST",
		Short: "Say which requirements of the image's pull policy are met and which are not, without pulling blobs",
		Long: `test verifies the image as trustctl verify does (its blobs are not read),
evaluates the pull policies that apply to its repository against its signers and
the signatures and attestations attached to it that verify, and prints each
requirement: met or not, how many distinct delegated keys count towards it, and
what was found instead. It exits 14 when an enforced policy is not met.

` + exitCodesHelp,
		Example: `  trustctl policy test 127.0.0.1:5000/acme/app:v1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPolicyTest(cmd, g, args[0])
		},
	}
	cmd.AddCommand(set, unset, show, test)
	return cmd
}

// readPolicyFile reads a policy document from path, or stdin for "-".
func readPolicyFile(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the policy document: %w", err)
	}
	return data, nil
}

func printPolicyResult(g *globals, res *trust.PolicyResult, what string) error {
	if g.output == "json" {
		return printJSON(res)
	}
	switch {
	case !res.Changed:
		fmt.Printf("The policy for %s is %s already: nothing to change.\n", res.Repositories, what)
	case res.Outcome.Staged:
		fmt.Printf("The policy for %s will be %s once the org role has its signatures: %s.\n", res.Repositories, what, res.Outcome)
	case res.Outcome.Held:
		fmt.Printf("The policy for %s will be %s once the org role is published: %s.\n", res.Repositories, what, res.Outcome)
	default:
		fmt.Printf("The policy for %s is %s (%s); the registry applies it within its trust refresh interval.\n", res.Repositories, what, res.Outcome)
	}
	return nil
}

// printPolicies prints each document: its pattern and mode, then its
// requirements in the words the messages use.
func printPolicies(w io.Writer, v *trust.PolicyView) {
	if len(v.Policies) == 0 {
		if v.Repository != "" {
			fmt.Fprintf(w, "No pull policy of %s applies to %s.\n", v.Org, v.Repository)
		} else {
			fmt.Fprintf(w, "%s has no pull policies.\n", v.Org)
		}
		return
	}
	for _, d := range v.Policies {
		mode := d.Mode
		if mode == "" {
			mode = policy.Enforce
		}
		fmt.Fprintf(w, "%s (%s) requires:\n", d.Repositories, mode)
		for _, q := range d.Require {
			fmt.Fprintf(w, "  - %s\n", q)
		}
	}
}

// runPolicyTest verifies ref without its blobs and prints the verdict of each
// requirement of the policies that apply.
func runPolicyTest(cmd *cobra.Command, g *globals, refArg string) error {
	ctx := cmd.Context()
	out := verifyOutput{Reference: refArg}
	ref, err := trust.ParseRef(refArg)
	var v *signed.Verified
	if err == nil {
		var c *signed.Client
		if c, err = signed.NewClient(ctx, ref.Host); err == nil {
			v, err = c.Verify(ctx, ref)
		}
	}
	out.record(v, err)
	if g.output == "json" {
		if perr := printJSON(out); perr != nil {
			return perr
		}
	} else if v != nil {
		printPolicyVerdict(os.Stdout, refArg, ref.Repo, v)
	}
	if err != nil {
		return &exitError{code: out.Code, err: fmt.Errorf("%s: %w", signed.Reason(out.Code), err)}
	}
	return nil
}

// printPolicyVerdict prints one line per requirement of each applicable
// policy, then the verdict.
func printPolicyVerdict(w io.Writer, refArg, repo string, v *signed.Verified) {
	p := v.Policy
	if p == nil {
		fmt.Fprintf(w, "No pull policy applies to %s: %s is served as signed (%s).\n", repo, refArg, v.Target.Digest)
		return
	}
	fmt.Fprintf(w, "Pull policy of %s for %s (%s):\n", repo, refArg, v.Target.Digest)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POLICY\tMODE\tMET\tFOUND\tREQUIREMENT")
	for _, d := range p.Documents {
		for _, q := range d.Requirements {
			met := "yes"
			if !q.Met {
				met = "no: " + q.Detail
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d of %d\t%s\n", d.Repositories, d.Mode, met, q.Found, q.Signers, q.Requirement)
		}
	}
	tw.Flush()
	switch {
	case p.Error != "":
		fmt.Fprintf(w, "Not met: %s.\n", p.Error)
	case len(p.Warnings) > 0:
		fmt.Fprintf(w, "Met, but for warn-mode policies (served, each pull logged): %s.\n", strings.Join(p.Warnings, "; "))
	default:
		fmt.Fprintln(w, "Met: the registry serves it.")
	}
}

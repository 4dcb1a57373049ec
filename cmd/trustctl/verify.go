package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/client/signed"
	"github.com/signet-oss/signet/client/trust"
	"github.com/spf13/cobra"
)

// verifyOutput is what --output json prints for verify and pull.
type verifyOutput struct {
	Verified  bool   `json:"verified"`
	Reference string `json:"reference"`
	Digest    string `json:"digest,omitempty"`
	// SignedTags are the signed tags that vouch for a digest reference
	// (HOST/ORG/REPO@DIGEST) that has no target of its own.
	SignedTags []string `json:"signedTags,omitempty"`
	Reason     string   `json:"reason"`
	Code       int      `json:"code"`
	Layout     string   `json:"layout,omitempty"`
	// Referrers are the signatures and attestations attached to a signed
	// image, each with its own verdict; ReferrersError says why they could
	// not be listed. Neither changes Code, but a pull policy counts the
	// verified ones.
	Referrers      []signed.Attached `json:"referrers,omitempty"`
	ReferrersError string            `json:"referrersError,omitempty"`
	// Policy is the verdict of the org's pull policies that apply to the
	// repository, each document's and each requirement's; absent when none
	// does. An enforced one not met makes Code 14.
	Policy *signed.PolicyVerdict `json:"policy,omitempty"`
}

func newVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify HOST/ORG/REPO:TAG|HOST/ORG/REPO@DIGEST",
		Short: "Check an image against the trust graph: signed, fresh, and served as signed",
		Long: `verify checks, with the root pinned by trustctl trust add, that the tag's (or
digest's) target exists in the trust graph and its metadata is fresh, then fetches
the manifest from the registry and checks its digest and length against the
target; for an index, every child manifest too, each of which must be in the
target's closure. A digest is signed by a target of its own (a tag's previous
digest, kept) or by the signed tags that name it, which verify lists. It needs no login (a login is used when there is one).

It then lists every signature and attestation attached to the image (found by
the referrers API, cosign's sha256-<hex>.sig and .att tags, and the
referrers-tag-schema index at sha256-<hex>): its format, the key that signed it
(by its name in $SIGNET_HOME/keys, else the start of its TUF key ID), the
predicate type of an attestation, and whether it verifies with a key the trust
graph delegates for the repository now, or why not. A signature or attestation
that does not verify is listed as such; it does not change the exit code by
itself, which is the image's verdict.

When the org's pull policy applies to the repository (trustctl policy show), it
is checked against the image's signers and the attachments that verify, before
any manifest is read: an enforced policy not met exits 14 naming what is
missing (trustctl policy test details each requirement), a warn-mode one warns
on stderr.

` + exitCodesHelp,
		Example: `  trustctl verify 127.0.0.1:5000/acme/app:v1
  trustctl verify 127.0.0.1:5000/acme/app:v1 --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerified(cmd, g, args[0], "")
		},
	}
}

func newPullCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pull HOST/ORG/REPO:TAG|HOST/ORG/REPO@DIGEST DIR",
		Short: "Pull a verified image into an OCI image layout, every blob checked as it streams",
		Long: `pull verifies the image as trustctl verify does (its pull policy included:
an enforced policy not met writes nothing), then downloads every blob
into the OCI image layout DIR (created if missing), checking each blob's digest
and length as it streams: a blob is kept only if it matches, and the layout's
index.json, which names the image (by TAG), is written last. A progress line is
shown on a terminal.

` + exitCodesHelp,
		Example: `  trustctl pull 127.0.0.1:5000/acme/app:v1 ./app-oci`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerified(cmd, g, args[0], args[1])
		},
	}
}

// record fills out with the outcome of a verify (v, nil when it failed
// before the target was found) and its error.
func (out *verifyOutput) record(v *signed.Verified, err error) {
	out.Code = signed.Code(err)
	out.Verified = err == nil
	out.Reason = signed.Reason(out.Code)
	if err != nil {
		out.Reason += ": " + err.Error()
	}
	if v != nil {
		out.Digest, out.SignedTags = v.Target.Digest.String(), v.Tags
		out.Referrers, out.Policy = v.Referrers, v.Policy
		if v.ReferrersErr != nil {
			out.ReferrersError = v.ReferrersErr.Error()
		}
	}
}

// runVerified verifies (and, with a layout directory, pulls) ref and reports
// the outcome with its exit code.
func runVerified(cmd *cobra.Command, g *globals, refArg, dir string) error {
	ctx := cmd.Context()
	start := time.Now()
	out := verifyOutput{Reference: refArg, Layout: dir}
	ref, err := trust.ParseRef(refArg)
	var v *signed.Verified
	var c *signed.Client
	if err == nil {
		if c, err = signed.NewClient(ctx, ref.Host); err == nil {
			if dir == "" {
				v, err = c.Verify(ctx, ref)
			} else {
				if g.output != "json" {
					c.Progress = oci.NewProgress(os.Stderr, "pulling")
				}
				v, err = c.Pull(ctx, ref, dir)
				c.Progress.Close()
			}
		}
	}
	out.record(v, err)
	if g.output == "json" {
		if perr := printJSON(out); perr != nil {
			return perr
		}
	} else if err == nil {
		what := "Verified"
		if dir != "" {
			what = "Pulled"
		}
		fmt.Printf("%s %s: %s", what, refArg, v.Target.Digest)
		if len(v.Tags) > 0 {
			fmt.Printf(" (signed as :%s)", strings.Join(v.Tags, ", :"))
		}
		fmt.Printf(", %d manifest(s), %d blob(s)", len(v.Image.Manifests), len(v.Image.Blobs))
		if dir != "" {
			fmt.Printf(" into %s", dir)
		}
		fmt.Printf(" (%s)\n", time.Since(start).Round(time.Millisecond))
		printReferrers(os.Stdout, out.Referrers)
		if out.ReferrersError != "" {
			fmt.Fprintf(os.Stderr, "warning: the signatures and attestations could not be listed: %s\n", out.ReferrersError)
		}
	}
	if g.output != "json" && out.Policy != nil {
		for _, w := range out.Policy.Warnings {
			fmt.Fprintf(os.Stderr, "warning: %s (warn mode: served anyway)\n", w)
		}
	}
	if err != nil && out.Code == signed.CodeOther {
		return &exitError{code: out.Code, err: err}
	}
	if err != nil {
		return &exitError{code: out.Code, err: fmt.Errorf("%s: %w", signed.Reason(out.Code), err)}
	}
	return nil
}

// printReferrers prints one line per signature or attestation of the
// attached artifacts (one for an artifact that carries none it could read):
// the artifact by the start of its digest and where it was found, and the
// verdict last, since its reason is long.
func printReferrers(w io.Writer, refs []signed.Attached) {
	if len(refs) == 0 {
		fmt.Fprintln(w, "No signatures or attestations attached.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ARTIFACT\tFORMAT\tKEY\tPREDICATE TYPE\tVERIFIED")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, r := range refs {
		art := r.Digest.String()
		if i := strings.IndexByte(art, ':'); i >= 0 && len(art) > i+13 {
			art = art[:i+13]
		}
		var where []string
		for _, f := range r.FoundBy {
			switch {
			case f == "referrers":
				where = append(where, "referrers API")
			case strings.HasSuffix(f, ".sig"), strings.HasSuffix(f, ".att"):
				where = append(where, f[strings.LastIndexByte(f, '.'):])
			default:
				where = append(where, "tag index")
			}
		}
		if len(where) > 0 {
			art += " (" + strings.Join(where, ", ") + ")"
		}
		format := string(r.Format)
		if format == "" {
			format = "unsigned"
			if r.ArtifactType != "" {
				format += " " + r.ArtifactType
			}
		}
		if len(r.Signatures) == 0 {
			v := "no: " + r.Reason
			if r.Verified {
				v = "yes (the target " + r.Target + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t%s\n", art, format, v)
			continue
		}
		allGood := !slices.ContainsFunc(r.Signatures, func(s signed.AttachedSignature) bool { return !s.Verified })
		for _, s := range r.Signatures {
			v := "yes"
			switch {
			case !s.Verified:
				v = "no: " + s.Reason
			case allGood && !r.Verified:
				// Each signature verifies, but not the artifact as a whole
				// (two signatures by one key).
				v = "no: " + r.Reason
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", art, format, dash(s.Key), dash(s.PredicateType), v)
		}
	}
	tw.Flush()
}

package main

import (
	"fmt"
	"os"
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
	Reason    string `json:"reason"`
	Code      int    `json:"code"`
	Layout    string `json:"layout,omitempty"`
}

func newVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify HOST/ORG/REPO:TAG|HOST/ORG/REPO@DIGEST",
		Short: "Check an image against the trust graph: signed, fresh, and served as signed",
		Long: `verify checks, with the root pinned by trustctl trust add, that the tag's (or
digest's) target exists in the trust graph and its metadata is fresh, then fetches
the manifest from the registry and checks its digest and length against the
target; for an index, every child manifest too, each of which must be in the
target's closure. It needs no login (a login is used when there is one).

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
		Long: `pull verifies the image as trustctl verify does, then downloads every blob
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

// runVerified verifies (and, with a layout directory, pulls) ref and reports
// the outcome with its exit code.
func runVerified(cmd *cobra.Command, g *globals, refArg, dir string) error {
	ctx := cmd.Context()
	start := time.Now()
	out := verifyOutput{Reference: refArg, Layout: dir}
	ref, err := trust.ParseRef(refArg)
	var v *signed.Verified
	if err == nil {
		var c *signed.Client
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
	out.Code = signed.Code(err)
	out.Verified = err == nil
	out.Reason = signed.Reason(out.Code)
	if err != nil {
		out.Reason += ": " + err.Error()
	}
	if v != nil {
		out.Digest = v.Target.Digest.String()
	}
	if g.output == "json" {
		if perr := printJSON(out); perr != nil {
			return perr
		}
	} else if err == nil {
		what := "Verified"
		if dir != "" {
			what = "Pulled"
		}
		fmt.Printf("%s %s: %s, %d manifest(s), %d blob(s)", what, refArg, v.Target.Digest, len(v.Image.Manifests), len(v.Image.Blobs))
		if dir != "" {
			fmt.Printf(" into %s", dir)
		}
		fmt.Printf(" (%s)\n", time.Since(start).Round(time.Millisecond))
	}
	if err != nil {
		return &exitError{code: out.Code, err: fmt.Errorf("%s: %w", signed.Reason(out.Code), err)}
	}
	return nil
}

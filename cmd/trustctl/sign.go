package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"
	"github.com/signet-oss/signet/client/signed"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/reference"
	"github.com/spf13/cobra"
)

func newSignCmd(g *globals) *cobra.Command {
	var key, layout, dgst string
	cmd := &cobra.Command{
		Use:   "sign HOST/ORG/REPO:TAG|HOST/ORG/REPO@DIGEST --key NAME (--layout DIR | --digest D)",
		Short: "Sign a manifest as a tag (or digest) of a repository and publish the target",
		Long: `sign publishes the TUF target "<repo>:<tag>" (or "<repo>@<digest>") for a
manifest: its digest, length, media type and, for an index, its child manifests.
The manifest comes from an OCI image layout (--layout DIR: the manifest named TAG,
or the only one) or from the registry (--digest D, with your login). The target is
added to the repository's role, signed with your key (one delegated for the
repository by its org), and published through trustd.

A tag moved to another digest keeps the previous digest as a "<repo>@<digest>"
target, so deployments that pinned it keep pulling. With a k-of-n threshold,
trustd stages the role until k publishers have signed it: each runs sign.

Once the target is published, sign writes the cosign signature artifact (tag
sha256-<hex>.sig) next to the manifest, co-signing the one already there, so
that cosign verify --key works with the key's public half. That needs the
manifest in the registry: it is with --digest; with --layout, only if it was
pushed before (otherwise trustctl push, which pushes and signs, writes both).
If the registry refuses the artifact, the target stays published but sign
fails, saying why. Exit codes: 0 signed, 13 trustd or the registry
unreachable, 1 anything else.`,
		Example: `  trustctl sign 127.0.0.1:5000/acme/app:v1 --key alice --digest sha256:...
  trustctl sign 127.0.0.1:5000/acme/app:v1 --key alice --layout ./app-oci`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ref, err := trust.ParseRef(args[0])
			if err != nil {
				return err
			}
			if (layout == "") == (dgst == "" && ref.Digest == "") {
				return errors.New("say where the manifest is: --layout DIR or --digest D (or name it HOST/REPO@DIGEST)")
			}
			var d digest.Digest
			if dgst != "" {
				if d, err = reference.ParseDigest(dgst); err != nil {
					return fmt.Errorf("--digest: %w", err)
				}
			} else {
				d = ref.Digest
			}
			s, err := g.session(ctx, ref.Host)
			if err != nil {
				return err
			}
			var m *trust.Manifest
			if layout != "" {
				m, err = trust.ManifestFromLayout(layout, ref.Tag, d)
			} else {
				m, err = s.ManifestFromRegistry(ctx, ref.Host, ref.Repo, d)
			}
			if err != nil {
				return err
			}
			res, err := s.Sign(ctx, ref, m, key)
			if err != nil {
				return &exitError{code: signed.Code(err), err: err}
			}
			out := signOutput{SignResult: res}
			var serr error
			if !res.Staged && !res.Held {
				out.Signature, serr = signed.WriteSignature(ctx, s, ref, m.Digest, key, os.Stderr)
				if errors.Is(serr, signed.ErrNotInRegistry) {
					out.SignatureNote = fmt.Sprintf("%s@%s is not in the registry yet, so no cosign signature artifact was written: trustctl push pushes and signs, and writes it", ref.Repo, m.Digest)
					serr = nil
				} else if serr != nil {
					out.SignatureError = serr.Error()
				}
			}
			if err := reportSign(g, out); err != nil {
				return err
			}
			if serr != nil {
				return &exitError{code: signed.Code(serr), err: serr}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the publisher key to sign with (required)")
	cmd.Flags().StringVar(&layout, "layout", "", "read the manifest from this OCI image layout directory")
	cmd.Flags().StringVar(&dgst, "digest", "", "read the manifest with this digest from the registry")
	cmd.MarkFlagRequired("key")
	return cmd
}

// signOutput is what sign prints: the target published, and the cosign
// signature artifact written (or why not).
type signOutput struct {
	*trust.SignResult
	// Signature is the tag of the cosign signature artifact written.
	Signature string `json:"signature,omitempty"`
	// SignatureNote says why none was written when that is expected.
	SignatureNote string `json:"signatureNote,omitempty"`
	// SignatureError says why writing it failed.
	SignatureError string `json:"signatureError,omitempty"`
}

func reportSign(g *globals, out signOutput) error {
	if g.output == "json" {
		return printJSON(out)
	}
	res := out.SignResult
	if res.Kept != "" {
		fmt.Printf("Kept the previous digest as %s.\n", res.Kept)
	}
	if res.Staged {
		fmt.Printf("Signed %s as %s: staged: %d of %d signatures; another publisher runs the same sign.\n", res.Target, res.Digest, res.Signatures, res.Threshold)
		return nil
	}
	if res.Held {
		fmt.Printf("Signed %s as %s: held: the org role version that delegates it takes effect when %s %s its first signed version too.\n", res.Target, res.Digest, res.WaitingFor(), map[bool]string{true: "has", false: "have"}[len(res.Waiting) == 1])
		return nil
	}
	if res.Unchanged {
		fmt.Printf("%s is already published as %s (%s v%d): nothing new to sign.\n", res.Target, res.Digest, res.Name(), res.Version)
	} else {
		fmt.Printf("Signed %s as %s (%s v%d published).\n", res.Target, res.Digest, res.Name(), res.Version)
	}
	if out.Signature != "" {
		fmt.Printf("Wrote the cosign signature %s.\n", out.Signature)
	}
	if out.SignatureNote != "" {
		fmt.Printf("Note: %s.\n", out.SignatureNote)
	}
	return nil
}

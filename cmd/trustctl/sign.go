package main

import (
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
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
trustd stages the role until k publishers have signed it: each runs sign.`,
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
				return err
			}
			if g.output == "json" {
				return printJSON(res)
			}
			if res.Kept != "" {
				fmt.Printf("Kept the previous digest as %s.\n", res.Kept)
			}
			if res.Staged {
				fmt.Printf("Signed %s as %s: staged: %d of %d signatures; another publisher runs the same sign.\n", res.Target, res.Digest, res.Signatures, res.Threshold)
				return nil
			}
			fmt.Printf("Signed %s as %s (%s v%d published).\n", res.Target, res.Digest, res.Role, res.Version)
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the publisher key to sign with (required)")
	cmd.Flags().StringVar(&layout, "layout", "", "read the manifest from this OCI image layout directory")
	cmd.Flags().StringVar(&dgst, "digest", "", "read the manifest with this digest from the registry")
	cmd.MarkFlagRequired("key")
	return cmd
}

package main

import (
	"fmt"
	"os"

	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/client/signed"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/internal/humanize"
	"github.com/spf13/cobra"
)

func newPushCmd(g *globals) *cobra.Command {
	var key string
	var noKeep bool
	cmd := &cobra.Command{
		Use:   "push SRC HOST/ORG/REPO:TAG --key NAME",
		Short: "Push an OCI layout or a docker save / OCI archive, signed",
		Long: `push reads an image from SRC — an OCI image layout directory, or a tarball:
an OCI archive or the output of docker save (gzipped or not) — and pushes it
signed, in the order the registry's gate admits, once it has checked, before
uploading anything, that the key unlocks (its passphrase is asked then) and is
one of the keys the trust graph delegates the repository to:

  1. the blobs, several at once, skipping those the registry has, resuming an
     upload whose connection broke;
  2. the target HOST/ORG/REPO:TAG, signed with --key (a key delegated for the
     repository) and published through trustd; an index is signed with its
     closure (every child manifest);
  3. the manifests, children first, the root under TAG.

When SRC holds several images, the one whose ref name is TAG is pushed. A tag
moved to another digest keeps the previous digest as a <repo>@<digest> target
unless --no-keep-previous. With a k-of-n threshold the target is staged until k
publishers have pushed or signed it; the manifests are pushed by the push that
completes it. A progress line is shown on a terminal.

Last, the cosign signature artifact (tag sha256-<hex>.sig) is written next to
the image, co-signing the one already there, so that cosign verify --key works
with the key's public half (trustctl keys export NAME). The registry checks it
as it checks the image: every signature in it must verify with a key delegated
for the repository, so one left by a key since revoked is replaced by an
artifact with this key's signature only. If it is refused, the image stays pushed and signed
(trustctl verify passes), but the push fails, saying why, since cosign verify
would find no signature: run the push again once the cause is fixed.

` + pushExitCodes,
		Example: `  trustctl push ./app-oci 127.0.0.1:5000/acme/app:v1 --key alice
  docker save app:v1 -o app.tar && trustctl push app.tar 127.0.0.1:5000/acme/app:v1 --key alice`,
		Args: pushArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := trust.ParseRef(args[1])
			if err != nil {
				return err
			}
			res, err := signed.Push(cmd.Context(), args[0], ref, pushOptions(g, key, noKeep))
			return finishPush(g, res, err)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the publisher key to sign with (required)")
	cmd.Flags().BoolVar(&noKeep, "no-keep-previous", false, "do not keep a moved tag's previous digest as a <repo>@<digest> target")
	cmd.MarkFlagRequired("key")
	return cmd
}

func newCopyCmd(g *globals) *cobra.Command {
	var key string
	var noKeep bool
	cmd := &cobra.Command{
		Use:   "copy SRC-REF HOST/ORG/REPO:TAG --key NAME",
		Short: "Copy an image from any registry into a repository, verified by digest and signed",
		Long: `copy reads SRC-REF (REGISTRY/REPO:TAG or @DIGEST; names without a registry are
docker.io's, as docker reads them) with docker's credentials (config.json and
its credential helpers) or anonymously, checking every manifest and blob against
its digest as it is read, and pushes it signed as trustctl push does, with its
cosign signature artifact. Within one registry, blobs are mounted instead of
copied.

` + pushExitCodes,
		Example: `  trustctl copy docker.io/library/alpine:3.20 127.0.0.1:5000/acme/alpine:3.20 --key alice`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := trust.ParseRef(args[1])
			if err != nil {
				return err
			}
			res, err := signed.Copy(cmd.Context(), args[0], ref, pushOptions(g, key, noKeep))
			return finishPush(g, res, err)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the publisher key to sign with (required)")
	cmd.Flags().BoolVar(&noKeep, "no-keep-previous", false, "do not keep a moved tag's previous digest as a <repo>@<digest> target")
	cmd.MarkFlagRequired("key")
	return cmd
}

// pushArgs checks push's command line before anything is read: two
// arguments, the second an image reference. A local path second is the
// arguments swapped, said so with the order they go in.
func pushArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.ExactArgs(2)(cmd, args); err != nil {
		return err
	}
	_, err := trust.ParseRef(args[1])
	if err == nil {
		return nil
	}
	if _, serr := os.Stat(args[1]); serr == nil {
		return fmt.Errorf("the image to push (%s) comes first, then where to push it (HOST/ORG/REPO:TAG), not %s", args[1], args[0])
	}
	return err
}

func pushOptions(g *globals, key string, noKeep bool) signed.PushOptions {
	o := signed.PushOptions{Key: key, KeepPrevious: !noKeep, Out: os.Stderr}
	if g.output != "json" {
		o.Progress = oci.NewProgress(os.Stderr, "pushing")
	}
	return o
}

// pushExitCodes documents the exit codes of push and copy.
const pushExitCodes = `Exit codes:
` + exitCodeTable + `
A cosign signature artifact the registry refuses exits 1 (13 when the registry
could not reach trustd to check it): the image itself is pushed and signed.`

// finishPush reports a push or copy: what it did, when it did something, and
// its failure with its exit code.
func finishPush(g *globals, res *signed.PushResult, err error) error {
	if res != nil {
		if rerr := reportPush(g, res); rerr != nil {
			return rerr
		}
	}
	if err == nil {
		return nil
	}
	return &exitError{code: signed.Code(err), err: err}
}

func reportPush(g *globals, res *signed.PushResult) error {
	if g.output == "json" {
		return printJSON(res)
	}
	b := res.Blobs
	fmt.Printf("Blobs: %d uploaded (%s), %d already there, %d mounted.\n", b.Uploaded, humanize.Bytes(b.Bytes), b.Skipped, b.Mounted)
	if res.Signed.Staged {
		fmt.Printf("Signed %s as %s: staged: %d of %d signatures; the manifests are pushed by the publisher whose push or sign completes it.\n",
			res.Signed.Target, res.Digest, res.Signed.Signatures, res.Signed.Threshold)
		return nil
	}
	if res.Signed.Held {
		fmt.Printf("Signed %s as %s: held: the org role version that delegates it also delegates %s, and takes effect when each has its first signed version; push again then (or an org owner undelegates them).\n",
			res.Signed.Target, res.Digest, res.Signed.WaitingFor())
		return nil
	}
	if res.Signed.Kept != "" {
		fmt.Printf("Kept the previous digest as %s.\n", res.Signed.Kept)
	}
	if res.Pruned != "" {
		fmt.Printf("Removed the previous digest's target %s.\n", res.Pruned)
	}
	if res.Signed.Unchanged {
		fmt.Printf("%s is already published as %s (%s v%d): nothing new to sign.\n", res.Signed.Target, res.Digest, res.Signed.Name(), res.Signed.Version)
	} else {
		fmt.Printf("Signed %s as %s (%s v%d published).\n", res.Signed.Target, res.Digest, res.Signed.Name(), res.Signed.Version)
	}
	fmt.Printf("Pushed %s (%d manifest(s)).\n", res.Reference, res.Manifests)
	if res.Signature != "" {
		fmt.Printf("Wrote the cosign signature %s.\n", res.Signature)
	}
	return nil
}

package signed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/opencontainers/go-digest"
	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/signer/agent"
)

// ErrNotInRegistry: the manifest to write a cosign signature for is not in the
// registry yet, so there is nothing for `cosign verify` to find.
var ErrNotInRegistry = errors.New("the manifest is not in the registry")

// SignatureError is a cosign signature artifact that was not written after the
// image was signed in the trust graph (and, for a push, pushed): the image
// verifies with trustctl verify, but `cosign verify` finds no signature.
type SignatureError struct {
	// Reference is the signed image, Tag the signature artifact's tag.
	Reference, Tag string
	Err            error
}

func (e *SignatureError) Error() string {
	what := "was not written"
	var he *oci.HTTPError
	if errors.As(e.Err, &he) && he.Status >= 400 && he.Status < 500 {
		what = "was refused"
	}
	return fmt.Sprintf("%s is signed in the trust graph, but its cosign signature artifact %s %s (cosign verify finds no signature): %v", e.Reference, e.Tag, what, e.Err)
}

func (e *SignatureError) Unwrap() error { return e.Err }

// WriteSignature writes the cosign signature artifact of manifest d of ref's
// repository, signed with the named key, as a signed push does after its
// manifests: trustctl sign calls it once the target is published. The manifest
// must be in the registry (ErrNotInRegistry otherwise: the artifact of a
// manifest not pushed yet is written by the push). It returns the artifact's
// tag; a failure to write it is a *SignatureError.
func WriteSignature(ctx context.Context, s *trust.Session, ref trust.Ref, d digest.Digest, keyName string, out io.Writer) (string, error) {
	fail := func(err error) (string, error) {
		return "", &SignatureError{Reference: fmt.Sprintf("%s/%s@%s", s.Registry, ref.Repo, d), Tag: signer.CosignSignatureTag(d), Err: err}
	}
	dst, err := pushRepository(ctx, s, ref.Repo, "")
	if err != nil {
		return fail(err)
	}
	if _, _, err := dst.GetManifest(ctx, d.String(), oci.MaxManifest); errors.Is(err, oci.ErrNotFound) {
		return "", fmt.Errorf("%s/%s@%s: %w", s.Registry, ref.Repo, d, ErrNotInRegistry)
	} else if err != nil {
		return fail(fmt.Errorf("checking the manifest is in the registry: %w", err))
	}
	return writeCosignSignature(ctx, s, dst, ref, d, keyName, out)
}

// writeCosignSignature signs digest d cosign's way and pushes the artifact's
// blobs and manifest under the tag sha256-<hex>.sig, co-signing the artifact
// already there, if any. The signature is never in a closure: it is made after
// the target (DESIGN.md §3).
//
// The registry's gate admits an artifact only if every signature in it verifies
// with a key delegated for the repository now. An artifact kept from before a
// key was revoked carries a signature that no longer does, so its co-signed
// successor is refused: then the artifact is replaced by one with this key's
// signature only, and out is told which signatures were dropped.
func writeCosignSignature(ctx context.Context, s *trust.Session, dst *oci.Repository, ref trust.Ref, d digest.Digest, keyName string, out io.Writer) (string, error) {
	tag := signer.CosignSignatureTag(d)
	reference := fmt.Sprintf("%s/%s@%s", s.Registry, ref.Repo, d)
	fail := func(err error) (string, error) {
		return "", &SignatureError{Reference: reference, Tag: tag, Err: err}
	}
	key, err := s.Keys.Load(ctx, keyName)
	if err != nil {
		return fail(err)
	}
	agent.SigningFor(key, reference+" "+tag)
	prev, _, err := dst.GetManifest(ctx, tag, oci.MaxManifest)
	if errors.Is(err, oci.ErrNotFound) {
		prev, err = nil, nil
	}
	if err != nil {
		return fail(fmt.Errorf("reading the signature artifact there: %w", err))
	}
	art, err := signer.SignCosign(s.Registry+"/"+ref.Repo, d, key, prev)
	if err != nil {
		return fail(err)
	}
	if art.Unchanged {
		return art.Tag, nil
	}
	err = pushArtifact(ctx, dst, art)
	var he *oci.HTTPError
	if prev != nil && errors.As(err, &he) && he.Status == http.StatusForbidden {
		alone, serr := signer.SignCosign(s.Registry+"/"+ref.Repo, d, key, nil)
		if serr != nil {
			return fail(serr)
		}
		if aerr := pushArtifact(ctx, dst, alone); aerr != nil {
			return fail(err) // the first refusal says more
		}
		if out != nil {
			fmt.Fprintf(out, "note: the registry refused to co-sign the signature artifact %s (%s): it was replaced by one carrying %s's signature only.\n", tag, he.Message, keyName)
		}
		return alone.Tag, nil
	}
	if err != nil {
		return fail(err)
	}
	return art.Tag, nil
}

// pushArtifact uploads a signature artifact's blobs, then its manifest.
func pushArtifact(ctx context.Context, dst *oci.Repository, art *signer.CosignArtifact) error {
	for _, b := range art.Blobs {
		if err := dst.PushBytes(ctx, "application/octet-stream", b); err != nil {
			return err
		}
	}
	return dst.PutManifest(ctx, art.Tag, art.MediaType, art.Manifest)
}

package signed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

// The signatures and attestations attached to a verified image, found the ways
// real clients attach them, each checked as the registry's gate checks it
// (verify.CheckReferrer) against the keys the client's own verified trust
// graph delegates for the repository: never the registry's word.
//
// Where they are found:
//   - the referrers API (GET /v2/<name>/referrers/<digest>): every manifest
//     whose subject is the image (Sigstore bundles, notation signatures,
//     oras attach);
//   - cosign's tags sha256-<hex>.sig (signatures) and sha256-<hex>.att
//     (attestations), which carry no subject;
//   - the referrers-tag-schema index at tag sha256-<hex>, which clients write
//     for registries without the referrers API (notation does by default).
//
// One artifact found several ways is listed once. Every manifest is fetched by
// digest and checked against it; a descriptor's artifact type or annotations,
// which the registry or the index writer chose, are never believed.

// Attached is one artifact attached to a verified image, as trustctl verify
// lists it.
type Attached struct {
	// Digest and MediaType are the artifact manifest's.
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	// ArtifactType is the manifest's artifactType, else its config's media
	// type ("" for a cosign artifact, which has neither of note).
	ArtifactType string `json:"artifactType,omitempty"`
	// FoundBy says where it was found: "referrers" (the referrers API), or
	// the tag it was read under ("sha256-<hex>.sig", "sha256-<hex>.att",
	// "sha256-<hex>" for the referrers-tag-schema index).
	FoundBy []string `json:"foundBy"`
	// Format is its signed format ("" for an artifact in none: an SBOM
	// attached unsigned).
	Format verify.Format `json:"format,omitempty"`
	// Verified: the artifact would be admitted by the registry's gate now (it
	// has its signer's shape, and every signature in it verifies with a key
	// delegated for the repository), or, unsigned, a target of the trust
	// graph vouches for it. Reason says why not.
	Verified bool   `json:"verified"`
	Reason   string `json:"reason,omitempty"`
	// Target is the target "<repo>@<digest>" that vouches for an unsigned
	// artifact.
	Target string `json:"target,omitempty"`
	// Signatures are the signatures (and attestations) it carries, in its
	// order; none when its shape is not its signer's.
	Signatures []AttachedSignature `json:"signatures"`

	// checked is the artifact as verify.CheckReferrer read it with the
	// delegated keys, with its attestations' predicates: the evidence a
	// pull policy is checked against (Evidence). nil when it is in no
	// signed format or could not be read.
	checked *verify.Referrer
}

// AttachedSignature is one signature or attestation of an attached artifact.
type AttachedSignature struct {
	// Key names the key it verifies with: its name in the local key store,
	// else the start of its TUF key ID; "" when no key known here verifies
	// it.
	Key string `json:"key,omitempty"`
	// KeyID is that key's TUF key ID.
	KeyID string `json:"keyID,omitempty"`
	// Delegated: the key is delegated for the repository now.
	Delegated bool `json:"delegated"`
	// PredicateType is an attestation's predicate type, as the in-toto
	// statement its signature covers gives it (so only once that signature
	// verifies with a key known here); "" for a signature.
	PredicateType string `json:"predicateType,omitempty"`
	// Verified: it verifies with a delegated key, binding the image's
	// digest (and the repository where the format names one). Reason says
	// why not.
	Verified bool   `json:"verified"`
	Reason   string `json:"reason,omitempty"`
}

// ReferrerCheck is what ListReferrers checks the artifacts attached to an
// image with.
type ReferrerCheck struct {
	// Repo is the repository's name ("acme/app"); Subject the verified
	// image's digest.
	Repo    string
	Subject digest.Digest
	// Keys are the keys the verified trust graph delegates Repo to.
	Keys verify.Keys
	// Names maps a TUF key ID to the key's name, where one is known.
	Names map[string]string
	// Others are keys known here but not delegated for Repo: a signature
	// that verifies with none of Keys is checked with them to say who made
	// it (never to verify it).
	Others verify.Keys
	// Target, when set, reports whether a target of the trust graph vouches
	// for the unsigned artifact d (and its path), as an unsigned referrer is
	// admitted.
	Target func(ctx context.Context, d digest.Digest) (string, bool, error)
}

// Limits of what listing reads from a registry that may be hostile.
const (
	// maxAttached bounds how many artifacts are checked, maxChecking how many
	// at once.
	maxAttached = 256
	maxChecking = 8
	// maxAttachedBlob bounds one blob an artifact names (a signature payload,
	// an envelope, a bundle): the largest is an attestation's envelope of an
	// SBOM, a few MiB, which verify bounds at 16 MiB.
	maxAttachedBlob = 16 << 20
)

// ListReferrers finds the artifacts attached to chk.Subject in repo (see
// above) and checks each. Its error is for a listing that could not be made
// (the registry failed to answer); an artifact that does not verify is listed
// with its reason.
func ListReferrers(ctx context.Context, repo *oci.Repository, chk ReferrerCheck) ([]Attached, error) {
	found, err := discover(ctx, repo, chk.Subject)
	if err != nil {
		return nil, err
	}
	out := make([]Attached, len(found))
	var wg sync.WaitGroup
	errs := make([]error, len(found))
	slots := make(chan struct{}, maxChecking)
	for i, f := range found {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			out[i], errs[i] = check(ctx, repo, chk, f)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// candidate is an artifact found, with its manifest when it was read by tag.
type candidate struct {
	desc    ocispec.Descriptor
	raw     []byte
	foundBy []string
}

// discover asks every source at once and merges what they found by digest,
// in the order: referrers API, .sig, .att, referrers-tag-schema index.
func discover(ctx context.Context, repo *oci.Repository, subject digest.Digest) ([]*candidate, error) {
	sigTag := signer.CosignSignatureTag(subject)
	indexTag := strings.TrimSuffix(sigTag, ".sig")
	tags := []string{sigTag, indexTag + ".att", indexTag}
	var (
		wg       sync.WaitGroup
		api      []ocispec.Descriptor
		apiErr   error
		byTag    = make([][]byte, len(tags))
		typeTag  = make([]string, len(tags))
		tagErr   = make([]error, len(tags))
		indexed  []ocispec.Descriptor
		indexErr error
	)
	wg.Go(func() {
		api, apiErr = repo.Referrers(ctx, subject)
		if errors.Is(apiErr, oci.ErrNoReferrersAPI) {
			apiErr = nil
		}
	})
	for i, tag := range tags {
		wg.Go(func() {
			byTag[i], typeTag[i], tagErr[i] = repo.GetManifest(ctx, tag, oci.MaxManifest)
			if errors.Is(tagErr[i], oci.ErrNotFound) {
				byTag[i], tagErr[i] = nil, nil
			}
		})
	}
	wg.Wait()
	if err := errors.Join(append([]error{apiErr}, tagErr...)...); err != nil {
		return nil, fmt.Errorf("listing the signatures and attestations of %s/%s@%s: %w", repo.Host, repo.Name, subject, err)
	}
	if raw := byTag[2]; raw != nil {
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			indexErr = err
		}
		indexed = idx.Manifests
	}

	var list []*candidate
	seen := map[digest.Digest]*candidate{}
	add := func(desc ocispec.Descriptor, raw []byte, by string) {
		if c := seen[desc.Digest]; c != nil {
			if !slices.Contains(c.foundBy, by) {
				c.foundBy = append(c.foundBy, by)
			}
			if c.raw == nil {
				c.raw = raw
			}
			return
		}
		if len(list) == maxAttached {
			return
		}
		c := &candidate{desc: desc, raw: raw, foundBy: []string{by}}
		seen[desc.Digest] = c
		list = append(list, c)
	}
	for _, d := range api {
		add(ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, nil, "referrers")
	}
	for i, tag := range tags[:2] {
		if raw := byTag[i]; raw != nil {
			add(ocispec.Descriptor{MediaType: typeTag[i], Digest: digest.FromBytes(raw), Size: int64(len(raw))}, raw, tag)
		}
	}
	for _, d := range indexed {
		add(ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, nil, indexTag)
	}
	if indexErr != nil {
		// The tag holds something that is no index: listed, as not verifying.
		raw := byTag[2]
		add(ocispec.Descriptor{MediaType: typeTag[2], Digest: digest.FromBytes(raw), Size: int64(len(raw))}, raw, indexTag)
	}
	return list, nil
}

// check reads one artifact's manifest and checks it against chk.
func check(ctx context.Context, repo *oci.Repository, chk ReferrerCheck, c *candidate) (Attached, error) {
	a := Attached{Digest: c.desc.Digest, MediaType: c.desc.MediaType, FoundBy: c.foundBy, Signatures: []AttachedSignature{}}
	raw := c.raw
	if raw == nil {
		var err error
		if raw, err = repo.Manifest(ctx, c.desc); err != nil {
			if errors.Is(err, oci.ErrNotFound) || errors.Is(err, oci.ErrContentMismatch) {
				a.Reason = fmt.Sprintf("the registry does not serve it as listed: %v", err)
				return a, nil
			}
			return a, fmt.Errorf("reading %s/%s@%s: %w", repo.Host, repo.Name, c.desc.Digest, err)
		}
	}
	var head struct {
		MediaType    string `json:"mediaType"`
		ArtifactType string `json:"artifactType"`
		Config       struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		a.Reason = fmt.Sprintf("not a manifest: %v", err)
		return a, nil
	}
	if head.MediaType != "" {
		a.MediaType = head.MediaType
	}
	a.ArtifactType = head.ArtifactType
	if a.ArtifactType == "" && head.Config.MediaType != ocispec.MediaTypeImageConfig && head.Config.MediaType != ocispec.MediaTypeEmptyJSON {
		a.ArtifactType = head.Config.MediaType
	}
	art := verify.Artifact{MediaType: a.MediaType, Manifest: raw, Blob: prefetch(ctx, repo, raw)}
	ref, err := verify.CheckReferrer(ctx, art, chk.Keys, chk.Repo, chk.Subject)
	a.Format = ref.Format
	switch {
	case errors.Is(err, verify.ErrNotReferrer):
		return unsigned(ctx, chk, a, raw)
	case err != nil:
		a.Reason = err.Error()
		return a, nil
	}
	a.checked = &ref
	var others []verify.Signature
	if chk.Others.Len() > 0 && ref.Verified() != nil {
		if o, err := verify.CheckReferrer(ctx, art, chk.Others, chk.Repo, chk.Subject); err == nil && len(o.Signatures) == len(ref.Signatures) {
			others = o.Signatures
		}
	}
	for i, s := range ref.Signatures {
		as := AttachedSignature{KeyID: s.KeyID, Verified: s.Err == nil, Delegated: s.KeyID != "", PredicateType: s.PredicateType}
		if s.Err != nil {
			as.Reason = s.Err.Error()
			if others != nil && others[i].Err == nil {
				as.KeyID, as.PredicateType = others[i].KeyID, others[i].PredicateType
				as.Reason = fmt.Sprintf("signed by %s, a key not delegated for %s", keyName(chk.Names, as.KeyID), chk.Repo)
			}
		}
		if as.KeyID != "" {
			as.Key = keyName(chk.Names, as.KeyID)
		}
		a.Signatures = append(a.Signatures, as)
	}
	if err := ref.Verified(); err != nil {
		a.Reason = err.Error()
	} else {
		a.Verified = true
	}
	return a, nil
}

// unsigned checks an artifact in no signed format: it refers to the image, and
// a target of the trust graph vouches for it, as the gate admits it.
func unsigned(ctx context.Context, chk ReferrerCheck, a Attached, raw []byte) (Attached, error) {
	if s, ok := verify.ReferrerSubject(raw); !ok || s != chk.Subject {
		a.Reason = "in no signed format, and its subject is not this image"
		return a, nil
	}
	if chk.Target == nil {
		a.Reason = "in no signed format"
		return a, nil
	}
	path, ok, err := chk.Target(ctx, a.Digest)
	switch {
	case err != nil:
		return a, err
	case !ok:
		a.Reason = "in no signed format, and no target of the trust graph vouches for it"
	default:
		a.Verified, a.Target = true, path
	}
	return a, nil
}

// Prefetching: the blobs an artifact's layers name are read at once, not one
// after the other as its check asks for them (a .att of three attestations is
// three envelopes), within bounds a hostile manifest cannot stretch.
const (
	maxPrefetch     = 16
	maxPrefetchSize = 1 << 20
)

// prefetch starts reading the small blobs manifest's layers name and returns
// a Blob function that answers from them, reading any other blob when asked.
func prefetch(ctx context.Context, repo *oci.Repository, manifest []byte) func(digest.Digest) ([]byte, error) {
	var m struct {
		Layers []ocispec.Descriptor `json:"layers"`
	}
	json.Unmarshal(manifest, &m) // a manifest that is none prefetches nothing
	type result struct {
		b    []byte
		err  error
		done chan struct{}
	}
	fetched := map[digest.Digest]*result{}
	for _, l := range m.Layers {
		if len(fetched) == maxPrefetch || l.Size <= 0 || l.Size > maxPrefetchSize || l.Digest.Validate() != nil || fetched[l.Digest] != nil {
			continue
		}
		r := &result{done: make(chan struct{})}
		fetched[l.Digest] = r
		go func() {
			defer close(r.done)
			r.b, r.err = readBlob(ctx, repo, l.Digest)
		}()
	}
	return func(d digest.Digest) ([]byte, error) {
		if r := fetched[d]; r != nil {
			<-r.done
			return r.b, r.err
		}
		return readBlob(ctx, repo, d)
	}
}

// readBlob reads a blob an artifact names, at most maxAttachedBlob bytes,
// checked against its digest.
func readBlob(ctx context.Context, repo *oci.Repository, d digest.Digest) ([]byte, error) {
	rc, err := repo.Blob(ctx, ocispec.Descriptor{Digest: d, Size: -1})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(rc, maxAttachedBlob+1)); err != nil {
		return nil, err
	}
	if buf.Len() > maxAttachedBlob {
		return nil, fmt.Errorf("blob %s: more than %d bytes", d, maxAttachedBlob)
	}
	return buf.Bytes(), nil
}

// keyName is a key's name when one is known, else the start of its ID.
func keyName(names map[string]string, id string) string {
	if n := names[id]; n != "" {
		return n
	}
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// Referrers lists the signatures and attestations attached to a verified
// image (ListReferrers), checked with the keys that the trust graph it was
// verified against delegates for its repository.
//
// Keys are named by the local key store ($SIGNET_HOME/keys): the trust graph
// knows a key only by its TUF key ID (delegations list IDs, and trustd keeps
// no names for them), so the only names there are the ones a key's holder (or
// whoever delegated it from this home) gave it. Every other key goes by the
// start of its ID. The store's keys that are not delegated for the repository
// also say who made a signature that does not verify.
func (c *Client) Referrers(ctx context.Context, v *Verified) ([]Attached, error) {
	repo := v.repo.Name
	keys, _ := v.state.RepoKeys(repo)
	names, others := c.localKeys(ctx, keys)
	chk := ReferrerCheck{Repo: repo, Subject: v.Target.Digest, Keys: keys, Names: names, Others: others,
		Target: func(ctx context.Context, d digest.Digest) (string, bool, error) {
			path := trustnames.TargetPath(repo, d.String())
			t, err := v.vc.Resolve(ctx, path)
			if errors.Is(err, verify.ErrNotSigned) {
				return "", false, nil
			}
			if err != nil {
				return "", false, err
			}
			return path, t.Digest == d, nil
		},
	}
	return ListReferrers(ctx, v.repo, chk)
}

// localKeys returns the names of the local key store's keys by TUF key ID,
// and those of its keys that are not among delegated. A store that cannot be
// read names nothing: names are a convenience, never a check.
func (c *Client) localKeys(ctx context.Context, delegated verify.Keys) (map[string]string, verify.Keys) {
	infos, err := signer.NewFileKeyStore(trust.KeyDir(c.Home), nil).List(ctx)
	if err != nil {
		return nil, verify.Keys{}
	}
	ids := delegated.IDs()
	names := map[string]string{}
	var others []*metadata.Key
	for _, info := range infos {
		names[info.ID] = info.Name
		if slices.Contains(ids, info.ID) {
			continue
		}
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(info.PublicPEM)
		if err != nil {
			continue
		}
		if k, err := metadata.KeyFromPublicKey(pub); err == nil {
			others = append(others, k)
		}
	}
	return names, verify.NewKeys(others...)
}

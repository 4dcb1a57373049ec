package signed

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/reference"
	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

// PushOptions shape Push and Copy.
type PushOptions struct {
	// Key names the publisher key to sign with.
	Key string
	// KeepPrevious keeps a moved tag's previous digest as a <repo>@<digest>
	// target (the default of trustctl).
	KeepPrevious bool
	// Progress shows the blob transfer on a terminal (nil: none).
	Progress *oci.Progress
	// Out receives what the user reads (warnings, staging notes).
	Out io.Writer
}

// PushResult says what a signed push did.
type PushResult struct {
	Reference string            `json:"reference"`
	Digest    digest.Digest     `json:"digest"`
	MediaType string            `json:"mediaType"`
	Manifests int               `json:"manifests"`
	Blobs     oci.PushStats     `json:"blobs"`
	Signed    *trust.SignResult `json:"signed"`
	// Pruned is the previous digest's target removed by --no-keep-previous.
	Pruned string `json:"pruned,omitempty"`
	// Signature is the tag of the cosign signature artifact written.
	Signature string `json:"signature,omitempty"`
	// SignatureError says why the cosign signature artifact was not written.
	SignatureError string `json:"signatureError,omitempty"`
	// Pushed is false when the signature was staged (a threshold not met yet):
	// the blobs are uploaded, the manifests wait for the last co-signer's push.
	Pushed bool `json:"pushed"`
}

// Push reads an image from src (an OCI image layout directory, or an OCI or
// docker save tarball, gzipped or not) and pushes it to ref signed: see publish.
func Push(ctx context.Context, src string, ref trust.Ref, o PushOptions) (*PushResult, error) {
	if ref.Tag == "" {
		return nil, fmt.Errorf("%s/%s: push to a tag (HOST/ORG/REPO:TAG)", ref.Host, ref.Repo)
	}
	st, err := os.Stat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist: push reads an OCI image layout directory, or a docker save or OCI archive tarball", src)
	}
	if err != nil {
		return nil, err
	}
	var source oci.Source
	var index ocispec.Index
	if st.IsDir() {
		l, err := oci.OpenLayout(src)
		if err != nil {
			return nil, err
		}
		source, index = l, l.Index
	} else {
		a, err := oci.OpenArchive(src)
		if err != nil {
			return nil, err
		}
		defer a.Close()
		source, index = a, a.Index
	}
	root, err := oci.Select(index, ref.Tag, src)
	if err != nil {
		return nil, err
	}
	im, err := oci.LoadImage(ctx, source, root)
	if err != nil {
		return nil, err
	}
	return publish(ctx, source, "", im, ref, o)
}

// Copy reads the image srcRef (HOST/REPO:TAG or @DIGEST of any registry;
// docker.io names as docker does) with docker's credentials or anonymously,
// every manifest and blob checked against its digest as it is read, and pushes
// it to ref signed: see publish. Within one registry, blobs are mounted.
func Copy(ctx context.Context, srcRef string, ref trust.Ref, o PushOptions) (*PushResult, error) {
	if ref.Tag == "" {
		return nil, fmt.Errorf("%s/%s: copy to a tag (HOST/ORG/REPO:TAG)", ref.Host, ref.Repo)
	}
	up, err := ParseUpstream(srcRef)
	if err != nil {
		return nil, err
	}
	login, err := client.LookupRegistryLogin(ctx, up.Host)
	if err != nil {
		return nil, err
	}
	repo, err := oci.NewRepository(ctx, up.apiHost(), up.Repo, oci.Options{Credentials: credentials(login)})
	if err != nil {
		return nil, err
	}
	raw, servedType, err := repo.GetManifest(ctx, up.Ref(), oci.MaxManifest)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", srcRef, err)
	}
	d := digest.FromBytes(raw)
	if up.Digest != "" {
		if err := up.Digest.Validate(); err != nil {
			return nil, err
		}
		if d = up.Digest.Algorithm().FromBytes(raw); d != up.Digest {
			return nil, mismatch(fmt.Errorf("%s served a manifest hashing to %s", srcRef, d))
		}
	}
	var declared struct {
		MediaType string `json:"mediaType"`
	}
	json.Unmarshal(raw, &declared)
	mt := declared.MediaType
	if mt == "" {
		mt = servedType
	}
	root := ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}
	im, err := oci.LoadImage(ctx, &preloaded{Source: repo, d: d, raw: raw}, root)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", srcRef, err)
	}
	mountFrom := ""
	if _, dstHost, err := client.BaseURL(ctx, ref.Host, false); err == nil && dstHost == up.Host {
		mountFrom = up.Repo
	}
	return publish(ctx, repo, mountFrom, im, ref, o)
}

// publish is a signed push in the order the registry's gate admits: the blobs
// (which any pusher may upload), then the target signed and published through
// trustd (by digest, with the closure of an index), then the manifests,
// children first, the root under the tag; then the cosign signature artifact.
// When only that artifact fails, the result comes back with a *SignatureError:
// the image is pushed and signed.
func publish(ctx context.Context, src oci.Source, mountFrom string, im *oci.Image, ref trust.Ref, o PushOptions) (*PushResult, error) {
	s, err := trust.Open(ctx, ref.Host, o.Out)
	if err != nil {
		return nil, err
	}
	dst, err := pushRepository(ctx, s, ref.Repo, mountFrom)
	if err != nil {
		return nil, err
	}
	// Refuse before the upload, not after it: a push the trust graph will
	// not let this key sign uploads nothing, and the passphrase is asked now.
	if err := s.CheckPublisher(ctx, ref, o.Key); err != nil {
		return nil, err
	}
	res := &PushResult{
		Reference: fmt.Sprintf("%s/%s:%s", s.Registry, ref.Repo, ref.Tag),
		Digest:    im.Root.Digest, MediaType: im.Root.MediaType, Manifests: len(im.Manifests),
	}
	res.Blobs, err = oci.PushBlobs(ctx, src, im, dst, oci.PushOptions{MountFrom: mountFrom, Progress: o.Progress})
	o.Progress.Close()
	if err != nil {
		return nil, err
	}
	m, err := ManifestOf(im)
	if err != nil {
		return nil, err
	}
	res.Signed, err = s.Sign(ctx, ref, m, o.Key)
	if err != nil {
		return nil, err
	}
	if res.Signed.Staged || res.Signed.Held {
		return res, nil
	}
	if !o.KeepPrevious && res.Signed.Kept != "" {
		_, old, _, _ := trustnames.SplitTarget(res.Signed.Kept)
		if _, err := s.Prune(ctx, ref.Repo, digest.Digest(old), o.Key); err != nil {
			return nil, fmt.Errorf("signed %s, but removing the previous digest's target %s: %w", res.Reference, res.Signed.Kept, err)
		}
		res.Pruned, res.Signed.Kept = res.Signed.Kept, ""
	}
	handTimestamp(s, dst)
	if err := oci.PushManifests(ctx, im, dst, ref.Tag); err != nil {
		return nil, err
	}
	res.Pushed = true
	// The image is signed in the trust graph and pushed, and stays so: a
	// signature artifact the registry refuses fails the push with the result
	// (a *SignatureError), since `cosign verify` would find nothing.
	if res.Signature, err = writeCosignSignature(ctx, s, dst, ref, im.Root.Digest, o.Key, o.Out); err != nil {
		res.SignatureError = err.Error()
		return res, err
	}
	return res, nil
}

// pushRepository is repo in the session's registry, with the login kept for it
// (a push needs one), mounting blobs from mountFrom when it is not "".
func pushRepository(ctx context.Context, s *trust.Session, repo, mountFrom string) (*oci.Repository, error) {
	login, err := client.LookupRegistryLogin(ctx, s.Registry)
	if err != nil {
		return nil, err
	}
	if login.Anonymous() {
		return nil, fmt.Errorf("no login for %s: run `trustctl login %s`", s.Registry, s.Registry)
	}
	opts := oci.Options{Credentials: credentials(login), Push: true}
	if mountFrom != "" {
		opts.MountFrom = []string{mountFrom}
	}
	dst, err := oci.NewRepository(ctx, s.Registry, repo, opts)
	if err != nil {
		return nil, err
	}
	// An upload this process leaves unfinished (Ctrl-C) is resumed by the next.
	dst.Sessions = oci.SessionDir(filepath.Join(s.Home, "uploads"))
	handTimestamp(s, dst)
	return dst, nil
}

// handTimestamp has dst's manifest PUTs carry the timestamp of the session's
// last publish, so the registry decides them on what was just published
// instead of waiting for its next refresh (verify.TimestampHeader).
func handTimestamp(s *trust.Session, dst *oci.Repository) {
	if s.Timestamp != nil {
		dst.ManifestHeader = http.Header{verify.TimestampHeader: {base64.StdEncoding.EncodeToString(s.Timestamp)}}
	}
}

// ManifestOf is what signing needs of an image's root: its digest, length and
// media type, and for an index the closure — every manifest it lists, then
// those of nested indexes, as trustctl sign computes it.
func ManifestOf(im *oci.Image) (*trust.Manifest, error) {
	m := &trust.Manifest{Digest: im.Root.Digest, Length: im.Root.Size, MediaType: im.Root.MediaType}
	if !oci.IsIndex(im.Root.MediaType) {
		return m, nil
	}
	seen := map[digest.Digest]bool{}
	var walk func(d digest.Digest, depth int) error
	walk = func(d digest.Digest, depth int) error {
		var idx ocispec.Index
		if err := json.Unmarshal(im.Raw[d], &idx); err != nil {
			return fmt.Errorf("index %s: %w", d, err)
		}
		for _, c := range idx.Manifests {
			if !seen[c.Digest] {
				seen[c.Digest] = true
				m.Closure = append(m.Closure, c.Digest)
			}
			if oci.IsIndex(c.MediaType) && depth < 4 {
				if err := walk(c.Digest, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return m, walk(im.Root.Digest, 0)
}

// Upstream is an image reference of any registry, as docker reads it.
type Upstream struct {
	Host, Repo, Tag string
	Digest          digest.Digest
}

// Ref is the tag or digest to fetch.
func (u Upstream) Ref() string {
	if u.Digest != "" {
		return u.Digest.String()
	}
	return u.Tag
}

// apiHost is where the registry's API is: Docker Hub's is not docker.io.
func (u Upstream) apiHost() string {
	if u.Host == "docker.io" {
		return "registry-1.docker.io"
	}
	return u.Host
}

// ParseUpstream parses NAME[:TAG][@DIGEST] as docker does: a first component
// with a dot or a colon, or "localhost", is the registry; otherwise the image
// is on docker.io (library/ for one-component names); the tag defaults to latest.
func ParseUpstream(s string) (Upstream, error) {
	var u Upstream
	name := s
	if n, d, ok := strings.Cut(s, "@"); ok {
		dg, err := reference.ParseDigest(d)
		if err != nil {
			return u, fmt.Errorf("%q: %w", s, err)
		}
		name, u.Digest = n, dg
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, u.Tag = name[:i], name[i+1:]
		if !reference.ValidTag(u.Tag) {
			return u, fmt.Errorf("%q: %q is not a valid tag", s, u.Tag)
		}
	}
	if u.Tag == "" && u.Digest == "" {
		u.Tag = "latest"
	}
	first, rest, ok := strings.Cut(name, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		u.Host, u.Repo = first, rest
	} else {
		u.Host, u.Repo = "docker.io", name
		if !strings.Contains(name, "/") {
			u.Repo = "library/" + name
		}
	}
	if err := reference.ValidateName(u.Repo); err != nil {
		return u, fmt.Errorf("%q: %w", s, err)
	}
	if u.Repo == "" {
		return u, errors.New("no image named")
	}
	return u, nil
}

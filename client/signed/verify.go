package signed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/verify"
)

// NowEnv names the environment variable that sets the clock verification
// checks expiry against (RFC 3339). It exists for tests of expired metadata;
// never set it otherwise.
const NowEnv = "SIGNET_VERIFY_NOW"

// Client verifies and pulls images of one registry against its pinned root.
// It needs no login: anonymous consumers verify what anonymous may pull; a
// login in $SIGNET_HOME, or docker's, is used when there is one.
type Client struct {
	// Home is $SIGNET_HOME.
	Home string
	// Host is the registry's host:port.
	Host string
	// Now is the clock expiry is checked against; nil means time.Now.
	Now func() time.Time
	// Progress shows transfers on a terminal (nil: none).
	Progress *oci.Progress

	hc *http.Client
}

// NewClient returns a Client of the registry at host, with the clock from
// SIGNET_VERIFY_NOW when it is set.
func NewClient(ctx context.Context, host string) (*Client, error) {
	home, err := client.SignetHome()
	if err != nil {
		return nil, err
	}
	_, hostport, err := client.BaseURL(ctx, host, false)
	if err != nil {
		return nil, err
	}
	c := &Client{Home: home, Host: hostport, hc: oci.NewHTTPClient()}
	if v := os.Getenv(NowEnv); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: not an RFC 3339 time: %w", NowEnv, v, err)
		}
		c.Now = func() time.Time { return t }
	}
	return c, nil
}

// verifier is a TUF client of the root pinned for the registry. trustd is
// found through the registry's /.well-known/signet.json; a login for trustd in
// $SIGNET_HOME, when there is one, reads delegated roles (fetched lazily, so a
// trustd that is down shows as unreachable metadata).
func (c *Client) verifier(ctx context.Context) (*verify.Client, error) {
	root, err := trust.PinnedRoot(c.Home, c.Host)
	if err != nil {
		return nil, err
	}
	base, _, err := client.BaseURL(ctx, c.Host, false)
	if err != nil {
		return nil, err
	}
	tc := &client.TokenClient{HTTP: &http.Client{Timeout: 30 * time.Second}}
	trustdURL, err := client.DiscoverTrustd(ctx, tc, base)
	if err != nil {
		return nil, unreachable(err)
	}
	if trustdURL == "" {
		return nil, fmt.Errorf("%s names no trustd in /.well-known/signet.json: is it a Signet registry?", c.Host)
	}
	var (
		once  sync.Once
		token string
		terr  error
	)
	tokenFn := func(ctx context.Context) (string, error) {
		once.Do(func() {
			home, err := client.LoadHome()
			if err != nil {
				return
			}
			th, err := client.HostOf(trustdURL)
			if err != nil {
				return
			}
			if _, refresh := home.Login(th); refresh == "" {
				return // anonymous: what anonymous may pull
			}
			td, err := client.OpenTrustd(ctx, home, c.Host, tc)
			if err != nil {
				terr = err
				return
			}
			token = td.Token
		})
		return token, terr
	}
	return verify.New(verify.Config{
		TrustdURL: trustdURL,
		Root:      root,
		CacheDir:  filepath.Join(trust.PinDir(c.Home, c.Host), "metadata"),
		Token:     tokenFn,
		Now:       c.Now,
	})
}

// repository opens repo with the credentials clients would use for the host.
func (c *Client) repository(ctx context.Context, repo string) (*oci.Repository, error) {
	login, err := client.LookupRegistryLogin(ctx, c.Host)
	if err != nil {
		return nil, err
	}
	return oci.NewRepository(ctx, c.Host, repo, oci.Options{Credentials: credentials(login), HTTP: c.hc})
}

func credentials(l client.RegistryLogin) oci.Credentials {
	return oci.Credentials{RefreshToken: l.IdentityToken, Username: l.Username, Password: l.Password}
}

// Verified is an image whose manifests have been checked against its target.
type Verified struct {
	Target *verify.Target
	// Tags are the signed tags that vouch for a digest reference that has no
	// target of its own (see resolveDigest).
	Tags  []string
	Image *oci.Image
	repo  *oci.Repository
	// Referrers are the signatures and attestations attached to it, each
	// checked with the keys its trust graph delegates for the repository;
	// ReferrersErr says why they could not be listed.
	Referrers    []Attached
	ReferrersErr error
	// Policy is the verdict of the pull policies that apply to it; nil when
	// none does.
	Policy *PolicyVerdict
	// vc and state are the trust graph it was verified against: the keys
	// its signed referrers are checked with.
	vc    *verify.Client
	state *verify.State
}

// Verify resolves ref's target through the trust graph (it must exist and be
// fresh; a digest with no target of its own is resolved through the signed
// tags that name it), lists the signatures and attestations attached to it and checks the
// pull policies that apply (checkPolicy), then fetches the manifest by the
// same tag or digest and checks its digest and length against the target,
// and, for an index, fetches every child by digest, checking each and that it
// is in the target's closure.
//
// An image whose enforced policy is not met is returned with the error
// (CodePolicy), its Target, Referrers and Policy set but no Image: its
// manifests are not read, as the registry does not serve them.
func (c *Client) Verify(ctx context.Context, ref trust.Ref) (*Verified, error) {
	vc, err := c.verifier(ctx)
	if err != nil {
		return nil, err
	}
	st, err := vc.Walk(ctx, ref.TargetPath())
	if err != nil {
		return nil, err
	}
	var tags []string
	if st.Target == nil && ref.Digest != "" {
		if st, tags, err = resolveDigest(ctx, vc, st, ref); err != nil {
			return nil, err
		}
	}
	if st.Target == nil {
		return nil, explainNotSigned(st, c.Host, ref)
	}
	target := st.Target
	repo, err := c.repository(ctx, ref.Repo)
	if err != nil {
		return nil, err
	}
	v := &Verified{Target: target, Tags: tags, repo: repo, vc: vc, state: st}
	if err := c.checkPolicy(ctx, v); err != nil {
		return v, err
	}
	tagOrDigest := ref.Tag
	if tagOrDigest == "" {
		tagOrDigest = ref.Digest.String()
	}
	what := fmt.Sprintf("%s/%s:%s", c.Host, ref.Repo, tagOrDigest)
	if ref.Tag == "" {
		what = fmt.Sprintf("%s/%s@%s", c.Host, ref.Repo, ref.Digest)
	}
	raw, servedType, err := repo.GetManifest(ctx, tagOrDigest, target.Length)
	if errors.Is(err, oci.ErrNotFound) {
		return nil, mismatch(fmt.Errorf("%s is signed as %s, but the registry does not serve it: %w", what, target.Digest, err))
	}
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) != target.Length || target.Digest.Algorithm().FromBytes(raw) != target.Digest {
		return nil, mismatch(fmt.Errorf("the registry serves %s as %s (%d bytes), but it is signed as %s (%d bytes)",
			what, target.Digest.Algorithm().FromBytes(raw), len(raw), target.Digest, target.Length))
	}
	mediaType := target.MediaType
	if mediaType == "" {
		mediaType = servedType
	}
	var declared struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(raw, &declared) == nil && declared.MediaType != "" && target.MediaType != "" && declared.MediaType != target.MediaType {
		return nil, mismatch(fmt.Errorf("%s declares media type %s, but it is signed as %s", what, declared.MediaType, target.MediaType))
	}
	root := ocispec.Descriptor{MediaType: mediaType, Digest: target.Digest, Size: target.Length}
	im, err := oci.LoadImage(ctx, &preloaded{Source: repo, d: target.Digest, raw: raw}, root)
	if errors.Is(err, oci.ErrNotFound) {
		return nil, mismatch(fmt.Errorf("a manifest of %s is missing from the registry: %w", what, err))
	}
	if err != nil {
		return nil, err
	}
	for _, child := range im.Children() {
		if !slices.Contains(target.Closure, child) {
			return nil, mismatch(fmt.Errorf("%s lists child manifest %s, which is not in the closure its signature vouches for", what, child))
		}
	}
	v.Image = im
	return v, nil
}

// Pull verifies ref, then writes it into the OCI layout dir, every blob checked
// against its digest and length as it streams; the root is named by ref's tag
// in the layout's index.json, written last.
func (c *Client) Pull(ctx context.Context, ref trust.Ref, dir string) (*Verified, error) {
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory: pull writes an OCI image layout into a directory, made if missing", dir)
	}
	v, err := c.Verify(ctx, ref)
	if err != nil {
		return v, err // nothing is written: a policy not met is known first
	}
	w, err := oci.NewLayoutWriter(dir)
	if err != nil {
		return nil, err
	}
	err = oci.Pull(ctx, v.repo, v.Image, w, oci.PullOptions{Name: ref.Tag, Progress: c.Progress})
	if errors.Is(err, oci.ErrNotFound) {
		return nil, mismatch(fmt.Errorf("a blob of %s/%s is missing from the registry: %w", c.Host, ref.Repo, err))
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// preloaded is a Source that already holds one manifest's checked bytes.
type preloaded struct {
	oci.Source
	d   digest.Digest
	raw []byte
}

func (p *preloaded) Manifest(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Digest == p.d {
		return p.raw, nil
	}
	return p.Source.Manifest(ctx, desc)
}

func (p *preloaded) Blob(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return p.Source.Blob(ctx, desc)
}

package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "crypto/sha512" // sha512 digests in target names
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/signet-oss/signet/trustnames"
)

// Size limits of the metadata a refresh downloads. go-tuf's default snapshot limit
// (2,000,000 bytes) holds about 45k repositories; trustd accepts a role of up to
// 16 MiB.
const (
	DefaultSnapshotMaxLength = 256 << 20
	DefaultTargetsMaxLength  = 16 << 20
)

// Config says which trust graph to verify and how to reach it.
type Config struct {
	// TrustdURL is trustd's base URL; the metadata is under <TrustdURL>/tuf/.
	TrustdURL string
	// Root is the pinned root.json: every refresh starts from it, or from a newer
	// root verified from it and kept in CacheDir.
	Root []byte
	// CacheDir keeps the verified metadata between refreshes (go-tuf's local
	// metadata directory): it makes a no-change refresh one small request and
	// protects against rollback. Created 0700 if missing. Required.
	CacheDir string
	// HTTPClient sends the requests; nil means one with a 30s timeout.
	HTTPClient *http.Client
	// Token, when set, returns a bearer token (audience trustd) to read
	// delegated roles, which trustd serves only to those who may pull what they
	// cover. It is called for each delegated role fetched: cache in it.
	Token func(ctx context.Context) (string, error)
	// Now is the clock that expiry is checked against; nil means time.Now.
	Now func() time.Time
	// SnapshotMaxLength and TargetsMaxLength bound downloads when the timestamp
	// or snapshot names no length; zero means the defaults above.
	SnapshotMaxLength, TargetsMaxLength int64
}

// Client verifies targets against one trust graph. Its methods are safe for
// concurrent use; refreshes are serialised, since they share the cache.
type Client struct {
	cfg     Config
	metaURL string
	origin  string
	pinned  *metadata.Metadata[metadata.RootType]
	pinSum  string

	mu sync.Mutex // serialises refreshes on cfg.CacheDir
}

// Target is what the trust graph says a tag or digest of a repository is.
type Target struct {
	// Path is the target path: "<repo>:<tag>" or "<repo>@<digest>".
	Path string
	// Digest is the manifest's digest, from the target's hashes.
	Digest digest.Digest
	// Length is the manifest's size in bytes.
	Length int64
	// MediaType is the manifest's media type (custom.mediaType).
	MediaType string
	// Closure lists the child manifests of an index that the signature also
	// vouches for (custom.closure).
	Closure []digest.Digest
}

// customFields are a target's "custom" object.
type customFields struct {
	MediaType string          `json:"mediaType,omitempty"`
	Closure   []digest.Digest `json:"closure,omitempty"`
}

// New checks cfg and parses the pinned root. It does no I/O beyond creating the
// cache directory.
func New(cfg Config) (*Client, error) {
	if cfg.TrustdURL == "" {
		return nil, errors.New("verify: no trustd URL")
	}
	u, err := url.Parse(strings.TrimSuffix(cfg.TrustdURL, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("verify: trustd URL %q is not an http(s) URL", cfg.TrustdURL)
	}
	if cfg.CacheDir == "" {
		return nil, errors.New("verify: no cache directory")
	}
	pinned, err := metadata.Root().FromBytes(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("verify: the pinned root.json is unreadable: %w", err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SnapshotMaxLength <= 0 {
		cfg.SnapshotMaxLength = DefaultSnapshotMaxLength
	}
	if cfg.TargetsMaxLength <= 0 {
		cfg.TargetsMaxLength = DefaultTargetsMaxLength
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	sum := sha256.Sum256(cfg.Root)
	return &Client{
		cfg:     cfg,
		metaURL: u.String() + "/tuf/",
		origin:  u.Scheme + "://" + u.Host,
		pinned:  pinned,
		pinSum:  hex.EncodeToString(sum[:]),
	}, nil
}

// State is the verified trust graph as one walk saw it.
type State struct {
	Root     *metadata.Metadata[metadata.RootType]
	Snapshot *metadata.Metadata[metadata.SnapshotType]
	// Roles holds the targets role and every delegated role verified on the walk
	// towards the target path, by role name.
	Roles map[string]*metadata.Metadata[metadata.TargetsType]
	// Target is the target found, or nil; then NotSigned says why (it matches
	// ErrNotSigned).
	Target    *Target
	NotSigned error
}

// Version returns the current version of a targets role as the verified
// snapshot names it, or 0 for a role that has never been published.
func (s *State) Version(role string) int64 {
	if m, ok := s.Snapshot.Signed.Meta[role+".json"]; ok {
		return m.Version
	}
	return 0
}

// Resolve refreshes the trust graph and returns the target for targetPath,
// "<repo>:<tag>" or "<repo>@<digest>".
func (c *Client) Resolve(ctx context.Context, targetPath string) (*Target, error) {
	st, err := c.Walk(ctx, targetPath)
	if err != nil {
		return nil, err
	}
	if st.Target == nil {
		return nil, st.NotSigned
	}
	return st.Target, nil
}

// Walk refreshes the trust graph (a new go-tuf updater on the shared cache) and
// walks the delegations towards targetPath. A target that no role vouches for is
// not an error of Walk: State.Target is nil and State.NotSigned says why. Every
// other failure is returned.
func (c *Client) Walk(ctx context.Context, targetPath string) (*State, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fail := func(err error, ph phase) error {
		return &Error{Kind: classify(err, ph), Target: targetPath, Err: err}
	}
	up, err := c.updater(ctx)
	if err != nil {
		return nil, fail(err, phaseRefresh)
	}
	if err := up.Refresh(); err != nil {
		return nil, fail(err, phaseRefresh)
	}
	tf, walkErr := up.GetTargetInfo(targetPath)
	trusted := up.GetTrustedMetadataSet()
	st := &State{Root: trusted.Root, Snapshot: trusted.Snapshot, Roles: map[string]*metadata.Metadata[metadata.TargetsType]{}}
	for name, md := range trusted.Targets {
		st.Roles[name] = md
	}
	if walkErr != nil {
		// go-tuf's "no role lists it" errors are untyped: decide from the
		// metadata it verified, never from the error's text.
		if why, ok := unvouched(trusted, targetPath); ok {
			st.NotSigned = &Error{Kind: ErrNotSigned, Target: targetPath, Err: why}
			return st, nil
		}
		kind := classify(walkErr, phaseWalk)
		if kind != ErrNotSigned {
			return nil, &Error{Kind: kind, Target: targetPath, Err: walkErr}
		}
		st.NotSigned = &Error{Kind: ErrNotSigned, Target: targetPath, Err: walkErr}
		return st, nil
	}
	t, err := targetOf(targetPath, tf)
	if err != nil {
		return nil, &Error{Kind: ErrInvalidMetadata, Target: targetPath, Err: err}
	}
	st.Target = t
	return st, nil
}

// updater makes the go-tuf updater of one refresh. go-tuf's Updater refreshes
// only once, so each refresh gets a new one on the same cache directory.
func (c *Client) updater(ctx context.Context) (*updater.Updater, error) {
	if err := c.checkCache(); err != nil {
		return nil, err
	}
	cfg, err := config.New(c.metaURL, c.startRoot())
	if err != nil {
		return nil, err
	}
	cfg.LocalMetadataDir = c.cfg.CacheDir
	cfg.LocalTargetsDir = filepath.Join(c.cfg.CacheDir, "targets") // unused: targets are manifests, fetched from the registry
	cfg.SnapshotMaxLength = c.cfg.SnapshotMaxLength
	cfg.TargetsMaxLength = c.cfg.TargetsMaxLength
	cfg.Fetcher = &fetcher{ctx: ctx, hc: c.cfg.HTTPClient, token: c.cfg.Token, origin: c.origin}
	up, err := updater.New(cfg)
	if err != nil {
		return nil, err
	}
	up.UnsafeSetRefTime(c.cfg.Now().UTC())
	return up, nil
}

// pinFile records, in the cache, which pinned root the cached metadata was
// verified from: a cache of another trust root (a re-pinned host) is dropped.
const pinFile = "pinned-root.sha256"

func (c *Client) checkCache() error {
	b, err := os.ReadFile(filepath.Join(c.cfg.CacheDir, pinFile))
	if err == nil && strings.TrimSpace(string(b)) == c.pinSum {
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	entries, err := os.ReadDir(c.cfg.CacheDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			if err := os.Remove(filepath.Join(c.cfg.CacheDir, e.Name())); err != nil {
				return err
			}
		}
	}
	return os.WriteFile(filepath.Join(c.cfg.CacheDir, pinFile), []byte(c.pinSum+"\n"), 0o600)
}

// startRoot returns the root a refresh starts from: the newest root the cache
// holds, when it is newer than the pinned one (go-tuf verified it through the
// root chain before it wrote it), else the pinned root.
func (c *Client) startRoot() []byte {
	b, err := os.ReadFile(filepath.Join(c.cfg.CacheDir, "root.json"))
	if err != nil {
		return c.cfg.Root
	}
	cached, err := metadata.Root().FromBytes(b)
	if err != nil || cached.Signed.Version <= c.pinned.Signed.Version {
		return c.cfg.Root
	}
	return b
}

// targetOf turns go-tuf's target into a Target, checking that a digest target's
// name agrees with its hashes.
func targetOf(path string, tf *metadata.TargetFiles) (*Target, error) {
	t := &Target{Path: path, Length: tf.Length}
	if tf.Custom != nil && len(bytes.TrimSpace(*tf.Custom)) > 0 {
		var cf customFields
		if err := json.Unmarshal(*tf.Custom, &cf); err != nil {
			return nil, fmt.Errorf("target %s: custom fields: %w", path, err)
		}
		t.MediaType, t.Closure = cf.MediaType, cf.Closure
		for _, d := range t.Closure {
			if err := d.Validate(); err != nil {
				return nil, fmt.Errorf("target %s: closure entry %q: %w", path, d, err)
			}
		}
	}
	if _, ref, isDigest, _ := trustnames.SplitTarget(path); isDigest {
		d, err := digest.Parse(ref)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", path, err)
		}
		if got := hex.EncodeToString(tf.Hashes[d.Algorithm().String()]); got != d.Encoded() {
			return nil, fmt.Errorf("target %s: its %s hash is %q, not the digest it is named by", path, d.Algorithm(), got)
		}
		t.Digest = d
		return t, nil
	}
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		if h, ok := tf.Hashes[alg.String()]; ok {
			d := digest.NewDigestFromEncoded(alg, hex.EncodeToString(h))
			if err := d.Validate(); err != nil {
				return nil, fmt.Errorf("target %s: %s hash: %w", path, alg, err)
			}
			t.Digest = d
			return t, nil
		}
	}
	return nil, fmt.Errorf("target %s has no sha256 or sha512 hash", path)
}

// unvouched decides, from the metadata go-tuf verified during a walk that
// failed, whether the walk failed because no role vouches for path: it replays
// go-tuf's pre-order walk (terminating delegations stop it) over the verified
// roles. It reports true when every role the walk reaches was verified without
// listing path, or is one the trusted snapshot does not list: a role delegated
// but never published, which trustd no longer lets a snapshot leave out but a
// data directory written by an older trustd may still hold. It reports false
// when the walk reaches a role the snapshot lists that go-tuf did not verify:
// loading that role failed, and go-tuf's error says how.
func unvouched(ts trustedmetadata.TrustedMetadata, path string) (error, bool) {
	if ts.Snapshot == nil || ts.Targets[metadata.TARGETS] == nil {
		return nil, false
	}
	type visit struct{ role, parent string }
	stack := []visit{{role: metadata.TARGETS}}
	seen := map[string]bool{}
	var unlisted error
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[v.role] {
			continue
		}
		seen[v.role] = true
		md := ts.Targets[v.role]
		if md == nil {
			if _, listed := ts.Snapshot.Signed.Meta[v.role+".json"]; listed {
				return nil, false
			}
			if unlisted == nil {
				unlisted = fmt.Errorf("%s delegates %s to %s, which has never been published (the snapshot does not list it)", v.parent, path, v.role)
			}
			continue
		}
		if _, found := md.Signed.Targets[path]; found {
			return nil, false
		}
		if md.Signed.Delegations == nil {
			continue
		}
		var children []visit
		for _, d := range md.Signed.Delegations.GetRolesForTarget(path) {
			children = append(children, visit{role: d.Name, parent: v.role})
			if d.Terminating {
				stack = nil
				break
			}
		}
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, children[i])
		}
	}
	if unlisted != nil {
		return unlisted, true
	}
	return fmt.Errorf("target %s is in no role delegated for it", path), true
}

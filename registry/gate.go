package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/reference"
	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

// The admission gate (DESIGN §3). In an enforced repository the trust graph is
// the source of truth for tags: a manifest is stored only when a current target
// (or a target's closure) vouches for its digest, length and media type, or when
// it is a signature artifact that a delegated publisher key signed for this
// repository and a covered digest; and it is served only while that holds. The
// registry is a TUF client of trustd, never a trusting caller: verify.Index checks
// the whole chain and keeps the view in memory.

// TrustConfig turns the gate on (the trust.* config keys).
type TrustConfig struct {
	// Root is the pinned root.json file; setting it enforces every repository
	// but the Open ones (trust.root).
	Root string `yaml:"root"`
	// Trustd is trustd's base URL (trust.trustd, default auth.token.trustd).
	Trustd string `yaml:"trustd"`
	// Open lists repository patterns admitted without signatures ("*" is one
	// name component, "**" any number) (trust.open; flag --open).
	Open []string `yaml:"open"`
	// RefreshInterval is how often the trust metadata is refreshed; revocation
	// bites within it (trust.refreshInterval, default 30s).
	RefreshInterval time.Duration `yaml:"refreshInterval"`
	// MaxStaleness is how old the last successful refresh may grow before
	// /readyz says the registry is not ready (trust.maxStaleness, default three
	// refresh intervals).
	MaxStaleness time.Duration `yaml:"maxStaleness"`
	// Username and Password are the registry's own trustd account, which reads
	// every organisation's and repository's role (trust.username, trust.password;
	// SIGNET_REGISTRY_PASSWORD overrides the password).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// gate enforces admission. It is nil when no trust root is configured.
type gate struct {
	index    *verify.Index
	open     []string
	store    *storage.Store
	log      *slog.Logger
	checkSig SignatureChecker

	// blobs caches, per repository, the blobs its admitted manifests reference,
	// valid while the view's RepoTargets pointer and the admission count match.
	mu    sync.Mutex
	blobs map[string]*blobSet
	// logged is the refresh count last logged.
	logged atomic.Int64

	// verdicts caches, per repository, whether each stored signature artifact
	// passes the whole check, per key set (referrerServable).
	vmu      sync.Mutex
	verdicts map[string]map[verdictKey]*verdict

	// policies caches, per repository, pull policy verdicts (policy.go);
	// policyGen counts the referrer changes that end them.
	pmu       sync.Mutex
	policies  map[string]*repoVerdicts
	policyGen uint64
}

// errTrustUnavailable: the trust metadata could not be refreshed when a decision
// needed it, or it expired (503: the client may retry).
var errTrustUnavailable = errors.New("trust metadata unavailable")

// enforced reports whether repo is subject to the gate.
func (g *gate) enforced(repo string) bool {
	if g == nil {
		return false
	}
	for _, p := range g.open {
		if reference.MatchPattern(p, repo) {
			return false
		}
	}
	return true
}

// lookup returns the repository's current targets, refreshing (single-flight, at
// most once a second) when need says the current view does not have what the
// caller looks for.
func (g *gate) lookup(ctx context.Context, repo string, need func(*verify.RepoTargets) bool) (*verify.RepoTargets, error) {
	rt, err := g.index.Lookup(repo)
	if err == nil && need(rt) {
		return rt, nil
	}
	rerr := g.index.Refresh(ctx)
	// One line per refresh, however many misses waited for it.
	if n := g.index.Refreshes(); n > g.logged.Load() && g.logged.Swap(n) < n {
		g.log.Info("trust metadata refreshed", "reason", "miss", "repo", repo, "err", rerr)
	}
	rt2, err2 := g.index.Lookup(repo)
	if err2 != nil {
		return nil, fmt.Errorf("%w: %v", errTrustUnavailable, err2)
	}
	if !need(rt2) && rerr != nil && errors.Is(rerr, verify.ErrUnreachable) {
		return rt2, fmt.Errorf("%w: trustd could not be reached to confirm it: %v", errTrustUnavailable, rerr)
	}
	return rt2, nil
}

// denied is the 403 for content the trust graph does not vouch for.
func denied(format string, args ...any) error {
	return &Error{Code: CodeDenied, Detail: fmt.Sprintf(format, args...)}
}

// unavailable is the 503 for a decision the gate cannot make now.
func unavailable(err error) error {
	return &Error{Code: CodeUnavailable, Detail: err.Error() + "; retry when the trust service is back"}
}

// admitManifest decides a manifest PUT in an enforced repository, before
// anything is stored. ref is the tag or digest of the URL, tags the ?tag= ones.
// It returns what it admitted a signature artifact as, if it did.
func (g *gate) admitManifest(ctx context.Context, repo, ref string, tags []string, d digest.Digest, mediaType string, content []byte) (sigAdmission, error) {
	if !strings.Contains(ref, ":") {
		tags = append([]string{ref}, tags...)
	}
	length := int64(len(content))
	for _, tag := range tags {
		if subject, ok := cosignTagSubject(tag); ok {
			if len(tags) != 1 {
				return sigAdmission{}, denied("a signature artifact is pushed under its own tag only")
			}
			version, err := g.admitReferrer(ctx, repo, d, subject, mediaType, content, tag)
			return sigAdmission{digest: d, subject: subject, tag: tag, tagVersion: version}, err
		}
		if subject, ok := g.referrersIndexTag(repo, tag); ok && mediaType == storage.MediaTypeOCIIndex {
			if len(tags) != 1 {
				return sigAdmission{}, denied("a referrers index is pushed under its own tag only")
			}
			version, err := g.admitReferrersIndex(ctx, repo, tag, subject, content)
			return sigAdmission{digest: d, tag: tag, tagVersion: version}, err
		}
		matches := func(rt *verify.RepoTargets) bool {
			t := rt.Tags[tag]
			return rt != nil && t != nil && t.Digest == d && t.Length == length && t.MediaType == mediaType
		}
		rt, err := g.lookup(ctx, repo, func(rt *verify.RepoTargets) bool { return rt != nil && matches(rt) })
		if err != nil {
			return sigAdmission{}, unavailable(err)
		}
		if rt == nil || !matches(rt) {
			return sigAdmission{}, denied("%s is not signed for %s:%s%s", d, repo, tag, targetHint(rt, repo, tag, d, length, mediaType))
		}
	}
	if len(tags) > 0 {
		return sigAdmission{}, nil
	}
	// By digest: a digest target, a closure member, or a signature artifact.
	covered := func(rt *verify.RepoTargets) bool { return rt != nil && rt.Covered[d] }
	rt, err := g.lookup(ctx, repo, covered)
	if _, referrer := verify.ReferrerFormat(mediaType, content); err != nil && !referrer {
		return sigAdmission{}, unavailable(err)
	}
	if covered(rt) {
		if t := rt.Digests[d]; t != nil && (t.Length != length || (t.MediaType != "" && t.MediaType != mediaType)) {
			return sigAdmission{}, denied("%s@%s is signed with length %d and media type %s, not %d and %s", repo, d, t.Length, t.MediaType, length, mediaType)
		}
		if err := g.checkMediaType(ctx, repo, rt, d, mediaType, content); err != nil {
			return sigAdmission{}, err
		}
		return sigAdmission{}, nil
	}
	return sigAdmission{}, denied("%s is not signed for %s (no target %s@%s, and no signed index lists it)", d, repo, repo, d)
}

// checkMediaType checks the media type of a covered manifest pushed by digest
// against the targets that cover it: a tag or digest target names it; for a
// closure member, the covering index's descriptor of it does, once the index
// is stored. A manifest whose bytes have no mediaType field, and whose type no
// target or index names, is admitted only as the OCI type (Docker's types
// require the field), so whoever pushes it first cannot choose its type.
func (g *gate) checkMediaType(ctx context.Context, repo string, rt *verify.RepoTargets, d digest.Digest, mediaType string, content []byte) error {
	named := false
	check := func(want, from string) error {
		if want == "" {
			return nil
		}
		named = true
		if want != mediaType {
			return denied("%s@%s is signed as %s (%s), not %s", repo, d, want, from, mediaType)
		}
		return nil
	}
	for tag, t := range rt.Tags {
		if t.Digest == d {
			if err := check(t.MediaType, "target "+repo+":"+tag); err != nil {
				return err
			}
		}
	}
	targets := slices.Collect(maps.Values(rt.Tags))
	for _, t := range rt.Digests {
		targets = append(targets, t)
	}
	for _, t := range targets {
		if !slices.Contains(t.Closure, d) {
			continue
		}
		m, err := g.store.GetManifest(ctx, repo, t.Digest.String())
		if errors.Is(err, storage.ErrManifestUnknown) {
			continue // children are pushed before their index
		}
		if err != nil {
			return err
		}
		_, f, err := storage.ParseManifest(m.MediaType, m.Content)
		if err != nil {
			continue
		}
		for _, c := range f.Manifests {
			if c.Digest == d {
				if err := check(c.MediaType, "the signed index "+t.Digest.String()+" lists it so"); err != nil {
					return err
				}
			}
		}
	}
	if named {
		return nil
	}
	var body struct {
		MediaType *string `json:"mediaType"`
	}
	if json.Unmarshal(content, &body) == nil && body.MediaType == nil &&
		mediaType != storage.MediaTypeOCIManifest && mediaType != storage.MediaTypeOCIIndex {
		return denied("%s@%s has no mediaType field and no target names its type: it is admitted as an OCI type only, not %s", repo, d, mediaType)
	}
	return nil
}

// signedMediaType is the media type the target a GET of ref (a tag or a
// digest) resolved through names for manifest d, "" if none does.
func (g *gate) signedMediaType(repo, ref string, d digest.Digest) string {
	rt, err := g.index.Lookup(repo)
	if err != nil || rt == nil {
		return ""
	}
	if t := rt.Tags[ref]; t != nil && t.Digest == d {
		return t.MediaType
	}
	if t := rt.Digests[d]; t != nil {
		return t.MediaType
	}
	return ""
}

// targetHint says how a tag's target differs from what was pushed.
func targetHint(rt *verify.RepoTargets, repo, tag string, d digest.Digest, length int64, mediaType string) string {
	if rt == nil || rt.Keys.Len() == 0 {
		// Never delegated, or undelegated since: no target could be.
		return fmt.Sprintf(": %s is not delegated to any publisher key (an owner of %s runs `trustctl org delegate %s --key KEY`)", repo, trustnames.OrgOfRepo(repo), repo)
	}
	if rt.Tags[tag] == nil {
		return ": the trust graph has no target " + tag
	}
	t := rt.Tags[tag]
	switch {
	case t.Digest != d:
		return fmt.Sprintf(": the target names %s", t.Digest)
	case t.Length != length:
		return fmt.Sprintf(": the target's length is %d, this manifest's %d", t.Length, length)
	default:
		return fmt.Sprintf(": the target's media type is %s, this manifest's Content-Type %s", t.MediaType, mediaType)
	}
}

// servable reports whether manifest d of an enforced repo may be served: it is
// covered, or it is an admitted signed referrer of a covered manifest that
// passes the check now.
func (g *gate) servable(ctx context.Context, repo string, d digest.Digest) error {
	rt, err := g.index.Lookup(repo)
	if err != nil {
		return unavailable(fmt.Errorf("%w: %v", errTrustUnavailable, err))
	}
	if rt != nil && rt.Covered[d] {
		return nil
	}
	subject, ok, err := g.store.AdmittedSubject(ctx, repo, d)
	if err != nil {
		return err
	}
	if ok && rt != nil && rt.Covered[subject] {
		if ok, err := g.referrerServable(ctx, repo, d, subject, rt); err != nil || ok {
			return err
		}
		return fmt.Errorf("%w: %s@%s (a signed referrer that fails the signature check)", storage.ErrManifestUnknown, repo, d)
	}
	return fmt.Errorf("%w: %s@%s is not signed", storage.ErrManifestUnknown, repo, d)
}

// resolveTag returns the digest a tag of an enforced repo stands for: the
// current target's, for a cosign tag the stored artifact of a covered subject
// while it passes the check, and for a referrers tag the stored index while
// every entry is one the referrers API lists.
func (g *gate) resolveTag(ctx context.Context, repo, tag string) (digest.Digest, error) {
	if subject, ok := g.referrersIndexTag(repo, tag); ok {
		return g.resolveReferrersIndex(ctx, repo, tag, subject)
	}
	if subject, ok := cosignTagSubject(tag); ok {
		rt, err := g.index.Lookup(repo)
		if err != nil {
			return "", unavailable(fmt.Errorf("%w: %v", errTrustUnavailable, err))
		}
		if rt == nil || !rt.Covered[subject] {
			return "", fmt.Errorf("%w: %s:%s (its subject is not signed)", storage.ErrManifestUnknown, repo, tag)
		}
		d, err := g.store.ResolveTag(ctx, repo, tag)
		if err != nil {
			return "", err
		}
		if ok, err := g.referrerServable(ctx, repo, d, subject, rt); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("%w: %s:%s (its signature artifact fails the signature check)", storage.ErrManifestUnknown, repo, tag)
			}
			return "", err
		}
		return d, nil
	}
	rt, err := g.index.Lookup(repo)
	if err != nil {
		return "", unavailable(fmt.Errorf("%w: %v", errTrustUnavailable, err))
	}
	if rt == nil || rt.Tags[tag] == nil {
		return "", fmt.Errorf("%w: %s:%s is not signed", storage.ErrManifestUnknown, repo, tag)
	}
	return rt.Tags[tag].Digest, nil
}

// tags lists the tags of an enforced repo: its current targets that are stored,
// the stored cosign tags of covered subjects whose artifacts pass the check,
// and the referrers tags whose index holds.
func (g *gate) tags(ctx context.Context, repo string, stored []string) ([]string, error) {
	rt, err := g.index.Lookup(repo)
	if err != nil {
		return nil, unavailable(fmt.Errorf("%w: %v", errTrustUnavailable, err))
	}
	out := []string{}
	for _, t := range stored {
		if subject, ok := g.referrersIndexTag(repo, t); ok {
			_, err := g.resolveReferrersIndex(ctx, repo, t, subject)
			switch {
			case err == nil:
				out = append(out, t)
			case !errors.Is(err, storage.ErrManifestUnknown):
				return nil, err // a list missing tags is no answer
			}
			continue
		}
		if subject, ok := cosignTagSubject(t); ok {
			if rt != nil && rt.Covered[subject] {
				d, err := g.store.ResolveTag(ctx, repo, t)
				if errors.Is(err, storage.ErrManifestUnknown) {
					continue // deleted meanwhile
				}
				if err != nil {
					return nil, err // a list missing tags is no answer
				}
				if ok, err := g.referrerServable(ctx, repo, d, subject, rt); err != nil {
					return nil, err
				} else if ok {
					out = append(out, t)
				}
			}
			continue
		}
		if target := rtTag(rt, t); target != nil {
			d, err := g.store.ResolveTag(ctx, repo, t)
			if errors.Is(err, storage.ErrManifestUnknown) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, err // a list missing tags is no answer
			}
			if d == target.Digest {
				out = append(out, t)
			}
		}
	}
	return out, nil
}

func rtTag(rt *verify.RepoTargets, tag string) *verify.Target {
	if rt == nil {
		return nil
	}
	return rt.Tags[tag]
}

// refreshLoop refreshes the trust metadata every interval until ctx is done.
func (g *gate) refreshLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := g.index.Refresh(ctx); err != nil {
			g.log.Warn("trust metadata refresh failed", "reason", "interval", "err", err)
		}
	}
}

// EnableGate turns admission on: every repository but those matching open is
// enforced against index. checkSig checks signed referrers
// (verify.CheckReferrer); with none, no signed referrer is admitted or served.
func (s *Server) EnableGate(index *verify.Index, open []string, checkSig SignatureChecker) {
	s.gate = &gate{index: index, open: open, store: s.store, log: s.log, checkSig: checkSig}
}

// admitted marks repo's cached blob set stale after this process admitted a
// manifest or a signature artifact there: the next blob request lists the
// admission records again and adds what is new (blobVisible), rather than
// waiting out the second another replica's admission may take.
func (g *gate) admitted(repo string) {
	g.mu.Lock()
	if bs := g.blobs[repo]; bs != nil {
		bs.checked = time.Time{}
	}
	g.mu.Unlock()
	// A verdict may have failed for want of a payload the PUT's pusher has
	// uploaded since: failed verdicts go. Those that hold stay, so one
	// admission does not cost every other artifact of the repository its
	// check again (each verdict is already bound to its view and key set).
	g.vmu.Lock()
	maps.DeleteFunc(g.verdicts[repo], func(_ verdictKey, v *verdict) bool { return v.err != nil })
	g.vmu.Unlock()
}

package trust

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/reference"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/trustnames"
)

// Ref is HOST/REPO:TAG or HOST/REPO@DIGEST.
type Ref struct {
	Host, Repo, Tag string
	Digest          digest.Digest
}

// ParseRef parses what a user names an image by for signing; the host is
// required (it says which registry and trust root).
func ParseRef(s string) (Ref, error) {
	host, rest, ok := strings.Cut(s, "/")
	if !ok || !strings.ContainsAny(host, ".:") && host != "localhost" {
		return Ref{}, fmt.Errorf("%q: name the image as HOST/ORG/REPO:TAG or HOST/ORG/REPO@DIGEST", s)
	}
	r := Ref{Host: host}
	if name, d, ok := strings.Cut(rest, "@"); ok {
		dg, err := reference.ParseDigest(d)
		if err != nil {
			return Ref{}, fmt.Errorf("%q: %w", s, err)
		}
		r.Repo, r.Digest = name, dg
	} else if i := strings.LastIndex(rest, ":"); i > 0 {
		r.Repo, r.Tag = rest[:i], rest[i+1:]
		if !reference.ValidTag(r.Tag) {
			return Ref{}, fmt.Errorf("%q: %q is not a valid tag", s, r.Tag)
		}
	} else {
		return Ref{}, fmt.Errorf("%q: name a tag (:TAG) or a digest (@sha256:...)", s)
	}
	if _, err := splitRepo(r.Repo); err != nil {
		return Ref{}, err
	}
	return r, nil
}

// TargetPath is the ref's target path.
func (r Ref) TargetPath() string {
	if r.Tag != "" {
		return trustnames.TargetPath(r.Repo, r.Tag)
	}
	return trustnames.TargetPath(r.Repo, r.Digest.String())
}

// SignResult says what sign published.
type SignResult struct {
	Target    string        `json:"target"`
	Digest    digest.Digest `json:"digest"`
	Length    int64         `json:"length"`
	MediaType string        `json:"mediaType"`
	Closure   []string      `json:"closure,omitempty"`
	// Kept is the <repo>@<digest> target kept for the tag's previous digest.
	Kept string `json:"kept,omitempty"`
	Outcome
}

// Sign adds (or updates) ref's target for manifest m to the repository's role
// and publishes the next version, signed with the named key. A tag moved to
// another digest keeps its previous digest as a <repo>@<digest> target, so
// deployments pinned to it keep working. With a threshold above one, trustd
// stages the version until enough publishers have signed it; a co-signer signs
// the staged version.
func (s *Session) Sign(ctx context.Context, ref Ref, m *Manifest, keyName string) (*SignResult, error) {
	if ref.Digest != "" && ref.Digest != m.Digest {
		return nil, fmt.Errorf("the manifest read hashes to %s, not %s", m.Digest, ref.Digest)
	}
	key, err := s.loadKey(ctx, keyName)
	if err != nil {
		return nil, err
	}
	st, err := s.delegationFor(ctx, ref, key, keyName)
	if err != nil {
		return nil, err
	}
	path, role := ref.TargetPath(), trustnames.RoleForRepo(ref.Repo)
	tf, err := targetFile(m)
	if err != nil {
		return nil, err
	}
	current := st.Roles[role]
	version := st.Version(role)
	if current != nil && sameTarget(current.Signed.Targets[path], tf) && current.Signed.Expires.After(s.now().Add(ResignBefore)) {
		// Signing the same manifest again would only bump the version.
		res := &SignResult{Target: path, Digest: m.Digest, Length: m.Length, MediaType: m.MediaType,
			Outcome: Outcome{Role: role, Repository: ref.Repo, Version: version, Unchanged: true}}
		for _, c := range m.Closure {
			res.Closure = append(res.Closure, c.String())
		}
		return res, nil
	}
	if current == nil && version > 0 {
		s.printf("warning: %s v%d is not signed by the keys now delegated for %s (a key was revoked): starting it afresh, without its targets.\n", role, version, ref.Repo)
	}
	next, err := nextTargets(current, version, s.delegatedExpiry())
	if err != nil {
		return nil, err
	}
	res := &SignResult{Target: path, Digest: m.Digest, Length: m.Length, MediaType: m.MediaType}
	for _, c := range m.Closure {
		res.Closure = append(res.Closure, c.String())
	}
	if old := next.Signed.Targets[path]; old != nil && ref.Tag != "" {
		if oldDigest, ok := digestOf(old); ok && oldDigest != m.Digest {
			keep := trustnames.TargetPath(ref.Repo, oldDigest.String())
			if next.Signed.Targets[keep] == nil {
				kept := *old
				kept.Path = keep
				next.Signed.Targets[keep] = &kept
				res.Kept = keep
			}
		}
	}
	tf.Path = path
	next.Signed.Targets[path] = tf
	o, err := s.publishTargets(ctx, role, next, []*signer.Key{key}, func(staged *metadata.Metadata[metadata.TargetsType]) bool {
		got := staged.Signed.Targets[path]
		return got != nil && got.Length == tf.Length && got.Hashes.Equal(tf.Hashes)
	})
	if err != nil {
		return nil, err
	}
	res.Outcome = o
	res.Outcome.Repository = ref.Repo
	return res, nil
}

// ResignBefore is how long before its expiry a repository's role is signed
// again by a push or sign of a target it already holds unchanged; earlier,
// such a push publishes nothing.
const ResignBefore = 30 * 24 * time.Hour

// sameTarget reports whether a and b say the same: length, hashes and custom.
func sameTarget(a, b *metadata.TargetFiles) bool {
	if a == nil || b == nil || a.Length != b.Length || !a.Hashes.Equal(b.Hashes) {
		return false
	}
	if a.Custom == nil || b.Custom == nil {
		return a.Custom == b.Custom
	}
	var ca, cb any
	return json.Unmarshal(*a.Custom, &ca) == nil && json.Unmarshal(*b.Custom, &cb) == nil && reflect.DeepEqual(ca, cb)
}

// targetFile is the TUF target of a manifest: length, hashes, and custom
// {"mediaType", "closure"}.
func targetFile(m *Manifest) (*metadata.TargetFiles, error) {
	tf := metadata.TargetFile()
	tf.Length = m.Length
	raw, err := hex.DecodeString(m.Digest.Encoded())
	if err != nil {
		return nil, err
	}
	tf.Hashes = metadata.Hashes{m.Digest.Algorithm().String(): raw}
	custom := struct {
		MediaType string          `json:"mediaType"`
		Closure   []digest.Digest `json:"closure,omitempty"`
	}{m.MediaType, m.Closure}
	b, err := json.Marshal(custom)
	if err != nil {
		return nil, err
	}
	rm := json.RawMessage(b)
	tf.Custom = &rm
	return tf, nil
}

// digestOf returns the digest a target's hashes name.
func digestOf(tf *metadata.TargetFiles) (digest.Digest, bool) {
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		if h, ok := tf.Hashes[alg.String()]; ok {
			return digest.NewDigestFromEncoded(alg, hex.EncodeToString(h)), true
		}
	}
	return "", false
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func shortAll(ids []string) string {
	var out []string
	for _, id := range ids {
		out = append(out, short(id))
	}
	return strings.Join(out, ", ")
}

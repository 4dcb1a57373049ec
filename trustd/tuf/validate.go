package tuf

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/policy"
	"github.com/signet-oss/signet/reference"
	"github.com/signet-oss/signet/trustnames"
)

// Publish validation, as a careful server must (after notary's
// server/handlers/validation.go): the role name's grammar; the delegating role's
// current delegation (root for root and targets, targets for org-*, the org role for
// repo-*); the version exactly current+1; the expiry in the future and within the
// role's maximum; the delegations of targets and org roles exactly per DESIGN.md §2;
// every target inside the role's namespace and well formed; and the signatures
// counted against the delegating role's keys (for root, the previous root's keys and
// threshold too). An upload that passes everything but the threshold is staged.

// Maximum lifetimes of a published role.
const (
	maxTopLevelExpiry  = 5 * 365 * 24 * time.Hour // root, targets
	maxDelegatedExpiry = 2 * 365 * 24 * time.Hour // org-*, repo-*
)

// MaxRoleSize bounds one uploaded role.
const MaxRoleSize = 16 << 20

// upload is one role version as uploaded, parsed by go-tuf.
type upload struct {
	role    string
	kind    roleKind
	root    *rootMD    // when kind == kindRoot
	targets *targetsMD // otherwise
}

func (u *upload) version() int64 {
	if u.root != nil {
		return u.root.Signed.Version
	}
	return u.targets.Signed.Version
}

func (u *upload) expires() time.Time {
	if u.root != nil {
		return u.root.Signed.Expires
	}
	return u.targets.Signed.Expires
}

// bytes is the upload as stored and served: go-tuf's encoding of what was parsed.
func (u *upload) bytes() ([]byte, error) {
	if u.root != nil {
		return u.root.ToBytes(false)
	}
	return u.targets.ToBytes(false)
}

// signedSum identifies the signed content, whatever signatures it carries.
func (u *upload) signedSum() (string, error) {
	var b []byte
	var err error
	if u.root != nil {
		b, err = json.Marshal(u.root.Signed)
	} else {
		b, err = json.Marshal(u.targets.Signed)
	}
	return sha256Hex(b), err
}

// parseUpload parses data as role's metadata with go-tuf, checking the role name
// and the _type. It never trusts anything: validation comes after.
func parseUpload(role string, data []byte) (*upload, error) {
	kind, err := classify(role)
	if err != nil {
		return nil, errInvalid("%v", err)
	}
	if kind == kindOnline {
		return nil, errInvalid("role %q is signed by trustd's online key; it cannot be published", role)
	}
	if len(data) > MaxRoleSize {
		return nil, errTooLarge("%s is %d bytes; a role is at most %d", role, len(data), MaxRoleSize)
	}
	u := &upload{role: role, kind: kind}
	if kind == kindRoot {
		u.root, err = (&rootMD{}).FromBytes(data)
	} else {
		u.targets, err = (&targetsMD{}).FromBytes(data)
	}
	if err != nil {
		return nil, errInvalid("%s is not TUF %s metadata: %v", role, map[bool]string{true: "root", false: "targets"}[kind == kindRoot], err)
	}
	if u.root != nil && u.root.Signed.Type != metadata.ROOT || u.targets != nil && u.targets.Signed.Type != metadata.TARGETS {
		return nil, errInvalid("%s: wrong _type", role)
	}
	return u, nil
}

// delegation is what a delegating role says about a role: its keys and threshold.
type delegation struct {
	by        string // the delegating role, for messages
	keys      map[string]*metadata.Key
	keyIDs    []string
	threshold int
	paths     []string
}

func rootDelegation(r *rootMD, role string) *delegation {
	d := r.Signed.Roles[role]
	if d == nil {
		return nil
	}
	return &delegation{by: trustnames.RoleRoot, keys: r.Signed.Keys, keyIDs: d.KeyIDs, threshold: d.Threshold}
}

func targetsDelegation(by string, t *targetsMD, role string) *delegation {
	if t == nil || t.Signed.Delegations == nil {
		return nil
	}
	for _, d := range t.Signed.Delegations.Roles {
		if d.Name == role {
			return &delegation{by: by, keys: t.Signed.Delegations.Keys, keyIDs: d.KeyIDs, threshold: d.Threshold, paths: d.Paths}
		}
	}
	return nil
}

// signers returns the key IDs of d whose signature on md verifies, one per distinct
// public key. Each key is checked alone by go-tuf's VerifyDelegate, through a
// one-key delegation, so the count is go-tuf's own.
func signers[T metadata.Roles](d *delegation, role string, md *metadata.Metadata[T]) []string {
	signed := map[string]bool{}
	for _, s := range md.Signatures {
		signed[s.KeyID] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, id := range d.keyIDs {
		k := d.keys[id]
		if k == nil || !signed[id] || seen[k.Value.PublicKey] {
			continue
		}
		one := &rootMD{Signed: metadata.RootType{
			Keys:  map[string]*metadata.Key{id: k},
			Roles: map[string]*metadata.Role{role: {KeyIDs: []string{id}, Threshold: 1}},
		}}
		if one.VerifyDelegate(role, md) == nil {
			seen[k.Value.PublicKey] = true
			out = append(out, id)
		}
	}
	return out
}

// sigResult says whether an upload carries enough signatures.
type sigResult struct {
	met        bool
	have, need int
	by         string   // the delegating role short of signatures
	valid      []string // key IDs whose signatures verified, over every delegation
	// heldParent is the delegating role whose held version (not its published
	// one) delegates this role: the upload is that delegation's first version.
	heldParent string
	// unpublished lists the roles a targets or org upload delegates that have
	// no published version: such an upload is held (held.go).
	unpublished []string
}

// checkSignatures counts md's signatures against each delegation; all must be met.
func checkSignatures[T metadata.Roles](role string, md *metadata.Metadata[T], ds ...*delegation) (sigResult, error) {
	res := sigResult{met: true}
	for _, d := range ds {
		ids := signers(d, role, md)
		if len(ids) == 0 {
			return res, errInvalid("%s is signed by none of the %d key(s) %s delegates it to (key IDs %s): sign it with a delegated key", role, len(d.keyIDs), d.by, strings.Join(d.keyIDs, ", "))
		}
		for _, id := range ids {
			if !slices.Contains(res.valid, id) {
				res.valid = append(res.valid, id)
			}
		}
		if res.met && len(ids) < d.threshold {
			res.met, res.have, res.need, res.by = false, len(ids), d.threshold, d.by
		}
		if res.met {
			res.have, res.need = len(ids), d.threshold
		}
	}
	return res, nil
}

// validate checks u against state s at time now. online are the key IDs of trustd's
// snapshot and timestamp keys, which every root must name. It returns whether the
// signatures meet every threshold; any other failure is an error.
func (s *state) validate(u *upload, now time.Time, online map[string]string) (sigResult, error) {
	cur := s.version(u.role)
	if v := u.version(); v != cur+1 {
		if v <= cur {
			return sigResult{}, errConflict("%s version %d is not newer than the current version %d (rollback refused): publish version %d", u.role, v, cur, cur+1)
		}
		return sigResult{}, errConflict("%s version %d skips versions: the current version is %d, publish version %d", u.role, v, cur, cur+1)
	}
	maxExpiry := maxDelegatedExpiry
	if u.kind == kindRoot || u.kind == kindTargets {
		maxExpiry = maxTopLevelExpiry
	}
	if exp := u.expires(); !exp.After(now) {
		return sigResult{}, errInvalid("%s version %d expired at %s: sign it again with a later expiry", u.role, u.version(), exp.UTC().Format(time.RFC3339))
	} else if exp.Sub(now) > maxExpiry {
		return sigResult{}, errInvalid("%s expires %s, more than %s from now: choose an earlier expiry", u.role, exp.UTC().Format(time.RFC3339), maxExpiry)
	}
	switch u.kind {
	case kindRoot:
		return s.validateRootVersion(u, online)
	case kindTargets:
		return s.validateTargetsVersion(u)
	case kindOrg:
		return s.validateOrgVersion(u)
	case kindRepo:
		return s.validateRepoVersion(u)
	}
	return sigResult{}, errInvalid("role %q cannot be published", u.role)
}

// validateRoot checks a root's shape: consistent snapshots, every top-level role
// with keys it lists, and trustd's online keys for snapshot and timestamp.
func validateRoot(r *rootMD, online map[string]string) error {
	if !r.Signed.ConsistentSnapshot {
		return errInvalid("root must set consistent_snapshot: true (trustd serves <version>.<role>.json)")
	}
	if err := validateKeys("root", r.Signed.Keys); err != nil {
		return err
	}
	for _, name := range []string{trustnames.RoleRoot, trustnames.RoleTargets, trustnames.RoleSnapshot, trustnames.RoleTimestamp} {
		role := r.Signed.Roles[name]
		if role == nil {
			return errInvalid("root names no keys for the %s role", name)
		}
		if err := validateKeyIDs("root's "+name+" role", role.KeyIDs, role.Threshold, r.Signed.Keys); err != nil {
			return err
		}
		if id, ok := online[name]; ok && (len(role.KeyIDs) != 1 || role.KeyIDs[0] != id || role.Threshold != 1) {
			return errInvalid("root's %s role must be trustd's online key alone (key ID %s, threshold 1; GET /tuf/api/online-keys)", name, id)
		}
	}
	if len(r.Signed.Roles) != 4 {
		return errInvalid("root names %d roles; it names exactly root, targets, snapshot and timestamp", len(r.Signed.Roles))
	}
	return nil
}

// validateDelegations checks targets-style delegations: names, keys, thresholds,
// terminating, paths exactly as check says (it returns the namespace a delegation
// covers), and no two delegations for one namespace.
func validateDelegations(role string, md *targetsMD, check func(metadata.DelegatedRole) (string, error)) error {
	del := md.Signed.Delegations
	if del == nil {
		return nil
	}
	if del.SuccinctRoles != nil {
		return errInvalid("%s uses succinct_roles (hash bins); this repository delegates by name and paths only", role)
	}
	if err := validateKeys(role+"'s delegations", del.Keys); err != nil {
		return err
	}
	seen := map[string]string{}
	for _, d := range del.Roles {
		if len(d.PathHashPrefixes) > 0 {
			return errInvalid("%s: the delegation %s uses path_hash_prefixes; use paths", role, d.Name)
		}
		if !d.Terminating {
			return errInvalid("%s: the delegation %s must be terminating", role, d.Name)
		}
		ns, err := check(d)
		if err != nil {
			return errInvalid("%s: %v", role, err)
		}
		if other, dup := seen[ns]; dup {
			return errInvalid("%s: the delegations %s and %s overlap on %s", role, other, d.Name, ns)
		}
		seen[ns] = d.Name
		if err := validateKeyIDs(role+"'s delegation "+d.Name, d.KeyIDs, d.Threshold, del.Keys); err != nil {
			return err
		}
	}
	return nil
}

// validateKeys checks that every key parses, is of a supported type, and is listed
// under its own key ID (a key under another's ID would confuse thresholds).
func validateKeys(where string, keys map[string]*metadata.Key) error {
	for id, k := range keys {
		if k == nil {
			return errInvalid("%s: key %s is empty", where, id)
		}
		switch {
		case k.Type == metadata.KeyTypeECDSA_SHA2_P256 && k.Scheme == metadata.KeySchemeECDSA_SHA2_P256:
			pub, err := k.ToPublicKey()
			if err != nil {
				return errInvalid("%s: key %s does not parse: %v", where, id, err)
			}
			if ek, ok := pub.(*ecdsa.PublicKey); !ok || ek.Curve != elliptic.P256() {
				return errInvalid("%s: key %s is not an ECDSA P-256 key", where, id)
			}
		case k.Type == metadata.KeyTypeEd25519 && k.Scheme == metadata.KeySchemeEd25519,
			k.Type == metadata.KeyTypeRSASSA_PSS_SHA256 && k.Scheme == metadata.KeySchemeRSASSA_PSS_SHA256:
			if _, err := k.ToPublicKey(); err != nil {
				return errInvalid("%s: key %s does not parse: %v", where, id, err)
			}
		default:
			return errInvalid("%s: key %s has type %q and scheme %q; supported: ecdsa-sha2-nistp256, ed25519, rsassa-pss-sha256", where, id, k.Type, k.Scheme)
		}
		got, err := k.ID()
		if err != nil || got != id {
			return errInvalid("%s: the key listed as %s has key ID %s", where, id, got)
		}
	}
	return nil
}

func validateKeyIDs(where string, ids []string, threshold int, keys map[string]*metadata.Key) error {
	if len(ids) == 0 {
		return errInvalid("%s lists no keys", where)
	}
	for i, id := range ids {
		if keys[id] == nil {
			return errInvalid("%s lists key %s, which is not among the keys", where, id)
		}
		if slices.Contains(ids[:i], id) {
			return errInvalid("%s lists key %s twice", where, id)
		}
	}
	if threshold < 1 || threshold > len(ids) {
		return errInvalid("%s has threshold %d; it must be 1 to %d (its number of keys)", where, threshold, len(ids))
	}
	return nil
}

// targetCustom is the custom part of a target (DESIGN.md §2).
type targetCustom struct {
	MediaType string   `json:"mediaType"`
	Closure   []string `json:"closure,omitempty"`
}

// validateTargets checks every target of md: a well-formed "<repo>:<tag>" or
// "<repo>@<digest>" whose repository inRepo accepts, with a length and the hash the
// digest needs (equal to it for digest targets), and a well-formed custom part.
// org, for an org role, is the organisation whose pull policies the role may
// hold (policy.Target); "" for a repository's role, which may hold none.
func validateTargets(role string, md *targetsMD, org string, inRepo func(string) error) error {
	for p, t := range md.Signed.Targets {
		if t == nil {
			return errInvalid("%s: target %q is empty", role, p)
		}
		if org != "" && p == policy.Target(org) {
			if err := validatePolicyTarget(p, t, org); err != nil {
				return errInvalid("%s: %v", role, err)
			}
			continue
		}
		repo, ref, isDigest, ok := trustnames.SplitTarget(p)
		if !ok {
			if _, name, _ := strings.Cut(p, "/"); name == policy.TargetName {
				return errInvalid("%s: target %q: an organisation's pull policies belong in its own role, %s, signed with its keys", role, p, trustnames.RoleForOrg(trustnames.OrgOfRepo(p)))
			}
			return errInvalid("%s: target %q is not <repository>:<tag> or <repository>@<digest>", role, p)
		}
		if err := inRepo(repo); err != nil {
			return errInvalid("%s: target %q: %v", role, p, err)
		}
		if t.Length <= 0 {
			return errInvalid("%s: target %q has no length", role, p)
		}
		if len(t.Hashes["sha256"]) != 32 {
			return errInvalid("%s: target %q has no sha256 hash", role, p)
		}
		if isDigest {
			d, err := reference.ParseDigest(ref)
			if err != nil {
				return errInvalid("%s: target %q: %v", role, p, err)
			}
			h := t.Hashes[d.Algorithm().String()]
			if hex.EncodeToString(h) != d.Encoded() {
				return errInvalid("%s: target %q: its %s hash differs from the digest in its path", role, p, d.Algorithm())
			}
		} else if !reference.ValidTag(ref) {
			return errInvalid("%s: target %q: %q is not a valid tag", role, p, ref)
		}
		if t.Custom != nil {
			var c targetCustom
			dec := json.NewDecoder(strings.NewReader(string(*t.Custom)))
			if err := dec.Decode(&c); err != nil {
				return errInvalid("%s: target %q: custom is not {\"mediaType\": ..., \"closure\": [...]}: %v", role, p, err)
			}
			for _, cd := range c.Closure {
				if _, err := reference.ParseDigest(cd); err != nil {
					return errInvalid("%s: target %q: closure: %v", role, p, err)
				}
			}
		}
	}
	return nil
}

// validatePolicyTarget checks org's policy target: policies of org's
// repositories (policy.ParseSet), described by the length and SHA-256 of
// their one encoding.
func validatePolicyTarget(p string, t *metadata.TargetFiles, org string) error {
	if t.Custom == nil {
		return fmt.Errorf("target %q carries no policies in custom", p)
	}
	set, err := policy.ParseSet(*t.Custom, org)
	if err != nil {
		return fmt.Errorf("target %q: %v", p, err)
	}
	enc := set.Encode()
	sum := sha256.Sum256(enc)
	if t.Length != int64(len(enc)) || !bytes.Equal(t.Hashes["sha256"], sum[:]) {
		return fmt.Errorf("target %q: its length and sha256 are not those of its policies' encoding", p)
	}
	return nil
}

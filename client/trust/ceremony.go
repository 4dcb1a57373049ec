package trust

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/signer"
)

// InitOptions shape the first root of a deployment.
type InitOptions struct {
	// RootKeys and TargetsKeys name existing keys to use; when empty, RootN and
	// TargetsN keys are used, named root-1.. and targets-1.. (generated when the
	// store lacks them).
	RootKeys, TargetsKeys []string
	RootN, TargetsN       int
	// RootThreshold and TargetsThreshold: signatures each role needs (k of n).
	RootThreshold, TargetsThreshold int
	// Expires is the lifetime of root v1 and targets v1.
	Expires time.Duration
	// Development names the keys dev-root and dev-targets: the root of a local
	// stack made by `trustctl up`.
	Development bool
}

// InitResult says what init made.
type InitResult struct {
	RootSHA256  string   `json:"rootSha256"`
	RootKeys    []string `json:"rootKeys"`
	TargetsKeys []string `json:"targetsKeys"`
	Generated   []string `json:"generated,omitempty"`
	Pinned      string   `json:"pinned"`
}

// Init runs the ceremony: root and targets keys, root v1 naming them and
// trustd's online snapshot and timestamp keys, targets v1; both signed and sent
// to trustd, which publishes snapshot and timestamp v1. The root is then pinned
// for the session's registry.
func (s *Session) Init(ctx context.Context, o InitOptions) (*InitResult, error) {
	if o.Expires <= 0 {
		o.Expires = DefaultRootExpiry
	}
	online, err := s.Trustd.OnlineKeys(ctx)
	if err != nil {
		return nil, err
	}
	res := &InitResult{}
	rootKeys, err := s.ceremonyKeys(ctx, "root", o.RootKeys, o.RootN, o.Development, res)
	if err != nil {
		return nil, err
	}
	targetsKeys, err := s.ceremonyKeys(ctx, "targets", o.TargetsKeys, o.TargetsN, o.Development, res)
	if err != nil {
		return nil, err
	}
	for _, c := range []struct {
		role string
		k, n int
	}{{"root", o.RootThreshold, len(rootKeys)}, {"targets", o.TargetsThreshold, len(targetsKeys)}} {
		if c.k < 1 || c.k > c.n {
			return nil, fmt.Errorf("the %s threshold %d must be between 1 and the number of %s keys (%d)", c.role, c.k, c.role, c.n)
		}
	}
	expires := s.now().Add(o.Expires)
	root := metadata.Root(expires)
	for _, k := range rootKeys {
		if err := root.Signed.AddKey(k.TUF, metadata.ROOT); err != nil {
			return nil, err
		}
		res.RootKeys = append(res.RootKeys, k.Name)
	}
	for _, k := range targetsKeys {
		if err := root.Signed.AddKey(k.TUF, metadata.TARGETS); err != nil {
			return nil, err
		}
		res.TargetsKeys = append(res.TargetsKeys, k.Name)
	}
	if err := root.Signed.AddKey(online.Snapshot, metadata.SNAPSHOT); err != nil {
		return nil, err
	}
	if err := root.Signed.AddKey(online.Timestamp, metadata.TIMESTAMP); err != nil {
		return nil, err
	}
	root.Signed.Roles[metadata.ROOT].Threshold = o.RootThreshold
	root.Signed.Roles[metadata.TARGETS].Threshold = o.TargetsThreshold
	root.Signed.ConsistentSnapshot = true
	if err := signer.SignMetadata(root, true, rootKeys...); err != nil {
		return nil, err
	}
	targets := metadata.Targets(expires)
	if err := signer.SignMetadata(targets, true, targetsKeys...); err != nil {
		return nil, err
	}
	rootBytes, err := root.ToBytes(true)
	if err != nil {
		return nil, err
	}
	targetsBytes, err := targets.ToBytes(true)
	if err != nil {
		return nil, err
	}
	if err := s.Trustd.InitTUF(ctx, rootBytes, targetsBytes); err != nil {
		return nil, err
	}
	// Pin what trustd serves: the same root, as the bytes clients will hash.
	served, found, err := fetchRoot(ctx, s.HTTP, s.Trustd.Base)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errors.New("trustd accepted the trust root but does not serve /tuf/root.json")
	}
	if err := sameRoot(served, root); err != nil {
		return nil, err
	}
	if err := Pin(s.Home, s.Registry, served); err != nil {
		return nil, err
	}
	res.RootSHA256 = sha256Hex(served)
	res.Pinned = PinDir(s.Home, s.Registry)
	return res, nil
}

// ceremonyKeys returns the named keys, or n keys named <role>-1..n (dev-<role>
// for a development root), generating those the store lacks.
func (s *Session) ceremonyKeys(ctx context.Context, role string, names []string, n int, dev bool, res *InitResult) ([]*signer.Key, error) {
	if len(names) == 0 {
		if n < 1 {
			n = 1
		}
		for i := 1; i <= n; i++ {
			name := fmt.Sprintf("%s-%d", role, i)
			if dev {
				name = signer.DevelopmentPrefix + role
				if n > 1 {
					name = fmt.Sprintf("%s%s-%d", signer.DevelopmentPrefix, role, i)
				}
			}
			_, generated, err := s.ensureKey(ctx, name)
			if err != nil {
				return nil, err
			}
			if generated {
				res.Generated = append(res.Generated, name)
			}
			names = append(names, name)
		}
	}
	var keys []*signer.Key
	for _, name := range names {
		k, err := s.loadKey(ctx, name)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// sameRoot checks that served is root (its signed part): what trustd serves is
// what the ceremony signed.
func sameRoot(served []byte, root *metadata.Metadata[metadata.RootType]) error {
	got, err := metadata.Root().FromBytes(served)
	if err != nil {
		return fmt.Errorf("trustd serves an unreadable root.json: %w", err)
	}
	a, _ := got.Signed.MarshalJSON()
	b, _ := root.Signed.MarshalJSON()
	if string(a) != string(b) {
		return errors.New("trustd serves another root.json than the one just signed: refusing to pin it")
	}
	return nil
}

// DevInit gives a local stack a development trust root, once: when trustd has
// no root, it runs Init with the development keys dev-root and dev-targets
// (1-of-1, unencrypted, in the session's key store) and returns what it made.
// When trustd has a root already, it pins it if it is this store's development
// root and nothing is pinned for the registry yet (the registry's port may have
// changed between runs), and returns nil.
func (s *Session) DevInit(ctx context.Context) (*InitResult, error) {
	served, found, err := fetchRoot(ctx, s.HTTP, s.Trustd.Base)
	if err != nil {
		return nil, err
	}
	if !found {
		return s.Init(ctx, InitOptions{RootN: 1, TargetsN: 1, RootThreshold: 1, TargetsThreshold: 1, Development: true})
	}
	if _, err := PinnedRoot(s.Home, s.Registry); err == nil {
		return nil, nil
	}
	root, err := metadata.Root().FromBytes(served)
	if err != nil {
		return nil, err
	}
	info, err := s.Keys.Public(ctx, signer.DevelopmentPrefix+"root")
	if err != nil || !info.Development || !slices.Contains(root.Signed.Roles[metadata.ROOT].KeyIDs, info.ID) {
		return nil, nil // not our development root: the user pins it with trust add
	}
	return nil, Pin(s.Home, s.Registry, served)
}

package trust

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/signer"
)

// A local stack run by `trustctl up` keeps its development trust root's keys
// (dev-root, dev-targets) with its data, in DIR/keys: the stack is whole
// without $SIGNET_HOME, and any $SIGNET_HOME that up has run with finds them.
// up names that directory in the registry's pin directory (devKeysFile), and a
// session's key store for that registry is then the user's store with the
// stack's root keys behind it (StackKeys). Keys made later, org keys under the
// development root among them, are the user's: they go to $SIGNET_HOME/keys.

// devKeysFile names, in a registry's pin directory, the directory of the
// development keys of the stack at that registry.
const devKeysFile = "dev-keys"

// SetDevKeyDir records that the development keys of the stack at registry are
// in dir.
func SetDevKeyDir(home, registry, dir string) error {
	pin := PinDir(home, registry)
	if err := os.MkdirAll(pin, 0o700); err != nil {
		return err
	}
	path := filepath.Join(pin, devKeysFile)
	if old, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(old)) == dir {
		return nil
	}
	return os.WriteFile(path, []byte(dir+"\n"), 0o600)
}

// DevKeyDir is the directory of the development keys of the stack at
// registry, or "" when no local stack was run there.
func DevKeyDir(home, registry string) string {
	b, err := os.ReadFile(filepath.Join(PinDir(home, registry), devKeysFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// StackKeys is the key store of a session acting on registry: the user's
// store in $SIGNET_HOME/keys, with the development keys of the local stack at
// registry, if any, beside it.
func StackKeys(home, registry string, passphrase func(confirm bool) ([]byte, error)) signer.KeyStore {
	user := signer.NewFileKeyStore(KeyDir(home), passphrase)
	dir := DevKeyDir(home, registry)
	if dir == "" || dir == KeyDir(home) {
		return user
	}
	return &stackKeys{user: user, dev: signer.NewFileKeyStore(dir, passphrase)}
}

// stackKeys is the user's key store with a stack's development root keys
// behind it: keys are made in the user's store, and looked up there first.
type stackKeys struct{ user, dev signer.KeyStore }

func (s *stackKeys) Generate(ctx context.Context, name string, alg signer.Algorithm) (*signer.KeyInfo, error) {
	return s.user.Generate(ctx, name, alg)
}

func (s *stackKeys) Import(ctx context.Context, name string, priv crypto.Signer) (*signer.KeyInfo, error) {
	return s.user.Import(ctx, name, priv)
}

func (s *stackKeys) Load(ctx context.Context, name string) (*signer.Key, error) {
	k, err := s.user.Load(ctx, name)
	if errors.Is(err, signer.ErrKeyNotFound) {
		return s.dev.Load(ctx, name)
	}
	return k, err
}

func (s *stackKeys) Public(ctx context.Context, name string) (*signer.KeyInfo, error) {
	info, err := s.user.Public(ctx, name)
	if errors.Is(err, signer.ErrKeyNotFound) {
		return s.dev.Public(ctx, name)
	}
	return info, err
}

func (s *stackKeys) List(ctx context.Context) ([]signer.KeyInfo, error) {
	infos, err := s.user.List(ctx)
	if err != nil {
		return nil, err
	}
	more, err := s.dev.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, info := range more {
		if !slices.ContainsFunc(infos, func(i signer.KeyInfo) bool { return i.Name == info.Name }) {
			infos = append(infos, info)
		}
	}
	slices.SortFunc(infos, func(a, b signer.KeyInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos, nil
}

// signingKeys loads the keys of this session's store that sign role (listed
// in the root or a delegation as role), and fails, naming the keys it needs,
// when it has none.
func (s *Session) signingKeys(ctx context.Context, role string, r *metadata.Role) ([]*signer.Key, error) {
	if r == nil {
		return nil, fmt.Errorf("the trust root names no %s role", role)
	}
	keys, err := s.keysByID(ctx, r.KeyIDs)
	if err != nil || len(keys) > 0 {
		return keys, err
	}
	where := KeyDir(s.Home)
	if dir := DevKeyDir(s.Home, s.Registry); dir != "" {
		where += " and " + dir
	}
	msg := fmt.Sprintf("publishing %s: it must be signed with the key %s, which is not in %s", role, shortIDs(r.KeyIDs), where)
	if role == metadata.TARGETS {
		msg += fmt.Sprintf("; under a development root made by `trustctl up` that is the key %stargets, kept in the stack's data directory (DIR/keys): "+
			"run `trustctl up --data DIR` once with this SIGNET_HOME, and it is found there", signer.DevelopmentPrefix)
	}
	return nil, errors.New(msg)
}

package trust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/internal/atomicfile"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/signer/agent"
	"github.com/signet-oss/signet/verify"
)

// Default lifetimes of the roles trustctl signs (DESIGN.md §2).
const (
	DefaultRootExpiry      = 365 * 24 * time.Hour
	DefaultDelegatedExpiry = 365 * 24 * time.Hour
)

// Session is one trustctl command's view of a deployment: who the caller is at
// trustd, which root is pinned for the registry, and the caller's keys.
type Session struct {
	// Home is $SIGNET_HOME.
	Home string
	// Registry is the registry's host:port: the pinned root is kept under it.
	Registry string
	// Trustd is trustd's API, authenticated as the caller.
	Trustd *client.Trustd
	// Keys is the caller's key store.
	Keys signer.KeyStore
	// Out receives what the user reads: progress and warnings.
	Out io.Writer
	// Now is the clock (expiry of new versions); nil means time.Now.
	Now func() time.Time
	// HTTP is used for the registry and for public trustd metadata; nil means a
	// default client.
	HTTP *http.Client
	// Timestamp is trustd's timestamp.json read right after this session's
	// last publish (nil before one, or when it could not be read): the
	// registry refreshes at once when handed it (verify.TimestampHeader).
	Timestamp []byte

	// loaded are the private keys unlocked so far, by name.
	loaded map[string]*signer.Key
}

// Open makes the session of a trustctl command acting on registry (host:port;
// "" means the one last logged in to): the login kept in $SIGNET_HOME, the key
// store in $SIGNET_HOME/keys (with the development keys of a local stack at
// registry beside it, see StackKeys) with the passphrase from SIGNET_PASSPHRASE or the
// terminal, behind the signing agent when $SIGNET_AGENT_SOCK is set.
func Open(ctx context.Context, registry string, out io.Writer) (*Session, error) {
	homeDir, err := client.SignetHome()
	if err != nil {
		return nil, err
	}
	home, err := client.LoadHome()
	if err != nil {
		return nil, err
	}
	td, err := client.OpenTrustd(ctx, home, registry, &client.TokenClient{})
	if err != nil {
		return nil, err
	}
	if registry == "" {
		registry = home.Signet().Registry
	} else if _, host, err := client.BaseURL(ctx, registry, false); err == nil {
		registry = host
	}
	if registry == "" {
		return nil, errors.New("no registry named: pass --registry HOST or log in with `trustctl login HOST`")
	}
	return &Session{
		Home: homeDir, Registry: registry, Trustd: td, Out: out,
		Keys: agent.Wrap(StackKeys(homeDir, registry, signer.Passphrase)),
	}, nil
}

// KeyDir is the key store's directory under home.
func KeyDir(home string) string { return filepath.Join(home, "keys") }

// PinDir is where the pinned root of registry and the TUF cache live.
func PinDir(home, registry string) string {
	return filepath.Join(home, "trust", strings.ReplaceAll(registry, "/", "_"))
}

// PinnedRoot returns the root pinned for registry.
func PinnedRoot(home, registry string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(PinDir(home, registry), "root.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no trust root is pinned for %s: run `trustctl trust add %s`", registry, registry)
	}
	return b, err
}

// Pin keeps root as the pinned root of registry, dropping the TUF cache of any
// earlier pin.
func Pin(home, registry string, root []byte) error {
	dir := PinDir(home, registry)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if old, err := os.ReadFile(filepath.Join(dir, "root.json")); err == nil && string(old) == string(root) {
		return nil
	}
	if err := os.RemoveAll(filepath.Join(dir, "metadata")); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "root.json"), root, 0o600)
}

// Verifier returns a TUF client of the pinned root, reading delegated roles with
// the session's token.
func (s *Session) Verifier() (*verify.Client, error) {
	root, err := PinnedRoot(s.Home, s.Registry)
	if err != nil {
		return nil, err
	}
	tok := s.Trustd.Token
	return verify.New(verify.Config{
		TrustdURL:  s.Trustd.Base,
		Root:       root,
		CacheDir:   filepath.Join(PinDir(s.Home, s.Registry), "metadata"),
		HTTPClient: s.HTTP,
		Token:      func(context.Context) (string, error) { return tok, nil },
		Now:        s.Now,
	})
}

// state refreshes the trust graph and walks it towards probe (a target path).
func (s *Session) state(ctx context.Context, probe string) (*verify.State, error) {
	v, err := s.Verifier()
	if err != nil {
		return nil, err
	}
	return v.Walk(ctx, probe)
}

// now is the session's clock in UTC, to the second: TUF's expiry format has no
// fractions, and go-tuf would otherwise sign them.
func (s *Session) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}

func (s *Session) printf(format string, args ...any) {
	if s.Out != nil {
		fmt.Fprintf(s.Out, format, args...)
	}
}

// keysByID loads the private keys of the store whose TUF key IDs are in ids,
// warning about development keys. Keys the store lacks are skipped: the caller
// counts them against the threshold.
func (s *Session) keysByID(ctx context.Context, ids []string) ([]*signer.Key, error) {
	infos, err := s.Keys.List(ctx)
	if err != nil {
		return nil, err
	}
	var keys []*signer.Key
	seen := map[string]bool{}
	for _, info := range infos {
		if !slices.Contains(ids, info.ID) || seen[info.ID] {
			continue
		}
		seen[info.ID] = true
		k, err := s.loadKey(ctx, info.Name)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// loadKey loads a named private key, warning if it is a development key.
// A key is unlocked once per session: its passphrase is asked once.
func (s *Session) loadKey(ctx context.Context, name string) (*signer.Key, error) {
	if k := s.loaded[name]; k != nil {
		return k, nil
	}
	k, err := s.Keys.Load(ctx, name)
	if err != nil {
		if errors.Is(err, signer.ErrKeyNotFound) {
			return nil, &missingKeyError{name: name, dir: KeyDir(s.Home)}
		}
		return nil, err
	}
	if w := k.DevelopmentWarning(); w != "" {
		s.printf("%s\n", w)
	}
	if s.loaded == nil {
		s.loaded = map[string]*signer.Key{}
	}
	s.loaded[name] = k
	return k, nil
}

// missingKeyError is a key the store does not have, said once (the store's
// own error names the key and the directory too) with the way to make it; it
// is signer.ErrKeyNotFound.
type missingKeyError struct{ name, dir string }

func (e *missingKeyError) Error() string {
	return fmt.Sprintf("no key %q in %s: generate it (trustctl keys generate %s) or name another with --key", e.name, e.dir, e.name)
}
func (e *missingKeyError) Unwrap() error { return signer.ErrKeyNotFound }

// publicKey returns the TUF public key named by nameOrFile: a key of the store, or
// a PEM public key file (a publisher's exported key).
func (s *Session) publicKey(ctx context.Context, nameOrFile string) (*metadata.Key, string, error) {
	if strings.ContainsAny(nameOrFile, "/\\") || strings.HasSuffix(nameOrFile, ".pem") || strings.HasSuffix(nameOrFile, ".pub") {
		if b, err := os.ReadFile(nameOrFile); err == nil {
			return keyFromPEM(nameOrFile, b)
		}
	}
	info, err := s.Keys.Public(ctx, nameOrFile)
	if err != nil {
		if errors.Is(err, signer.ErrKeyNotFound) {
			return nil, "", fmt.Errorf("no key %q in %s, and no such PEM file: generate it (trustctl keys generate %s) or give the path of its exported public key", nameOrFile, KeyDir(s.Home), nameOrFile)
		}
		return nil, "", err
	}
	return keyFromPEM(nameOrFile, info.PublicPEM)
}

// ensureKey returns the named key's public half, generating the key if the store
// lacks it.
func (s *Session) ensureKey(ctx context.Context, name string) (*signer.KeyInfo, bool, error) {
	info, err := s.Keys.Public(ctx, name)
	if err == nil {
		return info, false, nil
	}
	if !errors.Is(err, signer.ErrKeyNotFound) {
		return nil, false, err
	}
	info, err = s.Keys.Generate(ctx, name, signer.DefaultAlgorithm)
	if err != nil {
		return nil, false, err
	}
	return info, true, nil
}

// delegatedExpiry is the expiry of a new org or repository role version: a year
// from now, rounded down to the day, so that co-signers who build the same
// change on the same day sign the same bytes, and trustd counts their
// signatures together even when one of them cannot read the staged version.
func (s *Session) delegatedExpiry() time.Time {
	return s.now().Add(DefaultDelegatedExpiry).Truncate(24 * time.Hour)
}

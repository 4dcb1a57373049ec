package trust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Pinned describes a registry's pinned root: the root pinned by trust add (its
// fingerprint, as add showed it) and the newest root the TUF client has since
// verified from it (root rotations), as `trust list` shows them.
type Pinned struct {
	Registry    string `json:"registry"`
	Fingerprint string `json:"fingerprint"`
	Version     int64  `json:"version"`
	// Current is the version of the newest root verified from the pinned one,
	// and Expires its expiry.
	Current int64    `json:"current"`
	Expires string   `json:"expires"`
	Keys    []string `json:"rootKeys"`
	Dir     string   `json:"dir"`
}

// Pins lists the roots pinned under home, by registry.
func Pins(home string) ([]Pinned, error) {
	entries, err := os.ReadDir(filepath.Join(home, "trust"))
	if errors.Is(err, fs.ErrNotExist) {
		return []Pinned{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := []Pinned{}
	for _, e := range entries {
		dir := filepath.Join(home, "trust", e.Name())
		b, err := os.ReadFile(filepath.Join(dir, "root.json"))
		if !e.IsDir() || errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		info, err := describeRoot(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "root.json"), err)
		}
		p := Pinned{Registry: e.Name(), Fingerprint: info.Fingerprint(), Version: info.Version, Current: info.Version,
			Expires: info.Expires, Keys: info.RootKeys, Dir: dir}
		// The TUF client keeps the newest root it verified in its cache.
		if cb, err := os.ReadFile(filepath.Join(dir, "metadata", "root.json")); err == nil {
			if cur, err := metadata.Root().FromBytes(cb); err == nil && cur.Signed.Version > p.Version {
				p.Current, p.Expires = cur.Signed.Version, cur.Signed.Expires.UTC().Format("2006-01-02T15:04:05Z")
				if r := cur.Signed.Roles[metadata.ROOT]; r != nil {
					p.Keys = slices.Sorted(slices.Values(r.KeyIDs))
				}
			}
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Pinned) int { return strings.Compare(a.Registry, b.Registry) })
	return out, nil
}

// Unpin removes registry's pinned root and its TUF cache: verifications of it
// fail until `trust add` pins a root again.
func Unpin(home, registry string) (string, error) {
	dir := PinDir(home, registry)
	if _, err := os.Stat(filepath.Join(dir, "root.json")); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no trust root is pinned for %s (trustctl trust list shows what is)", registry)
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return dir, nil
}

package trust

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/client"
)

// Discovery is a registry's /.well-known/signet.json.
type Discovery struct {
	Registry   string `json:"registry"`
	Trustd     string `json:"trustd"`
	RootSHA256 string `json:"rootSha256"`
}

// RootInfo describes a root.json for a person to recognise before pinning it.
type RootInfo struct {
	Registry string   `json:"registry"`
	Trustd   string   `json:"trustd"`
	SHA256   string   `json:"sha256"`
	Version  int64    `json:"version"`
	Expires  string   `json:"expires"`
	RootKeys []string `json:"rootKeys"`
	// Checked is true when the registry named the root's sha256 and it matched;
	// false when the registry names none (the root was taken as trustd serves it).
	Checked bool `json:"checked"`
	// Pinned is where it was pinned ("" until it is).
	Pinned string `json:"pinned,omitempty"`
	root   []byte
}

// Fingerprint is the sha256 as users compare it.
func (r *RootInfo) Fingerprint() string { return "SHA256:" + r.SHA256 }

// HasFingerprint reports whether fp, as a user typed or pasted it, is the
// root's fingerprint: the "SHA256:" prefix is optional and the case of the hex
// does not matter, but every digit must be there (a prefix is not a
// fingerprint).
func (r *RootInfo) HasFingerprint(fp string) bool {
	fp = strings.ToLower(strings.TrimSpace(fp))
	fp = strings.TrimPrefix(fp, "sha256:")
	return r.SHA256 != "" && fp == strings.ToLower(r.SHA256)
}

// DiscoverRoot reads what registry (host[:port] or a URL) says about its trust
// root: trustd's URL from signet.json, then trustd's current root.json, checked
// against the registry's rootSha256 when it names one.
func DiscoverRoot(ctx context.Context, hc *http.Client, registry string) (*RootInfo, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	base, host, err := client.BaseURL(ctx, registry, false)
	if err != nil {
		return nil, err
	}
	var d Discovery
	if err := getJSON(ctx, hc, base+"/.well-known/signet.json", &d); err != nil {
		return nil, err
	}
	if d.Trustd == "" {
		return nil, fmt.Errorf("%s names no trustd in /.well-known/signet.json: is it a Signet registry with a trust service?", host)
	}
	trustd := strings.TrimSuffix(d.Trustd, "/")
	root, found, err := fetchRoot(ctx, hc, trustd)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("trustd %s has no trust root yet: an operator runs `trustctl init` first", trustd)
	}
	info, err := describeRoot(root)
	if err != nil {
		return nil, err
	}
	info.Registry, info.Trustd = host, trustd
	if d.RootSHA256 != "" {
		if !strings.EqualFold(d.RootSHA256, info.SHA256) {
			return nil, fmt.Errorf("%s says its root's sha256 is %s, but trustd %s serves a root.json with sha256 %s: not pinning it "+
				"(right after a root rotation the registry may name the old one for a minute: try again; otherwise something between you and them is lying)",
				host, d.RootSHA256, trustd, info.SHA256)
		}
		info.Checked = true
	}
	return info, nil
}

// PinRoot pins info's root for its registry under home.
func PinRoot(home string, info *RootInfo) error {
	if err := Pin(home, info.Registry, info.root); err != nil {
		return err
	}
	info.Pinned = PinDir(home, info.Registry)
	return nil
}

func describeRoot(b []byte) (*RootInfo, error) {
	root, err := metadata.Root().FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("trustd's root.json is unreadable: %w", err)
	}
	if err := root.VerifyDelegate(metadata.ROOT, root); err != nil {
		return nil, fmt.Errorf("trustd's root.json is not signed by its own root keys: %w", err)
	}
	info := &RootInfo{SHA256: sha256Hex(b), Version: root.Signed.Version, Expires: root.Signed.Expires.UTC().Format(time.RFC3339), root: b}
	if r := root.Signed.Roles[metadata.ROOT]; r != nil {
		info.RootKeys = slices.Clone(r.KeyIDs)
		slices.Sort(info.RootKeys)
	}
	return info, nil
}

func getJSON(ctx context.Context, hc *http.Client, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s answered %s", u, resp.Status)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("GET %s: unreadable answer: %w", u, err)
	}
	return nil
}

func fetchRoot(ctx context.Context, hc *http.Client, trustd string) ([]byte, bool, error) {
	return client.FetchRoot(ctx, hc, trustd)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

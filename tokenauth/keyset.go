package tokenauth

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// ErrUnknownKey is wrapped by a KeySet's error when it holds no key of that kid.
var ErrUnknownKey = errors.New("unknown key id")

// KeySet gives the verifier the public key of a kid.
//
// Key returns the key whose "kid" is kid, or an error (wrapping ErrUnknownKey when
// the set has no such key). The key returned is shared: callers must not modify it.
// Implementations are safe for concurrent use and may fetch keys on a miss, but must
// bound how often they do so themselves: Verify calls Key for every token it has not
// seen, including forged ones.
type KeySet interface {
	Key(ctx context.Context, kid string) (*jose.JSONWebKey, error)
}

// keyIndex maps kid to public key. A key without a kid is indexed by its RFC 7638
// thumbprint, which is the kid Issuer uses. Private keys are reduced to their public
// half; keys marked for encryption are left out.
type keyIndex map[string]*jose.JSONWebKey

func newKeyIndex(keys []jose.JSONWebKey) keyIndex {
	idx := make(keyIndex, len(keys))
	for _, k := range keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		pub := k.Public()
		if !pub.Valid() {
			continue
		}
		kid := pub.KeyID
		if kid == "" {
			tp, err := pub.Thumbprint(crypto.SHA256)
			if err != nil {
				continue
			}
			kid = base64.RawURLEncoding.EncodeToString(tp)
			pub.KeyID = kid
		}
		if _, dup := idx[kid]; dup {
			continue // the first key of a kid wins
		}
		idx[kid] = &pub
	}
	return idx
}

func (idx keyIndex) key(kid string) (*jose.JSONWebKey, error) {
	if k, ok := idx[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKey, clip(kid, 64))
}

// parseJWKS parses a JWK set, skipping keys go-jose cannot parse (an unknown key type
// must not take the other keys down with it).
func parseJWKS(data []byte) (keyIndex, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	if raw.Keys == nil {
		return nil, errors.New(`parse JWKS: no "keys" member`)
	}
	keys := make([]jose.JSONWebKey, 0, len(raw.Keys))
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err == nil {
			keys = append(keys, k)
		}
	}
	return newKeyIndex(keys), nil
}

type staticKeySet struct{ idx keyIndex }

// StaticKeySet is a fixed set of keys.
func StaticKeySet(set jose.JSONWebKeySet) KeySet {
	return staticKeySet{idx: newKeyIndex(set.Keys)}
}

func (s staticKeySet) Key(_ context.Context, kid string) (*jose.JSONWebKey, error) {
	return s.idx.key(kid)
}

// fileStatInterval is how often a FileKeySet looks at its file's mtime.
const fileStatInterval = time.Second

type fileKeySet struct {
	path string

	mu       sync.Mutex
	idx      keyIndex
	modTime  time.Time
	size     int64
	lastStat time.Time
}

// FileKeySet reads a JWKS JSON file, and reads it again when its modification time or
// size changes (looked at, with one stat, at most once a second). A file that
// becomes unreadable or invalid leaves the last good set in use. The first read must
// succeed.
func FileKeySet(path string) (KeySet, error) {
	f := &fileKeySet{path: path}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("JWKS file: %w", err)
	}
	if err := f.load(fi); err != nil {
		return nil, err
	}
	f.lastStat = time.Now()
	return f, nil
}

func (f *fileKeySet) load(fi os.FileInfo) error {
	data, err := readLimited(f.path)
	if err != nil {
		return fmt.Errorf("JWKS file: %w", err)
	}
	idx, err := parseJWKS(data)
	if err != nil {
		return fmt.Errorf("JWKS file %s: %w", f.path, err)
	}
	f.idx, f.modTime, f.size = idx, fi.ModTime(), fi.Size()
	return nil
}

func readLimited(path string) ([]byte, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return readAtMost(file, maxJWKSBytes)
}

func (f *fileKeySet) Key(_ context.Context, kid string) (*jose.JSONWebKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := time.Now(); now.Sub(f.lastStat) >= fileStatInterval {
		f.lastStat = now
		if fi, err := os.Stat(f.path); err == nil && (!fi.ModTime().Equal(f.modTime) || fi.Size() != f.size) {
			_ = f.load(fi) // on failure keep the last good set
		}
	}
	return f.idx.key(kid)
}

// Limits of RemoteKeySet.
const (
	maxJWKSBytes       = 1 << 20
	remoteFetchTimeout = 10 * time.Second
	defaultMinRefresh  = 30 * time.Second
	remoteMaxAge       = 5 * time.Minute
)

type remoteKeySet struct {
	url        string
	client     *http.Client
	minRefresh time.Duration

	mu          sync.Mutex
	idx         keyIndex  // the last good set; nil before the first success
	fetched     time.Time // when idx was fetched
	lastAttempt time.Time // when the last fetch started; zero before the first
	lastErr     error     // the last fetch's error, nil after a success
	inflight    *fetchCall
}

type fetchCall struct {
	done chan struct{} // closed when the fetch has finished and its result is stored
}

// RemoteKeySet fetches a JWKS URL on first use and again (single-flight, at most once
// per minRefresh) when asked for an unknown kid; it keeps serving the last good set
// while the URL is unreachable. A set older than five minutes is also refreshed in the
// background when used, so a key withdrawn from the set stops being trusted. Responses
// are limited to 1 MiB and each fetch to 10 seconds (or client.Timeout if shorter).
// A nil client means http.DefaultClient; minRefresh <= 0 means 30 seconds.
func RemoteKeySet(url string, client *http.Client, minRefresh time.Duration) KeySet {
	if client == nil {
		client = http.DefaultClient
	}
	if minRefresh <= 0 {
		minRefresh = defaultMinRefresh
	}
	return &remoteKeySet{url: url, client: client, minRefresh: minRefresh}
}

func (r *remoteKeySet) Key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	r.mu.Lock()
	now := time.Now()
	if k, ok := r.idx[kid]; ok {
		if now.Sub(r.fetched) >= remoteMaxAge {
			r.startFetchLocked(now) // refresh in the background, serve the current key
		}
		r.mu.Unlock()
		return k, nil
	}
	call := r.inflight
	if call == nil {
		call = r.startFetchLocked(now)
	}
	r.mu.Unlock()
	if call != nil {
		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("JWKS %s: %w", r.url, ctx.Err())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if k, ok := r.idx[kid]; ok {
		return k, nil
	}
	if r.lastErr != nil {
		return nil, fmt.Errorf("%w %q (JWKS %s: %v)", ErrUnknownKey, clip(kid, 64), r.url, r.lastErr)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKey, clip(kid, 64))
}

// startFetchLocked starts a fetch unless one is running or the last one started less
// than minRefresh ago; it returns the running or started fetch, or nil. r.mu is held.
func (r *remoteKeySet) startFetchLocked(now time.Time) *fetchCall {
	if r.inflight != nil {
		return r.inflight
	}
	if !r.lastAttempt.IsZero() && now.Sub(r.lastAttempt) < r.minRefresh {
		return nil
	}
	call := &fetchCall{done: make(chan struct{})}
	r.inflight, r.lastAttempt = call, now
	// The fetch is detached from the caller's context: one caller giving up must not
	// fail the others waiting on the same fetch. It has its own timeout.
	go func() {
		idx, err := r.fetch()
		r.mu.Lock()
		if err == nil {
			r.idx, r.fetched = idx, time.Now()
		}
		r.lastErr = err
		r.inflight = nil
		r.mu.Unlock()
		close(call.done)
	}()
	return call
}

func (r *remoteKeySet) fetch() (keyIndex, error) {
	ctx, cancel := context.WithTimeout(context.Background(), remoteFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	data, err := readAtMost(resp.Body, maxJWKSBytes)
	if err != nil {
		return nil, err
	}
	return parseJWKS(data)
}

// readAtMost reads all of r, failing if it holds more than limit bytes.
func readAtMost(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("JWKS larger than %d bytes", limit)
	}
	return data, nil
}

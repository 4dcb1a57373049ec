package tokenauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/signet-oss/signet/tokenauth"
)

func newKeys(t *testing.T, n int) []*tokenauth.SigningKey {
	t.Helper()
	keys := make([]*tokenauth.SigningKey, n)
	for i := range keys {
		k, err := tokenauth.GenerateSigningKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	return keys
}

func jwksJSON(t *testing.T, keys ...*tokenauth.SigningKey) []byte {
	t.Helper()
	b, err := json.Marshal(tokenauth.JWKS(keys...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStaticKeySet(t *testing.T) {
	keys := newKeys(t, 2)
	noKID := keys[1].PublicJWK()
	noKID.KeyID = ""
	set := tokenauth.StaticKeySet(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{keys[0].PublicJWK(), noKID}})
	ctx := context.Background()
	if k, err := set.Key(ctx, keys[0].KeyID()); err != nil || k.KeyID != keys[0].KeyID() {
		t.Errorf("a listed kid is not found: %v", err)
	}
	if _, err := set.Key(ctx, keys[1].KeyID()); err != nil {
		t.Errorf("a key without kid is not found by its thumbprint: %v", err)
	}
	if _, err := set.Key(ctx, "nope"); !errors.Is(err, tokenauth.ErrUnknownKey) {
		t.Errorf("an unknown kid gives %v, want ErrUnknownKey", err)
	}
}

func TestFileKeySetRereadsTheFileWhenItChanges(t *testing.T) {
	keys := newKeys(t, 2)
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwksJSON(t, keys[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := tokenauth.FileKeySet(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := set.Key(ctx, keys[0].KeyID()); err != nil {
		t.Fatal(err)
	}
	if _, err := set.Key(ctx, keys[1].KeyID()); err == nil {
		t.Fatal("a key not yet in the file is found")
	}
	if err := os.WriteFile(path, jwksJSON(t, keys[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := set.Key(ctx, keys[1].KeyID()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rewritten file was never read again")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := set.Key(ctx, keys[0].KeyID()); err == nil {
		t.Error("a key removed from the file is still found")
	}

	// A broken file keeps the last good set.
	if err := os.WriteFile(path, []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	later = later.Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := set.Key(ctx, keys[1].KeyID()); err != nil {
		t.Errorf("a broken file dropped the last good set: %v", err)
	}

	if _, err := tokenauth.FileKeySet(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("a missing file is accepted")
	}
}

// jwksServer serves a JWKS that the test can change, counting requests.
type jwksServer struct {
	mu    sync.Mutex
	body  []byte
	fail  bool
	hits  atomic.Int32
	delay time.Duration
	*httptest.Server
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body, fail, delay := s.body, s.fail, s.delay
		s.mu.Unlock()
		time.Sleep(delay)
		if fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body []byte, fail bool) {
	s.mu.Lock()
	s.body, s.fail = body, fail
	s.mu.Unlock()
}

func TestRemoteKeySetFetchesOnceForConcurrentMisses(t *testing.T) {
	keys := newKeys(t, 1)
	srv := newJWKSServer(t, jwksJSON(t, keys[0]))
	srv.delay = 100 * time.Millisecond
	set := tokenauth.RemoteKeySet(srv.URL, srv.Client(), time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := set.Key(context.Background(), keys[0].KeyID())
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("20 concurrent first uses made %d requests, want 1", n)
	}
}

func TestRemoteKeySetRefreshesAtMostOncePerMinRefresh(t *testing.T) {
	keys := newKeys(t, 2)
	srv := newJWKSServer(t, jwksJSON(t, keys[0]))
	set := tokenauth.RemoteKeySet(srv.URL, srv.Client(), 300*time.Millisecond)
	ctx := context.Background()
	if _, err := set.Key(ctx, keys[0].KeyID()); err != nil {
		t.Fatal(err)
	}
	// Forged kids right after a fetch cause no requests.
	for range 50 {
		if _, err := set.Key(ctx, "forged"); !errors.Is(err, tokenauth.ErrUnknownKey) {
			t.Fatalf("forged kid: %v", err)
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	// A rotated key is picked up once minRefresh has passed.
	srv.set(jwksJSON(t, keys[0], keys[1]), false)
	time.Sleep(350 * time.Millisecond)
	if _, err := set.Key(ctx, keys[1].KeyID()); err != nil {
		t.Fatalf("the new key is not fetched: %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestRemoteKeySetKeepsTheLastGoodSetWhileTheURLFails(t *testing.T) {
	keys := newKeys(t, 1)
	srv := newJWKSServer(t, jwksJSON(t, keys[0]))
	set := tokenauth.RemoteKeySet(srv.URL, srv.Client(), time.Millisecond)
	ctx := context.Background()
	if _, err := set.Key(ctx, keys[0].KeyID()); err != nil {
		t.Fatal(err)
	}
	srv.set(nil, true)
	time.Sleep(5 * time.Millisecond)
	if _, err := set.Key(ctx, "other"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("a miss while the URL fails gives %v, want the fetch error", err)
	}
	if _, err := set.Key(ctx, keys[0].KeyID()); err != nil {
		t.Errorf("the last good key is lost while the URL fails: %v", err)
	}
	srv.set([]byte(`{"keys":`), false) // invalid JSON
	time.Sleep(5 * time.Millisecond)
	set.Key(ctx, "other")
	if _, err := set.Key(ctx, keys[0].KeyID()); err != nil {
		t.Errorf("the last good key is lost after an invalid response: %v", err)
	}
}

func TestRemoteKeySetRefusesAnOversizedResponse(t *testing.T) {
	keys := newKeys(t, 1)
	big := append(jwksJSON(t, keys[0])[:1], []byte(`"pad":"`+strings.Repeat("x", 1<<20)+`",`)...)
	big = append(big, jwksJSON(t, keys[0])[1:]...)
	srv := newJWKSServer(t, big)
	set := tokenauth.RemoteKeySet(srv.URL, srv.Client(), time.Hour)
	if _, err := set.Key(context.Background(), keys[0].KeyID()); err == nil {
		t.Fatal("a JWKS over 1 MiB is accepted")
	}
}

func TestRemoteKeySetFeedsAVerifier(t *testing.T) {
	f := newFixture(t)
	srv := newJWKSServer(t, jwksJSON(t, f.key))
	v := tokenauth.NewVerifier(testIssuer, testAudience, tokenauth.RemoteKeySet(srv.URL, nil, 0))
	v.Now = func() time.Time { return t0 }
	if _, err := v.Verify(context.Background(), f.issue(t)); err != nil {
		t.Fatal(err)
	}
}

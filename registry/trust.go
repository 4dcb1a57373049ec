package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/signet-oss/signet/internal/requestid"
	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/verify"
)

// openGate builds the admission gate of cfg (nil without a trust root): the
// pinned root, the verified metadata on the store, a first load and refresh.
func openGate(ctx context.Context, cfg Config, store *storage.Store, log *slog.Logger) (*verify.Index, error) {
	if cfg.Trust.Root == "" {
		return nil, nil
	}
	root, err := os.ReadFile(cfg.Trust.Root)
	if err != nil {
		return nil, fmt.Errorf("trust.root: %w", err)
	}
	trustd := cfg.Trust.Trustd
	if trustd == "" && cfg.Auth.Token != nil {
		trustd = cfg.Auth.Token.Trustd
	}
	password := cfg.Trust.Password
	if v := os.Getenv("SIGNET_REGISTRY_PASSWORD"); v != "" {
		password = v
	}
	rt, err := cfg.TLS.transport()
	if err != nil {
		return nil, err
	}
	var token func(context.Context) (string, error)
	if cfg.Trust.Username != "" {
		tc := &trustdTokens{base: strings.TrimSuffix(trustd, "/"), user: cfg.Trust.Username, password: password, client: &http.Client{Timeout: 10 * time.Second, Transport: rt}}
		token = tc.token
	}
	index, err := verify.NewIndex(verify.IndexConfig{
		TrustdURL: trustd, Root: root, Store: store.TrustMetadata(), Token: token, MinInterval: time.Second,
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: rt},
	})
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	if err := index.Load(ctx); err != nil {
		log.Info("no stored trust metadata to start from", "err", err)
	}
	if err := index.Refresh(ctx); err != nil {
		log.Warn("trust metadata refresh failed at start: serving from stored metadata until trustd answers", "err", err)
	} else {
		log.Info("trust metadata refreshed", "reason", "start")
	}
	return index, nil
}

// trustdTokens gets and caches the registry's own tokens for trustd (audience
// "trustd"), to read organisations' and repositories' roles.
type trustdTokens struct {
	base, user, password string
	client               *http.Client

	mu      sync.Mutex
	tok     string
	expires time.Time
}

func (t *trustdTokens) token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok != "" && time.Until(t.expires) > 30*time.Second {
		return t.tok, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+"/token?"+url.Values{"service": {"trustd"}}.Encode(), nil)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(t.user, t.password)
	requestid.Set(ctx, req)
	resp, err := t.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return "", fmt.Errorf("trustd refused the registry's credentials (trust.username %q): %s", t.user, resp.Status)
	}
	var body struct {
		Token     string `json:"token"`
		ExpiresIn int    `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil || body.Token == "" {
		return "", errors.New("trustd's token response is not valid")
	}
	t.tok = body.Token
	t.expires = time.Now().Add(time.Duration(body.ExpiresIn) * time.Second)
	return t.tok, nil
}

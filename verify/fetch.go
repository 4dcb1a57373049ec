package verify

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/internal/requestid"
)

// fetcher is go-tuf's Fetcher for one refresh: it carries the refresh's context
// (go-tuf's interface has none), enforces go-tuf's length limits while reading,
// and sends the bearer token to trustd for delegated roles only. Public metadata
// (root, timestamp, snapshot, targets) goes without one, so shared caches may keep
// it, and the token never leaves for another origin.
type fetcher struct {
	ctx    context.Context
	hc     *http.Client
	token  func(context.Context) (string, error)
	origin string // scheme://host of trustd: the only place the token goes
}

// topLevel are the roles whose metadata is public.
var topLevel = map[string]bool{"root": true, "timestamp": true, "snapshot": true, "targets": true}

// DownloadFile implements go-tuf's fetcher.Fetcher.
func (f *fetcher) DownloadFile(urlPath string, maxLength int64, _ time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, urlPath, nil)
	if err != nil {
		return nil, err
	}
	if req.URL.Scheme+"://"+req.URL.Host == f.origin {
		// trustd logs the ID of the request that caused this refresh, if any.
		requestid.Set(f.ctx, req)
	}
	if f.token != nil && f.delegated(req.URL) {
		tok, err := f.token(f.ctx)
		if err != nil {
			return nil, &unreachableError{url: urlPath, err: fmt.Errorf("getting a token for trustd: %w", err)}
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return nil, &unreachableError{url: urlPath, err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: urlPath}
	}
	if resp.ContentLength > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is %d bytes, more than the %d allowed", urlPath, resp.ContentLength, maxLength)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		return nil, &unreachableError{url: urlPath, err: err}
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is more than the %d bytes allowed", urlPath, maxLength)}
	}
	return data, nil
}

// delegated reports whether u is a delegated role's metadata on trustd's origin:
// <N>.<role>.json where role is not a top-level role.
func (f *fetcher) delegated(u *url.URL) bool {
	if u.Scheme+"://"+u.Host != f.origin {
		return false
	}
	name := u.Path[strings.LastIndex(u.Path, "/")+1:]
	name, ok := strings.CutSuffix(name, ".json")
	if !ok {
		return false
	}
	if v, role, ok := strings.Cut(name, "."); ok {
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			name = role
		}
	}
	return !topLevel[name]
}

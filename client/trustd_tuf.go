package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/signet-oss/signet/trustd/api"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The client of trustd's TUF API (/tuf/...): the ceremony, publishing signed
// metadata, staged versions collecting signatures toward a threshold.

// OnlineKeys are trustd's snapshot and timestamp keys, which root names.
type OnlineKeys struct {
	Snapshot  *metadata.Key `json:"snapshot"`
	Timestamp *metadata.Key `json:"timestamp"`
}

// The answers of a TUF publish, as trustd writes them (trustd/api).
type (
	Published   = api.Published
	Waiting     = api.Waiting
	RoleVersion = api.RoleVersion
)

// ErrTUFInitialised is what InitTUF returns when trustd already has a trust root.
var ErrTUFInitialised = errors.New("trustd already has a trust root")

// OnlineKeys returns trustd's online keys (public).
func (c *Trustd) OnlineKeys(ctx context.Context) (*OnlineKeys, error) {
	var k OnlineKeys
	if _, err := c.do(ctx, "reading trustd's online keys", http.MethodGet, "/tuf/api/online-keys", nil, &k, http.StatusOK); err != nil {
		return nil, err
	}
	if k.Snapshot == nil || k.Timestamp == nil {
		return nil, errors.New("reading trustd's online keys: the answer lacks the snapshot or timestamp key")
	}
	return &k, nil
}

// InitTUF sends the first signed root and targets (admin). A trustd that has a
// root already answers 409: ErrTUFInitialised.
func (c *Trustd) InitTUF(ctx context.Context, root, targets []byte) error {
	body := map[string]json.RawMessage{"root": root, "targets": targets}
	status, err := c.do(ctx, "initialising trustd's trust root", http.MethodPost, "/tuf/api/init", body, nil, http.StatusOK, http.StatusCreated)
	if status == http.StatusConflict {
		return fmt.Errorf("%w: %v", ErrTUFInitialised, err)
	}
	return err
}

// PublishMetadata sends a signed version of role. A role whose signatures do not
// meet its threshold yet is staged (Published.Staged).
func (c *Trustd) PublishMetadata(ctx context.Context, role string, signed []byte) (*Published, error) {
	var p Published
	status, err := c.do(ctx, "publishing "+role, http.MethodPut, "/tuf/api/metadata/"+url.PathEscape(role),
		json.RawMessage(signed), &p, http.StatusOK, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return nil, err
	}
	if status == http.StatusAccepted && !p.Held {
		p.Staged = true
	}
	return &p, nil
}

// HeldMetadata returns the held version of role (a version of targets or an
// org role that waits for the first versions of the roles it delegates), or nil
// if none is held. A new version of the role is built on it, so that a pending
// delegation is carried along.
func (c *Trustd) HeldMetadata(ctx context.Context, role string) ([]byte, error) {
	var raw json.RawMessage
	status, err := c.do(ctx, "reading the held "+role, http.MethodGet, "/tuf/api/held/"+url.PathEscape(role), nil, &raw, http.StatusOK, http.StatusNotFound)
	if err != nil || status == http.StatusNotFound {
		return nil, err
	}
	return raw, nil
}

// StagedMetadata returns the staged version of role, or nil if none is staged.
func (c *Trustd) StagedMetadata(ctx context.Context, role string) ([]byte, error) {
	var raw json.RawMessage
	status, err := c.do(ctx, "reading the staged "+role, http.MethodGet, "/tuf/api/staged/"+url.PathEscape(role), nil, &raw, http.StatusOK, http.StatusNotFound)
	if err != nil || status == http.StatusNotFound {
		return nil, err
	}
	return raw, nil
}

// FetchRoot returns trustd's latest root.json (public: GET <trustd>/tuf/root.json),
// the bytes as served, for pinning. found is false when trustd has no trust root.
func FetchRoot(ctx context.Context, hc *http.Client, trustdURL string) (root []byte, found bool, err error) {
	if hc == nil {
		hc = defaultHTTP
	}
	u := strings.TrimSuffix(trustdURL, "/") + "/tuf/root.json"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("cannot reach trustd at %s: %w", trustdURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, false, fmt.Errorf("GET %s: %w", u, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return b, true, nil
	case http.StatusNotFound:
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("GET %s answered %s: %s", u, resp.Status, truncate(string(b), 200))
}

// Timestamp returns trustd's current timestamp.json (public, GET
// <trustd>/tuf/timestamp.json), the bytes as served: a pusher hands it to the
// registry with its manifests (verify.TimestampHeader) so the registry sees what
// was just published without waiting for its next refresh.
func (c *Trustd) Timestamp(ctx context.Context) ([]byte, error) {
	var raw json.RawMessage
	if _, err := c.do(ctx, "reading trustd's timestamp", http.MethodGet, "/tuf/timestamp.json", nil, &raw, http.StatusOK); err != nil {
		return nil, err
	}
	return raw, nil
}

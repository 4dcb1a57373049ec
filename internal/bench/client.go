package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// client speaks the distribution API with as little client-side work as possible:
// keep-alive connections, one pool slot per concurrent worker, large socket buffers,
// bodies sent from memory and drained into a reused buffer without hashing.
type client struct {
	base *url.URL
	hc   *http.Client
}

func newClient(base string, conns int) *client {
	u, err := url.Parse(base)
	if err != nil {
		panic(err) // base is built from a parsed host:port
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4 * conns,
		MaxIdleConnsPerHost: 4 * conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      256 << 10,
	}
	return &client{base: u, hc: &http.Client{Transport: tr}}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

func (c *client) url(path string) string {
	return c.base.ResolveReference(&url.URL{Path: path}).String()
}

// do sends req and checks the status. On a match it returns the response with its
// body unread; otherwise it drains and closes the body and describes the failure.
func (c *client) do(req *http.Request, want ...int) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, nil
		}
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, bytes.TrimSpace(msg))
}

// discardBody drains and closes a response body so its connection is reused.
func discardBody(resp *http.Response) {
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func newRequest(ctx context.Context, method, u string, body []byte) *http.Request {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		panic(err) // URLs are built from parsed ones
	}
	return req
}

// blobExists is the HEAD clients send before uploading a blob.
func (c *client) blobExists(ctx context.Context, repo, digest string) (bool, error) {
	resp, err := c.do(newRequest(ctx, http.MethodHead, c.url("/v2/"+repo+"/blobs/"+digest), nil),
		http.StatusOK, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	discardBody(resp)
	return resp.StatusCode == http.StatusOK, nil
}

// startUpload opens an upload session and returns its location.
func (c *client) startUpload(ctx context.Context, repo string) (*url.URL, error) {
	resp, err := c.do(newRequest(ctx, http.MethodPost, c.url("/v2/"+repo+"/blobs/uploads/"), nil),
		http.StatusAccepted)
	if err != nil {
		return nil, err
	}
	discardBody(resp)
	return c.location(resp)
}

// patch streams data into the upload session and returns the session's next location.
func (c *client) patch(ctx context.Context, loc *url.URL, data []byte) (*url.URL, error) {
	req := newRequest(ctx, http.MethodPatch, loc.String(), data)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.do(req, http.StatusAccepted)
	if err != nil {
		return nil, err
	}
	discardBody(resp)
	return c.location(resp)
}

// commit closes the upload session with PUT ?digest=, sending data (which may be
// empty) as the final chunk.
func (c *client) commit(ctx context.Context, loc *url.URL, digest string, data []byte) error {
	u := *loc
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	if data == nil {
		data = []byte{}
	}
	req := newRequest(ctx, http.MethodPut, u.String(), data)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.do(req, http.StatusCreated)
	if err != nil {
		return err
	}
	discardBody(resp)
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != digest {
		return fmt.Errorf("PUT %s: stored %s, sent %s", loc.Path, got, digest)
	}
	return nil
}

func (c *client) location(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("%s %s: %s without Location", resp.Request.Method, resp.Request.URL.Path, resp.Status)
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("%s %s: Location %q: %w", resp.Request.Method, resp.Request.URL.Path, loc, err)
	}
	return u, nil
}

// putManifest stores a manifest under ref (a tag or its digest).
func (c *client) putManifest(ctx context.Context, repo, ref string, m blob) error {
	return c.putManifestType(ctx, repo, ref, mediaTypeManifest, m)
}

// putManifestType is putManifest of a manifest of another media type.
func (c *client) putManifestType(ctx context.Context, repo, ref, mediaType string, m blob) error {
	req := newRequest(ctx, http.MethodPut, c.url("/v2/"+repo+"/manifests/"+ref), m.data)
	req.Header.Set("Content-Type", mediaType)
	resp, err := c.do(req, http.StatusCreated)
	if err != nil {
		return err
	}
	discardBody(resp)
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != m.digest {
		return fmt.Errorf("PUT manifest %s:%s: stored %s, sent %s", repo, ref, got, m.digest)
	}
	return nil
}

// get fetches path and copies the body into w through buf, returning the byte count.
func (c *client) get(ctx context.Context, path, accept string, w io.Writer, buf []byte) (int64, error) {
	req := newRequest(ctx, http.MethodGet, c.url(path), nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.CopyBuffer(w, resp.Body, buf)
	if err != nil {
		return n, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("GET %s: %d bytes of %d", path, n, resp.ContentLength)
	}
	return n, nil
}

// sink swallows bytes. Unlike io.Discard it has no ReadFrom, so io.CopyBuffer uses
// the caller's large buffer instead of 8 KiB reads.
type sink struct{}

func (sink) Write(p []byte) (int, error) { return len(p), nil }

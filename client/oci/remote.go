package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/signet-oss/signet/client"
)

// Repository is one repository of a registry, with the access it was opened
// for. It is a Source (every read checked) and a push target. Safe for
// concurrent use.
type Repository struct {
	// Host is the registry's host:port; Name the repository's name.
	Host, Name string

	// ManifestHeader is sent with every manifest PUT besides what the API
	// needs: a signed push hands the registry the trust timestamp of its
	// publish there (verify.TimestampHeader).
	ManifestHeader http.Header
	// Sessions, when not nil, remembers blob upload sessions so that an
	// upload a process left unfinished is resumed by the next (resume.go).
	Sessions UploadSessions

	base string
	hc   *http.Client
	auth *authorizer
}

// Options shape a Repository.
type Options struct {
	// Credentials for the registry; zero is anonymous.
	Credentials Credentials
	// Push asks for push access besides pull.
	Push bool
	// MountFrom names repositories of the same registry that blobs may be
	// mounted from: pull access on them is asked for with the same token.
	MountFrom []string
	// PlainHTTP forces http for a registry that is not on loopback.
	PlainHTTP bool
	// HTTP sends the requests; nil means a client made for large transfers.
	HTTP *http.Client
}

// NewHTTPClient is a client for registry transfers: no overall timeout (blobs
// are large), but bounded connection, TLS and header waits.
func NewHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	tr.ResponseHeaderTimeout = 2 * time.Minute
	tr.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.WriteBufferSize = 256 << 10
	tr.ReadBufferSize = 256 << 10
	return &http.Client{Transport: tr}
}

// NewRepository returns the repository name of the registry at host
// (host[:port], as clients name it).
func NewRepository(ctx context.Context, host, name string, o Options) (*Repository, error) {
	base, hostport, err := client.BaseURL(ctx, host, o.PlainHTTP)
	if err != nil {
		return nil, err
	}
	if o.HTTP == nil {
		o.HTTP = NewHTTPClient()
	}
	actions := "pull"
	if o.Push {
		actions = "pull,push"
	}
	scopes := []string{"repository:" + name + ":" + actions}
	for _, from := range o.MountFrom {
		if from != name {
			scopes = append(scopes, "repository:"+from+":pull")
		}
	}
	return &Repository{
		Host: hostport, Name: name, base: base, hc: o.HTTP,
		auth: &authorizer{creds: o.Credentials, hc: o.HTTP, scopes: scopes},
	}, nil
}

func (r *Repository) url(kind, ref string) string {
	return r.base + "/v2/" + r.Name + "/" + kind + "/" + ref
}

// do sends req with the repository's token, answering one 401 with a new
// token. A request whose body cannot be replayed must follow one that has
// authenticated already.
func (r *Repository) do(req *http.Request) (*http.Response, error) {
	h := r.auth.header()
	if h != "" {
		req.Header.Set("Authorization", h)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return resp, nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err := r.auth.refresh(req.Context(), resp, h); err != nil {
		return nil, err
	}
	again := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, fmt.Errorf("%s %s: the registry asked to authenticate again in the middle of a transfer", req.Method, req.URL.Redacted())
		}
		if again.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	again.Header.Set("Authorization", r.auth.header())
	return r.hc.Do(again)
}

// expect checks resp's status, turning any other into an *HTTPError (the body
// is read and closed).
func expect(resp *http.Response, want ...int) error {
	for _, w := range want {
		if resp.StatusCode == w {
			return nil
		}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return newHTTPError(resp, body)
}

// Ping checks that the registry answers and the credentials are accepted, and
// gets a token: the first request of a push, before any streaming body.
func (r *Repository) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/v2/"+r.Name+"/tags/list?n=1", nil)
	if err != nil {
		return err
	}
	resp, err := r.do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the registry %s: %w", r.Host, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 500 {
		return expect(resp)
	}
	return nil
}

// HasBlob reports whether the repository has blob desc (HEAD), of its size.
func (r *Repository) HasBlob(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, r.url("blobs", desc.Digest.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := r.do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.ContentLength < 0 || desc.Size <= 0 || resp.ContentLength == desc.Size, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, expect(resp)
}

// GetManifest fetches a manifest by tag or digest, reading at most limit
// bytes, and returns its bytes and the media type it was served with. The
// caller checks them: nothing here trusts the registry.
func (r *Repository) GetManifest(ctx context.Context, ref string, limit int64) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url("manifests", ref), nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", strings.Join(ManifestTypes, ", "))
	resp, err := r.do(req)
	if err != nil {
		return nil, "", err
	}
	if err := expect(resp, http.StatusOK); err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if limit <= 0 || limit > MaxManifest {
		limit = MaxManifest
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, "", err
	}
	if int64(len(raw)) > limit {
		return nil, "", &MismatchError{What: "manifest " + r.Name + ":" + ref, Reason: fmt.Sprintf("more than the %d bytes expected", limit)}
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return raw, mt, nil
}

// Manifest implements Source: the manifest by digest, checked.
func (r *Repository) Manifest(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	limit := int64(MaxManifest)
	if desc.Size > 0 {
		limit = desc.Size
	}
	raw, _, err := r.GetManifest(ctx, desc.Digest.String(), limit)
	if err != nil {
		return nil, err
	}
	return raw, checkBytes(raw, desc.Digest, sizeOrAny(desc), "manifest "+r.Name+"@"+desc.Digest.String())
}

// Blob implements Source: the blob's bytes, checked as they stream.
func (r *Repository) Blob(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url("blobs", desc.Digest.String()), nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.do(req)
	if err != nil {
		return nil, err
	}
	if err := expect(resp, http.StatusOK); err != nil {
		return nil, err
	}
	if resp.ContentLength >= 0 && desc.Size > 0 && resp.ContentLength != desc.Size {
		resp.Body.Close()
		return nil, &MismatchError{What: "blob " + r.Name + "@" + desc.Digest.String(), Reason: fmt.Sprintf("served as %d bytes, not the %d expected", resp.ContentLength, desc.Size)}
	}
	return readCloser{VerifyReader(resp.Body, desc.Digest, desc.Size, "blob "+r.Name+"@"+desc.Digest.String()), resp.Body}, nil
}

// PutManifest uploads a manifest under ref (a tag or its digest).
func (r *Repository) PutManifest(ctx context.Context, ref, mediaType string, raw []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.url("manifests", ref), strings.NewReader(string(raw)))
	if err != nil {
		return err
	}
	for k, v := range r.ManifestHeader {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := r.do(req)
	if err != nil {
		return err
	}
	if err := expect(resp, http.StatusCreated, http.StatusOK, http.StatusAccepted); err != nil {
		return fmt.Errorf("pushing manifest %s:%s: %w", r.Name, ref, err)
	}
	resp.Body.Close()
	return nil
}

// location resolves an upload's Location header against the registry.
func (r *Repository) location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("%s %s answered %s without a Location", resp.Request.Method, resp.Request.URL.Redacted(), resp.Status)
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("upload Location %q: %w", loc, err)
	}
	return u.String(), nil
}

func withQuery(u, key, value string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + url.QueryEscape(key) + "=" + url.QueryEscape(value)
}

// isTransient reports whether a failed request may be resumed: a broken
// connection or a server error, never content that did not match.
func isTransient(err error) bool {
	if err == nil || errors.Is(err, ErrContentMismatch) || errors.Is(err, context.Canceled) {
		return false
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status >= 500
	}
	return true
}

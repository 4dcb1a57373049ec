package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	mediaTypeOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeOCIIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeOCIConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeOCILayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     *struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
	} `json:"platform,omitempty"`
}

// manifest is an OCI image manifest (also enough to read a Docker schema2 manifest).
type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Subject       *descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// index is an OCI image index, as returned by the referrers API.
type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Manifests     []descriptor `json:"manifests"`
}

// layer is one gzipped tar layer of a test image.
type layer struct {
	Blob   []byte // the gzipped tar, as stored in the registry
	Digest string
	DiffID string // digest of the uncompressed tar
	Files  map[string][]byte
}

// newLayer makes a gzipped tar layer holding one file of size random bytes.
func newLayer(t testing.TB, name string, size int) layer {
	t.Helper()
	content := randomBytes(size)
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(size), ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	tw.Write(content)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(tarBuf.Bytes())
	zw.Close()
	return layer{Blob: gz.Bytes(), Digest: sha256Digest(gz.Bytes()), DiffID: sha256Digest(tarBuf.Bytes()), Files: map[string][]byte{name: content}}
}

// image is a test image: layers, a config that a docker daemon accepts, and the
// manifest bytes that name them.
type image struct {
	Layers         []layer
	Config         []byte
	ConfigDigest   string
	Manifest       []byte
	ManifestDigest string
}

// newImage builds an OCI image of the given layers; label makes the config (and so
// the manifest) unique even when the layers are shared.
func newImage(t testing.TB, label string, layers ...layer) image {
	t.Helper()
	diffIDs := []string{}
	for _, l := range layers {
		diffIDs = append(diffIDs, l.DiffID)
	}
	cfg := map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      "2024-01-01T00:00:00Z",
		"config":       map[string]any{"Labels": map[string]string{"e2e": label}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	}
	config, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := manifest{
		SchemaVersion: 2,
		MediaType:     mediaTypeOCIManifest,
		Config:        descriptor{MediaType: mediaTypeOCIConfig, Digest: sha256Digest(config), Size: int64(len(config))},
		Layers:        []descriptor{},
	}
	for _, l := range layers {
		m.Layers = append(m.Layers, descriptor{MediaType: mediaTypeOCILayer, Digest: l.Digest, Size: int64(len(l.Blob))})
	}
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return image{Layers: layers, Config: config, ConfigDigest: sha256Digest(config), Manifest: mb, ManifestDigest: sha256Digest(mb)}
}

// blobs returns every blob of the image, config included, keyed by digest.
func (im image) blobs() map[string][]byte {
	b := map[string][]byte{im.ConfigDigest: im.Config}
	for _, l := range im.Layers {
		b[l.Digest] = l.Blob
	}
	return b
}

// regClient speaks the OCI Distribution API over raw HTTP. Every method returns an
// error that names the request and the registry's response, so a failed check says
// what the registry answered.
type regClient struct {
	base string // http://host:port
	hc   *http.Client
}

func newRegClient(addr string) *regClient {
	return &regClient{base: "http://" + addr, hc: &http.Client{Timeout: 2 * time.Minute}}
}

// httpError describes an unexpected response.
type httpError struct {
	Method, URL string
	Status      int
	Header      http.Header
	Body        string
	Want        string
}

func (e *httpError) Error() string {
	body := e.Body
	if len(body) > 2000 {
		body = body[:2000] + "..."
	}
	hdr := []string{}
	for _, k := range []string{"Location", "Range", "Docker-Upload-Uuid", "Docker-Content-Digest", "Content-Type", "Content-Length", "Content-Range"} {
		if v := e.Header.Get(k); v != "" {
			hdr = append(hdr, k+": "+v)
		}
	}
	return fmt.Sprintf("%s %s: got %d [%s] %q; want %s", e.Method, e.URL, e.Status, strings.Join(hdr, ", "), body, e.Want)
}

// do sends a request and checks the status against want; it returns the response
// with its body read.
func (c *regClient) do(req *http.Request, want ...int) (*http.Response, []byte, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, body, fmt.Errorf("%s %s: reading body: %w", req.Method, req.URL, err)
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, body, nil
		}
	}
	return resp, body, &httpError{Method: req.Method, URL: req.URL.String(), Status: resp.StatusCode, Header: resp.Header, Body: string(body), Want: fmt.Sprint(want)}
}

func (c *regClient) newRequest(method, urlOrPath string, body io.Reader) *http.Request {
	u := urlOrPath
	if strings.HasPrefix(u, "/") {
		u = c.base + u
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		panic(err)
	}
	return req
}

// resolve makes an upload Location absolute.
func (c *regClient) resolve(loc string) (string, error) {
	if loc == "" {
		return "", fmt.Errorf("no Location header")
	}
	base, _ := url.Parse(c.base + "/")
	u, err := base.Parse(loc)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

func withQuery(u, key, value string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + key + "=" + url.QueryEscape(value)
}

// uploadMode is how a blob is pushed.
type uploadMode int

const (
	uploadMonolithicPost uploadMode = iota // POST ?digest= with the body
	uploadPostPut                          // POST, then PUT ?digest= with the body
	uploadChunked                          // POST, PATCH chunks with Content-Range, PUT ?digest=
	uploadStreamed                         // POST, one PATCH without Content-Range, PUT ?digest=
	numUploadModes
)

func (m uploadMode) String() string {
	return [...]string{"monolithic POST", "POST+PUT", "chunked PATCH", "streamed PATCH"}[m]
}

// startUpload opens an upload session and returns its absolute location.
func (c *regClient) startUpload(repo string) (string, error) {
	req := c.newRequest("POST", "/v2/"+repo+"/blobs/uploads/", nil)
	resp, _, err := c.do(req, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	return c.resolve(resp.Header.Get("Location"))
}

// pushBlob uploads content with the given mode.
func (c *regClient) pushBlob(repo string, content []byte, mode uploadMode) error {
	dgst := sha256Digest(content)
	switch mode {
	case uploadMonolithicPost:
		req := c.newRequest("POST", withQuery("/v2/"+repo+"/blobs/uploads/", "digest", dgst), bytes.NewReader(content))
		req.Header.Set("Content-Type", "application/octet-stream")
		_, _, err := c.do(req, http.StatusCreated)
		return err
	case uploadPostPut:
		loc, err := c.startUpload(repo)
		if err != nil {
			return err
		}
		req := c.newRequest("PUT", withQuery(loc, "digest", dgst), bytes.NewReader(content))
		req.Header.Set("Content-Type", "application/octet-stream")
		_, _, err = c.do(req, http.StatusCreated)
		return err
	case uploadChunked, uploadStreamed:
		loc, err := c.startUpload(repo)
		if err != nil {
			return err
		}
		chunk := len(content)
		if mode == uploadChunked {
			chunk = max(len(content)/3, 1)
		}
		for off := 0; off < len(content); off += chunk {
			end := min(off+chunk, len(content))
			req := c.newRequest("PATCH", loc, bytes.NewReader(content[off:end]))
			req.Header.Set("Content-Type", "application/octet-stream")
			if mode == uploadChunked {
				req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, end-1))
				req.ContentLength = int64(end - off)
			} else {
				req.ContentLength = -1 // chunked transfer encoding: a true stream
			}
			resp, _, err := c.do(req, http.StatusAccepted)
			if err != nil {
				return err
			}
			if loc, err = c.resolve(resp.Header.Get("Location")); err != nil {
				return fmt.Errorf("PATCH response: %w", err)
			}
		}
		req := c.newRequest("PUT", withQuery(loc, "digest", dgst), nil)
		_, _, err = c.do(req, http.StatusCreated)
		return err
	}
	return fmt.Errorf("unknown upload mode %d", mode)
}

// putManifest pushes a manifest under a tag or digest reference.
func (c *regClient) putManifest(repo, ref, mediaType string, body []byte) error {
	req := c.newRequest("PUT", "/v2/"+repo+"/manifests/"+ref, bytes.NewReader(body))
	req.Header.Set("Content-Type", mediaType)
	resp, _, err := c.do(req, http.StatusCreated)
	if err != nil {
		return err
	}
	if got, want := resp.Header.Get("Docker-Content-Digest"), sha256Digest(body); got != "" && got != want {
		return fmt.Errorf("PUT %s/manifests/%s: Docker-Content-Digest %s, want %s", repo, ref, got, want)
	}
	return nil
}

// pushImage pushes the image's blobs (each with the given mode) and its manifest
// under tag.
func (c *regClient) pushImage(repo, tag string, im image, mode uploadMode) error {
	if err := c.pushBlob(repo, im.Config, mode); err != nil {
		return err
	}
	for _, l := range im.Layers {
		if err := c.pushBlob(repo, l.Blob, mode); err != nil {
			return err
		}
	}
	return c.putManifest(repo, tag, mediaTypeOCIManifest, im.Manifest)
}

// getManifest fetches a manifest; it returns the body and the response headers.
func (c *regClient) getManifest(repo, ref string) ([]byte, http.Header, error) {
	req := c.newRequest("GET", "/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", strings.Join([]string{mediaTypeOCIManifest, mediaTypeOCIIndex,
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json"}, ", "))
	resp, body, err := c.do(req, http.StatusOK)
	if err != nil {
		return nil, nil, err
	}
	return body, resp.Header, nil
}

// getBlob fetches a blob and checks that its content matches its digest.
func (c *regClient) getBlob(repo, dgst string) ([]byte, error) {
	req := c.newRequest("GET", "/v2/"+repo+"/blobs/"+dgst, nil)
	_, body, err := c.do(req, http.StatusOK)
	if err != nil {
		return nil, err
	}
	if got := sha256Digest(body); got != dgst {
		return body, fmt.Errorf("GET /v2/%s/blobs/%s: served %d bytes whose digest is %s", repo, dgst, len(body), got)
	}
	return body, nil
}

// blobStatus returns the status of HEAD on a blob.
func (c *regClient) blobStatus(repo, dgst string) (int, error) {
	req := c.newRequest("HEAD", "/v2/"+repo+"/blobs/"+dgst, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// tags lists a repository's tags (following Link pagination).
func (c *regClient) tags(repo string) ([]string, error) {
	var all []string
	next := "/v2/" + repo + "/tags/list"
	for next != "" {
		resp, body, err := c.do(c.newRequest("GET", next, nil), http.StatusOK)
		if err != nil {
			return nil, err
		}
		var tl struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(body, &tl); err != nil {
			return nil, fmt.Errorf("GET %s: %w in %q", next, err, body)
		}
		all = append(all, tl.Tags...)
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			if l, _, ok := strings.Cut(strings.TrimPrefix(link, "<"), ">"); ok {
				next = l
			}
		}
	}
	return all, nil
}

// uploadStatus returns the number of bytes an upload session holds, from the Range
// header of GET on its location (Range: 0-N means N+1 bytes; no Range means none),
// and the Location the client must use next.
func (c *regClient) uploadStatus(loc string) (int64, string, error) {
	resp, body, err := c.do(c.newRequest("GET", loc, nil), http.StatusNoContent)
	if err != nil {
		return 0, "", err
	}
	next, err := c.resolve(resp.Header.Get("Location"))
	if err != nil {
		return 0, "", fmt.Errorf("GET %s: %w", loc, err)
	}
	rng := resp.Header.Get("Range")
	if rng == "" {
		return 0, next, nil
	}
	lo, hi, ok := strings.Cut(strings.TrimPrefix(rng, "bytes="), "-")
	n, err2 := strconv.ParseInt(hi, 10, 64)
	if !ok || lo != "0" || err2 != nil {
		return 0, "", fmt.Errorf("GET %s: Range header %q is not 0-N (body %q)", loc, rng, body)
	}
	return n + 1, next, nil
}

func shuffled[T any](s []T) []T {
	out := append([]T(nil), s...)
	mrand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

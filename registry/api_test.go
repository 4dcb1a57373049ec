package registry

import (
	"github.com/signet-oss/signet/internal/apierror"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/storage/driver/inmemory"
)

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	store, err := storage.New(context.Background(), inmemory.New(), storage.Options{MaxManifestSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	api, err := NewServer(store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, srv *httptest.Server, method, path string, header map[string]string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// errorCode returns the first OCI error code of a JSON error body.
func errorCode(t *testing.T, r response) string {
	t.Helper()
	var body apierror.Body
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.Errors) == 0 {
		t.Fatalf("status %d: body is not an OCI error: %q", r.status, r.body)
	}
	return body.Errors[0].Code
}

func pushBlob(t *testing.T, srv *httptest.Server, repo string, content []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(content)
	r := do(t, srv, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), nil, content)
	if r.status != http.StatusCreated {
		t.Fatalf("monolithic upload: %d %s", r.status, r.body)
	}
	return d
}

func imageManifest(config, layer digest.Digest, configSize, layerSize int) []byte {
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		config, configSize, layer, layerSize)
}

func TestBadInputGetsAClear4xx(t *testing.T) {
	srv := newTestServer(t)
	config, layer := []byte(`{}`), []byte("layer")
	cd, ld := pushBlob(t, srv, "acme/app", config), pushBlob(t, srv, "acme/app", layer)
	good := imageManifest(cd, ld, len(config), len(layer))
	ociType := map[string]string{"Content-Type": storage.MediaTypeOCIManifest}
	big := append([]byte(`{"schemaVersion":2,"annotations":{"a":"`), bytes.Repeat([]byte("x"), 70<<10)...)
	big = append(big, `"}}`...)

	cases := []struct {
		name         string
		method, path string
		header       map[string]string
		body         []byte
		status       int
		code         string
	}{
		{"an upper-case repository name is NAME_INVALID", "GET", "/v2/Acme/app/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"a name with .. is NAME_INVALID", "GET", "/v2/acme/../app/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"an escaped slash is NAME_INVALID", "GET", "/v2/acme%2Fapp/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"a 300-character name is NAME_INVALID", "GET", "/v2/" + strings.Repeat("a", 300) + "/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"a malformed blob digest is DIGEST_INVALID", "GET", "/v2/acme/app/blobs/sha256:nothex", nil, nil, 400, "DIGEST_INVALID"},
		{"an unsupported digest algorithm is DIGEST_INVALID", "GET", "/v2/acme/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", nil, nil, 400, "DIGEST_INVALID"},
		{"an unknown blob is BLOB_UNKNOWN", "GET", "/v2/acme/app/blobs/" + digest.FromString("nope").String(), nil, nil, 404, "BLOB_UNKNOWN"},
		{"a blob of another repository is BLOB_UNKNOWN", "GET", "/v2/acme/other/blobs/" + ld.String(), nil, nil, 404, "BLOB_UNKNOWN"},
		{"an unknown tag is MANIFEST_UNKNOWN", "GET", "/v2/acme/app/manifests/nope", nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"an invalid tag is TAG_INVALID", "GET", "/v2/acme/app/manifests/-bad", nil, nil, 400, "TAG_INVALID"},
		{"a manifest that is not JSON is MANIFEST_INVALID", "PUT", "/v2/acme/app/manifests/v1", ociType, []byte("not json"), 400, "MANIFEST_INVALID"},
		{"a schema 1 manifest is MANIFEST_INVALID", "PUT", "/v2/acme/app/manifests/v1", map[string]string{"Content-Type": "application/vnd.docker.distribution.manifest.v1+json"}, []byte(`{"schemaVersion":1}`), 400, "MANIFEST_INVALID"},
		{"a Content-Type that contradicts mediaType is MANIFEST_INVALID", "PUT", "/v2/acme/app/manifests/v1", map[string]string{"Content-Type": storage.MediaTypeOCIIndex}, good, 400, "MANIFEST_INVALID"},
		{"an image manifest without config is MANIFEST_INVALID", "PUT", "/v2/acme/app/manifests/v1", ociType, []byte(`{"schemaVersion":2,"layers":[]}`), 400, "MANIFEST_INVALID"},
		{"a descriptor with a bad digest is MANIFEST_INVALID", "PUT", "/v2/acme/app/manifests/v1", ociType, []byte(`{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:zz","size":1}}`), 400, "MANIFEST_INVALID"},
		{"a manifest over the size limit is 413 SIZE_INVALID", "PUT", "/v2/acme/app/manifests/v1", ociType, big, 413, "SIZE_INVALID"},
		{"a manifest pushed under the wrong digest is DIGEST_INVALID", "PUT", "/v2/acme/app/manifests/" + digest.FromString("x").String(), ociType, good, 400, "DIGEST_INVALID"},
		{"a manifest pushed under a malformed digest is DIGEST_INVALID", "PUT", "/v2/acme/app/manifests/sha256:baddigeststring", ociType, good, 400, "DIGEST_INVALID"},
		{"an invalid ?tag= is TAG_INVALID", "PUT", "/v2/acme/app/manifests/" + digest.FromBytes(good).String() + "?tag=-x", ociType, good, 400, "TAG_INVALID"},
		{"a blob pushed with the wrong digest is DIGEST_INVALID", "POST", "/v2/acme/app/blobs/uploads/?digest=" + digest.FromString("other").String(), nil, []byte("content"), 400, "DIGEST_INVALID"},
		{"a forged upload session is BLOB_UPLOAD_UNKNOWN", "GET", "/v2/acme/app/blobs/uploads/0123456789abcdef0123456789abcdef-0123456789abcdef01234567", nil, nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"a garbage upload session is BLOB_UPLOAD_UNKNOWN", "PATCH", "/v2/acme/app/blobs/uploads/garbage", nil, []byte("x"), 404, "BLOB_UPLOAD_UNKNOWN"},
		{"completing an upload without a digest is DIGEST_INVALID", "PUT", "/v2/acme/app/blobs/uploads/garbage", nil, nil, 400, "DIGEST_INVALID"},
		{"a negative page size is rejected", "GET", "/v2/acme/app/tags/list?n=-1", nil, nil, 400, "PAGINATION_NUMBER_INVALID"},
		{"a non-numeric page size is rejected", "GET", "/v2/_catalog?n=ten", nil, nil, 400, "PAGINATION_NUMBER_INVALID"},
		{"the tags of an unknown repository are NAME_UNKNOWN", "GET", "/v2/acme/unknown/tags/list", nil, nil, 404, "NAME_UNKNOWN"},
		{"an unsupported method is UNSUPPORTED", "POST", "/v2/acme/app/manifests/v1", nil, nil, 405, "UNSUPPORTED"},
		{"a path outside the API is NOT_FOUND", "GET", "/v3/whatever", nil, nil, 404, "NOT_FOUND"},
		{"deleting an unknown tag is MANIFEST_UNKNOWN", "DELETE", "/v2/acme/app/manifests/nope", nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"deleting an unknown blob is BLOB_UNKNOWN", "DELETE", "/v2/acme/app/blobs/" + digest.FromString("nope").String(), nil, nil, 404, "BLOB_UNKNOWN"},
		{"referrers of a malformed digest is DIGEST_INVALID", "GET", "/v2/acme/app/referrers/sha256:nothex", nil, nil, 400, "DIGEST_INVALID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, srv, c.method, c.path, c.header, c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if got := errorCode(t, r); got != c.code {
				t.Fatalf("code %s, want %s: %s", got, c.code, r.body)
			}
		})
	}
}

func TestChunkedUploadResumesAndRejectsOutOfOrderChunks(t *testing.T) {
	srv := newTestServer(t)
	content := bytes.Repeat([]byte("0123456789"), 1000)
	d := digest.FromBytes(content)
	r := do(t, srv, "POST", "/v2/acme/app/blobs/uploads/", nil, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	loc := r.header.Get("Location")

	r = do(t, srv, "PATCH", loc, map[string]string{"Content-Range": "0-3999"}, content[:4000])
	if r.status != http.StatusAccepted || r.header.Get("Range") != "0-3999" {
		t.Fatalf("first chunk: %d Range=%q %s", r.status, r.header.Get("Range"), r.body)
	}
	r = do(t, srv, "PATCH", loc, map[string]string{"Content-Range": "5000-5999"}, content[5000:6000])
	if r.status != http.StatusRequestedRangeNotSatisfiable || r.header.Get("Range") != "0-3999" {
		t.Fatalf("out-of-order chunk: %d Range=%q, want 416 with Range 0-3999", r.status, r.header.Get("Range"))
	}
	r = do(t, srv, "GET", loc, nil, nil)
	if r.status != http.StatusNoContent || r.header.Get("Range") != "0-3999" {
		t.Fatalf("status: %d Range=%q", r.status, r.header.Get("Range"))
	}
	r = do(t, srv, "PATCH", loc, nil, content[4000:9000]) // streamed, no Content-Range
	if r.status != http.StatusAccepted || r.header.Get("Range") != "0-8999" {
		t.Fatalf("streamed chunk: %d Range=%q", r.status, r.header.Get("Range"))
	}
	r = do(t, srv, "PUT", loc+"?digest="+d.String(), map[string]string{"Content-Range": "9000-9999"}, content[9000:])
	if r.status != http.StatusCreated || r.header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("final chunk: %d %s", r.status, r.body)
	}
	r = do(t, srv, "GET", "/v2/acme/app/blobs/"+d.String(), nil, nil)
	if r.status != http.StatusOK || !bytes.Equal(r.body, content) {
		t.Fatalf("blob GET: %d, %d bytes", r.status, len(r.body))
	}
	r = do(t, srv, "GET", loc, nil, nil)
	if r.status != http.StatusNotFound {
		t.Fatalf("a completed session must be gone: %d", r.status)
	}
}

func TestCancelledUploadIsUnknown(t *testing.T) {
	srv := newTestServer(t)
	loc := do(t, srv, "POST", "/v2/acme/app/blobs/uploads/", nil, nil).header.Get("Location")
	if r := do(t, srv, "PATCH", loc, nil, []byte("abc")); r.status != http.StatusAccepted {
		t.Fatalf("PATCH: %d", r.status)
	}
	if r := do(t, srv, "DELETE", loc, nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	for _, m := range []string{"GET", "PATCH", "DELETE"} {
		if r := do(t, srv, m, loc, nil, []byte("x")); r.status != http.StatusNotFound || errorCode(t, r) != "BLOB_UPLOAD_UNKNOWN" {
			t.Fatalf("%s on a cancelled session: %d %s", m, r.status, r.body)
		}
	}
}

func TestUploadSessionIsBoundToItsRepository(t *testing.T) {
	srv := newTestServer(t)
	loc := do(t, srv, "POST", "/v2/acme/app/blobs/uploads/", nil, nil).header.Get("Location")
	other := strings.Replace(loc, "/acme/app/", "/acme/other/", 1)
	if r := do(t, srv, "PATCH", other, nil, []byte("x")); r.status != http.StatusNotFound {
		t.Fatalf("a session used in another repository: %d, want 404", r.status)
	}
}

func TestTagsAndCatalogPaginateWithLinks(t *testing.T) {
	srv := newTestServer(t)
	config, layer := []byte(`{}`), []byte("layer")
	for _, repo := range []string{"b/one", "a", "a/b", "c"} {
		cd, ld := pushBlob(t, srv, repo, config), pushBlob(t, srv, repo, layer)
		m := imageManifest(cd, ld, len(config), len(layer))
		for _, tag := range []string{"v3", "v1", "v2"} {
			if r := do(t, srv, "PUT", "/v2/"+repo+"/manifests/"+tag, map[string]string{"Content-Type": storage.MediaTypeOCIManifest}, m); r.status != 201 {
				t.Fatalf("PUT %s:%s: %d %s", repo, tag, r.status, r.body)
			}
		}
	}
	r := do(t, srv, "GET", "/v2/a/tags/list?n=2", nil, nil)
	var tl tagList
	json.Unmarshal(r.body, &tl)
	if fmt.Sprint(tl.Tags) != "[v1 v2]" || !strings.Contains(r.header.Get("Link"), "last=v2") {
		t.Fatalf("first page: %v Link=%q", tl.Tags, r.header.Get("Link"))
	}
	r = do(t, srv, "GET", "/v2/a/tags/list?n=2&last=v2", nil, nil)
	json.Unmarshal(r.body, &tl)
	if fmt.Sprint(tl.Tags) != "[v3]" || r.header.Get("Link") != "" {
		t.Fatalf("last page: %v Link=%q", tl.Tags, r.header.Get("Link"))
	}
	r = do(t, srv, "GET", "/v2/_catalog?n=3", nil, nil)
	var cl catalogList
	json.Unmarshal(r.body, &cl)
	if fmt.Sprint(cl.Repositories) != "[a a/b b/one]" || !strings.Contains(r.header.Get("Link"), "last=b%2Fone") {
		t.Fatalf("catalog page: %v Link=%q", cl.Repositories, r.header.Get("Link"))
	}
	r = do(t, srv, "GET", "/v2/_catalog?last=b/one", nil, nil)
	json.Unmarshal(r.body, &cl)
	if fmt.Sprint(cl.Repositories) != "[c]" {
		t.Fatalf("catalog after b/one: %v", cl.Repositories)
	}
}

func TestDeletingAManifestRemovesItsTagsAndReferrerEntry(t *testing.T) {
	srv := newTestServer(t)
	config, layer := []byte(`{}`), []byte("layer")
	cd, ld := pushBlob(t, srv, "acme/app", config), pushBlob(t, srv, "acme/app", layer)
	subject := imageManifest(cd, ld, len(config), len(layer))
	sd := digest.FromBytes(subject)
	ociType := map[string]string{"Content-Type": storage.MediaTypeOCIManifest}
	do(t, srv, "PUT", "/v2/acme/app/manifests/v1", ociType, subject)
	ref := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"artifactType":"application/spdx+json",`+
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[],`+
		`"subject":{"mediaType":%q,"digest":%q,"size":%d}}`, storage.MediaTypeOCIManifest, cd, storage.MediaTypeOCIManifest, sd, len(subject))
	rd := digest.FromBytes(ref)
	r := do(t, srv, "PUT", "/v2/acme/app/manifests/sbom", ociType, ref)
	if r.status != 201 || r.header.Get("OCI-Subject") != sd.String() {
		t.Fatalf("referrer PUT: %d OCI-Subject=%q %s", r.status, r.header.Get("OCI-Subject"), r.body)
	}
	r = do(t, srv, "GET", "/v2/acme/app/referrers/"+sd.String()+"?artifactType="+url.QueryEscape("application/spdx+json"), nil, nil)
	if !bytes.Contains(r.body, []byte(rd.String())) || r.header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("referrers: %s", r.body)
	}
	if r := do(t, srv, "GET", "/v2/acme/app/referrers/"+sd.String()+"?artifactType=other", nil, nil); bytes.Contains(r.body, []byte(rd.String())) {
		t.Fatalf("a filtered-out referrer was listed: %s", r.body)
	}
	if r := do(t, srv, "DELETE", "/v2/acme/app/manifests/"+rd.String(), nil, nil); r.status != 202 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "GET", "/v2/acme/app/manifests/sbom", nil, nil); r.status != 404 {
		t.Fatalf("the tag of a deleted manifest still resolves: %d", r.status)
	}
	if r := do(t, srv, "GET", "/v2/acme/app/referrers/"+sd.String(), nil, nil); bytes.Contains(r.body, []byte(rd.String())) {
		t.Fatalf("a deleted referrer is still listed: %s", r.body)
	}
	if r := do(t, srv, "GET", "/v2/acme/app/manifests/v1", nil, nil); r.status != 200 || !bytes.Equal(r.body, subject) {
		t.Fatalf("the subject must stay: %d", r.status)
	}
}

func TestMountWithoutSourceLinksAnExistingBlob(t *testing.T) {
	srv := newTestServer(t)
	d := pushBlob(t, srv, "acme/app", []byte("shared"))
	r := do(t, srv, "POST", "/v2/acme/copy/blobs/uploads/?mount="+d.String(), nil, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("mount without from: %d %s", r.status, r.body)
	}
	r = do(t, srv, "POST", "/v2/acme/copy2/blobs/uploads/?mount="+d.String()+"&from=acme/unknown", nil, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("mount from a repository without the blob must start an upload: %d", r.status)
	}
	if r := do(t, srv, "HEAD", "/v2/acme/copy/blobs/"+d.String(), nil, nil); r.status != 200 || r.header.Get("Content-Length") != "6" {
		t.Fatalf("mounted blob HEAD: %d len=%s", r.status, r.header.Get("Content-Length"))
	}
}

func TestBlobRangeRequests(t *testing.T) {
	srv := newTestServer(t)
	content := []byte("0123456789abcdef")
	d := pushBlob(t, srv, "acme/app", content)
	r := do(t, srv, "GET", "/v2/acme/app/blobs/"+d.String(), map[string]string{"Range": "bytes=4-7"}, nil)
	if r.status != http.StatusPartialContent || string(r.body) != "4567" || r.header.Get("Content-Range") != "bytes 4-7/16" {
		t.Fatalf("range: %d %q %q", r.status, r.body, r.header.Get("Content-Range"))
	}
	r = do(t, srv, "GET", "/v2/acme/app/blobs/"+d.String(), map[string]string{"Range": "bytes=100-200"}, nil)
	if r.status != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("unsatisfiable range: %d", r.status)
	}
}

func TestABrokenOffChunkKeepsTheBytesThatArrived(t *testing.T) {
	srv := newTestServer(t)
	loc := do(t, srv, "POST", "/v2/acme/app/blobs/uploads/", nil, nil).header.Get("Location")
	content := bytes.Repeat([]byte("x"), 1000)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nContent-Type: application/octet-stream\r\n\r\n", loc)
	conn.Write(content[:600])
	time.Sleep(100 * time.Millisecond)
	conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	var r response
	for time.Now().Before(deadline) {
		if r = do(t, srv, "GET", loc, nil, nil); r.header.Get("Range") == "0-599" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.status != http.StatusNoContent || r.header.Get("Range") != "0-599" {
		t.Fatalf("after a broken-off chunk: %d Range=%q, want 204 with 0-599", r.status, r.header.Get("Range"))
	}
	d := digest.FromBytes(content)
	r = do(t, srv, "PUT", loc+"?digest="+d.String(), map[string]string{"Content-Range": "600-999"}, content[600:])
	if r.status != http.StatusCreated {
		t.Fatalf("resumed upload: %d %s", r.status, r.body)
	}
}

func TestAnEmptyCatalogIsAnEmptyList(t *testing.T) {
	srv := newTestServer(t)
	if r := do(t, srv, "GET", "/v2/_catalog", nil, nil); r.status != 200 || string(r.body) != `{"repositories":[]}` {
		t.Fatalf("empty catalog: %d %s", r.status, r.body)
	}
}

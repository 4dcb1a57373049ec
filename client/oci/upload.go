package oci

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxResumes bounds how often one upload is resumed after a broken connection.
const maxResumes = 4

// uploadResult says how a blob got into the repository.
type uploadResult int

const (
	uploaded uploadResult = iota
	mounted
)

// upload sends one blob: a mount from mountFrom when given (same registry),
// else POST, one streaming PATCH and the closing PUT. When the PATCH breaks, it
// asks the session's status (GET) and continues from the registry's offset
// with a ranged PATCH. open returns the blob's content from its start; counted
// is told of every byte sent.
func (r *Repository) upload(ctx context.Context, desc ocispec.Descriptor, mountFrom string, open func() (io.ReadCloser, error), counted func(int64)) (uploadResult, error) {
	start := r.base + "/v2/" + r.Name + "/blobs/uploads/"
	if mountFrom != "" && mountFrom != r.Name {
		start += "?mount=" + desc.Digest.String() + "&from=" + mountFrom
	}
	key := r.base + "/" + r.Name + "@" + desc.Digest.String()
	loc, offset := r.resumable(ctx, key, desc)
	if loc == "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, start, nil)
		if err != nil {
			return 0, err
		}
		resp, err := r.do(req)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode == http.StatusCreated && mountFrom != "" {
			resp.Body.Close()
			return mounted, nil
		}
		if err := expect(resp, http.StatusAccepted); err != nil {
			return 0, fmt.Errorf("starting the upload of %s to %s: %w", desc.Digest, r.Name, err)
		}
		resp.Body.Close()
		if loc, err = r.location(resp); err != nil {
			return 0, err
		}
		if r.Sessions != nil && desc.Size > 0 {
			r.Sessions.Save(key, loc)
		}
	}
	for attempt := 0; offset < desc.Size; attempt++ {
		next, err := r.patch(ctx, loc, desc, offset, open, counted)
		if err == nil {
			loc = next
			break
		}
		if !isTransient(err) || attempt >= maxResumes || ctx.Err() != nil {
			return 0, fmt.Errorf("uploading %s to %s: %w", desc.Digest, r.Name, err)
		}
		// Ask the registry how much it has, and go on from there.
		got, statusLoc, serr := r.uploadStatus(ctx, loc)
		if serr != nil {
			return 0, fmt.Errorf("uploading %s to %s: %w; then asking for the upload's status: %v", desc.Digest, r.Name, err, serr)
		}
		counted(got - offset)
		offset, loc = got, statusLoc
		if r.Sessions != nil {
			r.Sessions.Save(key, loc)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, withQuery(loc, "digest", desc.Digest.String()), nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.do(req)
	if err != nil {
		return 0, fmt.Errorf("committing %s to %s: %w", desc.Digest, r.Name, err)
	}
	if err := expect(resp, http.StatusCreated); err != nil {
		return 0, fmt.Errorf("committing %s to %s: %w", desc.Digest, r.Name, err)
	}
	resp.Body.Close()
	if r.Sessions != nil {
		r.Sessions.Forget(key)
	}
	return uploaded, nil
}

// resumable returns the session an earlier process left for key and how many
// bytes it holds, or "" when there is none to go on with (none remembered, or
// the registry no longer has it: then it is forgotten).
func (r *Repository) resumable(ctx context.Context, key string, desc ocispec.Descriptor) (string, int64) {
	if r.Sessions == nil || desc.Size == 0 {
		return "", 0
	}
	saved := r.Sessions.Load(key)
	if saved == "" {
		return "", 0
	}
	got, next, err := r.uploadStatus(ctx, saved)
	if err != nil || got > desc.Size {
		r.Sessions.Forget(key)
		return "", 0
	}
	r.Sessions.Save(key, next)
	return next, got
}

// patch sends the blob's bytes from offset to its end in one PATCH (ranged
// when resuming) and returns the next Location.
func (r *Repository) patch(ctx context.Context, loc string, desc ocispec.Descriptor, offset int64, open func() (io.ReadCloser, error), counted func(int64)) (string, error) {
	rc, err := open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	if offset > 0 {
		// The source hashes what it reads: skip through it, not past it.
		if _, err := io.CopyN(io.Discard, rc, offset); err != nil {
			return "", err
		}
	}
	body := &countingReader{r: rc, n: counted}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, loc, io.NopCloser(body))
	if err != nil {
		return "", err
	}
	req.ContentLength = desc.Size - offset
	req.Header.Set("Content-Type", "application/octet-stream")
	if offset > 0 {
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", offset, desc.Size-1))
	}
	resp, err := r.do(req)
	if err != nil {
		return "", err
	}
	if err := expect(resp, http.StatusAccepted, http.StatusNoContent, http.StatusCreated); err != nil {
		return "", err
	}
	resp.Body.Close()
	// The whole source was read: a source whose bytes are not the digest has
	// failed the request by now; checking the end guards against a short one.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return "", err
	}
	return r.location(resp)
}

// uploadStatus asks how many bytes an upload session holds: GET answers 204
// with Range: 0-<last offset>.
func (r *Repository) uploadStatus(ctx context.Context, loc string) (int64, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := r.do(req)
	if err != nil {
		return 0, "", err
	}
	if err := expect(resp, http.StatusNoContent, http.StatusOK); err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	next := loc
	if resp.Header.Get("Location") != "" {
		if next, err = r.location(resp); err != nil {
			return 0, "", err
		}
	}
	rg := resp.Header.Get("Range")
	if rg == "" {
		return 0, next, nil
	}
	first, last, ok := strings.Cut(strings.TrimPrefix(rg, "bytes="), "-")
	if first == "0" && last == "0" {
		// Registries answer 0-0 for an empty session (and, ambiguously, for
		// one byte): start again from the beginning.
		return 0, next, nil
	}
	n, err := strconv.ParseInt(last, 10, 64)
	if !ok || err != nil {
		return 0, "", fmt.Errorf("upload status: malformed Range %q", rg)
	}
	return n + 1, next, nil
}

type countingReader struct {
	r io.Reader
	n func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && c.n != nil {
		c.n(int64(n))
	}
	return n, err
}

// PushBytes uploads a small blob held in memory (a signature's config or
// payload), unless the repository has it.
func (r *Repository) PushBytes(ctx context.Context, mediaType string, b []byte) error {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if has, err := r.HasBlob(ctx, desc); err != nil || has {
		return err
	}
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	_, err := r.upload(ctx, desc, "", open, func(int64) {})
	return err
}

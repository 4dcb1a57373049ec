package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/signet-oss/signet/storage/driver"
)

// Writer writes an object as one S3 multipart upload to its own path.
//
// The content of a Writer is, at every moment, the first `keep` bytes of the
// object stored at its path, followed by the bytes written since. Bytes are
// buffered into parts of Config.PartSize and uploaded as each part fills; Close
// and Commit upload the rest as the last part and complete the upload, which
// replaces the object at the path in one step. So:
//
//   - A Writer needs no state but the object itself: a resumed Writer, on this
//     replica or any other, reads the object's size and ETag and keeps its first
//     `offset` bytes. It copies them into its upload server-side (UploadPartCopy,
//     guarded by the ETag) when they are 5 MiB or more, else it reads them back;
//     it does so lazily, so a resume that writes nothing (the final, empty chunk
//     of an upload) costs one HeadObject and no copy.
//   - Written bytes become visible at the path when Close or Commit returns, and
//     earlier to readers in the same process: GetContent, Reader, Stat and Move
//     of a path with an open Writer first complete its upload so far (and the
//     Writer continues with a new one that copies those bytes). A reader in
//     another process sees the object as of the last Close or Commit.
//   - Commit and Close do the same: an object S3 has acknowledged is durable.
//   - A process killed with a Writer open leaves an incomplete multipart upload,
//     invisible to readers: a bucket lifecycle rule (AbortIncompleteMultipartUpload)
//     reclaims its parts.
func (d *Driver) Writer(ctx context.Context, path string, resume bool, offset int64) (driver.FileWriter, error) {
	key, err := d.objectKey(path)
	if err != nil {
		return nil, err
	}
	w := &writer{
		d: d, path: path, key: key, ctx: context.WithoutCancel(ctx),
		buf: make([]byte, 0, d.partSize), dirty: true,
	}
	if resume {
		if err := d.syncOpenWriter(ctx, path); err != nil {
			return nil, err
		}
		head, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: &key})
		if err != nil {
			return nil, readErr("resume", path, err)
		}
		size := aws.ToInt64(head.ContentLength)
		if offset < 0 || offset > size {
			return nil, fmt.Errorf("%w: resume %s of %d bytes at %d", driver.ErrInvalidOffset, path, size, offset)
		}
		w.keep, w.size, w.etag = offset, offset, head.ETag
		w.dirty = offset < size // bytes past offset, left by a killed writer, must go
	}
	d.mu.Lock()
	d.open[path] = w
	d.mu.Unlock()
	return w, nil
}

// syncOpenWriter makes the bytes of this process's open Writer at path, if any,
// visible at the path.
func (d *Driver) syncOpenWriter(ctx context.Context, path string) error {
	d.mu.Lock()
	w := d.open[path]
	d.mu.Unlock()
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	return w.sync(ctx)
}

// writer is the FileWriter. Its methods take mu, since a reader of its path may
// sync it from another goroutine; the caller uses it from one goroutine.
type writer struct {
	d    *Driver
	path string
	key  string
	ctx  context.Context // for Write and Close, which take none

	mu sync.Mutex
	// keep is how many bytes of the object at key (whose ETag is etag) begin the
	// content; they are not yet in the upload or buffer unless started is true.
	keep    int64
	etag    *string
	started bool
	// uploadID, if set, is the multipart upload holding parts, uploaded in order.
	uploadID *string
	parts    []types.CompletedPart
	buf      []byte // content after the parts, less than one part
	size     int64  // the whole content's size
	dirty    bool   // the object at key differs from the content
	done     bool
}

// Size is the content's size, including the bytes kept from before a resume.
func (w *writer) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// Write buffers p, uploading a part each time the buffer fills.
func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return 0, fmt.Errorf("s3: write %s: %w", w.path, fs.ErrClosed)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := w.start(w.ctx); err != nil {
		return 0, err
	}
	w.dirty = true
	n := 0
	for n < len(p) {
		c := copy(w.buf[len(w.buf):cap(w.buf)], p[n:])
		w.buf = w.buf[:len(w.buf)+c]
		n += c
		w.size += int64(c)
		if len(w.buf) == cap(w.buf) {
			if err := w.uploadPart(w.ctx); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// start puts the kept bytes at the head of the content: copied server-side into
// a new multipart upload, or, below S3's minimum part size, read into the buffer.
func (w *writer) start(ctx context.Context) error {
	if w.started {
		return nil
	}
	if w.keep >= minPartSize {
		if err := w.createUpload(ctx); err != nil {
			return err
		}
		parts, err := w.d.copyParts(ctx, w.key, w.uploadID, w.key, w.etag, w.keep, 1)
		if err != nil {
			return w.fail("resume", err)
		}
		w.parts = parts
	} else if w.keep > 0 {
		out, err := w.d.client.GetObject(ctx, &s3.GetObjectInput{
			Bucket: &w.d.bucket, Key: &w.key, IfMatch: w.etag,
			Range: aws.String(fmt.Sprintf("bytes=0-%d", w.keep-1)),
		})
		if err != nil {
			return w.fail("resume", err)
		}
		w.buf = w.buf[:w.keep]
		_, err = io.ReadFull(out.Body, w.buf)
		out.Body.Close()
		if err != nil {
			return w.fail("resume", err)
		}
	}
	w.started = true
	return nil
}

func (w *writer) createUpload(ctx context.Context) error {
	up, err := w.d.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &w.d.bucket, Key: &w.key})
	if err != nil {
		return writeErr("write", w.path, err)
	}
	w.uploadID = up.UploadId
	return nil
}

// uploadPart uploads the buffer as the next part and empties it.
func (w *writer) uploadPart(ctx context.Context) error {
	if w.uploadID == nil {
		if err := w.createUpload(ctx); err != nil {
			return err
		}
	}
	num := int32(len(w.parts) + 1)
	out, err := w.d.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &w.d.bucket, Key: &w.key, UploadId: w.uploadID, PartNumber: aws.Int32(num),
		Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf))),
	})
	if err != nil {
		return w.fail("write", err)
	}
	w.parts = append(w.parts, types.CompletedPart{PartNumber: aws.Int32(num), ETag: out.ETag})
	w.buf = w.buf[:0]
	return nil
}

// sync makes the content the object at key: one PutObject if it fits in the
// buffer, else the buffer as the last part and CompleteMultipartUpload. The
// writer stays usable, keeping the whole new object.
func (w *writer) sync(ctx context.Context) error {
	if !w.dirty {
		return nil
	}
	if err := w.start(ctx); err != nil {
		return err
	}
	var etag *string
	if w.uploadID == nil {
		out, err := w.d.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &w.d.bucket, Key: &w.key,
			Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf))),
			ContentMD5: contentMD5(w.buf),
		})
		if err != nil {
			return w.fail("write", err)
		}
		etag = out.ETag
	} else {
		if len(w.buf) > 0 {
			if err := w.uploadPart(ctx); err != nil {
				return err
			}
		}
		out, err := w.d.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &w.d.bucket, Key: &w.key, UploadId: w.uploadID,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts},
		})
		if err != nil {
			return w.fail("write", err)
		}
		etag = out.ETag
	}
	w.keep, w.etag, w.started, w.dirty = w.size, etag, false, false
	w.uploadID, w.parts, w.buf = nil, nil, w.buf[:0]
	return nil
}

// fail abandons the multipart upload after err, and ends the writer: its content
// is no longer known. The object at key keeps what the last sync stored.
func (w *writer) fail(op string, err error) error {
	if w.uploadID != nil {
		w.d.abort(w.key, w.uploadID)
		w.uploadID, w.parts = nil, nil
	}
	w.finish()
	if code, _ := apiError(err); code == "NoSuchUpload" {
		// An attempt whose answer was lost (a reset, a timeout) may have
		// completed the upload before the SDK retried it: the outcome is
		// unknown, and the caller's retry settles it.
		return fmt.Errorf("s3: %s %s: %w: its multipart upload is gone: %w", op, w.path, driver.ErrUnavailable, err)
	}
	if isNotFound(err) || isPreconditionFailed(err) {
		return fmt.Errorf("s3: %s %s: the object changed or vanished under the writer: %w", op, w.path, err)
	}
	return writeErr(op, w.path, err)
}

// finish marks the writer done and forgets it as the path's open writer.
func (w *writer) finish() {
	w.done = true
	w.d.mu.Lock()
	if w.d.open[w.path] == w {
		delete(w.d.open, w.path)
	}
	w.d.mu.Unlock()
}

// end syncs the content and ends the writer.
func (w *writer) end(ctx context.Context, op string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return fmt.Errorf("s3: %s %s: %w", op, w.path, fs.ErrClosed)
	}
	err := w.sync(ctx)
	if !w.done {
		w.finish()
	}
	return err
}

// Close stores what was written at the path, for a resumed Writer.
func (w *writer) Close() error { return w.end(w.ctx, "close") }

// Commit stores what was written at the path; S3 acknowledges only durable writes.
func (w *writer) Commit(ctx context.Context) error { return w.end(ctx, "commit") }

// Cancel abandons the upload and deletes the object at the path.
func (w *writer) Cancel(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return fmt.Errorf("s3: cancel %s: %w", w.path, fs.ErrClosed)
	}
	if w.uploadID != nil {
		w.d.abort(w.key, w.uploadID)
	}
	w.finish()
	if _, err := w.d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &w.d.bucket, Key: &w.key}); err != nil {
		return opErr("cancel", w.path, err)
	}
	return nil
}

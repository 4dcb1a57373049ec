package inmemory

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	"github.com/signet-oss/signet/storage/driver"
)

// Writer opens a writer of the object at path. With resume false it starts an
// empty object (offset is ignored); with resume true it continues the existing
// object (ErrNotFound if there is none) at offset, dropping the bytes past offset,
// and fails with ErrInvalidOffset if the object is shorter. Every Write is visible
// at path at once; Commit only ends the writer.
func (d *Driver) Writer(ctx context.Context, path string, resume bool, offset int64) (driver.FileWriter, error) {
	if err := checkObjectPath(path); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var buf []byte
	if resume {
		o, ok := d.objects[path]
		if !ok {
			return nil, notFound(path)
		}
		if offset < 0 || offset > int64(len(o.data)) {
			return nil, fmt.Errorf("%w: resume %s of %d bytes at %d", driver.ErrInvalidOffset, path, len(o.data), offset)
		}
		// A private copy: appending must never write into bytes a reader holds.
		buf = append([]byte(nil), o.data[:offset]...)
	} else if err := d.checkWritable(path); err != nil {
		return nil, err
	}
	d.set(path, &object{data: buf, modTime: time.Now()})
	return &memWriter{d: d, path: path, buf: buf}, nil
}

// memWriter appends to a private buffer and publishes it at its path after every
// Write. Bytes below a published length are never written again, so readers
// holding an earlier object stay race-free. It is not safe for concurrent use.
type memWriter struct {
	d    *Driver
	path string
	buf  []byte
	done bool
}

func (w *memWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("inmemory: write %s: %w", w.path, fs.ErrClosed)
	}
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	if _, ok := w.d.objects[w.path]; !ok {
		// Moved or deleted under the writer: recreate it, as a file would be.
		if err := w.d.checkWritable(w.path); err != nil {
			return 0, err
		}
	}
	w.buf = append(w.buf, p...)
	w.d.set(w.path, &object{data: w.buf[:len(w.buf):len(w.buf)], modTime: time.Now()})
	return len(p), nil
}

func (w *memWriter) Size() int64 { return int64(len(w.buf)) }

func (w *memWriter) end(op string) error {
	if w.done {
		return fmt.Errorf("inmemory: %s %s: %w", op, w.path, fs.ErrClosed)
	}
	w.done = true
	return nil
}

func (w *memWriter) Close() error                     { return w.end("close") }
func (w *memWriter) Commit(ctx context.Context) error { return w.end("commit") }

func (w *memWriter) Cancel(ctx context.Context) error {
	if err := w.end("cancel"); err != nil {
		return err
	}
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	if _, ok := w.d.objects[w.path]; ok {
		w.d.remove(w.path)
	}
	return nil
}

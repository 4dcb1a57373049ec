// Package inmemory is a storage driver that keeps objects in a map, for tests and
// scratch registries. Nothing survives the process.
//
// Directories are implicit: a directory exists exactly while some object lies
// below it. Like the filesystem driver, it rejects with driver.ErrInvalidPath a
// write at a path that is a directory or lies below an object, and versions are
// the hex sha256 of the content, so the two drivers behave alike in the shared
// suite.
package inmemory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/signet-oss/signet/storage/driver"
)

// Driver is the in-memory driver. Create it with New. All methods are safe for
// concurrent use.
type Driver struct {
	mu      sync.RWMutex
	objects map[string]*object
	// dirs counts, for every directory but the root, the objects below it, so
	// that directory checks cost one lookup.
	dirs map[string]int
}

// object is one stored object. Its data is never modified in place once visible
// to a reader: writers replace the slice, or only append past its length.
type object struct {
	data    []byte
	version string // hex sha256 of data; "" until computed, for Writer objects
	modTime time.Time
}

var _ driver.Driver = (*Driver)(nil)

// New returns an empty driver.
func New() *Driver {
	return &Driver{objects: make(map[string]*object), dirs: make(map[string]int)}
}

// Name returns "inmemory".
func (d *Driver) Name() string { return "inmemory" }

func notFound(path string) error    { return fmt.Errorf("%w: %s", driver.ErrNotFound, path) }
func invalidPath(path string) error { return fmt.Errorf("%w: %q", driver.ErrInvalidPath, path) }

// checkObjectPath validates a path that names an object (anything but the root).
func checkObjectPath(path string) error {
	if path == "/" || !driver.ValidPath(path) {
		return invalidPath(path)
	}
	return nil
}

func version(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func (o *object) currentVersion() string {
	if o.version != "" {
		return o.version
	}
	return version(o.data)
}

// parents calls fn for each proper ancestor of path except the root, nearest first.
func parents(path string, fn func(dir string)) {
	for i := strings.LastIndexByte(path, '/'); i > 0; i = strings.LastIndexByte(path[:i], '/') {
		fn(path[:i])
	}
}

// checkWritable reports ErrInvalidPath if an object at path would break the
// prefix rule: path is a directory, or an ancestor is an object. d.mu is held.
func (d *Driver) checkWritable(path string) error {
	if d.dirs[path] > 0 {
		return fmt.Errorf("%w: %s is a directory", driver.ErrInvalidPath, path)
	}
	var err error
	parents(path, func(dir string) {
		if _, ok := d.objects[dir]; ok && err == nil {
			err = fmt.Errorf("%w: %s lies below the object %s", driver.ErrInvalidPath, path, dir)
		}
	})
	return err
}

// set stores o at path, counting it in its directories if it is new. d.mu is held
// for writing and checkWritable has passed.
func (d *Driver) set(path string, o *object) {
	if _, ok := d.objects[path]; !ok {
		parents(path, func(dir string) { d.dirs[dir]++ })
	}
	d.objects[path] = o
}

// remove deletes the object at path, uncounting it. d.mu is held for writing.
func (d *Driver) remove(path string) {
	delete(d.objects, path)
	parents(path, func(dir string) {
		if d.dirs[dir]--; d.dirs[dir] == 0 {
			delete(d.dirs, dir)
		}
	})
}

// GetContent returns a copy of the object's data and its version.
func (d *Driver) GetContent(ctx context.Context, path string) ([]byte, string, error) {
	if err := checkObjectPath(path); err != nil {
		return nil, "", err
	}
	d.mu.RLock()
	o, ok := d.objects[path]
	d.mu.RUnlock()
	if !ok {
		return nil, "", notFound(path)
	}
	return append([]byte(nil), o.data...), o.currentVersion(), nil
}

// PutContent stores a copy of data at path.
func (d *Driver) PutContent(ctx context.Context, path string, data []byte) (string, error) {
	return d.PutContentIf(ctx, path, data, driver.Condition{})
}

// PutContentIf stores a copy of data at path if cond holds, checked under the
// driver's lock. A cond with both IfAbsent and IfMatch never holds.
func (d *Driver) PutContentIf(ctx context.Context, path string, data []byte, cond driver.Condition) (string, error) {
	if err := checkObjectPath(path); err != nil {
		return "", err
	}
	o := &object{data: append([]byte(nil), data...), version: version(data), modTime: time.Now()}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.checkWritable(path); err != nil {
		return "", err
	}
	cur, exists := d.objects[path]
	switch {
	case cond.IfAbsent && exists:
		return "", fmt.Errorf("%w: %s exists", driver.ErrPreconditionFailed, path)
	case cond.IfMatch != "" && !exists:
		return "", fmt.Errorf("%w: %s does not exist", driver.ErrPreconditionFailed, path)
	case cond.IfMatch != "" && cur.currentVersion() != cond.IfMatch:
		return "", fmt.Errorf("%w: %s has another version", driver.ErrPreconditionFailed, path)
	}
	d.set(path, o)
	return o.version, nil
}

// Reader returns a reader of the object's data from offset, as it was at the call.
func (d *Driver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if err := checkObjectPath(path); err != nil {
		return nil, err
	}
	d.mu.RLock()
	o, ok := d.objects[path]
	d.mu.RUnlock()
	if !ok {
		return nil, notFound(path)
	}
	if offset < 0 || offset > int64(len(o.data)) {
		return nil, fmt.Errorf("%w: %d in %s of %d bytes", driver.ErrInvalidOffset, offset, path, len(o.data))
	}
	return io.NopCloser(bytes.NewReader(o.data[offset:])), nil
}

// Stat describes the object or directory at path; the root always exists.
func (d *Driver) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	if !driver.ValidPath(path) {
		return driver.FileInfo{}, invalidPath(path)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if o, ok := d.objects[path]; ok {
		return driver.FileInfo{Path: path, Size: int64(len(o.data)), ModTime: o.modTime}, nil
	}
	if path == "/" || d.dirs[path] > 0 {
		return driver.FileInfo{Path: path, IsDir: true}, nil
	}
	return driver.FileInfo{}, notFound(path)
}

// List returns the directory's children in lexical order; the root always exists.
func (d *Driver) List(ctx context.Context, path string) ([]string, error) {
	if !driver.ValidPath(path) {
		return nil, invalidPath(path)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if path != "/" && d.dirs[path] == 0 {
		return nil, notFound(path)
	}
	prefix := dirPrefix(path)
	seen := make(map[string]bool)
	var children []string
	for p := range d.objects {
		if !strings.HasPrefix(p, prefix) {
			continue
		}
		c := p
		if i := strings.IndexByte(p[len(prefix):], '/'); i >= 0 {
			c = p[:len(prefix)+i]
		}
		if !seen[c] {
			seen[c] = true
			children = append(children, c)
		}
	}
	sort.Strings(children) // children share the prefix, so this is name order
	if children == nil {
		children = []string{}
	}
	return children, nil
}

// dirPrefix is the prefix of the paths below the directory path.
func dirPrefix(path string) string {
	if path == "/" {
		return "/"
	}
	return path + "/"
}

// Move moves the object at src to dst, replacing any object there.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	if err := checkObjectPath(src); err != nil {
		return err
	}
	if err := checkObjectPath(dst); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.objects[src]
	if !ok {
		return notFound(src)
	}
	if src == dst {
		return nil
	}
	if err := d.checkWritable(dst); err != nil {
		return err
	}
	d.remove(src)
	d.set(dst, o)
	return nil
}

// Delete removes the object at path, or every object below the directory at path.
func (d *Driver) Delete(ctx context.Context, path string) error {
	if err := checkObjectPath(path); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.objects[path]; ok {
		d.remove(path)
		return nil
	}
	if d.dirs[path] == 0 {
		return notFound(path)
	}
	prefix := path + "/"
	for p := range d.objects {
		if strings.HasPrefix(p, prefix) {
			d.remove(p)
		}
	}
	return nil
}

// Walk visits everything below the directory at path, depth first, each
// directory's entries in lexical order, over a snapshot taken at the call (fn may
// call the driver). ErrNotFound if path is not a directory. ErrSkipDir returned
// for an object has no effect.
func (d *Driver) Walk(ctx context.Context, path string, fn func(driver.FileInfo) error) error {
	if !driver.ValidPath(path) {
		return invalidPath(path)
	}
	root := &node{children: map[string]*node{}}
	d.mu.RLock()
	if path != "/" && d.dirs[path] == 0 {
		d.mu.RUnlock()
		return notFound(path)
	}
	prefix := dirPrefix(path)
	for p, o := range d.objects {
		if !strings.HasPrefix(p, prefix) {
			continue
		}
		n := root
		for _, name := range strings.Split(p[len(prefix):], "/") {
			c := n.children[name]
			if c == nil {
				c = &node{children: map[string]*node{}}
				n.children[name] = c
			}
			n = c
		}
		n.obj = o
	}
	d.mu.RUnlock()
	return root.walk(ctx, path, fn)
}

// node is a snapshot of a directory (obj nil) or an object, for Walk.
type node struct {
	obj      *object
	children map[string]*node
}

func (n *node) walk(ctx context.Context, dir string, fn func(driver.FileInfo) error) error {
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := n.children[name]
		info := driver.FileInfo{Path: dirPrefix(dir) + name, IsDir: c.obj == nil}
		if c.obj != nil {
			info.Size, info.ModTime = int64(len(c.obj.data)), c.obj.modTime
		}
		err := fn(info)
		if errors.Is(err, driver.ErrSkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if info.IsDir {
			if err := c.walk(ctx, info.Path, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

package testsuite

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/signet-oss/signet/storage/driver"
)

func testMove(t *testing.T, d driver.Driver) {
	ctx := t.Context()
	t.Run("Move creates the destination's directories and removes the source", func(t *testing.T) {
		put(t, d, "/uploads/m1/data", "blob")
		if err := d.Move(ctx, "/uploads/m1/data", "/blobs/new/dir/data"); err != nil {
			t.Fatal(err)
		}
		wantContent(t, d, "/blobs/new/dir/data", "blob")
		wantMissing(t, d, "/uploads/m1/data")
		_, err := d.Stat(ctx, "/uploads/m1")
		wantErr(t, "Stat of the emptied source directory", err, driver.ErrNotFound)
	})

	t.Run("Move replaces an existing destination", func(t *testing.T) {
		put(t, d, "/uploads/m2/data", "new")
		put(t, d, "/blobs/m2/data", "old")
		if err := d.Move(ctx, "/uploads/m2/data", "/blobs/m2/data"); err != nil {
			t.Fatal(err)
		}
		wantContent(t, d, "/blobs/m2/data", "new")
		wantMissing(t, d, "/uploads/m2/data")
	})

	t.Run("Move of a missing source fails and keeps the destination", func(t *testing.T) {
		put(t, d, "/blobs/m3/data", "kept")
		err := d.Move(ctx, "/uploads/m3/data", "/blobs/m3/data")
		wantErr(t, "Move of a missing source", err, driver.ErrNotFound)
		wantContent(t, d, "/blobs/m3/data", "kept")
	})

	t.Run("Move of a directory is not a Move of an object", func(t *testing.T) {
		put(t, d, "/uploads/m4/dir/data", "x")
		err := d.Move(ctx, "/uploads/m4/dir", "/blobs/m4")
		wantErr(t, "Move of a directory", err, driver.ErrNotFound)
		wantContent(t, d, "/uploads/m4/dir/data", "x")
	})
}

func testDelete(t *testing.T, d driver.Driver) {
	ctx := t.Context()
	t.Run("deleting an object removes it and prunes its emptied directories", func(t *testing.T) {
		put(t, d, "/del1/a/b/obj", "x")
		put(t, d, "/del1/keep", "y")
		if err := d.Delete(ctx, "/del1/a/b/obj"); err != nil {
			t.Fatal(err)
		}
		wantMissing(t, d, "/del1/a/b/obj")
		for _, dir := range []string{"/del1/a/b", "/del1/a"} {
			_, err := d.Stat(ctx, dir)
			wantErr(t, "Stat of pruned "+dir, err, driver.ErrNotFound)
		}
		got, err := d.List(ctx, "/del1")
		if err != nil || !slices.Equal(got, []string{"/del1/keep"}) {
			t.Fatalf("List(/del1) = %q, %v; want [/del1/keep]", got, err)
		}
	})

	t.Run("deleting a directory removes the whole tree and nothing beside it", func(t *testing.T) {
		for _, p := range []string{"/del2/repo/a", "/del2/repo/b/c", "/del2/repo/b/d/e", "/del2/repository", "/del2/repo-x"} {
			put(t, d, p, p)
		}
		if err := d.Delete(ctx, "/del2/repo"); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/del2/repo/a", "/del2/repo/b/c", "/del2/repo/b/d/e"} {
			wantMissing(t, d, p)
		}
		_, err := d.Stat(ctx, "/del2/repo")
		wantErr(t, "Stat of the deleted tree", err, driver.ErrNotFound)
		wantContent(t, d, "/del2/repository", "/del2/repository")
		wantContent(t, d, "/del2/repo-x", "/del2/repo-x")
	})

	t.Run("deleting the last tree of a directory prunes the directory", func(t *testing.T) {
		put(t, d, "/del3/only/repo/x", "x")
		if err := d.Delete(ctx, "/del3/only/repo"); err != nil {
			t.Fatal(err)
		}
		_, err := d.List(ctx, "/del3")
		wantErr(t, "List of the pruned parent", err, driver.ErrNotFound)
	})

	t.Run("deleting twice reports ErrNotFound the second time", func(t *testing.T) {
		put(t, d, "/del4/obj", "x")
		if err := d.Delete(ctx, "/del4/obj"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "second Delete", d.Delete(ctx, "/del4/obj"), driver.ErrNotFound)
	})

	t.Run("an object can be written again where a tree was deleted", func(t *testing.T) {
		put(t, d, "/del5/x/y", "x")
		if err := d.Delete(ctx, "/del5/x"); err != nil {
			t.Fatal(err)
		}
		put(t, d, "/del5/x", "now an object")
		wantContent(t, d, "/del5/x", "now an object")
	})
}

// tree is a layout whose component order differs from plain string order of full
// paths: "a" < "a-b" < "a.c" by name, but "/a-b" < "/a.c" < "/a/..." as strings.
var tree = []string{
	"/t/a/z",
	"/t/a/b/c",
	"/t/a/b/d",
	"/t/a-b/x",
	"/t/a.c",
	"/t/B",
	"/t/a/Z",
}

func putTree(t *testing.T, d driver.Driver) {
	for _, p := range tree {
		put(t, d, p, "content of "+p)
	}
}

func testList(t *testing.T, d driver.Driver) {
	putTree(t, d)
	cases := []struct {
		name string
		path string
		want []string
	}{
		{"the root lists its one directory", "/", []string{"/t"}},
		{"a directory lists objects and directories in byte order", "/t", []string{"/t/B", "/t/a", "/t/a-b", "/t/a.c"}},
		{"a nested directory lists full paths", "/t/a", []string{"/t/a/Z", "/t/a/b", "/t/a/z"}},
		{"a leaf directory lists its objects", "/t/a/b", []string{"/t/a/b/c", "/t/a/b/d"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.List(t.Context(), tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("List(%s) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
	t.Run("an object is not a directory to list", func(t *testing.T) {
		_, err := d.List(t.Context(), "/t/a.c")
		wantErr(t, "List of an object", err, driver.ErrNotFound)
	})
}

func testWalk(t *testing.T, d driver.Driver) {
	putTree(t, d)
	walk := func(t *testing.T, path string, fn func(driver.FileInfo) error) ([]string, error) {
		var seen []string
		err := d.Walk(t.Context(), path, func(fi driver.FileInfo) error {
			kind := "obj"
			if fi.IsDir {
				kind = "dir"
			} else if want := int64(len("content of " + fi.Path)); fi.Size != want {
				t.Errorf("Walk reported %s with size %d, want %d", fi.Path, fi.Size, want)
			}
			seen = append(seen, kind+" "+fi.Path)
			if fn != nil {
				return fn(fi)
			}
			return nil
		})
		return seen, err
	}
	all := []string{
		"dir /t",
		"obj /t/B",
		"dir /t/a",
		"obj /t/a/Z",
		"dir /t/a/b",
		"obj /t/a/b/c",
		"obj /t/a/b/d",
		"obj /t/a/z",
		"dir /t/a-b",
		"obj /t/a-b/x",
		"obj /t/a.c",
	}
	stop := errors.New("stop here")
	cases := []struct {
		name    string
		path    string
		fn      func(driver.FileInfo) error
		want    []string
		wantErr error
	}{
		{"walking the root visits everything depth first by name", "/", nil, all, nil},
		{"walking a directory visits only what lies below it", "/t/a", nil, all[3:8], nil},
		{"ErrSkipDir for a directory skips its contents",
			"/t", func(fi driver.FileInfo) error {
				if fi.Path == "/t/a/b" {
					return driver.ErrSkipDir
				}
				return nil
			}, append(append([]string{}, all[1:5]...), all[7:]...), nil},
		{"ErrSkipDir for an object changes nothing",
			"/t", func(fi driver.FileInfo) error {
				if fi.Path == "/t/a/Z" {
					return driver.ErrSkipDir
				}
				return nil
			}, all[1:], nil},
		{"another error stops the walk and is returned",
			"/", func(fi driver.FileInfo) error {
				if fi.Path == "/t/a/b/c" {
					return stop
				}
				return nil
			}, all[:6], stop},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := walk(t, tc.path, tc.fn)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Walk error = %v, want %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Walk(%s) visited\n  %s\nwant\n  %s", tc.path, strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
	t.Run("an object is not a directory to walk", func(t *testing.T) {
		_, err := walk(t, "/t/a.c", nil)
		wantErr(t, "Walk of an object", err, driver.ErrNotFound)
	})
}

func testStat(t *testing.T, d driver.Driver) {
	put(t, d, "/stat/dir/obj", "12345")
	cases := []struct {
		name     string
		path     string
		wantDir  bool
		wantSize int64
	}{
		{"an object has its size", "/stat/dir/obj", false, 5},
		{"a directory holding an object is a directory", "/stat/dir", true, 0},
		{"a directory holding a directory is a directory", "/stat", true, 0},
		{"the root is a directory", "/", true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fi, err := d.Stat(t.Context(), tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Path != tc.path || fi.IsDir != tc.wantDir {
				t.Fatalf("Stat = %+v, want path %s, IsDir %v", fi, tc.path, tc.wantDir)
			}
			if !tc.wantDir && (fi.Size != tc.wantSize || fi.ModTime.IsZero()) {
				t.Fatalf("Stat = %+v, want size %d and a modification time", fi, tc.wantSize)
			}
		})
	}
	t.Run("an empty store's root is an empty directory", func(t *testing.T) {
		if err := d.Delete(t.Context(), "/stat"); err != nil {
			t.Fatal(err)
		}
		fi, err := d.Stat(t.Context(), "/")
		if err != nil || !fi.IsDir {
			t.Fatalf("Stat(/) = %+v, %v; want a directory", fi, err)
		}
		got, err := d.List(t.Context(), "/")
		if err != nil || len(got) != 0 {
			t.Fatalf("List(/) = %q, %v; want nothing", got, err)
		}
	})
}

// methods calls each path-taking method of d on path, for the not-found and
// invalid-path tables. Writes that create nothing on failure are included.
func methods(d driver.Driver) map[string]func(t *testing.T, path string) error {
	return map[string]func(t *testing.T, path string) error{
		"GetContent": func(t *testing.T, p string) error { _, _, err := d.GetContent(t.Context(), p); return err },
		"Reader": func(t *testing.T, p string) error {
			r, err := d.Reader(t.Context(), p, 0)
			if err == nil {
				r.Close()
			}
			return err
		},
		"Writer resuming": func(t *testing.T, p string) error {
			w, err := d.Writer(t.Context(), p, true, 0)
			if err == nil {
				w.Close()
			}
			return err
		},
		"Stat": func(t *testing.T, p string) error { _, err := d.Stat(t.Context(), p); return err },
		"List": func(t *testing.T, p string) error { _, err := d.List(t.Context(), p); return err },
		"Walk": func(t *testing.T, p string) error {
			return d.Walk(t.Context(), p, func(driver.FileInfo) error { return nil })
		},
		"Delete":   func(t *testing.T, p string) error { return d.Delete(t.Context(), p) },
		"Move src": func(t *testing.T, p string) error { return d.Move(t.Context(), p, "/moved/here") },
	}
}

func testNotFound(t *testing.T, d driver.Driver) {
	put(t, d, "/nf/object", "x")
	paths := []struct{ name, path string }{
		{"a path in a missing directory", "/nf/missing/thing"},
		{"a missing path in an existing directory", "/nf/missing"},
		{"a path below an object", "/nf/object/below"},
	}
	for name, call := range methods(d) {
		for _, p := range paths {
			t.Run(fmt.Sprintf("%s reports %s as not found", name, p.name), func(t *testing.T) {
				wantErr(t, name+"("+p.path+")", call(t, p.path), driver.ErrNotFound)
			})
		}
	}
	t.Run("GetContent of a directory reports ErrNotFound", func(t *testing.T) {
		_, _, err := d.GetContent(t.Context(), "/nf")
		wantErr(t, "GetContent of a directory", err, driver.ErrNotFound)
	})
	t.Run("Reader of a directory reports ErrNotFound", func(t *testing.T) {
		r, err := d.Reader(t.Context(), "/nf", 0)
		if err == nil {
			r.Close()
		}
		wantErr(t, "Reader of a directory", err, driver.ErrNotFound)
	})
	t.Run("PutContentIf IfMatch on a missing path fails its precondition", func(t *testing.T) {
		_, err := d.PutContentIf(t.Context(), "/nf/missing", []byte("x"), driver.Condition{IfMatch: "v"})
		wantErr(t, "PutContentIf", err, driver.ErrPreconditionFailed)
	})
	wantContent(t, d, "/nf/object", "x")
	_, err := d.Stat(t.Context(), "/moved")
	wantErr(t, "Stat of a Move destination after failed moves", err, driver.ErrNotFound)
}

func testInvalidPaths(t *testing.T, d driver.Driver) {
	put(t, d, "/valid/object", "x")
	invalid := []string{
		"", "relative", "/trailing/", "//double", "/a//b", "/dot/.", "/./dot", "/dotdot/..",
		"/../escape", "/space here", "/back\\slash", "/plus+", "/+tmp", "/~home", "/#hash",
		"/new\nline", "/percent%2F", "/ünicode",
	}
	all := methods(d)
	all["PutContent"] = func(t *testing.T, p string) error { _, err := d.PutContent(t.Context(), p, []byte("x")); return err }
	all["PutContentIf"] = func(t *testing.T, p string) error {
		_, err := d.PutContentIf(t.Context(), p, []byte("x"), driver.Condition{IfAbsent: true})
		return err
	}
	all["Writer"] = func(t *testing.T, p string) error {
		w, err := d.Writer(t.Context(), p, false, 0)
		if err == nil {
			w.Close()
		}
		return err
	}
	all["Move dst"] = func(t *testing.T, p string) error { return d.Move(t.Context(), "/valid/object", p) }
	for name, call := range all {
		for _, p := range invalid {
			t.Run(fmt.Sprintf("%s rejects %q", name, p), func(t *testing.T) {
				wantErr(t, fmt.Sprintf("%s(%q)", name, p), call(t, p), driver.ErrInvalidPath)
			})
		}
	}
	// The root names a directory, never an object.
	for _, name := range []string{"GetContent", "Reader", "Writer resuming", "Writer", "PutContent", "PutContentIf", "Delete", "Move src", "Move dst"} {
		t.Run(name+" rejects the root", func(t *testing.T) {
			wantErr(t, name+"(/)", all[name](t, "/"), driver.ErrInvalidPath)
		})
	}
	wantContent(t, d, "/valid/object", "x")
	got, err := d.List(t.Context(), "/")
	if err != nil || !slices.Equal(got, []string{"/valid"}) {
		t.Fatalf("after rejected writes List(/) = %q, %v; want [/valid]", got, err)
	}
}

// testPrefixRule tries every write that would put an object at a prefix of
// another object's path. A driver may reject it with ErrInvalidPath or accept it;
// either way no object may be lost or changed by it.
func testPrefixRule(t *testing.T, d driver.Driver) {
	ctx := t.Context()
	type write func(t *testing.T, path string) error
	writes := []struct {
		name string
		do   write
	}{
		{"PutContent", func(t *testing.T, p string) error { _, err := d.PutContent(ctx, p, []byte("intruder")); return err }},
		{"PutContentIf IfAbsent", func(t *testing.T, p string) error {
			_, err := d.PutContentIf(ctx, p, []byte("intruder"), driver.Condition{IfAbsent: true})
			return err
		}},
		{"Writer", func(t *testing.T, p string) error {
			w, err := d.Writer(ctx, p, false, 0)
			if err != nil {
				return err
			}
			if _, err := w.Write([]byte("intruder")); err != nil {
				return err
			}
			return w.Commit(ctx)
		}},
		{"Move", func(t *testing.T, p string) error {
			put(t, d, "/uploads/intruder", "intruder")
			return d.Move(ctx, "/uploads/intruder", p)
		}},
	}
	places := []struct {
		name     string
		existing string // the object already stored
		target   string // the conflicting write
	}{
		{"at a directory holding an object", "/p/dir/obj", "/p/dir"},
		{"below an object", "/p/obj", "/p/obj/below"},
		{"two levels below an object", "/p/obj2", "/p/obj2/x/y"},
	}
	for _, w := range writes {
		for _, pl := range places {
			t.Run(fmt.Sprintf("%s %s is rejected or keeps both objects", w.name, pl.name), func(t *testing.T) {
				if err := d.Delete(ctx, "/p"); err != nil && !errors.Is(err, driver.ErrNotFound) {
					t.Fatal(err)
				}
				put(t, d, pl.existing, "resident")
				err := w.do(t, pl.target)
				if err != nil {
					wantErr(t, "conflicting write", err, driver.ErrInvalidPath)
					t.Logf("%s rejects the write with ErrInvalidPath", d.Name())
				} else {
					t.Logf("%s accepts the write", d.Name())
					wantContent(t, d, pl.target, "intruder")
				}
				wantContent(t, d, pl.existing, "resident")
			})
		}
	}
}

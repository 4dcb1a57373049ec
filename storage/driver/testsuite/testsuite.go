// Package testsuite is the conformance suite that every storage driver runs: a
// driver is done when Run passes against it. Each test gets a fresh, empty driver
// from the constructor and checks one part of the contract in driver.Driver
// through the public interface only, with real values (contents, versions, paths,
// orders), so that a driver that breaks the contract fails.
//
// The suite accepts either behaviour for a write that breaks the prefix rule ("a"
// and "a/b" both objects): rejection with driver.ErrInvalidPath, or success with
// both objects intact. It logs which one the driver chose.
package testsuite

import (
	"errors"
	"io"
	"testing"

	"github.com/signet-oss/signet/storage/driver"
)

// Run runs the whole suite, each test in parallel on its own driver from
// newDriver, which should register any cleanup with t.Cleanup.
func Run(t *testing.T, newDriver func(t *testing.T) driver.Driver) {
	tests := []struct {
		name string
		fn   func(t *testing.T, d driver.Driver)
	}{
		{"GetContent returns what PutContent stored, with its version", testPutGet},
		{"PutContent replaces an object atomically under concurrent readers", testPutAtomic},
		{"PutContentIf writes only when its condition holds", testPutContentIf},
		{"PutContentIf IfAbsent lets exactly one of many racing writers win", testIfAbsentRace},
		{"PutContentIf IfMatch counts correctly under racing read-modify-writes", testIfMatchCounter},
		{"Reader reads from every offset up to the end and rejects offsets past it", testReaderOffsets},
		{"Writer creates, appends, resumes, commits, cancels and closes", testWriter},
		{"a 32 MiB object round-trips through Writer, Move and Reader", testLargeRoundTrip},
		{"Move moves an object, replacing the destination", testMove},
		{"Delete removes an object or a whole tree and prunes empty directories", testDelete},
		{"List returns direct children as full paths in lexical order", testList},
		{"Walk visits depth first in lexical order and honours ErrSkipDir", testWalk},
		{"Stat describes objects, directories and the root", testStat},
		{"every method reports a missing path with ErrNotFound", testNotFound},
		{"every method rejects an invalid path with ErrInvalidPath", testInvalidPaths},
		{"no write leaves an object at a prefix of another object's path", testPrefixRule},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newDriver(t))
		})
	}
}

// put stores data at path and returns the version, failing the test on error.
func put(t *testing.T, d driver.Driver, path, data string) string {
	t.Helper()
	v, err := d.PutContent(t.Context(), path, []byte(data))
	if err != nil {
		t.Fatalf("PutContent(%s): %v", path, err)
	}
	if v == "" {
		t.Fatalf("PutContent(%s) returned an empty version", path)
	}
	return v
}

// get returns the content and version at path, failing the test on error.
func get(t *testing.T, d driver.Driver, path string) (string, string) {
	t.Helper()
	data, v, err := d.GetContent(t.Context(), path)
	if err != nil {
		t.Fatalf("GetContent(%s): %v", path, err)
	}
	return string(data), v
}

// wantContent fails the test unless the object at path holds want.
func wantContent(t *testing.T, d driver.Driver, path, want string) {
	t.Helper()
	if got, _ := get(t, d, path); got != want {
		t.Fatalf("content of %s = %q, want %q", path, abbrev(got), abbrev(want))
	}
}

// wantMissing fails the test unless GetContent reports ErrNotFound at path.
func wantMissing(t *testing.T, d driver.Driver, path string) {
	t.Helper()
	if _, _, err := d.GetContent(t.Context(), path); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("GetContent(%s) error = %v, want ErrNotFound", path, err)
	}
}

// wantErr fails the test unless err matches target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want %v", what, err, target)
	}
}

// readAll reads and closes r.
func readAll(t *testing.T, r io.ReadCloser) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	return string(b)
}

// abbrev shortens long contents in failure messages.
func abbrev(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

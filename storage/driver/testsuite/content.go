package testsuite

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/signet-oss/signet/storage/driver"
)

func testPutGet(t *testing.T, d driver.Driver) {
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	cases := []struct {
		name string
		path string
		data string
	}{
		{"an empty object round-trips", "/empty", ""},
		{"a small object round-trips", "/small", "hello"},
		{"every byte value round-trips", "/binary", string(binary)},
		{"a 1 MiB object round-trips", "/big/one", strings.Repeat("0123456789abcdef", 1<<16)},
		{"an object deep in new directories round-trips", "/a/b/c/d/e:f_-.g", "deep"},
	}
	versions := map[string]string{} // version -> content, across cases
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := put(t, d, tc.path, tc.data)
			got, gv := get(t, d, tc.path)
			if got != tc.data {
				t.Fatalf("content = %q, want %q", abbrev(got), abbrev(tc.data))
			}
			if gv != v {
				t.Fatalf("GetContent version = %q, PutContent returned %q", gv, v)
			}
			if other, ok := versions[v]; ok && other != tc.data {
				t.Fatalf("version %q names two different contents", v)
			}
			versions[v] = tc.data
		})
	}

	t.Run("overwriting changes content and version", func(t *testing.T) {
		v1 := put(t, d, "/over", "first")
		v2 := put(t, d, "/over", "second")
		if v1 == v2 {
			t.Fatalf("versions of different contents are equal: %q", v1)
		}
		got, gv := get(t, d, "/over")
		if got != "second" || gv != v2 {
			t.Fatalf("after overwrite got (%q, %q), want (%q, %q)", got, gv, "second", v2)
		}
	})

	t.Run("the caller may reuse its buffers", func(t *testing.T) {
		buf := []byte("original")
		if _, err := d.PutContent(t.Context(), "/reuse", buf); err != nil {
			t.Fatal(err)
		}
		copy(buf, "XXXXXXXX")
		data, _, err := d.GetContent(t.Context(), "/reuse")
		if err != nil {
			t.Fatal(err)
		}
		copy(data, "YYYYYYYY")
		wantContent(t, d, "/reuse", "original")
	})
}

// testPutAtomic rewrites one path alternately with two large payloads while
// readers read it through GetContent and Reader; every read must equal one of them.
func testPutAtomic(t *testing.T, d driver.Driver) {
	const size = 1 << 20
	payloads := [2][]byte{bytes.Repeat([]byte{'a'}, size), bytes.Repeat([]byte{'b'}, size)}
	payloads[1][size/2] = 'c' // differ in the middle too, not only at the ends
	const path = "/atomic/object"
	if _, err := d.PutContent(t.Context(), path, payloads[0]); err != nil {
		t.Fatal(err)
	}
	check := func(how string, got []byte) {
		if !bytes.Equal(got, payloads[0]) && !bytes.Equal(got, payloads[1]) {
			t.Errorf("%s read %d bytes equal to neither payload: a torn or partial write", how, len(got))
		}
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	reads := make([]int, 4)
	for i := range reads {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if i%2 == 0 {
					data, _, err := d.GetContent(t.Context(), path)
					if err != nil {
						t.Errorf("GetContent during overwrite: %v", err)
						return
					}
					check("GetContent", data)
				} else {
					r, err := d.Reader(t.Context(), path, 0)
					if err != nil {
						t.Errorf("Reader during overwrite: %v", err)
						return
					}
					check("Reader", []byte(readAll(t, r)))
				}
				reads[i]++
			}
		})
	}
	for i := range 20 {
		if _, err := d.PutContent(t.Context(), path, payloads[(i+1)%2]); err != nil {
			t.Errorf("PutContent: %v", err)
			break
		}
	}
	close(stop)
	readers.Wait()
	for i, n := range reads {
		if n == 0 {
			t.Errorf("reader %d never completed a read", i)
		}
	}
}

func testPutContentIf(t *testing.T, d driver.Driver) {
	cases := []struct {
		name     string
		existing *string                               // object before the write; nil for none
		cond     func(current string) driver.Condition // current: version of existing
		wantErr  error
	}{
		{"the zero condition writes a missing object", nil,
			func(string) driver.Condition { return driver.Condition{} }, nil},
		{"the zero condition overwrites an existing object", ptr("old"),
			func(string) driver.Condition { return driver.Condition{} }, nil},
		{"IfAbsent writes a missing object", nil,
			func(string) driver.Condition { return driver.Condition{IfAbsent: true} }, nil},
		{"IfAbsent fails on an existing object and keeps it", ptr("old"),
			func(string) driver.Condition { return driver.Condition{IfAbsent: true} }, driver.ErrPreconditionFailed},
		{"IfMatch with the current version replaces the object", ptr("old"),
			func(v string) driver.Condition { return driver.Condition{IfMatch: v} }, nil},
		{"IfMatch with another version fails and keeps the object", ptr("old"),
			func(string) driver.Condition { return driver.Condition{IfMatch: "not-a-version"} }, driver.ErrPreconditionFailed},
		{"IfMatch on a missing object fails", nil,
			func(string) driver.Condition { return driver.Condition{IfMatch: "not-a-version"} }, driver.ErrPreconditionFailed},
		{"IfAbsent with IfMatch can never hold on an existing object", ptr("old"),
			func(v string) driver.Condition { return driver.Condition{IfAbsent: true, IfMatch: v} }, driver.ErrPreconditionFailed},
		{"IfAbsent with IfMatch can never hold on a missing object", nil,
			func(string) driver.Condition { return driver.Condition{IfAbsent: true, IfMatch: "x"} }, driver.ErrPreconditionFailed},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := "/cond/" + strconv.Itoa(i) + "/object"
			var current string
			if tc.existing != nil {
				current = put(t, d, path, *tc.existing)
			}
			v, err := d.PutContentIf(t.Context(), path, []byte("new"), tc.cond(current))
			if tc.wantErr != nil {
				wantErr(t, "PutContentIf", err, tc.wantErr)
				if tc.existing == nil {
					wantMissing(t, d, path)
				} else {
					wantContent(t, d, path, *tc.existing)
				}
				return
			}
			if err != nil {
				t.Fatalf("PutContentIf: %v", err)
			}
			got, gv := get(t, d, path)
			if got != "new" || gv != v {
				t.Fatalf("after PutContentIf got (%q, %q), want (%q, %q)", got, gv, "new", v)
			}
		})
	}

	t.Run("IfMatch with a version made stale by another write fails", func(t *testing.T) {
		stale := put(t, d, "/cond/stale", "one")
		put(t, d, "/cond/stale", "two")
		_, err := d.PutContentIf(t.Context(), "/cond/stale", []byte("three"), driver.Condition{IfMatch: stale})
		wantErr(t, "PutContentIf with a stale version", err, driver.ErrPreconditionFailed)
		wantContent(t, d, "/cond/stale", "two")
	})

	t.Run("IfMatch accepts the version of a Writer-made object", func(t *testing.T) {
		w, err := d.Writer(t.Context(), "/cond/written", false, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("streamed")); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(t.Context()); err != nil {
			t.Fatal(err)
		}
		_, v := get(t, d, "/cond/written")
		if _, err := d.PutContentIf(t.Context(), "/cond/written", []byte("next"), driver.Condition{IfMatch: v}); err != nil {
			t.Fatalf("PutContentIf with the current version: %v", err)
		}
		wantContent(t, d, "/cond/written", "next")
	})
}

func ptr(s string) *string { return &s }

// racers is the number of goroutines in the contention tests.
const racers = 16

func testIfAbsentRace(t *testing.T, d driver.Driver) {
	const path = "/race/absent"
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		winner = -1
		wins   int
	)
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			_, err := d.PutContentIf(t.Context(), path, []byte("writer "+strconv.Itoa(i)), driver.Condition{IfAbsent: true})
			switch {
			case err == nil:
				mu.Lock()
				winner, wins = i, wins+1
				mu.Unlock()
			case !errors.Is(err, driver.ErrPreconditionFailed):
				t.Errorf("writer %d: error = %v, want nil or ErrPreconditionFailed", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d writers won put-if-absent, want exactly 1", wins)
	}
	wantContent(t, d, path, "writer "+strconv.Itoa(winner))
}

func testIfMatchCounter(t *testing.T, d driver.Driver) {
	const path = "/race/counter"
	put(t, d, path, "0")
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			for attempt := 0; ; attempt++ {
				if attempt == 1000 {
					t.Errorf("racer %d: no successful increment in 1000 attempts", i)
					return
				}
				data, v, err := d.GetContent(t.Context(), path)
				if err != nil {
					t.Errorf("racer %d: GetContent: %v", i, err)
					return
				}
				n, err := strconv.Atoi(string(data))
				if err != nil {
					t.Errorf("racer %d: counter holds %q", i, data)
					return
				}
				_, err = d.PutContentIf(t.Context(), path, []byte(strconv.Itoa(n+1)), driver.Condition{IfMatch: v})
				if err == nil {
					return
				}
				if !errors.Is(err, driver.ErrPreconditionFailed) {
					t.Errorf("racer %d: PutContentIf: %v", i, err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	wantContent(t, d, path, strconv.Itoa(racers))
}

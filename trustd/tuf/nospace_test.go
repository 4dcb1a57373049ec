package tuf_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/signet-oss/signet/internal/tmpfs"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/filesystem"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/trustnames"
)

// checkRefusedForSpace checks a 503 UNAVAILABLE with a Retry-After and a message
// that says trustd is out of space.
func checkRefusedForSpace(t *testing.T, what string, r reply) {
	t.Helper()
	if r.status != 503 || !contains(r.body, `"UNAVAILABLE"`) || !contains(r.body, "trustd is out of storage space") {
		t.Errorf("%s on a full disk: %d %s; want 503 UNAVAILABLE saying trustd is out of storage space", what, r.status, r.body)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s <= 0 {
		t.Errorf("%s on a full disk: Retry-After %q, want seconds", what, r.header.Get("Retry-After"))
	}
}

// TestPublishOnAFullDisk: a publish that cannot be written, wherever it runs out
// of space (its staged copy, its pending version, the snapshot, the head), is
// refused whole with 503 and a Retry-After, and the committed trust graph stays
// byte for byte as it was. The disk is filled to leave 0, 1, 2, ... pages, each a
// step further into the publish, until the version fits: then it is published,
// and if only its audit record did not fit, the 500 says it was published.
// Refusals for lack of space write no audit record, so none of them turns into
// a 500; and once space is freed, what was refused succeeds.
func TestPublishOnAFullDisk(t *testing.T) {
	root := tmpfs.Mount(t, 2<<20)
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, d)
	orgKey, pub, pub2 := newKey(t), newKey(t), newKey(t)
	e.org("acme", []*key{orgKey}, 1, repoDelegation("acme/app", 1, pub), repoDelegation("acme/pair", 2, pub, pub2))
	bob := e.user("bob", "acme", "publisher")
	app, pair := trustnames.RoleForRepo("acme/app"), trustnames.RoleForRepo("acme/pair")
	// The org version is held until both repositories have first versions.
	e.mustPut(202, app, sign(t, role(1, nil, targets("acme/app:v1", target("v1"))), pub), bob)
	e.mustPut(201, pair, sign(t, role(1, nil, targets("acme/pair:v1", target("pair v1"))), pub, pub2), bob)
	cache := t.TempDir()
	if _, err := e.resolve(t, cache, bob, "acme/app:v1", nil); err != nil {
		t.Fatal(err)
	}
	before := tmpfs.TrustGraphFiles(t, root)
	timestamp := e.do("GET", "/tuf/timestamp.json", "", nil).body

	v2 := sign(t, role(2, nil, targets("acme/app:v1", target("v2"))), pub)
	staged := sign(t, role(2, nil, targets("acme/pair:v1", target("pair v2"))), pub)
	page := int64(os.Getpagesize())
	published, refused := false, 0
	for pages := int64(0); pages < 16 && !published; pages++ {
		filler := tmpfs.Fill(t, root, pages*page)
		what := "a publish with " + strconv.FormatInt(pages, 10) + " pages free"
		r := e.put(app, v2, bob)
		t.Logf("%s: %d", what, r.status)
		switch {
		case r.status == 201:
			published = true
		case r.status == 500 && contains(r.body, "AUDIT_FAILED"):
			published = true
			if !contains(r.body, "was published, but trustd is out of storage space") {
				t.Errorf("%s, whose audit record did not fit: %s; want it to say the version was published", what, r.body)
			}
		default:
			refused++
			checkRefusedForSpace(t, what, r)
			tmpfs.SameFiles(t, what, before, tmpfs.TrustGraphFiles(t, root))
			if got := e.do("GET", "/tuf/timestamp.json", "", nil).body; !bytes.Equal(got, timestamp) {
				t.Errorf("%s: the served timestamp changed", what)
			}
			if r := e.do("GET", "/tuf/2."+app+".json", bob, nil); r.status != 404 {
				t.Errorf("%s: version 2 is served: %d", what, r.status)
			}
		}
		if pages == 0 {
			checkRefusedForSpace(t, "staging the first of two signatures", e.put(pair, staged, bob))
			if r := e.do("GET", "/tuf/api/staged/"+pair, bob, nil); r.status != 404 {
				t.Errorf("a staged copy is served after staging was refused: %d %s", r.status, r.body)
			}
			r := e.do("POST", "/api/v1/orgs", e.admin, []byte(`{"name":"globex"}`))
			checkRefusedForSpace(t, "creating an organisation", r)
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	}
	if !published || refused == 0 {
		t.Fatalf("published: %v after %d refusals; want refusals, then a publish", published, refused)
	}
	tf, err := e.resolve(t, cache, bob, "acme/app:v1", nil)
	if err != nil || tf.Length != target("v2").Length {
		t.Fatalf("acme/app:v1 after the publish that fit: %+v %v; want version 2's target", tf, err)
	}
	e.mustPut(202, pair, staged, bob)
	e.mustAPI(201, "POST", "/orgs", map[string]string{"name": "globex"})
}

// fullAt is a driver whose writes of paths containing at fail as a full disk's
// would, while armed; or with fail, when it is set.
type fullAt struct {
	driver.Driver
	at    string
	fail  error
	armed atomic.Bool
}

func (f *fullAt) PutContentIf(ctx context.Context, path string, data []byte, cond driver.Condition) (string, error) {
	if f.armed.Load() && strings.Contains(path, f.at) {
		if f.fail != nil {
			return "", fmt.Errorf("put %s: %w", path, f.fail)
		}
		return "", &driver.NoSpaceError{Where: "/srv/trustd", Err: fmt.Errorf("put %s: %w", path, syscall.ENOSPC)}
	}
	return f.Driver.PutContentIf(ctx, path, data, cond)
}

func (f *fullAt) PutContent(ctx context.Context, path string, data []byte) (string, error) {
	return f.PutContentIf(ctx, path, data, driver.Condition{})
}

// TestEachStepOfAPublishRefusesWholeOnAFullDisk: whichever write of a publish
// finds no space, up to the head itself (the commit point, which the tmpfs test
// above cannot single out), the publish is refused with 503 and nothing of it
// is served; the next upload of the same version succeeds.
func TestEachStepOfAPublishRefusesWholeOnAFullDisk(t *testing.T) {
	for _, step := range []struct{ name, path string }{
		{"the role's pending version", "/pending/repo-"},
		{"the snapshot", "/pending/snapshot/"},
		{"the head, the commit point", "/head.json"},
	} {
		t.Run("no space for "+step.name, func(t *testing.T) {
			d := &fullAt{Driver: inmemory.New(), at: step.path}
			e := newEnv(t, d)
			orgKey, pub := newKey(t), newKey(t)
			e.org("acme", []*key{orgKey}, 1, repoDelegation("acme/app", 1, pub))
			bob := e.user("bob", "acme", "publisher")
			app := trustnames.RoleForRepo("acme/app")
			e.mustPut(201, app, sign(t, role(1, nil, targets("acme/app:v1", target("v1"))), pub), bob)
			cache := t.TempDir()
			timestamp := e.do("GET", "/tuf/timestamp.json", "", nil).body

			d.armed.Store(true)
			checkRefusedForSpace(t, "the publish", e.put(app, sign(t, role(2, nil, targets("acme/app:v1", target("v2"))), pub), bob))
			d.armed.Store(false)
			if got := e.do("GET", "/tuf/timestamp.json", "", nil).body; !bytes.Equal(got, timestamp) {
				t.Error("the served timestamp changed")
			}
			if r := e.do("GET", "/tuf/2."+app+".json", bob, nil); r.status != 404 {
				t.Errorf("version 2 is served: %d", r.status)
			}
			if tf, err := e.resolve(t, cache, bob, "acme/app:v1", nil); err != nil || tf.Length != target("v1").Length {
				t.Errorf("acme/app:v1 after the refusal: %+v %v; want version 1's target", tf, err)
			}
			e.mustPut(201, app, sign(t, role(2, nil, targets("acme/app:v1", target("v2 again"))), pub), bob)
			if tf, err := e.resolve(t, cache, bob, "acme/app:v1", nil); err != nil || tf.Length != target("v2 again").Length {
				t.Errorf("acme/app:v1 after space came back: %+v %v", tf, err)
			}
		})
	}
}

// TestASickStoreIs503: a write the storage backend fails in a way that may pass
// (driver.ErrUnavailable) refuses a publish and a management change with 503
// UNAVAILABLE and a Retry-After, never a 500, and names no endpoint; once the
// store answers again the same requests succeed.
func TestASickStoreIs503(t *testing.T) {
	d := &fullAt{Driver: inmemory.New(), at: "/", fail: fmt.Errorf("SlowDown from http://10.1.2.3:9000: %w", driver.ErrUnavailable)}
	e := newEnv(t, d)
	orgKey, pub := newKey(t), newKey(t)
	e.org("acme", []*key{orgKey}, 1, repoDelegation("acme/app", 1, pub))
	bob := e.user("bob", "acme", "publisher")
	app := trustnames.RoleForRepo("acme/app")
	v1 := sign(t, role(1, nil, targets("acme/app:v1", target("v1"))), pub)

	d.armed.Store(true)
	for what, r := range map[string]reply{
		"a publish":                e.put(app, v1, bob),
		"creating an organisation": e.do("POST", "/api/v1/orgs", e.admin, []byte(`{"name":"globex"}`)),
	} {
		if r.status != 503 || !contains(r.body, `"UNAVAILABLE"`) || !contains(r.body, "temporarily unavailable") || contains(r.body, "10.1.2.3") {
			t.Errorf("%s on a sick store: %d %s; want 503 UNAVAILABLE naming no endpoint", what, r.status, r.body)
		}
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s <= 0 {
			t.Errorf("%s on a sick store: Retry-After %q, want seconds", what, r.header.Get("Retry-After"))
		}
	}
	d.armed.Store(false)
	e.mustPut(201, app, v1, bob)
	e.mustAPI(201, "POST", "/orgs", map[string]string{"name": "globex"})
}

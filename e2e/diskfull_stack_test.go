package e2e

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/testlog"
	"github.com/signet-oss/signet/internal/tmpfs"
)

// get fetches u and returns the body; it fails t unless the answer is 200.
func getOK(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", u, resp.Status, b.Bytes())
	}
	return b.Bytes()
}

// logSays reports whether log holds want, waiting a little for a process's
// output to come through its pipe.
func logSays(log *testlog.Buffer, want string) bool {
	for range 100 {
		if strings.Contains(log.String(), want) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// TestDiskFullTrustd runs `trustctl up` with trustd's data directory on a full
// disk: a signed push is refused at its publish with a message that says trustd
// is out of space, the trust graph stays byte for byte as it was, what it
// vouched for is still pulled through the gate, the operator is told what to
// do, and once space is freed the same push succeeds without a restart.
func TestDiskFullTrustd(t *testing.T) {
	t.Parallel()
	var trustdData string
	st := startStackWith(t, func(data string) {
		trustdData = filepath.Join(data, "trustd")
		tmpfs.MountOn(t, trustdData, diskSize)
	})
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")
	v1 := newImage(t, "diskfull-trustd-v1", newLayer(t, "app/v1.bin", 8<<10))
	st.pushLayout(t, "acme/app:v1", "alice", v1)
	admin := st.admin()
	before := tmpfs.TrustGraphFiles(t, trustdData)
	timestamp := getOK(t, st.Trustd+"/tuf/timestamp.json")

	filler := tmpfs.Fill(t, trustdData, 0)
	v2 := newImage(t, "diskfull-trustd-v2", newLayer(t, "app/v2.bin", 8<<10))
	v2Layout := writeLayout(t, v2)

	t.Run("a signed push is refused at its publish, saying why", func(t *testing.T) {
		out := st.trustctlFails(t, "push", v2Layout, st.Addr+"/acme/app:v2", "--key", "alice")
		if !strings.Contains(out, "trustd is out of storage space") || !strings.Contains(out, "UNAVAILABLE") {
			t.Errorf("trustctl push on trustd's full disk said:\n%s\nwant it to say trustd is out of storage space (UNAVAILABLE)", out)
		}
		out = st.trustctlFails(t, "org", "create", "globex")
		if !strings.Contains(out, "trustd is out of storage space") {
			t.Errorf("trustctl org create on trustd's full disk said:\n%s", out)
		}
	})

	t.Run("the trust graph is exactly as before", func(t *testing.T) {
		tmpfs.SameFiles(t, "trustd's metadata after the refused publish", before, tmpfs.TrustGraphFiles(t, trustdData))
		if got := getOK(t, st.Trustd+"/tuf/timestamp.json"); !bytes.Equal(got, timestamp) {
			t.Error("the served timestamp changed")
		}
		if got := manifestDigest(t, admin, "acme/app", "v1"); got != v1.ManifestDigest {
			t.Errorf("acme/app:v1 pulls %s, want %s", got, v1.ManifestDigest)
		}
		if _, _, err := admin.do(admin.newRequest("GET", "/v2/acme/app/manifests/v2", nil), http.StatusNotFound); err != nil {
			t.Errorf("the refused tag: %v", err)
		}
	})

	t.Run("the operator is told what to do", func(t *testing.T) {
		if want := fullDiskLine(trustdData, "publishes"); !logSays(st.log, want) {
			t.Errorf("trustctl up's log does not say %q:\n%s", want, problems(st.log, 20))
		}
	})

	t.Run("once space is freed the same push succeeds", func(t *testing.T) {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		st.trustctl(t, "push", v2Layout, st.Addr+"/acme/app:v2", "--key", "alice")
		if got := manifestDigest(t, admin, "acme/app", "v2"); got != v2.ManifestDigest {
			t.Errorf("acme/app:v2 pulls %s, want %s", got, v2.ManifestDigest)
		}
		st.trustctl(t, "org", "create", "globex")
		s := newStored()
		s.image("acme/app", "v1", v1)
		s.image("acme/app", "v2", v2)
		s.check(t, admin)
	})
}

// TestDiskFullRegistryBehindTheGate runs `trustctl up` with the registry's data
// directory on a full disk and its gate on: an unsigned push is still DENIED,
// not a 500, though its audit record cannot be written; the manifest of a signed
// push, whose target trustd published, is refused with 503, not DENIED as "not
// signed": the gate could not store the metadata that vouches for it, and until
// it can it denies nothing; what was admitted is still pulled; and once space is
// freed the signed manifest is admitted.
func TestDiskFullRegistryBehindTheGate(t *testing.T) {
	t.Parallel()
	var registryData string
	st := startStackWith(t, func(data string) {
		registryData = filepath.Join(data, "registry")
		tmpfs.MountOn(t, registryData, diskSize)
	})
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")
	v1 := newImage(t, "diskfull-gate-v1", newLayer(t, "app/v1.bin", 8<<10))
	st.pushLayout(t, "acme/app:v1", "alice", v1)
	admin := st.admin()
	v2 := newImage(t, "diskfull-gate-v2", newLayer(t, "app/v2.bin", 8<<10))
	unsigned := newImage(t, "diskfull-gate-unsigned", newLayer(t, "app/u.bin", 8<<10))
	for _, img := range []image{v2, unsigned} {
		if err := pushBlobs(admin, "acme/app", img); err != nil {
			t.Fatal(err)
		}
	}

	filler := tmpfs.Fill(t, registryData, 0)
	putManifest := func(t *testing.T, what, tag string, img image) {
		t.Helper()
		req := admin.newRequest("PUT", "/v2/acme/app/manifests/"+tag, bytes.NewReader(img.Manifest))
		req.Header.Set("Content-Type", mediaTypeOCIManifest)
		resp, body := send(t, admin, req)
		checkOutOfSpace(t, what, resp, body, "the registry")
	}

	t.Run("an unsigned manifest is still DENIED, though its audit record cannot be written", func(t *testing.T) {
		putDenied(t, admin, "acme/app", "v3", unsigned.Manifest, "is not signed for acme/app:v3")
		if !logSays(st.log, "writing the audit record of a denial failed") {
			t.Errorf("the denial's lost audit record is not in the log:\n%s", problems(st.log, 20))
		}
	})

	if out, err := st.tryTrustctl("sign", st.Addr+"/acme/app:v2", "--key", "alice", "--layout", writeLayout(t, v2)); err != nil {
		t.Fatal(err) // trustd has room: the target is published
	} else if !strings.Contains(out, "Signed acme/app:v2") {
		t.Fatalf("trustctl sign said:\n%s", out)
	}

	t.Run("the signed manifest is refused for lack of space, not DENIED", func(t *testing.T) {
		putManifest(t, "the signed manifest's PUT", "v2", v2)
	})

	t.Run("while newer trust metadata cannot be stored, the gate decides nothing", func(t *testing.T) {
		putManifest(t, "an unsigned manifest's PUT", "v3", unsigned)
	})

	t.Run("what was admitted is still pulled", func(t *testing.T) {
		s := newStored()
		s.image("acme/app", "v1", v1)
		s.check(t, admin)
	})

	t.Run("the operator is told what to do", func(t *testing.T) {
		if want := fullDiskLine(registryData, "pushes"); !logSays(st.log, want) {
			t.Errorf("trustctl up's log does not say %q:\n%s", want, problems(st.log, 20))
		}
	})

	t.Run("once space is freed the signed manifest is admitted", func(t *testing.T) {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		if err := admin.putManifest("acme/app", "v2", mediaTypeOCIManifest, v2.Manifest); err != nil {
			t.Fatal(err)
		}
		s := newStored()
		s.image("acme/app", "v1", v1)
		s.image("acme/app", "v2", v2)
		s.check(t, admin)
		checkBlobFiles(t, registryData)
	})
}

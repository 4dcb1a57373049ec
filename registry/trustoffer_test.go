package registry

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/internal/tuftest"
	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/storage/driver/inmemory"
)

// putWithTimestamp PUTs manifest m as ref of acme/app with ts in the
// TimestampHeader, giving up after 20 s: the index of these tests pauses an
// hour between refreshes, so a PUT that waited for the pause never returns.
func putWithTimestamp(t *testing.T, g *gated, ref string, m []byte, ts string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, g.srv.URL+"/v2/acme/app/manifests/"+ref, strings.NewReader(string(m)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", storage.MediaTypeOCIManifest)
	req.Header.Set(TimestampHeader, ts)
	resp, err := g.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("PUT %s with the new timestamp: %v (did it wait for the pause between refreshes?)", ref, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

func TestAPushHandingTheNewTimestampIsAdmittedWithoutWaitingForThePause(t *testing.T) {
	g := newGatedPausing(t, time.Hour, inmemory.New(), nil, nil)
	m := g.image(t, "acme/app", "now")
	g.sign("acme/app:v1", m)
	before := g.index.Refreshes()
	ts := base64.StdEncoding.EncodeToString(g.tuf.File("timestamp.json"))
	if code, body := putWithTimestamp(t, g, "v1", m, ts); code != http.StatusCreated {
		t.Fatalf("PUT right after the publish, with its timestamp: %d %s", code, body)
	}
	if n := g.index.Refreshes() - before; n != 1 {
		t.Fatalf("%d refreshes for the push, want exactly the one the timestamp started", n)
	}
	// The next PUT of the same push hands the same timestamp: nothing more,
	// though trustd has published since.
	g.sign("acme/app:v2", m)
	if code, body := putWithTimestamp(t, g, "v1", m, ts); code != http.StatusCreated {
		t.Fatalf("the same PUT again: %d %s", code, body)
	}
	if n := g.index.Refreshes() - before; n != 1 {
		t.Fatalf("a timestamp already held started a refresh (%d)", n)
	}
}

func TestAForgedReplayedOrOlderTimestampHeaderChangesNothing(t *testing.T) {
	g := newGatedPausing(t, time.Hour, inmemory.New(), nil, nil)
	older := base64.StdEncoding.EncodeToString(g.tuf.File("timestamp.json"))
	m := g.image(t, "acme/app", "held")
	g.sign("acme/app:v1", m)
	held := g.tuf.File("timestamp.json")
	if code, body := putWithTimestamp(t, g, "v1", m, base64.StdEncoding.EncodeToString(held)); code != http.StatusCreated {
		t.Fatalf("the first push: %d %s", code, body)
	}
	forged, err := metadata.Timestamp().FromBytes(held)
	if err != nil {
		t.Fatal(err)
	}
	forged.Signed.Version += 10
	g.tuf.Sign(forged, tuftest.NewKey(t))
	fb, err := forged.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	before := g.index.Refreshes()
	for name, ts := range map[string]string{
		"forged":   base64.StdEncoding.EncodeToString(fb),
		"replayed": base64.StdEncoding.EncodeToString(held),
		"older":    older,
	} {
		// The manifest is admitted already: the PUT needs no refresh, so
		// any refresh would be the header's doing.
		if code, body := putWithTimestamp(t, g, "v1", m, ts); code != http.StatusCreated {
			t.Fatalf("%s: %d %s", name, code, body)
		}
		if n := g.index.Refreshes(); n != before {
			t.Fatalf("a %s timestamp started a refresh", name)
		}
	}
	if !strings.Contains(g.logs.String(), "offered trust timestamp ignored") {
		t.Error("the forged timestamp was not logged")
	}
	for name, ts := range map[string]string{"not base64": "%%%", "not a timestamp": base64.StdEncoding.EncodeToString([]byte("{}"))} {
		code, body := putWithTimestamp(t, g, "v1", m, ts)
		if code != http.StatusBadRequest || !strings.Contains(body, "TIMESTAMP_INVALID") {
			t.Errorf("%s: %d %s, want 400 TIMESTAMP_INVALID", name, code, body)
		}
	}
}

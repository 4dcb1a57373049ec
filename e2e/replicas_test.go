package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
)

// startReplicas starts n registry processes on one fresh S3 bucket.
func startReplicas(t *testing.T, n int) []*registry {
	t.Helper()
	st := newS3Store(t)
	regs := make([]*registry, n)
	for i := range regs {
		regs[i] = startRegistryOn(t, st)
	}
	return regs
}

// TestReplicasConformance runs the OCI conformance suite through a round-robin proxy
// in front of two replicas on one bucket: consecutive requests, the POST, PATCH and
// PUT of one upload included, land on different processes.
func TestReplicasConformance(t *testing.T) {
	t.Parallel()
	regs := startReplicas(t, 2)
	rr := startRoundRobin(t, regs...)
	runConformance(t, rr.Addr)
	t.Logf("the proxy forwarded %d requests, alternately to %s and %s", rr.requests(), regs[0].Addr, regs[1].Addr)
}

// TestReplicasUploadAcross starts an upload on replica A (POST and a first PATCH),
// continues it on replica B (PATCH) and completes it on A (PUT with the last
// chunk); both replicas must then serve the blob with its digest.
func TestReplicasUploadAcross(t *testing.T) {
	t.Parallel()
	regs := startReplicas(t, 2)
	a, b := newRegClient(regs[0].Addr), newRegClient(regs[1].Addr)
	for _, tc := range []struct {
		name   string
		chunks []int // sizes of the PATCH on A, the PATCH on B and the PUT on A
	}{
		{"small chunks", []int{1000, 2000, 300}},
		{"chunks around the S3 multipart part size", []int{6<<20 + 7, 5 << 20, 1<<20 + 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := "e2e/replicas/upload"
			total := 0
			for _, n := range tc.chunks {
				total += n
			}
			content := randomBytes(total)
			dgst := sha256Digest(content)
			first, second := tc.chunks[0], tc.chunks[0]+tc.chunks[1]

			loc, err := a.startUpload(repo)
			if err != nil {
				t.Fatal(err)
			}
			patch := func(c *regClient, loc string, from, to int) string {
				t.Helper()
				req := c.newRequest("PATCH", loc, bytes.NewReader(content[from:to]))
				req.Header.Set("Content-Type", "application/octet-stream")
				req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", from, to-1))
				resp, _, err := c.do(req, http.StatusAccepted)
				if err != nil {
					t.Fatal(err)
				}
				next, err := c.resolve(resp.Header.Get("Location"))
				if err != nil {
					t.Fatalf("PATCH %s: %v", loc, err)
				}
				return next
			}
			loc = patch(a, loc, 0, first)

			// Replica B takes the session over: it reports what A received, and
			// appends the next chunk.
			loc = rehost(t, loc, regs[1].Addr)
			held, loc, err := b.uploadStatus(loc)
			if err != nil {
				t.Fatalf("GET the upload on replica B: %v", err)
			}
			if held != int64(first) {
				t.Fatalf("GET the upload on replica B: holds %d bytes, want the %d that replica A received", held, first)
			}
			loc = patch(b, loc, first, second)

			// Back on A: the last chunk goes with the closing PUT.
			loc = rehost(t, loc, regs[0].Addr)
			req := a.newRequest("PUT", withQuery(loc, "digest", dgst), bytes.NewReader(content[second:]))
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, _, err := a.do(req, http.StatusCreated)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Header.Get("Docker-Content-Digest"); got != dgst {
				t.Errorf("PUT on replica A: Docker-Content-Digest %q, want %s", got, dgst)
			}
			for i, c := range []*regClient{a, b} {
				got, err := c.getBlob(repo, dgst)
				if err != nil {
					t.Errorf("replica %c: %v", 'A'+i, err)
				} else if !bytes.Equal(got, content) {
					t.Errorf("replica %c serves different bytes for %s", 'A'+i, dgst)
				}
			}
		})
	}
}

// TestReplicasConcurrentPushesToOneTag has 16 clients push their own manifest to one
// tag at once, spread over two replicas and a round-robin proxy in front of both: the
// tag must end whole, on one of the pushed manifests, the same through every replica.
func TestReplicasConcurrentPushesToOneTag(t *testing.T) {
	t.Parallel()
	regs := startReplicas(t, 2)
	rr := startRoundRobin(t, regs...)
	pushToOneTagConcurrently(t, 2, regs[0].Addr, regs[1].Addr, rr.Addr)
}

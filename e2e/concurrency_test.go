package e2e

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// TestConcurrentPushesToOneTag has 16 clients push the same blobs, each its own
// manifest, to the same tag at once, over every upload method. The tag must end on
// one of the pushed manifests, whole, and everything it references must be served
// with its digest.
func TestConcurrentPushesToOneTag(t *testing.T) {
	t.Parallel()
	pushToOneTagConcurrently(t, 3, startRegistry(t).Addr)
}

// pushToOneTagConcurrently is TestConcurrentPushesToOneTag's check, rounds times;
// client i talks to addrs[i%len(addrs)], so with several replicas (or a proxy in
// front of them) the clients race through different processes.
func pushToOneTagConcurrently(t *testing.T, rounds int, addrs ...string) {
	const clients = 16
	const repo = "e2e/concurrent"

	for round := range rounds {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			// Fresh shared blobs each round, so every round races on first commits.
			shared := []layer{
				newLayer(t, "big.bin", 2<<20),
				newLayer(t, "mid.bin", 256<<10),
				newLayer(t, "small.bin", 1<<10),
			}
			images := make([]image, clients)
			byDigest := map[string]image{}
			for i := range images {
				images[i] = newImage(t, fmt.Sprintf("round-%d-client-%d", round, i), shared...)
				byDigest[images[i].ManifestDigest] = images[i]
			}

			start := make(chan struct{})
			errs := make([]error, clients)
			var wg sync.WaitGroup
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rc := newRegClient(addrs[i%len(addrs)])
					<-start
					mode := uploadMode(i % int(numUploadModes))
					if err := rc.pushImage(repo, "latest", images[i], mode); err != nil {
						errs[i] = fmt.Errorf("client %d (%s, via %s): %w", i, mode, addrs[i%len(addrs)], err)
					}
				}()
			}
			close(start)
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Error(err)
				}
			}

			rc := newRegClient(addrs[0])
			body, hdr, err := rc.getManifest(repo, "latest")
			if err != nil {
				t.Fatal(err)
			}
			winner, ok := byDigest[sha256Digest(body)]
			if !ok || !bytes.Equal(body, winner.Manifest) {
				t.Fatalf("tag latest serves %d bytes hashing to %s, which is none of the %d pushed manifests:\n%s",
					len(body), sha256Digest(body), clients, body)
			}
			if got := hdr.Get("Docker-Content-Digest"); got != winner.ManifestDigest {
				t.Errorf("tag latest: Docker-Content-Digest %s, body hashes to %s", got, winner.ManifestDigest)
			}
			for _, addr := range addrs[1:] {
				other, _, err := newRegClient(addr).getManifest(repo, "latest")
				if err != nil {
					t.Error(err)
				} else if !bytes.Equal(other, body) {
					t.Errorf("tag latest through %s serves %s, through %s %s", addr, sha256Digest(other), addrs[0], winner.ManifestDigest)
				}
			}
			for d, want := range winner.blobs() {
				got, err := rc.getBlob(repo, d)
				if err != nil {
					t.Error(err)
				} else if !bytes.Equal(got, want) {
					t.Errorf("blob %s: served bytes differ from pushed", d)
				}
			}
			// Every pushed manifest stays pullable by digest.
			for _, im := range images {
				body, _, err := rc.getManifest(repo, im.ManifestDigest)
				if err != nil {
					t.Error(err)
				} else if !bytes.Equal(body, im.Manifest) {
					t.Errorf("manifest %s: served bytes differ from pushed", im.ManifestDigest)
				}
			}
			tags, err := rc.tags(repo)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tags, []string{"latest"}) {
				t.Errorf("tags %v, want [latest]", tags)
			}
		})
	}
}

package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const mib = 1 << 20

// pushImage pushes im to repo:tag as real clients do: per blob a HEAD, and when
// missing an upload, then the manifest. With chunked, a blob goes up as POST, one
// PATCH streaming it and an empty PUT ?digest=; otherwise as POST and a monolithic
// PUT ?digest= carrying it.
func pushImage(ctx context.Context, c *client, repo, tag string, im *image, chunked bool) error {
	up := func(b blob) error {
		ok, err := c.blobExists(ctx, repo, b.digest)
		if err != nil || ok {
			return err
		}
		loc, err := c.startUpload(ctx, repo)
		if err != nil {
			return err
		}
		if !chunked {
			return c.commit(ctx, loc, b.digest, b.data)
		}
		if loc, err = c.patch(ctx, loc, b.data); err != nil {
			return err
		}
		return c.commit(ctx, loc, b.digest, nil)
	}
	for _, l := range im.layers {
		if err := up(l); err != nil {
			return err
		}
	}
	if err := up(im.config); err != nil {
		return err
	}
	return c.putManifest(ctx, repo, tag, im.manifest)
}

// pushRetries is how many times a failed push is tried again. The reference's s3
// driver on versitygw now and then has a write refused (500, versitygw's posix
// backend answering ExistingObjectIsDirectory while a sibling directory is being
// removed); real clients retry such pushes, and so does the benchmark, counting each
// failure in the result and keeping the time it cost. A push that fails every time
// stops the run.
const pushRetries = 2

// retryPush runs push until it succeeds, at most 1+pushRetries times.
func retryPush(ctx context.Context, res *Result, push func() error) error {
	var err error
	for range 1 + pushRetries {
		if err = push(); err == nil || ctx.Err() != nil {
			return err
		}
		res.noteRetry(err)
	}
	return err
}

// pullImage GETs the manifest and every layer, sequentially, into the sink.
func pullImage(ctx context.Context, c *client, repo, tag string, im *image, buf []byte) (int64, error) {
	n, err := c.get(ctx, "/v2/"+repo+"/manifests/"+tag, acceptManifest, sink{}, buf)
	if err != nil {
		return n, err
	}
	for _, l := range im.layers {
		m, err := c.get(ctx, "/v2/"+repo+"/blobs/"+l.digest, "", sink{}, buf)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// warmUp pushes a few small images and reads their manifests back, so connections,
// caches and the server's runtime are warm before anything is timed.
func warmUp(ctx context.Context, c *client, p *plan, res *Result) error {
	_, _, err := concurrently(ctx, p.cfg.Clients, len(p.warm), time.Minute, func(ctx context.Context, _, i int) error {
		return retryPush(ctx, res, func() error {
			return pushImage(ctx, c, fmt.Sprintf("warm/r%d", i%p.cfg.Clients), fmt.Sprintf("v%d", i), &p.warm[i], false)
		})
	})
	if err != nil {
		return err
	}
	bufs := workerBuffers(p.cfg.Clients, 64<<10)
	_, _, err = concurrently(ctx, p.cfg.Clients, 8*len(p.warm), time.Minute, func(ctx context.Context, w, i int) error {
		i %= len(p.warm)
		_, err := c.get(ctx, fmt.Sprintf("/v2/warm/r%d/manifests/v%d", i%p.cfg.Clients, i), acceptManifest, sink{}, bufs[w])
		return err
	})
	return err
}

// largePush pushes a fresh large image into a fresh repository per run.
func largePush(ctx context.Context, c *client, p *plan, res *Result) error {
	for r := range p.cfg.PushRuns {
		im := p.largeImage(r)
		start := time.Now()
		if err := retryPush(ctx, res, func() error {
			return pushImage(ctx, c, fmt.Sprintf("large/run%d", r), "latest", &im, true)
		}); err != nil {
			return err
		}
		res.LargePushRuns = append(res.LargePushRuns, float64(im.size())/mib/time.Since(start).Seconds())
	}
	res.LargePushMiBs = median(res.LargePushRuns)
	return nil
}

// largePull pulls the last pushed large image: once verified, then timed.
func largePull(ctx context.Context, c *client, p *plan, res *Result) error {
	r := p.cfg.PushRuns - 1
	repo := fmt.Sprintf("large/run%d", r)
	// The layer buffers still hold run r's layers; re-derive the digests only.
	im := p.largeImage(r)
	if err := verifyPull(ctx, c, repo, "latest", &im); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for range p.cfg.PullRuns {
		start := time.Now()
		n, err := pullImage(ctx, c, repo, "latest", &im, buf)
		if err != nil {
			return err
		}
		res.LargePullRuns = append(res.LargePullRuns, float64(n)/mib/time.Since(start).Seconds())
	}
	res.LargePullMiBs = median(res.LargePullRuns)
	return nil
}

// verifyPull checks that what the server returns hashes to what was pushed.
func verifyPull(ctx context.Context, c *client, repo, tag string, im *image) error {
	buf := make([]byte, 1<<20)
	check := func(path, accept, want string) error {
		h := sha256.New()
		if _, err := c.get(ctx, path, accept, h, buf); err != nil {
			return err
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != want {
			return fmt.Errorf("GET %s: content hashes to %s, want %s", path, got, want)
		}
		return nil
	}
	if err := check("/v2/"+repo+"/manifests/"+tag, acceptManifest, im.manifest.digest); err != nil {
		return err
	}
	if err := check("/v2/"+repo+"/blobs/"+im.config.digest, "", im.config.digest); err != nil {
		return err
	}
	for _, l := range im.layers {
		if err := check("/v2/"+repo+"/blobs/"+l.digest, "", l.digest); err != nil {
			return err
		}
	}
	return nil
}

// smallRepo spreads the small images over as many repositories as clients.
func smallRepo(p *plan, i int) string { return fmt.Sprintf("small/r%d", i%p.cfg.Clients) }

func smallPush(ctx context.Context, c *client, p *plan, res *Result) error {
	n, elapsed, err := concurrently(ctx, p.cfg.Clients, len(p.small), p.cfg.SmallDuration, func(ctx context.Context, _, i int) error {
		return retryPush(ctx, res, func() error {
			return pushImage(ctx, c, smallRepo(p, i), fmt.Sprintf("v%d", i), &p.small[i], false)
		})
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no push completed within %s", p.cfg.SmallDuration)
	}
	res.SmallPushes = n
	res.SmallPushesPerSec = float64(n) / elapsed.Seconds()
	// Check a sample outside the timed loop: the first and the last image pushed.
	for _, i := range []int{0, n - 1} {
		if err := verifyPull(ctx, c, smallRepo(p, i), fmt.Sprintf("v%d", i), &p.small[i]); err != nil {
			return err
		}
	}
	return nil
}

// manifestTags is how many of the small images the manifest GETs cycle through.
const manifestTags = 256

func manifestGet(ctx context.Context, c *client, p *plan, res *Result) error {
	tags := min(res.SmallPushes, manifestTags)
	if tags == 0 {
		return fmt.Errorf("no small images to read")
	}
	paths := make([]string, tags)
	for i := range paths {
		paths[i] = fmt.Sprintf("/v2/%s/manifests/v%d", smallRepo(p, i), i)
	}
	bufs := workerBuffers(p.cfg.Clients, 64<<10)
	n, elapsed, err := concurrently(ctx, p.cfg.Clients, 1<<40, p.cfg.GetDuration, func(ctx context.Context, w, i int) error {
		_, err := c.get(ctx, paths[i%tags], acceptManifest, sink{}, bufs[w])
		return err
	})
	if err != nil {
		return err
	}
	res.ManifestGets = n
	res.ManifestGetsPerSec = float64(n) / elapsed.Seconds()
	return nil
}

func workerBuffers(n, size int) [][]byte {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs
}

// concurrently runs op for i = 0, 1, ... from workers goroutines until max ops have
// been started or d has passed, then waits for the started ones. It returns how many
// completed and the time from start until the last finished; the first error stops
// the run.
func concurrently(ctx context.Context, workers, max int, d time.Duration, op func(ctx context.Context, worker, i int) error) (int, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
		errOnce    sync.Once
		firstErr   error
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= int64(max) {
					return
				}
				if err := op(ctx, w, int(i)); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, elapsed, firstErr
	}
	if err := ctx.Err(); err != nil {
		return 0, elapsed, err
	}
	return int(done.Load()), elapsed, nil
}

package tuf_test

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-oss/signet/trustnames"
)

// counter counts the requests and response bytes of a client.
type counter struct {
	next            http.RoundTripper
	requests, bytes atomic.Int64
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err == nil {
		c.requests.Add(1)
		c.bytes.Add(max(resp.ContentLength, 0))
	}
	return resp, err
}

func (c *counter) reset() { c.requests.Store(0); c.bytes.Store(0) }

// TestScale measures the repository at scale (issue 4 "Scale"): SIGNET_SCALE=1 runs
// it, SIGNET_SCALE_REPOS sets the number of repositories (default 10,000), in
// organisations of 100. It prints publish latency under concurrent publishers,
// the size of snapshot.json, and what a client refresh costs.
//
//	SIGNET_SCALE=1 go test -run TestScale -v -timeout 30m ./trustd/tuf/
func TestScale(t *testing.T) {
	if os.Getenv("SIGNET_SCALE") == "" {
		t.Skip("set SIGNET_SCALE=1 to run the scale measurement")
	}
	repos := 10000
	if v := os.Getenv("SIGNET_SCALE_REPOS"); v != "" {
		repos, _ = strconv.Atoi(v)
	}
	const perOrg = 100
	orgs := (repos + perOrg - 1) / perOrg
	e := newEnv(t, nil)
	pub := newKey(t)
	names := make([]string, 0, repos)
	start := time.Now()
	for o := range orgs {
		org := fmt.Sprintf("org%d", o)
		var ds []delegation
		for i := 0; i < perOrg && len(names) < repos; i++ {
			repo := fmt.Sprintf("%s/app%d", org, i)
			names = append(names, repo)
			ds = append(ds, repoDelegation(repo, 1, pub))
		}
		e.org(org, []*key{newKey(t)}, 1, ds...)
	}
	t.Logf("set up %d organisations in %s", orgs, time.Since(start).Round(time.Millisecond))

	// publish publishes the next version of every repository in todo (distinct)
	// with `workers` concurrent publishers, returning each one's latency.
	current := map[string]int64{}
	publish := func(todo []string, workers int) []time.Duration {
		lat := make([]time.Duration, len(todo))
		vers := make([]int64, len(todo))
		for i, repo := range todo {
			current[repo]++
			vers[i] = current[repo]
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(todo) {
						return
					}
					repo := todo[i]
					v := vers[i]
					body := sign(t, role(v, nil, targets(repo+":v1", target(fmt.Sprint(repo, v)))), pub)
					t0 := time.Now()
					r := e.put(trustnames.RoleForRepo(repo), body, e.admin)
					lat[i] = time.Since(t0)
					if r.status != 201 {
						t.Errorf("%s: %d %s", repo, r.status, r.body)
						return
					}
				}
			})
		}
		wg.Wait()
		return lat
	}
	start = time.Now()
	publish(names, 64)
	t.Logf("published version 1 of %d repository roles in %s", repos, time.Since(start).Round(time.Millisecond))

	for _, workers := range []int{1, 16, 64} {
		todo := names[:min(len(names), 50*workers)]
		t0 := time.Now()
		lat := publish(todo, workers)
		wall := time.Since(t0)
		slices.Sort(lat)
		t.Logf("publish with %2d concurrent publishers: %d publishes in %s (%.0f/s): p50 %s, p99 %s",
			workers, len(lat), wall.Round(time.Millisecond), float64(len(lat))/wall.Seconds(),
			lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*99/100].Round(time.Millisecond))
	}
	var snapLen int
	{
		r := e.do("GET", "/tuf/api/roles/snapshot", "", nil)
		var info struct{ Version int64 }
		jsonUnmarshal(r.body, &info)
		body := e.do("GET", fmt.Sprintf("/tuf/%d.snapshot.json", info.Version), "", nil).body
		snapLen = len(body)
	}
	t.Logf("snapshot.json: %d bytes for %d roles (%.0f bytes per repository)", snapLen, repos+orgs+1, float64(snapLen)/float64(repos))

	c := &counter{next: http.DefaultTransport}
	dir := t.TempDir()
	one := names[len(names)/2]
	if _, err := e.resolve(t, dir, e.admin, one+":v1", c); err != nil {
		t.Fatal(err)
	}
	t.Logf("first refresh and lookup of %s: %d requests, %d bytes", one, c.requests.Load(), c.bytes.Load())
	c.reset()
	if _, err := e.resolve(t, dir, e.admin, one+":v1", c); err != nil {
		t.Fatal(err)
	}
	t.Logf("refresh when nothing changed: %d requests, %d bytes (go-tuf probes for the next root, then reads timestamp.json)", c.requests.Load(), c.bytes.Load())
	publish([]string{names[0]}, 1)
	c.reset()
	if _, err := e.resolve(t, dir, e.admin, one+":v1", c); err != nil {
		t.Fatal(err)
	}
	t.Logf("refresh after another repository changed: %d requests, %d bytes", c.requests.Load(), c.bytes.Load())
	publish([]string{one}, 1)
	c.reset()
	if _, err := e.resolve(t, dir, e.admin, one+":v1", c); err != nil {
		t.Fatal(err)
	}
	t.Logf("refresh after the looked-up repository changed: %d requests, %d bytes", c.requests.Load(), c.bytes.Load())
}

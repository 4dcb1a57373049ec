package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// The admission gate's cost, on one enforcing `trustctl up` with an open
// namespace (--open 'open/**'), both repositories on the same registry in the
// same run:
//
//   - manifest PUT latency: a signed manifest PUT by tag in the enforced
//     repository acme/app (its target published beforehand, the gate's view
//     warm) against the same manifest PUT in the open repository open/app, one
//     client, the two alternating; p50 and p99 of each;
//   - signed-referrer PUT latency: a cosign signature artifact, and a cosign
//     attestation artifact, by the delegated key in acme/app against the same
//     artifact in open/app, in three rounds (gatereferrers.go);
//   - pull throughput: GET manifest and layers of a large image through
//     admission (acme/app, signed) against the same image in open/app,
//     alternating; the median MiB/s of each.
//
// The targets (issue 6): admission adds at most 2 ms at p50, and costs at most
// 5% on pulls; (issue 14) admission of a signed referrer adds at most 5 ms at
// p50.

// GateConfig shapes the gate benchmark. The zero value of a field means its
// default.
type GateConfig struct {
	// Manifests is how many signed manifest PUTs are timed (and as many open
	// ones). Default: 200.
	Manifests int
	// Layers and LayerSize shape the pulled image. Default: 4 layers of 64 MiB.
	Layers    int
	LayerSize int64
	// PullRuns is how many pulls of each repository are timed. Default: 5.
	PullRuns int
	// WorkDir holds the binary and the stack's data; "" means a temporary
	// directory, removed.
	WorkDir string
	// Log receives progress; nil means none.
	Log io.Writer
}

// Targets of the gate's cost.
const (
	gateP50Target  = 2 * time.Millisecond
	gatePullTarget = 0.05
)

// GateReport is what RunGate measured.
type GateReport struct {
	Manifests int `json:"manifests"`
	// Manifest PUT latencies, enforced (signed, warm) and open.
	EnforcedP50 time.Duration `json:"enforcedPutP50Ns"`
	EnforcedP99 time.Duration `json:"enforcedPutP99Ns"`
	OpenP50     time.Duration `json:"openPutP50Ns"`
	OpenP99     time.Duration `json:"openPutP99Ns"`
	AddedP50    time.Duration `json:"addedP50Ns"`
	AddedP99    time.Duration `json:"addedP99Ns"`
	// Signed-referrer PUTs, one timing per format (gatereferrers.go).
	Referrers []ReferrerTiming `json:"referrers"`
	// Pull throughput of the large image, median of the runs.
	PullBytes      int64   `json:"pullBytes"`
	Layers         int     `json:"layers"`
	PullRuns       int     `json:"pullRuns"`
	EnforcedPullMi float64 `json:"enforcedPullMiBps"`
	OpenPullMi     float64 `json:"openPullMiBps"`
	// PullCost is 1 - enforced/open: the share of throughput admission costs.
	PullCost float64 `json:"pullCost"`
	// Targets.
	AddedP50Target         time.Duration `json:"addedP50TargetNs"`
	PullCostTarget         float64       `json:"pullCostTarget"`
	ReferrerAddedP50Target time.Duration `json:"referrerAddedP50TargetNs"`
}

// WriteTable prints the report for people.
func (r *GateReport) WriteTable(w io.Writer) error {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	_, err := fmt.Fprintf(w, `admission gate on trustctl up (filesystem): enforced acme/app vs open open/app, same registry, same run
  manifest PUT by tag, %d each, one client   p50 %7.3f ms   p99 %7.3f ms
    open repository                         p50 %7.3f ms   p99 %7.3f ms
    added by admission (signed, warm)       p50 %+7.3f ms   p99 %+7.3f ms   (target p50 <= %.0f ms: %s)
  pull of %.0f MiB (manifest, config, %d layers), median of %d
    enforced repository                     %8.1f MiB/s
    open repository                         %8.1f MiB/s
    cost of admission                       %+7.1f %%        (target <= %.0f %%: %s)
`, r.Manifests, ms(r.EnforcedP50), ms(r.EnforcedP99), ms(r.OpenP50), ms(r.OpenP99),
		ms(r.AddedP50), ms(r.AddedP99), ms(r.AddedP50Target), verdict(r.AddedP50 <= r.AddedP50Target),
		float64(r.PullBytes)/(1<<20), r.Layers, r.PullRuns, r.EnforcedPullMi, r.OpenPullMi,
		100*r.PullCost, 100*r.PullCostTarget, verdict(r.PullCost <= r.PullCostTarget))
	if err != nil {
		return err
	}
	for _, t := range r.Referrers {
		if err := t.writeTable(w, r.ReferrerAddedP50Target, verdict); err != nil {
			return err
		}
	}
	return nil
}

// RunGate starts an enforcing `trustctl up`, publishes the targets, and
// measures the gate's cost.
func RunGate(ctx context.Context, cfg GateConfig) (*GateReport, error) {
	cfg = cfg.withDefaults()
	logf := progress(cfg.Log)
	work, cleanup, err := workDir(cfg.WorkDir, "signet-bench-gate-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	ss, err := startSignedStack(ctx, work, logf, []string{"--open", "open/**"},
		[][]string{{"keys", "generate", "publisher"}, {"org", "create", "acme"}, {"org", "delegate", "acme/app", "--key", "publisher"}},
		"pull,push", gateEnforced, gateOpen)
	if err != nil {
		return nil, err
	}
	defer ss.close()
	c, pub := ss.c, ss.pub
	rep := &GateReport{Manifests: cfg.Manifests, Layers: cfg.Layers, PullRuns: cfg.PullRuns, AddedP50Target: gateP50Target, PullCostTarget: gatePullTarget,
		ReferrerAddedP50Target: gateReferrerP50Target}
	enf, opn, ims, err := timeManifestPuts(ctx, c, pub, cfg, logf)
	if err != nil {
		return nil, err
	}
	rep.EnforcedP50, rep.EnforcedP99 = percentile(enf, 0.50), percentile(enf, 0.99)
	rep.OpenP50, rep.OpenP99 = percentile(opn, 0.50), percentile(opn, 0.99)
	rep.AddedP50, rep.AddedP99 = rep.EnforcedP50-rep.OpenP50, rep.EnforcedP99-rep.OpenP99

	if rep.Referrers, err = timeReferrerPuts(ctx, c, pub, ims[2:], logf); err != nil {
		return nil, err
	}

	size, enfPull, openPull, err := timeLargePulls(ctx, c, pub, cfg, logf)
	if err != nil {
		return nil, err
	}
	rep.PullBytes = size
	mibps := func(d time.Duration) float64 { return float64(rep.PullBytes) / (1 << 20) / d.Seconds() }
	rep.EnforcedPullMi, rep.OpenPullMi = mibps(medianDuration(enfPull)), mibps(medianDuration(openPull))
	rep.PullCost = 1 - rep.EnforcedPullMi/rep.OpenPullMi
	return rep, nil
}

// The repositories RunGate compares: one the gate enforces, one open.
const gateEnforced, gateOpen = "acme/app", "open/app"

// withDefaults fills the zero fields of c.
func (c GateConfig) withDefaults() GateConfig {
	if c.Manifests <= 0 {
		c.Manifests = 200
	}
	if c.Layers <= 0 {
		c.Layers = 4
	}
	if c.LayerSize <= 0 {
		c.LayerSize = 64 << 20
	}
	if c.PullRuns <= 0 {
		c.PullRuns = 5
	}
	return c
}

// alternating runs run(repo) runs times for each of the two repositories,
// alternating which goes first so drift in the machine's speed hits both
// alike, and returns each one's durations.
func alternating(runs int, run func(i int, repo string) (time.Duration, error)) (enforced, open []time.Duration, err error) {
	for i := range runs {
		order := []string{gateEnforced, gateOpen}
		if i%2 == 1 {
			order = []string{gateOpen, gateEnforced}
		}
		for _, repo := range order {
			d, err := run(i, repo)
			if err != nil {
				return nil, nil, err
			}
			if repo == gateEnforced {
				enforced = append(enforced, d)
			} else {
				open = append(open, d)
			}
		}
	}
	return enforced, open, nil
}

// timeManifestPuts pushes cfg.Manifests small images' manifests to both
// repositories, signed in the enforced one, and times each PUT. It returns the
// images too: all admitted in the enforced repository, all but the first two
// (which warm the gate) in the open one.
func timeManifestPuts(ctx context.Context, c *client, pub *gateSigner, cfg GateConfig, logf func(string, ...any)) (enf, opn []time.Duration, ims []image, err error) {
	// The small images: one shared layer, a config and manifest each.
	layer := newBlob(randomBytes(smallLayerSize))
	ims = make([]image, cfg.Manifests+2)
	for i := range ims {
		ims[i] = newImage([]blob{layer}, fmt.Sprintf("gate-%d", i))
	}
	logf("uploading %d small images' blobs to %s and %s", len(ims), gateEnforced, gateOpen)
	for _, repo := range []string{gateEnforced, gateOpen} {
		if err := pushBlob(ctx, c, repo, layer); err != nil {
			return nil, nil, nil, err
		}
		for _, im := range ims {
			if err := pushBlob(ctx, c, repo, im.config); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	logf("publishing %d targets %s:m-N", len(ims), gateEnforced)
	for i, im := range ims {
		if err := pub.sign(ctx, gateEnforced, fmt.Sprintf("m-%d", i), im.manifest); err != nil {
			return nil, nil, nil, err
		}
	}
	// Warm the gate's view: the first PUT misses and refreshes (which sees
	// every target published above); the second, a second later, must hit.
	for i := range 2 {
		if err := c.putManifest(ctx, gateEnforced, fmt.Sprintf("m-%d", i), ims[i].manifest); err != nil {
			return nil, nil, nil, fmt.Errorf("bench: warming the gate: %w", err)
		}
		time.Sleep(1100 * time.Millisecond)
	}
	logf("timing %d signed manifest PUTs against %d open ones, alternating", cfg.Manifests, cfg.Manifests)
	enf, opn, err = alternating(cfg.Manifests, func(i int, repo string) (time.Duration, error) {
		start := time.Now()
		err := c.putManifest(ctx, repo, fmt.Sprintf("m-%d", i+2), ims[i+2].manifest)
		return time.Since(start), err
	})
	return enf, opn, ims, err
}

// timeLargePulls pushes one large image to both repositories, signed in the
// enforced one, and times cfg.PullRuns whole pulls of it from each.
func timeLargePulls(ctx context.Context, c *client, pub *gateSigner, cfg GateConfig, logf func(string, ...any)) (size int64, enf, opn []time.Duration, err error) {
	logf("pushing a %d × %d MiB image to %s (signed) and %s", cfg.Layers, cfg.LayerSize>>20, gateEnforced, gateOpen)
	layers := make([]blob, cfg.Layers)
	for i := range layers {
		layers[i] = newBlob(randomBytes(int(cfg.LayerSize)))
	}
	large := newImage(layers, "gate-large")
	for _, repo := range []string{gateEnforced, gateOpen} {
		for _, b := range append([]blob{large.config}, large.layers...) {
			if err := pushBlob(ctx, c, repo, b); err != nil {
				return 0, nil, nil, err
			}
		}
	}
	if err := pub.sign(ctx, gateEnforced, "large", large.manifest); err != nil {
		return 0, nil, nil, err
	}
	// The PUT misses and waits for a refresh that sees the new target.
	for _, repo := range []string{gateEnforced, gateOpen} {
		if err := c.putManifest(ctx, repo, "large", large.manifest); err != nil {
			return 0, nil, nil, err
		}
	}
	buf := make([]byte, 1<<20)
	pull := func(_ int, repo string) (time.Duration, error) {
		start := time.Now()
		if _, err := c.get(ctx, "/v2/"+repo+"/manifests/large", acceptManifest, sink{}, buf); err != nil {
			return 0, err
		}
		for _, b := range append([]blob{large.config}, large.layers...) {
			if _, err := c.get(ctx, "/v2/"+repo+"/blobs/"+b.digest, "", sink{}, buf); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	logf("pulling it %d times from each, alternating", cfg.PullRuns)
	if _, err := pull(0, gateOpen); err != nil { // warm the page cache for both
		return 0, nil, nil, err
	}
	enf, opn, err = alternating(cfg.PullRuns, pull)
	return large.size(), enf, opn, err
}

// percentile is the p-quantile of ds (nearest rank).
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// pushBlob uploads b to repo unless the registry has it there.
func pushBlob(ctx context.Context, c *client, repo string, b blob) error {
	if ok, err := c.blobExists(ctx, repo, b.digest); err != nil || ok {
		return err
	}
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	return c.commit(ctx, loc, b.digest, b.data)
}

func randomHex(n int) string {
	return fmt.Sprintf("%x", randomBytes(n))
}

// progress returns a printf to w (nothing when w is nil).
func progress(w io.Writer) func(format string, args ...any) {
	return func(format string, args ...any) {
		if w != nil {
			fmt.Fprintf(w, "bench: "+format+"\n", args...)
		}
	}
}

// workDir returns dir, or a new temporary directory removed by cleanup.
func workDir(dir, prefix string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}

package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/signet-oss/signet/internal/testtools"
)

// Small writes at the speed of the disk: signet-bench --small-writes.
//
// Three servers take the same traffic, one after the other, each on fresh
// storage: `crane registry serve` (go-containerregistry's registry, in memory and
// not durable: the ceiling a registry on this machine cannot beat), Signet on the
// filesystem driver, and the reference registry on its filesystem driver. Each
// round, Clients concurrent clients push small images for PushDuration as
// go-containerregistry's remote.Write does (the image's two blobs uploaded
// concurrently, each as HEAD, POST, one PATCH with the bytes and an empty PUT
// ?digest=, then PUT manifest by tag), then GET those manifests by tag for
// GetDuration. The servers' order rotates from round to round. The report gives,
// per server, the median and the spread (lowest .. highest round) of pushes/s and
// manifest GETs/s, and Signet's medians as ratios to the ceiling's and the
// reference's.
//
// The targets: small pushes at least half the ceiling's rate, manifest GETs at
// least 90% of it.

// Server name of the ceiling.
const Ceiling = "crane (in memory)"

// Targets of the small-writes benchmark, as fractions of the ceiling.
const (
	smallPushTarget = 0.5
	smallGetTarget  = 0.9
)

// SmallWritesConfig shapes the small-writes benchmark; zero fields take defaults.
type SmallWritesConfig struct {
	// Rounds is how many rounds. Default 3.
	Rounds int
	// Clients is the concurrency of both workloads. Default 8.
	Clients int
	// PushDuration and GetDuration bound each round's workloads. Default 10s each.
	PushDuration time.Duration
	GetDuration  time.Duration
	// SignetBin is a prebuilt registry binary; default: build ./cmd/registry of
	// the module in ModuleDir (default: the working directory's).
	SignetBin string
	ModuleDir string
	// ReferenceBin and CraneBin default to the tools internal/testtools installs.
	ReferenceBin string
	CraneBin     string
	// WorkDir holds the binary and the servers' data; "" means a temporary
	// directory, removed.
	WorkDir string
	// Only, when set, measures that server alone (Ceiling, Signet or Reference),
	// to compare two builds of one quickly; the report then has no ratios.
	Only string
	// Log receives progress; nil means none.
	Log io.Writer
}

// SmallWritesServer is one server's figures over the rounds.
type SmallWritesServer struct {
	Name          string    `json:"name"`
	PushesPerSec  []float64 `json:"pushes_per_sec"`
	GetsPerSec    []float64 `json:"gets_per_sec"`
	MedianPushes  float64   `json:"median_pushes_per_sec"`
	MedianGets    float64   `json:"median_gets_per_sec"`
	PushesByRound []int     `json:"pushes"`
	// CPUPerPush is the server's CPU time (user and system) per push, in
	// milliseconds, by round: less sensitive than the rates to other work on a
	// shared machine.
	CPUPerPush       []float64 `json:"cpu_ms_per_push"`
	MedianCPUPerPush float64   `json:"median_cpu_ms_per_push"`
}

// SmallWritesReport is the benchmark's result.
type SmallWritesReport struct {
	Machine Machine              `json:"machine"`
	Clients int                  `json:"clients"`
	Servers []*SmallWritesServer `json:"servers"`
}

// RunSmallWrites runs the small-writes benchmark.
func RunSmallWrites(ctx context.Context, cfg SmallWritesConfig) (*SmallWritesReport, error) {
	if cfg.Rounds <= 0 {
		cfg.Rounds = 3
	}
	if cfg.Clients <= 0 {
		cfg.Clients = 8
	}
	if cfg.PushDuration <= 0 {
		cfg.PushDuration = 10 * time.Second
	}
	if cfg.GetDuration <= 0 {
		cfg.GetDuration = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Log, format+"\n", args...) }
	work := cfg.WorkDir
	if work == "" {
		dir, err := os.MkdirTemp("", "signet-bench-small-")
		if err != nil {
			return nil, fmt.Errorf("bench: work dir: %w", err)
		}
		defer os.RemoveAll(dir)
		work = dir
	}
	var err error
	if cfg.SignetBin == "" {
		logf("building Signet's registry")
		if cfg.SignetBin, err = buildSignet(ctx, cfg.ModuleDir, filepath.Join(work, "registry")); err != nil {
			return nil, err
		}
	}
	if cfg.ReferenceBin == "" {
		if cfg.ReferenceBin, err = testtools.Path("distribution-registry"); err != nil {
			return nil, fmt.Errorf("bench: reference registry: %w", err)
		}
	}
	if cfg.CraneBin == "" {
		if cfg.CraneBin, err = testtools.Path("crane"); err != nil {
			return nil, fmt.Errorf("bench: crane: %w", err)
		}
	}
	starts := []struct {
		name  string
		start func(ctx context.Context, st storage) (*server, error)
	}{
		{Ceiling, func(ctx context.Context, _ storage) (*server, error) { return startCrane(ctx, cfg.CraneBin) }},
		{Signet, func(ctx context.Context, st storage) (*server, error) { return startSignet(ctx, cfg.SignetBin, st) }},
		{Reference, func(ctx context.Context, st storage) (*server, error) {
			return startReference(ctx, cfg.ReferenceBin, st)
		}},
	}
	if cfg.Only != "" {
		starts = slices.DeleteFunc(starts, func(s struct {
			name  string
			start func(ctx context.Context, st storage) (*server, error)
		}) bool {
			return s.name != cfg.Only
		})
		if len(starts) == 0 {
			return nil, fmt.Errorf("bench: only: %q is none of %q, %q, %q", cfg.Only, Ceiling, Signet, Reference)
		}
	}
	// Payloads for the fastest server's rate, generated once: every server
	// receives the same images.
	p := &plan{cfg: Config{Clients: cfg.Clients}}
	if _, err := rand.Read(p.seed[:]); err != nil {
		return nil, fmt.Errorf("bench: seed: %w", err)
	}
	p.small = p.smallImages("small", int(cfg.PushDuration.Seconds()*2000)+1000)
	p.warm = p.smallImages("warm", 64)

	rep := &SmallWritesReport{Machine: thisMachine(), Clients: cfg.Clients}
	byName := map[string]*SmallWritesServer{}
	for _, s := range starts {
		r := &SmallWritesServer{Name: s.name}
		byName[s.name] = r
		rep.Servers = append(rep.Servers, r)
	}
	for round := range cfg.Rounds {
		for k := range starts {
			s := starts[(k+round)%len(starts)]
			logf("round %d: %s", round+1, s.name)
			st := storage{dir: filepath.Join(work, fmt.Sprintf("data-%d-%d", round, k))}
			if err := os.MkdirAll(st.dir, 0o755); err != nil {
				return nil, fmt.Errorf("bench: %w", err)
			}
			srv, err := s.start(ctx, st)
			if err != nil {
				return nil, err
			}
			pushes, gets, n, cpu, err := measureSmallWrites(ctx, cfg, p, srv)
			srv.stop()
			os.RemoveAll(st.dir)
			if err != nil {
				return nil, fmt.Errorf("bench: %s: %w%s", s.name, err, srv.stderrTail())
			}
			logf("round %d: %s: %.0f pushes/s (%.2f ms of server CPU each), %.0f manifest GETs/s", round+1, s.name, pushes, cpu, gets)
			r := byName[s.name]
			r.PushesPerSec = append(r.PushesPerSec, pushes)
			r.GetsPerSec = append(r.GetsPerSec, gets)
			r.PushesByRound = append(r.PushesByRound, n)
			r.CPUPerPush = append(r.CPUPerPush, cpu)
		}
	}
	for _, r := range rep.Servers {
		r.MedianPushes, r.MedianGets, r.MedianCPUPerPush = median(r.PushesPerSec), median(r.GetsPerSec), median(r.CPUPerPush)
	}
	return rep, nil
}

// startCrane starts `crane registry serve` (in memory) on a free loopback port.
func startCrane(ctx context.Context, bin string) (*server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{name: Ceiling, url: "http://" + addr}
	if err := s.start(bin, []string{"registry", "serve", "--address", addr}, nil, nil); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// measureSmallWrites warms srv up, then times the pushes and the manifest GETs.
// It returns both rates, the number of pushes and the server's CPU milliseconds
// per push.
func measureSmallWrites(ctx context.Context, cfg SmallWritesConfig, p *plan, srv *server) (pushes, gets float64, n int, cpuMs float64, err error) {
	c := newClient(srv.url, cfg.Clients)
	defer c.close()
	push := func(ims []image, kind string) func(ctx context.Context, _, i int) error {
		return func(ctx context.Context, _, i int) error {
			return pushLikeGGCR(ctx, c, fmt.Sprintf("%s/r%d", kind, i%cfg.Clients), fmt.Sprintf("v%d", i), &ims[i])
		}
	}
	if _, _, err := concurrently(ctx, cfg.Clients, len(p.warm), time.Minute, push(p.warm, "warm")); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("warm-up: %w", err)
	}
	cpu0 := srv.cpuTime()
	n, elapsed, err := concurrently(ctx, cfg.Clients, len(p.small), cfg.PushDuration, push(p.small, "small"))
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("small push: %w", err)
	}
	if n == 0 {
		return 0, 0, 0, 0, fmt.Errorf("no push completed within %s", cfg.PushDuration)
	}
	cpuMs = float64((srv.cpuTime() - cpu0).Microseconds()) / 1000 / float64(n)
	pushes = float64(n) / elapsed.Seconds()
	for _, i := range []int{0, n - 1} {
		if err := verifyPull(ctx, c, fmt.Sprintf("small/r%d", i%cfg.Clients), fmt.Sprintf("v%d", i), &p.small[i]); err != nil {
			return 0, 0, 0, 0, err
		}
	}
	tags := min(n, manifestTags)
	paths := make([]string, tags)
	for i := range paths {
		paths[i] = fmt.Sprintf("/v2/small/r%d/manifests/v%d", i%cfg.Clients, i)
	}
	bufs := workerBuffers(cfg.Clients, 64<<10)
	g, elapsed, err := concurrently(ctx, cfg.Clients, 1<<40, cfg.GetDuration, func(ctx context.Context, w, i int) error {
		_, err := c.get(ctx, paths[i%tags], acceptManifest, sink{}, bufs[w])
		return err
	})
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("manifest GET: %w", err)
	}
	return pushes, float64(g) / elapsed.Seconds(), n, cpuMs, nil
}

// pushLikeGGCR pushes im as go-containerregistry's remote.Write does: its blobs
// concurrently, each a HEAD, then POST, one PATCH with the bytes and an empty
// PUT ?digest= when missing; then the manifest by tag.
func pushLikeGGCR(ctx context.Context, c *client, repo, tag string, im *image) error {
	blobs := append([]blob{im.config}, im.layers...)
	errs := make([]error, len(blobs))
	var wg sync.WaitGroup
	for i, b := range blobs {
		wg.Go(func() {
			errs[i] = func() error {
				ok, err := c.blobExists(ctx, repo, b.digest)
				if err != nil || ok {
					return err
				}
				loc, err := c.startUpload(ctx, repo)
				if err != nil {
					return err
				}
				if loc, err = c.patch(ctx, loc, b.data); err != nil {
					return err
				}
				return c.commit(ctx, loc, b.digest, nil)
			}()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return c.putManifest(ctx, repo, tag, im.manifest)
}

// WriteTable prints the report.
func (r *SmallWritesReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "Small writes: %d clients, go-containerregistry's push (2 blobs: HEAD, POST, PATCH, PUT; manifest PUT by tag)\n", r.Clients)
	fmt.Fprintf(w, "%s, %d CPUs, %s\n\n", r.Machine.CPUModel, r.Machine.NumCPU, r.Machine.GoVersion)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "server\tpushes/s median\t(spread)\tserver CPU ms/push\t(spread)\tmanifest GETs/s median\t(spread)")
	for _, s := range r.Servers {
		fmt.Fprintf(tw, "%s\t%.0f\t(%s)\t%.2f\t(%s)\t%.0f\t(%s)\n", s.Name, s.MedianPushes, spread(s.PushesPerSec),
			s.MedianCPUPerPush, spread2(s.CPUPerPush), s.MedianGets, spread(s.GetsPerSec))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	byName := map[string]*SmallWritesServer{}
	for _, s := range r.Servers {
		byName[s.Name] = s
	}
	sig, ceil, ref := byName[Signet], byName[Ceiling], byName[Reference]
	if sig == nil || ceil == nil || ref == nil {
		return nil
	}
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Signet / ceiling: pushes %.2f (target >= %.2f; by round %s), manifest GETs %.2f (target >= %.2f; by round %s)\n",
		ratio(sig.MedianPushes, ceil.MedianPushes), smallPushTarget, roundRatios(sig.PushesPerSec, ceil.PushesPerSec),
		ratio(sig.MedianGets, ceil.MedianGets), smallGetTarget, roundRatios(sig.GetsPerSec, ceil.GetsPerSec))
	fmt.Fprintf(w, "Signet / reference: pushes %.2f, manifest GETs %.2f\n",
		ratio(sig.MedianPushes, ref.MedianPushes), ratio(sig.MedianGets, ref.MedianGets))
	fmt.Fprintf(w, "Reference / ceiling: pushes %.2f, manifest GETs %.2f\n",
		ratio(ref.MedianPushes, ceil.MedianPushes), ratio(ref.MedianGets, ceil.MedianGets))
	return nil
}

// spread is "lowest .. highest" of vs.
func spread(vs []float64) string {
	if len(vs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f .. %.0f", slices.Min(vs), slices.Max(vs))
}

// spread2 is "lowest .. highest" of vs, to two decimals.
func spread2(vs []float64) string {
	if len(vs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f .. %.2f", slices.Min(vs), slices.Max(vs))
}

// roundRatios is a/b round by round.
func roundRatios(a, b []float64) string {
	s := ""
	for i := range min(len(a), len(b)) {
		if i > 0 {
			s += " "
		}
		if b[i] == 0 {
			s += "-"
			continue
		}
		s += fmt.Sprintf("%.2f", a[i]/b[i])
	}
	return s
}

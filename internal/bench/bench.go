// Package bench measures Signet's registry against the reference registry (CNCF
// Distribution v3.1.2) on the same machine in the same run, and reports figures and
// ratios for `make bench`.
//
// Both servers are real processes on loopback, started one after the other so they
// never compete for the CPUs, on the storage Config.Storage names: the filesystem
// driver, each in its own temporary directory; or S3, each in its own bucket of one
// versitygw server (Apache-2.0, posix backend) started for the run on the same
// machine, with the reference configured to serve blob bytes itself (redirect
// disabled) as Signet does. Each receives the same HTTP traffic from a lean net/http client (keep-alive, bodies
// drained without hashing): a warm-up, then
//
//   - large push: an image of 4 random 64 MiB layers pushed as real clients do (HEAD
//     blob, POST upload, one PATCH streaming the layer, PUT ?digest=, PUT manifest),
//     layers one after the other, into a fresh repository with fresh layers each run;
//     the median MiB/s of the runs;
//   - large pull: GET manifest and the 4 layers of the last pushed image, sequentially;
//     the median MiB/s of the runs;
//   - small-image pushes per second from 8 concurrent clients (unique config and ~2 KiB
//     layer, each blob HEAD then POST + monolithic PUT, then PUT manifest by tag);
//   - manifest GETs by tag per second from 8 concurrent clients;
//   - the server's peak RSS (VmHWM) after the run.
//
// On S3 the CPU time of the S3 server is reported per phase next to the registry's:
// both registries are bound by it there.
//
// Every payload is generated and hashed before its timed loop, so the client spends
// its time on HTTP, not on hashing. Pulled bytes are verified against their digests
// once, outside the timed loop.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/signet-oss/signet/internal/s3test"
	"github.com/signet-oss/signet/internal/testtools"
)

// Server names, as accepted by Config.Only and shown in the report.
const (
	Signet    = "signet"
	Reference = "reference"
)

// ReferenceName names the reference registry in the report.
const ReferenceName = "CNCF Distribution v3.1.2"

// Storage drivers, as accepted by Config.Storage.
const (
	Filesystem = "filesystem"
	S3         = "s3"
)

// Config says what to run. The zero value of a field means its default.
type Config struct {
	// Only restricts the run to one server: Signet or Reference. Default: both.
	Only string
	// Storage is where both servers keep their data: Filesystem or S3 (one
	// versitygw for the run, a bucket per server). Default: Filesystem.
	Storage string
	// VersitygwBin is the S3 server binary. Default: installed by testtools.
	VersitygwBin string
	// SignetBin is a prebuilt Signet registry binary. Default: build ./cmd/registry
	// of the module in ModuleDir.
	SignetBin string
	// ModuleDir is Signet's module root, used to build the binary. Default: the
	// module containing the working directory.
	ModuleDir string
	// ReferenceBin is the reference registry binary. Default: installed by testtools.
	ReferenceBin string
	// WorkDir holds the binaries and the servers' data. Default: a fresh temporary
	// directory, removed afterwards.
	WorkDir string

	// Layers and LayerSize shape the large image. Default: 4 layers of 64 MiB.
	Layers    int
	LayerSize int64
	// PushRuns and PullRuns are the repetitions whose median is reported.
	// Default: 3 and 5.
	PushRuns int
	PullRuns int
	// Clients is the concurrency of the small-push and manifest-GET workloads.
	// Default: 8.
	Clients int
	// SmallDuration and GetDuration bound the concurrent workloads. Default: 10s each.
	SmallDuration time.Duration
	GetDuration   time.Duration
	// Rounds repeats the whole measurement, alternating the servers' order; each
	// figure is the median over rounds. Default: 1.
	Rounds int
	// SmallMax caps the small pushes (their payloads are generated up front).
	// Default: 30000.
	SmallMax int

	// Log receives progress lines. Default: discarded.
	Log io.Writer
}

func (c *Config) setDefaults() error {
	switch c.Only {
	case "", Signet, Reference:
	default:
		return fmt.Errorf("bench: only: %q is neither %q nor %q", c.Only, Signet, Reference)
	}
	switch c.Storage {
	case "":
		c.Storage = Filesystem
	case Filesystem, S3:
	default:
		return fmt.Errorf("bench: storage: %q is neither %q nor %q", c.Storage, Filesystem, S3)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Layers, 4)
	def(&c.PushRuns, 3)
	def(&c.PullRuns, 5)
	def(&c.Clients, 8)
	def(&c.SmallMax, 30000)
	def(&c.Rounds, 1)
	if c.LayerSize <= 0 {
		c.LayerSize = 64 << 20
	}
	if c.SmallDuration <= 0 {
		c.SmallDuration = 10 * time.Second
	}
	if c.GetDuration <= 0 {
		c.GetDuration = 10 * time.Second
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

func (c *Config) logf(format string, args ...any) {
	fmt.Fprintf(c.Log, format+"\n", args...)
}

// Run builds or finds both servers, measures each in turn and returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	work := cfg.WorkDir
	if work == "" {
		dir, err := os.MkdirTemp("", "signet-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: work dir: %w", err)
		}
		defer os.RemoveAll(dir)
		work = dir
	}

	type target struct {
		name  string
		start func(ctx context.Context, st storage) (*server, error)
	}
	var targets []target
	if cfg.Only != Reference {
		bin := cfg.SignetBin
		if bin == "" {
			var err error
			cfg.logf("building Signet's registry")
			if bin, err = buildSignet(ctx, cfg.ModuleDir, filepath.Join(work, "registry")); err != nil {
				return nil, err
			}
		}
		targets = append(targets, target{Signet, func(ctx context.Context, st storage) (*server, error) {
			return startSignet(ctx, bin, st)
		}})
	}
	if cfg.Only != Signet {
		bin := cfg.ReferenceBin
		if bin == "" {
			var err error
			cfg.logf("installing the reference registry")
			if bin, err = testtools.Path("distribution-registry"); err != nil {
				return nil, fmt.Errorf("bench: reference registry: %w", err)
			}
		}
		targets = append(targets, target{Reference, func(ctx context.Context, st storage) (*server, error) {
			return startReference(ctx, bin, st)
		}})
	}

	var s3srv *s3test.Server
	if cfg.Storage == S3 {
		bin := cfg.VersitygwBin
		if bin == "" {
			var err error
			cfg.logf("installing versitygw")
			if bin, err = testtools.Path("versitygw"); err != nil {
				return nil, fmt.Errorf("bench: versitygw: %w", err)
			}
		}
		var err error
		if s3srv, err = s3test.Launch(bin, filepath.Join(work, "versitygw")); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		defer s3srv.Stop()
		cfg.logf("versitygw listening at %s", s3srv.Endpoint)
	}

	// The traffic must be identical for both servers, so every payload derives from
	// one seed chosen here.
	plan, err := newPlan(cfg)
	if err != nil {
		return nil, err
	}
	rep := &Report{Machine: thisMachine(), Config: reportConfig(cfg), Storage: cfg.Storage}
	rounds := map[string][]*Result{}
	for round := range cfg.Rounds {
		// Odd rounds run the servers in the other order, so a drift in the machine's
		// load does not always favour the same one.
		order := slices.Clone(targets)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			st := storage{dir: filepath.Join(work, t.name+"-data")}
			if s3srv != nil {
				st.s3, st.bucket = s3srv, fmt.Sprintf("%s-round%d", t.name, round)
			}
			res, err := measureOne(ctx, cfg, plan, st, t.name, t.start)
			if err != nil {
				return nil, err
			}
			rounds[t.name] = append(rounds[t.name], res)
		}
	}
	if r := rounds[Signet]; r != nil {
		rep.Signet = combine(r)
	}
	if r := rounds[Reference]; r != nil {
		rep.Reference = combine(r)
	}
	return rep, nil
}

// storage is where one measured server keeps its data: a fresh directory, and on
// S3 a fresh bucket of the run's versitygw.
type storage struct {
	dir    string
	s3     *s3test.Server
	bucket string
}

// measureOne starts a server on fresh storage, measures it, stops it and removes
// its data, so the next server, or round, starts on a clean disk.
func measureOne(ctx context.Context, cfg Config, p *plan, st storage, name string,
	start func(context.Context, storage) (*server, error)) (*Result, error) {
	if err := os.MkdirAll(st.dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(st.dir)
	backendPID := 0
	if st.s3 != nil {
		if err := st.s3.CreateBucket(st.bucket); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		// versitygw's posix backend keeps a bucket as a directory of its data.
		defer os.RemoveAll(filepath.Join(st.s3.DataDir, st.bucket))
		backendPID = st.s3.PID()
	}
	cfg.logf("%s: starting", name)
	srv, err := start(ctx, st)
	if err != nil {
		return nil, err
	}
	res, err := measure(ctx, cfg, p, srv, backendPID)
	srv.stop()
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w%s", name, err, srv.stderrTail())
	}
	res.Server = name
	return res, nil
}

// buildSignet builds ./cmd/registry of the module in moduleDir (or the module of
// the working directory) to out.
func buildSignet(ctx context.Context, moduleDir, out string) (string, error) {
	if moduleDir == "" {
		gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		if err != nil {
			return "", fmt.Errorf("bench: go env GOMOD: %w", err)
		}
		mod := strings.TrimSpace(string(gomod))
		if mod == "" || mod == os.DevNull {
			return "", fmt.Errorf("bench: not inside Signet's module: run from the checkout or name a built registry")
		}
		moduleDir = filepath.Dir(mod)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/registry")
	cmd.Dir = moduleDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: go build ./cmd/registry: %w\n%s", err, b)
	}
	return out, nil
}

// measure runs every workload against one started server. backendPID, when not
// zero, is the storage server's process (versitygw), whose CPU time is reported
// per phase and not counted as other work.
func measure(ctx context.Context, cfg Config, p *plan, srv *server, backendPID int) (*Result, error) {
	start := time.Now()
	c := newClient(srv.url, cfg.Clients)
	defer c.close()
	res := &Result{PID: srv.pid()}
	backend := func() time.Duration {
		if backendPID == 0 {
			return 0
		}
		return pidCPUTime(backendPID)
	}
	busy0, srv0, self0, back0 := machineBusy(), srv.cpuTime(), selfCPUTime(), backend()
	defer func() {
		wall := time.Since(start).Seconds()
		other := (machineBusy() - busy0 - (srv.cpuTime() - srv0) - (selfCPUTime() - self0) - (backend() - back0)).Seconds()
		res.OtherCPU = max(other, 0) / (wall * float64(runtime.NumCPU()))
	}()
	phase := func(name string, f func() error) error {
		before, clientBefore, backendBefore := srv.cpuTime(), selfCPUTime(), backend()
		cfg.logf("%s: %s", srv.name, name)
		start := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		res.CPU = append(res.CPU, PhaseCPU{
			Phase:         name,
			Wall:          time.Since(start).Seconds(),
			ServerSeconds: (srv.cpuTime() - before).Seconds(),
			ClientSeconds: (selfCPUTime() - clientBefore).Seconds(),
			S3Seconds:     (backend() - backendBefore).Seconds(),
		})
		return nil
	}
	// The order matters: the pull reads the last large push, the manifest GETs read
	// the small pushes, and the peak RSS is taken after everything.
	for _, w := range []struct {
		name string
		run  func(context.Context, *client, *plan, *Result) error
	}{
		{"warm-up", warmUp},
		{"large push", largePush},
		{"large pull", largePull},
		{"small push", smallPush},
		{"manifest GET", manifestGet},
	} {
		if err := phase(w.name, func() error { return w.run(ctx, c, p, res) }); err != nil {
			return nil, err
		}
	}
	rss, err := srv.peakRSS()
	if err != nil {
		return nil, err
	}
	res.PeakRSSMiB = float64(rss) / (1 << 20)
	return res, nil
}

func thisMachine() Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = cpuModel(string(b))
	}
	return m
}

// machineBusy returns the non-idle CPU time of the whole machine so far, from the
// first line of /proc/stat (user nice system idle iowait irq softirq steal ...), or
// 0 when unknown.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	d, _ := parseProcStatBusy(string(b))
	return d
}

func parseProcStatBusy(stat string) (time.Duration, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("busy time: unexpected /proc/stat line %q", line)
	}
	var ticks int64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("busy time: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// cpuModel returns the first "model name" of a /proc/cpuinfo text.
func cpuModel(cpuinfo string) string {
	for _, line := range strings.Split(cpuinfo, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

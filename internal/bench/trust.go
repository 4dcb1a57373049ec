package bench

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/signet-oss/signet/internal/testtools"
)

// TrustConfig shapes the trustctl benchmark: signing and publishing, verify,
// and verified pull against crane's pull of the same image from the same
// registry, on one `trustctl up` stack.
type TrustConfig struct {
	// Layers and LayerSize shape the image (5 layers by default).
	Layers    int
	LayerSize int64
	// Runs is how often each measurement repeats (the median is reported).
	Runs int
	// WorkDir holds binaries and data; "" means a temporary directory, removed.
	WorkDir string
	// Log receives progress; nil means none.
	Log io.Writer
}

// TrustReport is what RunTrust measured (medians).
type TrustReport struct {
	ImageBytes      int64         `json:"imageBytes"`
	Layers          int           `json:"layers"`
	Runs            int           `json:"runs"`
	Push            time.Duration `json:"pushNs"`
	SignPublish     time.Duration `json:"signPublishNs"`
	Verify          time.Duration `json:"verifyNs"`
	Pull            time.Duration `json:"trustctlPullNs"`
	CranePull       time.Duration `json:"cranePullNs"`
	PullMBps        float64       `json:"trustctlPullMBps"`
	CranePullMBps   float64       `json:"cranePullMBps"`
	PullVsCrane     float64       `json:"pullVsCrane"`
	PullVsCraneGoal float64       `json:"pullVsCraneTarget"`
}

// WriteTable prints the report for people.
func (r *TrustReport) WriteTable(w io.Writer) error {
	met := "met"
	if r.PullVsCrane < r.PullVsCraneGoal {
		met = "MISSED"
	}
	_, err := fmt.Fprintf(w, `trustctl on trustctl up (filesystem), %d-layer image of %.0f MiB, median of %d runs
  trustctl push (blobs, sign, manifests)   %8.1f ms
  sign and publish (trustctl sign)         %8.1f ms
  trustctl verify                          %8.1f ms
  trustctl pull (verified)                 %8.1f ms  %7.1f MB/s
  crane pull --format oci                  %8.1f ms  %7.1f MB/s
  verified pull / crane pull               %8.2f    (target >= %.2f: %s)
`, r.Layers, float64(r.ImageBytes)/(1<<20), r.Runs,
		ms(r.Push), ms(r.SignPublish), ms(r.Verify),
		ms(r.Pull), r.PullMBps, ms(r.CranePull), r.CranePullMBps, r.PullVsCrane, r.PullVsCraneGoal, met)
	return err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// RunTrust runs the trustctl benchmark.
func RunTrust(ctx context.Context, cfg TrustConfig) (*TrustReport, error) {
	if cfg.Layers <= 0 {
		cfg.Layers = 5
	}
	if cfg.LayerSize <= 0 {
		cfg.LayerSize = 32 << 20
	}
	if cfg.Runs <= 0 {
		cfg.Runs = 5
	}
	logf := progress(cfg.Log)
	work, cleanup, err := workDir(cfg.WorkDir, "signet-bench-trust-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	crane, err := testtools.Path("crane")
	if err != nil {
		return nil, err
	}
	st, err := startUpStack(ctx, work, logf)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	trustctl, env, reg := st.bin, st.env, st.addr
	run := func(name string, args ...string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		d := time.Since(start)
		if err != nil {
			return d, fmt.Errorf("bench: %s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, out.String())
		}
		return d, nil
	}
	for _, args := range [][]string{{"keys", "generate", "publisher"}, {"org", "create", "bench"}, {"org", "delegate", "bench/app", "--key", "publisher"}} {
		if _, err := run(trustctl, args...); err != nil {
			return nil, err
		}
	}

	logf("writing a %d-layer image of %d MiB", cfg.Layers, int64(cfg.Layers)*cfg.LayerSize>>20)
	layout := filepath.Join(work, "image")
	manifestDigest, size, err := writeBenchLayout(layout, cfg.Layers, cfg.LayerSize)
	if err != nil {
		return nil, err
	}
	rep := &TrustReport{ImageBytes: size, Layers: cfg.Layers, Runs: cfg.Runs, PullVsCraneGoal: 0.9}
	var push, sign, verify, pull, cpull []time.Duration
	for i := range cfg.Runs {
		d, err := run(trustctl, "push", layout, fmt.Sprintf("%s/bench/app:p%d", reg, i), "--key", "publisher")
		if err != nil {
			return nil, err
		}
		push = append(push, d)
	}
	for i := range cfg.Runs {
		d, err := run(trustctl, "sign", fmt.Sprintf("%s/bench/app:s%d", reg, i), "--key", "publisher", "--digest", manifestDigest)
		if err != nil {
			return nil, err
		}
		sign = append(sign, d)
	}
	ref := reg + "/bench/app:p0"
	for range cfg.Runs {
		d, err := run(trustctl, "verify", ref)
		if err != nil {
			return nil, err
		}
		verify = append(verify, d)
	}
	logf("pulling with trustctl and crane, alternating, %d runs each", cfg.Runs)
	for i := range cfg.Runs {
		one := func(useCrane bool) error {
			dir := filepath.Join(work, fmt.Sprintf("pull-%v-%d", useCrane, i))
			defer os.RemoveAll(dir)
			var d time.Duration
			var err error
			if useCrane {
				d, err = run(crane, "pull", "--format", "oci", ref, dir)
				cpull = append(cpull, d)
			} else {
				d, err = run(trustctl, "pull", ref, dir)
				pull = append(pull, d)
			}
			return err
		}
		order := []bool{false, true}
		if i%2 == 1 {
			order = []bool{true, false}
		}
		for _, c := range order {
			if err := one(c); err != nil {
				return nil, err
			}
		}
	}
	rep.Push, rep.SignPublish, rep.Verify = medianDuration(push), medianDuration(sign), medianDuration(verify)
	rep.Pull, rep.CranePull = medianDuration(pull), medianDuration(cpull)
	rep.PullMBps = float64(size) / 1e6 / rep.Pull.Seconds()
	rep.CranePullMBps = float64(size) / 1e6 / rep.CranePull.Seconds()
	rep.PullVsCrane = rep.PullMBps / rep.CranePullMBps
	return rep, nil
}

func medianDuration(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// buildCmd builds a command of the module of the working directory.
func buildCmd(ctx context.Context, pkg, out string) error {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("bench: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == os.DevNull {
		return fmt.Errorf("bench: not inside Signet's module: run from the checkout")
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = filepath.Dir(mod)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bench: go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// writeBenchLayout writes an OCI layout of an image of n random layers (each
// a one-file uncompressed tar), returning the manifest's digest and the total
// size of its blobs.
func writeBenchLayout(dir string, n int, size int64) (string, int64, error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return "", 0, err
	}
	put := func(b []byte) (string, error) {
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:])
		return "sha256:" + h, os.WriteFile(filepath.Join(blobs, h), b, 0o644)
	}
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	}
	var layers []desc
	var diffIDs []string
	var total int64
	for i := range n {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("layer%d.bin", i), Mode: 0o644, Size: size, Typeflag: tar.TypeReg})
		if _, err := io.CopyN(tw, rand.Reader, size); err != nil {
			return "", 0, err
		}
		tw.Close()
		d, err := put(buf.Bytes())
		if err != nil {
			return "", 0, err
		}
		layers = append(layers, desc{"application/vnd.oci.image.layer.v1.tar", d, int64(buf.Len())})
		diffIDs = append(diffIDs, d)
		total += int64(buf.Len())
	}
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
	cd, err := put(cfg)
	if err != nil {
		return "", 0, err
	}
	total += int64(len(cfg))
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc{"application/vnd.oci.image.config.v1+json", cd, int64(len(cfg))}, "layers": layers})
	md, err := put(m)
	if err != nil {
		return "", 0, err
	}
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []desc{{"application/vnd.oci.image.manifest.v1+json", md, int64(len(m))}}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		return "", 0, err
	}
	return md, total, os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

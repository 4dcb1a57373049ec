package bench

import (
	"bytes"
	"context"
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

// `trustctl verify` of a tag that carries attestations (issue 14), whole
// process, on one `trustctl up`: the tag bench/app:attested has the cosign
// signature trustctl push writes and three attestations that the real
// `cosign attest --key` made with three delegated keys (SLSA provenance, SPDX,
// a custom predicate), so verify checks the target and then lists and checks
// four signatures in two artifacts; bench/app:plain, another image of the same
// size, has the signature only. Each run is the built trustctl started,
// verifying and exiting (in table form, its output thrown away); the two tags
// alternate. Three rounds; each round's medians, and the median and spread of
// the rounds'.
//
// bench/app is enforced: the registry's gate admits each attestation as
// cosign pushes it, and serves the tags and the referrers through its checks,
// as in production.
//
// The target: verify of a tag with 3 attestations takes at most 50 ms.

// VerifyReferrersConfig shapes the benchmark. The zero value of a field means
// its default.
type VerifyReferrersConfig struct {
	// Runs is how many verifies of each tag a round times. Default: 10.
	Runs int
	// Hold keeps the stack up after measuring, with the command lines printed
	// to Log, until ctx is done: for timing the processes with other tools.
	Hold bool
	// WorkDir holds binaries and data; "" means a temporary directory, removed.
	WorkDir string
	// Log receives progress; nil means none.
	Log io.Writer
}

// Shape and target of the measurement.
const (
	verifyReferrersRounds = 3
	verifyReferrersTarget = 50 * time.Millisecond
	verifyRepo            = "bench/app"
)

// VerifyRound is one round's medians.
type VerifyRound struct {
	Attested time.Duration `json:"attestedNs"`
	Plain    time.Duration `json:"plainNs"`
}

// VerifyReferrersReport is what RunVerifyReferrers measured.
type VerifyReferrersReport struct {
	Runs   int           `json:"runs"`
	Rounds []VerifyRound `json:"rounds"`
	// Listed is what verify listed on the attested tag: artifacts and
	// signatures (attestations included), all verifying.
	ListedArtifacts  int `json:"listedArtifacts"`
	ListedSignatures int `json:"listedSignatures"`
	// Medians over rounds, with the spread (min, max) of the rounds'.
	Attested    time.Duration `json:"attestedNs"`
	AttestedMin time.Duration `json:"attestedMinNs"`
	AttestedMax time.Duration `json:"attestedMaxNs"`
	Plain       time.Duration `json:"plainNs"`
	PlainMin    time.Duration `json:"plainMinNs"`
	PlainMax    time.Duration `json:"plainMaxNs"`
	Target      time.Duration `json:"targetNs"`
}

// WriteTable prints the report for people.
func (r *VerifyReferrersReport) WriteTable(w io.Writer) error {
	met := "met"
	if r.Attested > r.Target {
		met = "MISSED"
	}
	_, err := fmt.Fprintf(w, `trustctl verify, whole process, on trustctl up (filesystem), %d rounds of %d runs per tag
  tag with 3 cosign attestations and a signature (%d artifacts, %d signatures listed)
    median of rounds %7.1f ms   (spread %.1f .. %.1f ms)   (target <= %.0f ms: %s)
  tag with its signature only
    median of rounds %7.1f ms   (spread %.1f .. %.1f ms)
`, len(r.Rounds), r.Runs, r.ListedArtifacts, r.ListedSignatures,
		ms(r.Attested), ms(r.AttestedMin), ms(r.AttestedMax), ms(r.Target), met,
		ms(r.Plain), ms(r.PlainMin), ms(r.PlainMax))
	if err != nil {
		return err
	}
	for i, rd := range r.Rounds {
		if _, err := fmt.Fprintf(w, "  round %d   attested %7.1f ms   plain %7.1f ms\n", i+1, ms(rd.Attested), ms(rd.Plain)); err != nil {
			return err
		}
	}
	return nil
}

// RunVerifyReferrers sets up the stack and the two tags, and times verify.
func RunVerifyReferrers(ctx context.Context, cfg VerifyReferrersConfig) (*VerifyReferrersReport, error) {
	if cfg.Runs <= 0 {
		cfg.Runs = 10
	}
	logf := progress(cfg.Log)
	work, cleanup, err := workDir(cfg.WorkDir, "signet-bench-verify-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	cosign, err := testtools.Path("cosign")
	if err != nil {
		return nil, err
	}
	st, err := startUpStack(ctx, work, logf)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	keys := []string{"publisher", "second", "third"}
	setup := [][]string{{"org", "create", "bench"}, append([]string{"org", "delegate", verifyRepo}, "--key", keys[0], "--key", keys[1], "--key", keys[2])}
	for _, k := range slices.Backward(keys) {
		setup = slices.Insert(setup, 0, []string{"keys", "generate", k})
	}
	for _, args := range setup {
		if err := st.trustctl(ctx, args...); err != nil {
			return nil, err
		}
	}
	logf("pushing %s:plain and %s:attested, and attesting the latter with cosign", verifyRepo, verifyRepo)
	var attestedDigest string
	for _, tag := range []string{"plain", "attested"} {
		layout := filepath.Join(work, "image-"+tag)
		d, _, err := writeBenchLayout(layout, 1, 256<<10)
		if err != nil {
			return nil, err
		}
		if err := st.trustctl(ctx, "push", layout, st.addr+"/"+verifyRepo+":"+tag, "--key", keys[0]); err != nil {
			return nil, err
		}
		attestedDigest = d
	}
	if err := attest(ctx, cosign, st, work, keys, st.addr+"/"+verifyRepo+"@"+attestedDigest); err != nil {
		return nil, err
	}
	rep := &VerifyReferrersReport{Runs: cfg.Runs, Target: verifyReferrersTarget}
	if rep.ListedArtifacts, rep.ListedSignatures, err = checkListing(ctx, st, verifyRepo+":attested"); err != nil {
		return nil, err
	}

	verify := func(tag string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, st.bin, "verify", st.addr+"/"+verifyRepo+":"+tag)
		cmd.Env = st.env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		d := time.Since(start)
		if err != nil {
			return d, fmt.Errorf("bench: trustctl verify %s: %w\n%s", tag, err, out.String())
		}
		return d, nil
	}
	if _, err := verify("attested"); err != nil { // a warm-up: page cache, TUF cache
		return nil, err
	}
	var attested, plain []time.Duration
	for r := range verifyReferrersRounds {
		logf("round %d: %d verifies of each tag, alternating", r+1, cfg.Runs)
		var a, p []time.Duration
		for i := range cfg.Runs {
			order := []string{"attested", "plain"}
			if i%2 == 1 {
				order = []string{"plain", "attested"}
			}
			for _, tag := range order {
				d, err := verify(tag)
				if err != nil {
					return nil, err
				}
				if tag == "attested" {
					a = append(a, d)
				} else {
					p = append(p, d)
				}
			}
		}
		rd := VerifyRound{Attested: medianDuration(a), Plain: medianDuration(p)}
		rep.Rounds = append(rep.Rounds, rd)
		attested, plain = append(attested, rd.Attested), append(plain, rd.Plain)
	}
	rep.Attested, rep.AttestedMin, rep.AttestedMax = medianDuration(attested), slices.Min(attested), slices.Max(attested)
	rep.Plain, rep.PlainMin, rep.PlainMax = medianDuration(plain), slices.Min(plain), slices.Max(plain)

	if cfg.Hold {
		// What verify reads, and no password (verify needs none).
		var keep []string
		for _, kv := range st.env {
			if !strings.Contains(kv, "PASSWORD=") && !strings.Contains(kv, "PASSPHRASE=") {
				keep = append(keep, kv)
			}
		}
		env := strings.Join(keep, " ")
		logf("holding the stack until interrupted; the processes measured:\n  env -i %s %s verify %s/%s:attested\n  env -i %s %s verify %s/%s:plain",
			env, st.bin, st.addr, verifyRepo, env, st.bin, st.addr, verifyRepo)
		<-ctx.Done()
	}
	return rep, nil
}

// attest has cosign attest the image ref with each key, one predicate type
// each, as publishers do: cosign appends each to the image's .att artifact.
func attest(ctx context.Context, cosign string, st *upStack, work string, keys []string, ref string) error {
	predicates := []struct{ typ, body string }{
		{"slsaprovenance1", `{"buildDefinition":{"buildType":"https://example.com/build/v1","externalParameters":{}},"runDetails":{"builder":{"id":"https://example.com/builder"}}}`},
		{"spdxjson", `{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"app","dataLicense":"CC0-1.0"}`},
		{"https://example.com/review/v1", `{"reviewed":true}`},
	}
	for i, p := range predicates {
		file := filepath.Join(work, fmt.Sprintf("predicate-%d.json", i))
		if err := os.WriteFile(file, []byte(p.body), 0o644); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, cosign, "attest", "--key", filepath.Join(st.home, "keys", keys[i]+".key"),
			"--tlog-upload=false", "--allow-insecure-registry", "--yes", "--type", p.typ, "--predicate", file, ref)
		cmd.Env = append(slices.Clone(st.env), "COSIGN_PASSWORD=bench")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("bench: cosign attest --type %s: %w\n%s", p.typ, err, out)
		}
	}
	return nil
}

// checkListing runs verify --output json on ref and checks that it lists what
// the benchmark is meant to measure: every artifact and signature verifying,
// three of them attestations.
func checkListing(ctx context.Context, st *upStack, ref string) (artifacts, signatures int, err error) {
	cmd := exec.CommandContext(ctx, st.bin, "verify", st.addr+"/"+ref, "--output", "json")
	cmd.Env = st.env
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, fmt.Errorf("bench: trustctl verify %s --output json: %w\n%s", ref, err, out)
	}
	var res struct {
		Referrers []struct {
			Format     string `json:"format"`
			Verified   bool   `json:"verified"`
			Signatures []struct {
				PredicateType string `json:"predicateType"`
			} `json:"signatures"`
		} `json:"referrers"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, 0, fmt.Errorf("bench: trustctl verify --output json: %w\n%s", err, out)
	}
	attestations := 0
	for _, r := range res.Referrers {
		if !r.Verified {
			return 0, 0, fmt.Errorf("bench: %s lists an artifact that does not verify:\n%s", ref, out)
		}
		for _, s := range r.Signatures {
			if s.PredicateType != "" {
				attestations++
			}
		}
		signatures += len(r.Signatures)
	}
	if attestations != 3 {
		return 0, 0, fmt.Errorf("bench: %s lists %d attestations, want 3:\n%s", ref, attestations, out)
	}
	return len(res.Referrers), signatures, nil
}

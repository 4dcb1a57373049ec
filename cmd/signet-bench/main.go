// Command signet-bench measures Signet's registry against the reference registry on
// this machine and prints figures and ratios (see package internal/bench): on the
// filesystem, then on S3 (a versitygw server started for the run), or on one of them
// with --storage. It exits non-zero only when the benchmark cannot run, never
// because a target is missed. With --output json it prints an array holding one
// report per storage.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/signet-oss/signet/internal/bench"
)

func main() {
	var cfg bench.Config
	var layerMiB int64
	output := flag.String("output", "table", "report format: table or json")
	storage := flag.String("storage", "all", "storage to measure on: filesystem, s3, or all (filesystem then s3)")
	flag.StringVar(&cfg.VersitygwBin, "versitygw-bin", "", "S3 server binary (default: installed by internal/testtools)")
	flag.StringVar(&cfg.Only, "only", "", "measure one server only: signet or reference")
	flag.StringVar(&cfg.SignetBin, "signet-bin", "", "prebuilt Signet registry binary (default: build ./cmd/registry)")
	flag.StringVar(&cfg.ReferenceBin, "reference-bin", "", "reference registry binary (default: installed by internal/testtools)")
	flag.StringVar(&cfg.WorkDir, "workdir", "", "directory for binaries and server data (default: a temporary directory, removed)")
	flag.IntVar(&cfg.Layers, "layers", 4, "layers in the large image")
	flag.Int64Var(&layerMiB, "layer-mib", 64, "size of each large layer, MiB")
	flag.IntVar(&cfg.Rounds, "rounds", 1, "repeat the whole run, alternating the servers' order; report medians over rounds")
	flag.IntVar(&cfg.PushRuns, "push-runs", 3, "large push repetitions (median reported)")
	flag.IntVar(&cfg.PullRuns, "pull-runs", 5, "large pull repetitions (median reported)")
	flag.IntVar(&cfg.Clients, "clients", 8, "concurrent clients for small pushes and manifest GETs")
	flag.DurationVar(&cfg.SmallDuration, "small-duration", 0, "small-push duration (default 10s)")
	flag.DurationVar(&cfg.GetDuration, "get-duration", 0, "manifest-GET duration (default 10s)")
	flag.IntVar(&cfg.SmallMax, "small-max", 30000, "most small pushes (payloads are generated up front)")
	quiet := flag.Bool("quiet", false, "no progress on stderr")
	trust := flag.Bool("trust", false, "measure trustctl instead (sign and publish, verify, verified pull vs crane pull): see internal/bench/trust.go")
	gate := flag.Bool("gate", false, "measure the admission gate instead (signed manifest PUT in an enforced repository vs an open one, pull through admission): see internal/bench/gate.go")
	var gateCfg bench.GateConfig
	flag.IntVar(&gateCfg.Manifests, "gate-manifests", 200, "--gate: signed manifest PUTs timed (and as many open ones)")
	verifyReferrers := flag.Bool("verify-referrers", false, "measure trustctl verify of a tag with 3 cosign attestations instead, whole process: see internal/bench/verifyreferrers.go")
	var verifyCfg bench.VerifyReferrersConfig
	flag.IntVar(&verifyCfg.Runs, "verify-runs", 10, "--verify-referrers: verifies of each tag per round (3 rounds)")
	flag.BoolVar(&verifyCfg.Hold, "hold", false, "--verify-referrers: keep the stack up after measuring, printing the commands measured, until interrupted")
	pullPolicy := flag.Bool("policy", false, "measure warm pulls of a tag under a 3-requirement pull policy vs none instead: see internal/bench/policy.go")
	var policyCfg bench.PolicyConfig
	flag.IntVar(&policyCfg.Pulls, "policy-pulls", 300, "--policy: pulls of each repository per round")
	flag.IntVar(&policyCfg.Rounds, "policy-rounds", 3, "--policy: rounds")
	smallWrites := flag.Bool("small-writes", false, "measure small-image pushes and manifest GETs against crane's in-memory registry (the ceiling) and the reference instead: see internal/bench/smallwrites.go")
	var smallCfg bench.SmallWritesConfig
	flag.IntVar(&smallCfg.Rounds, "small-rounds", 3, "--small-writes: rounds")
	flag.Parse()
	if *smallWrites {
		smallCfg.Clients, smallCfg.PushDuration, smallCfg.GetDuration = cfg.Clients, cfg.SmallDuration, cfg.GetDuration
		smallCfg.SignetBin, smallCfg.ReferenceBin, smallCfg.WorkDir, smallCfg.Only = cfg.SignetBin, cfg.ReferenceBin, cfg.WorkDir, cfg.Only
		runSmallWrites(*output, *quiet, smallCfg)
		return
	}
	if *pullPolicy {
		policyCfg.WorkDir = cfg.WorkDir
		runPolicy(*output, *quiet, policyCfg)
		return
	}
	if *verifyReferrers {
		verifyCfg.WorkDir = cfg.WorkDir
		runVerifyReferrers(*output, *quiet, verifyCfg)
		return
	}
	if *gate {
		gateCfg.Layers, gateCfg.LayerSize, gateCfg.PullRuns, gateCfg.WorkDir = cfg.Layers, layerMiB<<20, cfg.PullRuns, cfg.WorkDir
		runGate(*output, *quiet, gateCfg)
		return
	}
	if *trust {
		runTrust(*output, *quiet)
		return
	}

	if *output != "table" && *output != "json" {
		fmt.Fprintf(os.Stderr, "signet-bench: --output %q: want table or json\n", *output)
		os.Exit(2)
	}
	storages := []string{bench.Filesystem, bench.S3}
	switch *storage {
	case "all":
	case bench.Filesystem, bench.S3:
		storages = []string{*storage}
	default:
		fmt.Fprintf(os.Stderr, "signet-bench: --storage %q: want filesystem, s3 or all\n", *storage)
		os.Exit(2)
	}
	cfg.LayerSize = layerMiB << 20
	if !*quiet {
		cfg.Log = os.Stderr
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var reports []*bench.Report
	for _, st := range storages {
		cfg.Storage = st
		rep, err := bench.Run(ctx, cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "signet-bench: %s: %v\n", st, err)
			os.Exit(1)
		}
		reports = append(reports, rep)
		if *output == "table" {
			if len(reports) > 1 {
				fmt.Println()
			}
			if err := rep.WriteTable(os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, "signet-bench:", err)
				os.Exit(1)
			}
		}
	}
	if *output == "json" {
		for _, rep := range reports {
			rep.Finish()
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reports); err != nil {
			fmt.Fprintln(os.Stderr, "signet-bench:", err)
			os.Exit(1)
		}
	}
}

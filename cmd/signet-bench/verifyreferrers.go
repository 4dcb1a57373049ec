package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/signet-oss/signet/internal/bench"
)

// runVerifyReferrers is signet-bench --verify-referrers: trustctl verify of a
// tag with three attestations, whole process, on one trustctl up.
func runVerifyReferrers(output string, quiet bool, cfg bench.VerifyReferrersConfig) {
	if !quiet {
		cfg.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.RunVerifyReferrers(ctx, cfg)
	writeReport(output, rep, err)
}

package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/signet-oss/signet/internal/bench"
)

// runPolicy is signet-bench --policy: warm pulls of a tag under a
// three-requirement pull policy against the same image under none, on one
// trustctl up.
func runPolicy(output string, quiet bool, cfg bench.PolicyConfig) {
	if !quiet {
		cfg.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.RunPolicy(ctx, cfg)
	writeReport(output, rep, err)
}

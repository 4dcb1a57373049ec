package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/signet-oss/signet/internal/bench"
)

// runTrust is signet-bench --trust: trustctl's figures on one trustctl up.
func runTrust(output string, quiet bool) {
	cfg := bench.TrustConfig{}
	if !quiet {
		cfg.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.RunTrust(ctx, cfg)
	writeReport(output, rep, err)
}

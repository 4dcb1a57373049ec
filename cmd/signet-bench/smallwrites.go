package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/signet-oss/signet/internal/bench"
)

// runSmallWrites is signet-bench --small-writes: small-image pushes and manifest
// GETs from concurrent clients, against crane's in-memory registry (the ceiling),
// Signet on the filesystem and the reference registry.
func runSmallWrites(output string, quiet bool, cfg bench.SmallWritesConfig) {
	if !quiet {
		cfg.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.RunSmallWrites(ctx, cfg)
	writeReport(output, rep, err)
}

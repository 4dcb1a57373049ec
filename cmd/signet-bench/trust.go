package main

import (
	"context"
	"encoding/json"
	"fmt"
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
	if err != nil {
		fmt.Fprintln(os.Stderr, "signet-bench:", err)
		os.Exit(1)
	}
	if output == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	rep.WriteTable(os.Stdout)
}

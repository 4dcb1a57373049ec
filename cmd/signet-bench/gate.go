package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/signet-oss/signet/internal/bench"
)

// runGate is signet-bench --gate: what the registry's admission gate costs, on
// one trustctl up with an open namespace.
func runGate(output string, quiet bool, cfg bench.GateConfig) {
	if !quiet {
		cfg.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.RunGate(ctx, cfg)
	writeReport(output, rep, err)
}

// writeReport prints a benchmark's report as a table or JSON, or its error and
// exits 1.
func writeReport(output string, rep interface{ WriteTable(io.Writer) error }, err error) {
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

package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Result holds one server's figures.
type Result struct {
	Server string `json:"server"`
	PID    int    `json:"pid"`

	LargePushMiBs float64   `json:"large_push_mib_s"`
	LargePushRuns []float64 `json:"large_push_runs_mib_s"`
	LargePullMiBs float64   `json:"large_pull_mib_s"`
	LargePullRuns []float64 `json:"large_pull_runs_mib_s"`

	SmallPushes       int     `json:"small_pushes"`
	SmallPushesPerSec float64 `json:"small_pushes_per_s"`

	ManifestGets       int     `json:"manifest_gets"`
	ManifestGetsPerSec float64 `json:"manifest_gets_per_s"`

	PeakRSSMiB float64 `json:"peak_rss_mib"`

	// OtherCPU is the share of the machine's CPU time, while this server was
	// measured, spent neither by it nor by this client: other processes and kernel
	// work not charged to a process. Far above a few percent means the figures are
	// skewed by other work.
	OtherCPU float64 `json:"other_cpu_share"`

	// Retried counts pushes that failed and were tried again (see pushRetries);
	// RetryError is the first such failure.
	Retried    int    `json:"retried_pushes,omitempty"`
	RetryError string `json:"retry_error,omitempty"`
	retryMu    sync.Mutex

	// Rounds holds each round's result when there were several; the figures
	// above are their medians.
	Rounds []*Result `json:"rounds,omitempty"`

	// CPU is the CPU time the server and this client spent in each phase, which
	// tells a slow server from a slow disk, and a server from a client at its limit.
	CPU []PhaseCPU `json:"cpu"`
}

// noteRetry counts a failed push that will be tried again.
func (r *Result) noteRetry(err error) {
	r.retryMu.Lock()
	defer r.retryMu.Unlock()
	r.Retried++
	if r.RetryError == "" {
		r.RetryError = err.Error()
	}
}

// PhaseCPU is the user+system CPU time of the server and of the client during one
// phase (the client's includes generating and hashing payloads outside the timed
// loops), and the phase's wall time.
type PhaseCPU struct {
	Phase         string  `json:"phase"`
	Wall          float64 `json:"wall_s"`
	ServerSeconds float64 `json:"server_cpu_s"`
	ClientSeconds float64 `json:"client_cpu_s"`
	// S3Seconds is the S3 server's (versitygw's) CPU time, on S3 only.
	S3Seconds float64 `json:"s3_server_cpu_s,omitempty"`
}

// Machine describes where the figures were taken.
type Machine struct {
	NumCPU    int    `json:"nproc"`
	CPUModel  string `json:"cpu_model,omitempty"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// RunConfig records the workload shape in the report.
type RunConfig struct {
	Layers        int     `json:"layers"`
	LayerMiB      float64 `json:"layer_mib"`
	Rounds        int     `json:"rounds"`
	PushRuns      int     `json:"push_runs"`
	PullRuns      int     `json:"pull_runs"`
	Clients       int     `json:"clients"`
	SmallDuration string  `json:"small_push_duration"`
	GetDuration   string  `json:"manifest_get_duration"`
}

func reportConfig(c Config) RunConfig {
	return RunConfig{
		Layers: c.Layers, LayerMiB: float64(c.LayerSize) / mib, Rounds: c.Rounds,
		PushRuns: c.PushRuns, PullRuns: c.PullRuns, Clients: c.Clients,
		SmallDuration: c.SmallDuration.String(), GetDuration: c.GetDuration.String(),
	}
}

// Report is the outcome of a run: either server may be missing when only one ran.
type Report struct {
	// Storage is the driver both servers ran on: Filesystem or S3.
	Storage   string    `json:"storage"`
	Machine   Machine   `json:"machine"`
	Config    RunConfig `json:"config"`
	Reference *Result   `json:"reference,omitempty"`
	Signet    *Result   `json:"signet,omitempty"`
	Rows      []Row     `json:"rows"`
}

// Row is one line of the table. Ratio is Signet/reference, 0 when either is missing.
type Row struct {
	Metric      string  `json:"metric"`
	Signet      float64 `json:"signet,omitempty"`
	Reference   float64 `json:"reference,omitempty"`
	Ratio       float64 `json:"ratio,omitempty"`
	Target      float64 `json:"target,omitempty"`
	LowerBetter bool    `json:"lower_is_better,omitempty"`
}

// Met reports whether the row has a target and the ratio reaches it.
func (r Row) Met() bool { return r.Target > 0 && r.Ratio >= r.Target }

// metrics are the table's rows, with the targets of the speed requirement on the
// filesystem and on S3 (where both registries are bound by the S3 server; no
// target for manifest GETs there).
var metrics = []struct {
	name        string
	target      float64
	s3Target    float64
	lowerBetter bool
	get         func(*Result) float64
}{
	{"large push (MiB/s)", 1.2, 1.2, false, func(r *Result) float64 { return r.LargePushMiBs }},
	{"large pull (MiB/s)", 1.5, 1.0, false, func(r *Result) float64 { return r.LargePullMiBs }},
	{"small-image pushes/s", 3, 1.5, false, func(r *Result) float64 { return r.SmallPushesPerSec }},
	{"manifest GETs/s", 3, 0, false, func(r *Result) float64 { return r.ManifestGetsPerSec }},
	{"peak RSS (MiB, lower is better)", 0, 0, true, func(r *Result) float64 { return r.PeakRSSMiB }},
}

// Finish computes the rows from the results.
func (rep *Report) Finish() {
	rep.Rows = rep.Rows[:0]
	for _, m := range metrics {
		target := m.target
		if rep.Storage == S3 {
			target = m.s3Target
		}
		row := Row{Metric: m.name, Target: target, LowerBetter: m.lowerBetter}
		if rep.Signet != nil {
			row.Signet = m.get(rep.Signet)
		}
		if rep.Reference != nil {
			row.Reference = m.get(rep.Reference)
		}
		if row.Signet > 0 && row.Reference > 0 {
			row.Ratio = row.Signet / row.Reference
		}
		rep.Rows = append(rep.Rows, row)
	}
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	rep.Finish()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteTable writes the report as one aligned table, headed by the machine and the
// workload shape.
func (rep *Report) WriteTable(w io.Writer) error {
	rep.Finish()
	m := rep.Machine
	cpu := ""
	if m.CPUModel != "" {
		cpu = ", " + m.CPUModel
	}
	c := rep.Config
	storage := "filesystem driver"
	if rep.Storage == S3 {
		storage = "s3 driver on one versitygw server (a bucket each, redirects off)"
	}
	fmt.Fprintf(w, "Signet vs %s (reference), %s, loopback\n", ReferenceName, storage)
	fmt.Fprintf(w, "machine: %d CPUs%s; %s %s/%s\n", m.NumCPU, cpu, m.GoVersion, m.OS, m.Arch)
	fmt.Fprintf(w, "large image: %d × %g MiB layers, push median of %d, pull median of %d; %d concurrent clients\n",
		c.Layers, c.LayerMiB, c.PushRuns, c.PullRuns, c.Clients)
	if c.Rounds > 1 {
		fmt.Fprintf(w, "each figure: the median of %d rounds, the servers' order alternating\n", c.Rounds)
	}
	var other []string
	for _, r := range []*Result{rep.Signet, rep.Reference} {
		if r != nil {
			other = append(other, fmt.Sprintf("%s %.0f%%", r.Server, 100*r.OtherCPU))
		}
	}
	if len(other) > 0 {
		fmt.Fprintf(w, "CPU used by other work during each server's run (skews figures when high): %s\n", strings.Join(other, ", "))
	}
	for _, r := range []*Result{rep.Signet, rep.Reference} {
		if r != nil && r.Retried > 0 {
			msg := strings.Join(strings.Fields(r.RetryError), " ")
			if len(msg) > 300 {
				msg = msg[:300] + "..."
			}
			fmt.Fprintf(w, "%s: %d pushes failed and were retried (their time counted); the first: %s\n", r.Server, r.Retried, msg)
		}
	}
	if rep.Storage == S3 {
		if line := cpuLine(rep.Signet, rep.Reference); line != "" {
			fmt.Fprintf(w, "CPU seconds per phase, registry + versitygw: %s\n", line)
		}
	}
	fmt.Fprintln(w)
	rows := [][]string{{"metric", "Signet", "reference", "Signet/reference", "target", ""}}
	for _, r := range rep.Rows {
		target, verdict := "", ""
		switch {
		case r.Target > 0:
			target = "≥ " + formatRatio(r.Target)
			if r.Ratio > 0 {
				verdict = "missed"
				if r.Met() {
					verdict = "met"
				}
			}
		}
		rows = append(rows, []string{r.Metric, formatFigure(r.Signet), formatFigure(r.Reference),
			formatRatio(r.Ratio), target, verdict})
	}
	_, err := io.WriteString(w, formatTable(rows, []bool{false, true, true, true, false, false}))
	return err
}

// cpuLine summarises the timed phases' CPU time of each registry and of the S3
// server behind it, e.g. "large push: signet 1.2+3.4 s, reference 2.0+3.5 s; ...".
func cpuLine(results ...*Result) string {
	var parts []string
	for _, phase := range []string{"large push", "large pull", "small push"} {
		var each []string
		for _, r := range results {
			if r == nil {
				continue
			}
			for _, c := range r.CPU {
				if c.Phase == phase {
					each = append(each, fmt.Sprintf("%s %.1f+%.1f s", r.Server, c.ServerSeconds, c.S3Seconds))
				}
			}
		}
		if len(each) > 0 {
			parts = append(parts, phase+": "+strings.Join(each, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// formatTable aligns rows into columns two spaces apart, right-aligning the columns
// marked in right, and trims trailing blanks.
func formatTable(rows [][]string, right []bool) string {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		var line strings.Builder
		for i, cell := range row {
			if i > 0 {
				line.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i < len(right) && right[i] {
				line.WriteString(pad + cell)
			} else {
				line.WriteString(cell + pad)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// formatFigure prints a figure with about three significant digits, "—" if absent.
func formatFigure(v float64) string {
	switch {
	case v <= 0:
		return "—"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func formatRatio(v float64) string {
	if v <= 0 {
		return "—"
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".") + "×"
}

// combine reduces one server's rounds to a result whose figures are the medians.
func combine(rounds []*Result) *Result {
	if len(rounds) == 1 {
		return rounds[0]
	}
	med := func(get func(*Result) float64) float64 {
		vs := make([]float64, len(rounds))
		for i, r := range rounds {
			vs[i] = get(r)
		}
		return median(vs)
	}
	return &Result{
		Server:             rounds[0].Server,
		LargePushMiBs:      med(func(r *Result) float64 { return r.LargePushMiBs }),
		LargePullMiBs:      med(func(r *Result) float64 { return r.LargePullMiBs }),
		SmallPushesPerSec:  med(func(r *Result) float64 { return r.SmallPushesPerSec }),
		ManifestGetsPerSec: med(func(r *Result) float64 { return r.ManifestGetsPerSec }),
		PeakRSSMiB:         med(func(r *Result) float64 { return r.PeakRSSMiB }),
		OtherCPU:           med(func(r *Result) float64 { return r.OtherCPU }),
		Retried:            sumRetried(rounds),
		Rounds:             rounds,
	}
}

func sumRetried(rounds []*Result) int {
	n := 0
	for _, r := range rounds {
		n += r.Retried
	}
	return n
}

// median returns the middle value of vs (the mean of the two middle ones for an
// even count), 0 for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

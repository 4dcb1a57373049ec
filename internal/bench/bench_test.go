package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/internal/s3test"
	"github.com/signet-oss/signet/policy"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want float64
	}{
		{"no runs give zero", nil, 0},
		{"one run is its own median", []float64{7}, 7},
		{"an odd count takes the middle of the sorted runs", []float64{9, 1, 5}, 5},
		{"an even count averages the two middle runs", []float64{4, 1, 3, 2}, 2.5},
		{"an outlier does not move it", []float64{100, 101, 1e9}, 101},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			if got := median(tc.in); got != tc.want {
				t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatalf("median reordered its input: %v", tc.in)
				}
			}
		})
	}
}

const procStatus = `Name:	registry
Umask:	0022
State:	S (sleeping)
VmPeak:	 1260300 kB
VmSize:	 1260300 kB
VmHWM:	   76636 kB
VmRSS:	   61440 kB
Threads:	9
`

func TestParseVmHWM(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{"the peak is read in kB and returned in bytes", procStatus, 76636 << 10, false},
		{"a status without VmHWM is an error", "Name:\tx\nVmRSS:\t 1 kB\n", 0, true},
		{"a unit other than kB is an error", "VmHWM:\t 12 MB\n", 0, true},
		{"a non-number is an error", "VmHWM:\t twelve kB\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVmHWM(tc.status)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseVmHWM: err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("parseVmHWM = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 250 and 50 ticks; the command name holds
	// a space and a parenthesis to show fields are counted after the last ')'.
	stat := "4242 (reg (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 100 1260300 15360 18446744073709551615"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Second; got != want {
		t.Errorf("parseStatCPU = %v, want %v", got, want)
	}
	if _, err := parseStatCPU("4242 (registry) S 1 2"); err == nil {
		t.Error("parseStatCPU of a short stat: no error")
	}
}

func TestParseListenAddr(t *testing.T) {
	for _, tc := range []struct {
		name, line, want string
	}{
		{"the slog text line gives its address",
			`time=2026-01-01T00:00:00Z level=INFO msg="registry listening" addr=127.0.0.1:40123`, "127.0.0.1:40123"},
		{"a quoted address is unquoted",
			`level=INFO msg="registry listening" addr="127.0.0.1:5000" data=/tmp/x`, "127.0.0.1:5000"},
		{"another message is ignored",
			`level=INFO msg="config loaded" addr=127.0.0.1:40123`, ""},
		{"the requested port 0 is not an address to dial",
			`level=INFO msg="registry listening" addr=127.0.0.1:0`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseListenAddr(tc.line)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("parseListenAddr = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

func TestCPUModel(t *testing.T) {
	info := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\nprocessor\t: 1\nmodel name\t: AMD EPYC 9B14\n"
	if got := cpuModel(info); got != "AMD EPYC 9B14" {
		t.Errorf("cpuModel = %q", got)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		v          float64
		fig, ratio string
	}{
		{0, "—", "—"},
		{0.5, "0.50", "0.5×"},
		{1.2, "1.20", "1.2×"},
		{3, "3.00", "3×"},
		{12.345, "12.3", "12.35×"},
		{2492.4, "2492", "2492.4×"},
	} {
		if got := formatFigure(tc.v); got != tc.fig {
			t.Errorf("formatFigure(%v) = %q, want %q", tc.v, got, tc.fig)
		}
		if got := formatRatio(tc.v); got != tc.ratio {
			t.Errorf("formatRatio(%v) = %q, want %q", tc.v, got, tc.ratio)
		}
	}
}

func sampleReport() *Report {
	return &Report{
		Machine: Machine{NumCPU: 2, CPUModel: "AMD EPYC", GoVersion: "go1.26.8", OS: "linux", Arch: "amd64"},
		Config:  RunConfig{Layers: 4, LayerMiB: 64, PushRuns: 3, PullRuns: 5, Clients: 8},
		Signet: &Result{LargePushMiBs: 600, LargePullMiBs: 3000, SmallPushesPerSec: 300,
			ManifestGetsPerSec: 20000, PeakRSSMiB: 40},
		Reference: &Result{LargePushMiBs: 400, LargePullMiBs: 2500, SmallPushesPerSec: 100,
			ManifestGetsPerSec: 6000, PeakRSSMiB: 80},
	}
}

// tableRows returns the table's lines after the header as cells (split at runs of
// two or more spaces), keyed by metric.
func tableRows(t *testing.T, table string) map[string]string {
	t.Helper()
	_, body, ok := strings.Cut(table, "\nmetric ")
	if !ok {
		t.Fatalf("no header in:\n%s", table)
	}
	cells := regexp.MustCompile(` {2,}`)
	rows := map[string]string{}
	for _, line := range strings.Split(body, "\n")[1:] {
		if c := cells.Split(line, -1); len(c) > 1 {
			rows[c[0]] = strings.Join(c[1:], " | ")
		}
	}
	return rows
}

func TestTableShowsFiguresRatiosAndVerdicts(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "machine: 2 CPUs, AMD EPYC; go1.26.8 linux/amd64") {
		t.Errorf("no machine line in:\n%s", b.String())
	}
	rows := tableRows(t, b.String())
	for metric, want := range map[string]string{
		"large push (MiB/s)":              "600 | 400 | 1.5× | ≥ 1.2× | met",
		"large pull (MiB/s)":              "3000 | 2500 | 1.2× | ≥ 1.5× | missed",
		"small-image pushes/s":            "300 | 100 | 3× | ≥ 3× | met",
		"manifest GETs/s":                 "20000 | 6000 | 3.33× | ≥ 3× | met",
		"peak RSS (MiB, lower is better)": "40.0 | 80.0 | 0.5×",
	} {
		if got := rows[metric]; got != want {
			t.Errorf("row %q = %q, want %q\n%s", metric, got, want, b.String())
		}
	}
}

func TestTableWithOneServerLeavesTheOtherBlank(t *testing.T) {
	rep := sampleReport()
	rep.Signet = nil
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	rows := tableRows(t, b.String())
	if got, want := rows["large push (MiB/s)"], "— | 400 | — | ≥ 1.2×"; got != want {
		t.Errorf("large push row = %q, want %q\n%s", got, want, b.String())
	}
}

func TestJSONCarriesRowsAndResults(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Machine Machine `json:"machine"`
		Signet  Result  `json:"signet"`
		Rows    []Row   `json:"rows"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if got.Machine.NumCPU != 2 || got.Signet.LargePushMiBs != 600 || len(got.Rows) != len(metrics) {
		t.Fatalf("unexpected JSON:\n%s", b.String())
	}
	if r := got.Rows[4]; !r.LowerBetter || r.Ratio != 0.5 {
		t.Errorf("RSS row = %+v, want lower-is-better with ratio 0.5", r)
	}
}

func TestFormatTableAlignsColumns(t *testing.T) {
	got := formatTable([][]string{{"a", "1", "x"}, {"long", "100", ""}}, []bool{false, true, false})
	want := "a       1  x\nlong  100\n"
	if got != want {
		t.Errorf("formatTable =\n%q, want\n%q", got, want)
	}
}

func TestPlanIsDeterministicPerSeed(t *testing.T) {
	cfg := Config{Layers: 2, LayerSize: 4096, SmallMax: 3}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	p, err := newPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := p.largeImage(0)
	b := p.largeImage(0)
	c := p.largeImage(1)
	if a.manifest.digest != b.manifest.digest {
		t.Error("the same run gave two different images")
	}
	if a.layers[0].digest == c.layers[0].digest || a.layers[0].digest == a.layers[1].digest {
		t.Error("layers repeat across runs or within an image")
	}
	if got, want := a.size(), int64(2*4096+len(a.config.data)+len(a.manifest.data)); got != want {
		t.Errorf("size = %d, want %d", got, want)
	}
	seen := map[string]bool{}
	for _, im := range append(p.small, p.warm...) {
		if seen[im.manifest.digest] || seen[im.config.digest] {
			t.Fatal("small images repeat")
		}
		seen[im.manifest.digest], seen[im.config.digest] = true, true
	}
	var m struct {
		Config struct{ Digest string }
		Layers []struct {
			Digest string
			Size   int
		}
	}
	if err := json.Unmarshal(p.small[0].manifest.data, &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.Digest != p.small[0].config.digest || len(m.Layers) != 1 || m.Layers[0].Size != smallLayerSize {
		t.Errorf("manifest does not describe its blobs: %s", p.small[0].manifest.data)
	}
}

func TestParseProcStatBusy(t *testing.T) {
	// user nice system idle iowait irq softirq steal: busy excludes idle and iowait.
	stat := "cpu  100 5 40 9000 300 2 3 50 0 0\ncpu0 50 2 20 4500 150 1 1 25 0 0\n"
	got, err := parseProcStatBusy(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 200 * clockTick; got != want {
		t.Errorf("parseProcStatBusy = %v, want %v", got, want)
	}
	if _, err := parseProcStatBusy("intr 1 2 3\n"); err == nil {
		t.Error("parseProcStatBusy of a stat without a cpu line: no error")
	}
}

func TestCombineTakesMediansOverRounds(t *testing.T) {
	rounds := []*Result{
		{Server: Signet, LargePushMiBs: 100, ManifestGetsPerSec: 9, PeakRSSMiB: 20},
		{Server: Signet, LargePushMiBs: 300, ManifestGetsPerSec: 1, PeakRSSMiB: 22},
		{Server: Signet, LargePushMiBs: 200, ManifestGetsPerSec: 5, PeakRSSMiB: 90},
	}
	got := combine(rounds)
	if got.Server != Signet || got.LargePushMiBs != 200 || got.ManifestGetsPerSec != 5 || got.PeakRSSMiB != 22 {
		t.Errorf("combine = %+v, want the per-figure medians 200, 5, 22", got)
	}
	if len(got.Rounds) != 3 {
		t.Errorf("combine kept %d rounds, want 3", len(got.Rounds))
	}
	if one := combine(rounds[:1]); one != rounds[0] {
		t.Error("one round should be reported as is")
	}
}

func TestS3TableHasTheS3Targets(t *testing.T) {
	rep := sampleReport()
	rep.Storage = S3
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "s3 driver on one versitygw server") {
		t.Errorf("the header does not name the s3 driver:\n%s", b.String())
	}
	rows := tableRows(t, b.String())
	for metric, want := range map[string]string{
		"large push (MiB/s)":   "600 | 400 | 1.5× | ≥ 1.2× | met",
		"large pull (MiB/s)":   "3000 | 2500 | 1.2× | ≥ 1× | met",
		"small-image pushes/s": "300 | 100 | 3× | ≥ 1.5× | met",
		"manifest GETs/s":      "20000 | 6000 | 3.33×",
	} {
		if got := rows[metric]; got != want {
			t.Errorf("row %q = %q, want %q\n%s", metric, got, want, b.String())
		}
	}
}

func TestReferenceStorageServesBytesItselfOnS3(t *testing.T) {
	fs := referenceStorage(storage{dir: "/data/x"})
	if !strings.Contains(fs, "filesystem:\n    rootdirectory: /data/x/root\n") {
		t.Errorf("filesystem section:\n%s", fs)
	}
	s3 := referenceStorage(storage{dir: "/data/x", bucket: "b1", s3: &s3test.Server{Endpoint: "http://127.0.0.1:9", AccessKey: "ak", SecretKey: "sk"}})
	for _, want := range []string{"  s3:\n", "regionendpoint: http://127.0.0.1:9\n", "bucket: b1\n", "accesskey: ak\n",
		"secretkey: sk\n", "forcepathstyle: true\n", "secure: false\n", "v4auth: true\n", "  redirect:\n    disable: true\n"} {
		if !strings.Contains(s3, want) {
			t.Errorf("s3 section lacks %q:\n%s", want, s3)
		}
	}
}

func TestTheGateBenchmarksAttestationIsOneTheGateAdmits(t *testing.T) {
	key, err := signer.NewKey("publisher", "")
	if err != nil {
		t.Fatal(err)
	}
	subject := digest.FromString("an image manifest")
	a, err := cosignAttestation("127.0.0.1:5000/acme/app", subject, key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(a.Tag, ".att") || a.Digest != digest.FromBytes(a.Manifest) {
		t.Fatalf("tag %s, digest %s of %s", a.Tag, a.Digest, a.Manifest)
	}
	blob := func(d digest.Digest) ([]byte, error) {
		if b, ok := a.Blobs[d]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("no blob %s", d)
	}
	r, err := verify.CheckReferrer(context.Background(), verify.Artifact{MediaType: a.MediaType, Manifest: a.Manifest, Blob: blob}, verify.NewKeys(key.TUF), "acme/app", subject)
	if err != nil || r.Format != verify.FormatCosignAttestation || r.Verified() != nil {
		t.Fatalf("the benchmark's attestation checks as %+v, %v (verified: %v)", r, err, r.Verified())
	}
}

// TestThePolicyBenchmarksEvidenceMeetsItsPolicy: the artifacts the --policy
// benchmark pushes verify, and with the repository role's signer meet its
// three requirements, as the registry evaluates them; without the second
// signer's signature they do not.
func TestThePolicyBenchmarksEvidenceMeetsItsPolicy(t *testing.T) {
	attester, err := signer.NewKey("publisher", "")
	if err != nil {
		t.Fatal(err)
	}
	cosigner, err := signer.NewKey("publisher2", "")
	if err != nil {
		t.Fatal(err)
	}
	subject := digest.FromString("an image manifest")
	arts, err := policyArtifacts("127.0.0.1:5000/"+policyRepo, subject, attester, cosigner)
	if err != nil {
		t.Fatal(err)
	}
	var refs []verify.Referrer
	for _, a := range arts {
		blob := func(d digest.Digest) ([]byte, error) {
			if b, ok := a.Blobs[d]; ok {
				return b, nil
			}
			return nil, fmt.Errorf("no blob %s", d)
		}
		r, err := verify.CheckReferrer(context.Background(), verify.Artifact{MediaType: a.MediaType, Manifest: a.Manifest, Blob: blob}, verify.NewKeys(attester.TUF, cosigner.TUF), policyRepo, subject)
		if err != nil || r.Verified() != nil {
			t.Fatalf("%s checks as %v (verified: %v)", a.Tag, err, r.Verified())
		}
		refs = append(refs, r)
	}
	id, err := attester.TUF.ID()
	if err != nil {
		t.Fatal(err)
	}
	roleSigners := []string{id}
	docs := benchPolicy().For(policyRepo)
	if len(docs) != 1 || len(docs[0].Require) != 3 {
		t.Fatalf("the benchmark's policy for %s: %+v, want one document of 3 requirements", policyRepo, docs)
	}
	if err := policy.Evaluate(docs, verify.PolicyEvidence(roleSigners, refs)).Err(); err != nil {
		t.Fatalf("the benchmark's evidence does not meet its policy: %v", err)
	}
	if err := policy.Evaluate(docs, verify.PolicyEvidence(roleSigners, refs[:1])).Err(); err == nil {
		t.Fatal("the attestations alone meet the policy: it counts no second signer")
	}
}

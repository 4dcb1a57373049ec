package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/s3test"
	"github.com/signet-oss/signet/internal/testlog"
	"github.com/signet-oss/signet/internal/testtools"
)

// metricsListening is the line each server logs when its metrics listener is up.
var metricsListening = regexp.MustCompile(`msg="metrics listening".*? addr=(\S+).*? server=(\w+)`)

// metricsAddrs waits for the "metrics listening" lines in log and returns the
// address of each server's metrics listener.
func metricsAddrs(t *testing.T, log *testlog.Buffer, servers ...string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		addrs := map[string]string{}
		for _, m := range metricsListening.FindAllStringSubmatch(log.String(), -1) {
			addrs[m[2]] = m[1]
		}
		complete := true
		for _, s := range servers {
			complete = complete && addrs[s] != ""
		}
		if complete {
			return addrs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics listening line for each of %v in:\n%s", servers, log.Tail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrape is one scrape of a /metrics endpoint: sample lines by series
// (`name{label="value",...}`, labels as the server orders them: by name).
type scrape map[string]float64

func scrapeMetrics(t *testing.T, addr string) scrape {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET http://%s/metrics: %s", addr, resp.Status)
	}
	s := scrape{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		s[line[:i]] = v
	}
	return s
}

// get returns the series' value, failing t when it is absent.
func (s scrape) get(t *testing.T, series string) float64 {
	t.Helper()
	v, ok := s[series]
	if !ok {
		var near []string
		name, _, _ := strings.Cut(series, "{")
		for k := range s {
			if strings.HasPrefix(k, name) {
				near = append(near, k)
			}
		}
		t.Fatalf("no series %s; of that name there are %v", series, near)
	}
	return v
}

// readyzReport is the body of /readyz.
type readyzReport struct {
	Status string
	Checks []struct {
		Name   string
		OK     bool
		Reason string
	}
}

// waitReadyz polls base+/readyz until it answers want and the report satisfies
// cond, and returns that report.
func waitReadyz(t *testing.T, base string, want int, within time.Duration, cond func(readyzReport) bool) readyzReport {
	t.Helper()
	var last string
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = fmt.Sprintf("%s %s", resp.Status, body)
		var rep readyzReport
		if json.Unmarshal(body, &rep) != nil || resp.StatusCode != want {
			continue
		}
		if cond == nil || cond(rep) {
			return rep
		}
	}
	t.Fatalf("%s/readyz never answered %d as wanted within %v; last: %s", base, want, within, last)
	return readyzReport{}
}

// failing returns a condition: the check name failed with a reason holding want.
func failing(name, want string) func(readyzReport) bool {
	return func(r readyzReport) bool {
		for _, c := range r.Checks {
			if c.Name == name {
				return !c.OK && strings.Contains(c.Reason, want)
			}
		}
		return false
	}
}

// TestMetricsOfASignedPushAndPull runs `trustctl up` with both metrics
// listeners, pushes a signed image, pulls it with crane, has an unsigned
// manifest denied, and reads what both servers' metrics say of it.
func TestMetricsOfASignedPushAndPull(t *testing.T) {
	t.Parallel()
	st := startStack(t, "--metrics-addr", "127.0.0.1:0", "--trustd-metrics-addr", "127.0.0.1:0")
	addrs := metricsAddrs(t, st.log, "registry", "trustd")
	before := scrapeMetrics(t, addrs["registry"])

	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")
	img := newImage(t, "metrics", newLayer(t, "metrics/layer.bin", 256<<10))
	st.trustctl(t, "push", writeLayout(t, img), st.Addr+"/acme/app:v1", "--key", "alice")
	crane := newTool(t, "crane", "DOCKER_CONFIG="+st.Home)
	crane.run(t, "pull", "--format", "oci", st.Addr+"/acme/app:v1", filepath.Join(t.TempDir(), "oci"))
	admin := st.admin()
	// A layer over the 1 MiB a first chunk may be put whole in, so that it is
	// written through a storage writer (writer_commit below).
	unsigned := newImage(t, "metrics-unsigned", newLayer(t, "metrics/unsigned.bin", 2<<20))
	if err := pushBlobs(admin, "acme/app", unsigned); err != nil {
		t.Fatal(err)
	}
	putDenied(t, admin, "acme/app", "v2", unsigned.Manifest, "is not signed for acme/app:v2")

	reg := scrapeMetrics(t, addrs["registry"])
	moved := func(series string, atLeast float64) {
		t.Helper()
		if got := reg.get(t, series) - before[series]; got < atLeast {
			t.Errorf("registry %s moved by %v, want at least %v", series, got, atLeast)
		}
	}
	moved(`signet_registry_http_requests_total{method="PUT",route="manifest",status="201"}`, 1)
	moved(`signet_registry_http_requests_total{method="PUT",route="manifest",status="403"}`, 1)
	moved(`signet_registry_http_requests_total{method="GET",route="manifest",status="200"}`, 1)
	moved(`signet_registry_http_requests_total{method="GET",route="blob",status="200"}`, 2) // config and layer
	moved(`signet_registry_http_request_duration_seconds_count{method="GET",route="blob"}`, 2)
	moved(`signet_registry_http_request_duration_seconds_count{method="PUT",route="manifest"}`, 2)
	moved(`signet_registry_http_received_bytes_total`, 256<<10)
	moved(`signet_registry_http_sent_bytes_total`, 256<<10)
	moved(`signet_registry_admission_decisions_total{outcome="admitted"}`, 1)
	moved(`signet_registry_admission_decisions_total{outcome="denied"}`, 1)
	moved(`signet_registry_storage_operation_duration_seconds_count{operation="put_content"}`, 1)
	moved(`signet_registry_storage_operation_duration_seconds_count{operation="writer_commit"}`, 1)
	if got := reg.get(t, `signet_registry_uploads_in_flight`); got != 0 {
		t.Errorf("uploads in flight after every push ended: %v, want 0", got)
	}
	if age := reg.get(t, `signet_registry_trust_metadata_age_seconds`); age < 0 || age > 60 {
		t.Errorf("trust metadata age %v s, want a fresh refresh (0-60 s)", age)
	}
	for series := range reg {
		if strings.Contains(series, "acme/app") || strings.Contains(series, "/v2/") {
			t.Errorf("a series carries a repository or a raw path: %s", series)
		}
	}
	reg.get(t, `go_goroutines`)
	reg.get(t, `process_cpu_seconds_total`)

	td := scrapeMetrics(t, addrs["trustd"])
	issued := 0.0
	for _, grant := range []string{"basic", "password", "refresh_token", "anonymous"} {
		issued += td[`signet_trustd_tokens_total{grant="`+grant+`",outcome="issued"}`]
	}
	if issued < 3 {
		t.Errorf("trustd counted %v tokens issued over every grant, want at least 3 (push, pull, the denied PUT)", issued)
	}
	if got := td.get(t, `signet_trustd_http_requests_total{method="GET",route="token",status="200"}`) +
		td[`signet_trustd_http_requests_total{method="POST",route="token",status="200"}`]; got < issued {
		t.Errorf("trustd counted %v token requests answered 200, want at least the %v tokens issued", got, issued)
	}
	if got := td[`signet_trustd_http_request_duration_seconds_count{method="PUT",route="tuf_metadata"}`]; got < 1 {
		t.Errorf("trustd timed %v publishes (PUT /tuf/api/metadata/{role}), want at least 1", got)
	}
	td.get(t, `signet_trustd_storage_operation_duration_seconds_count{operation="put_content_if"}`)

	for name, base := range map[string]string{"registry": st.URL(""), "trustd": st.Trustd} {
		rep := waitReadyz(t, base, http.StatusOK, 10*time.Second, nil)
		names := map[string]bool{}
		for _, c := range rep.Checks {
			names[c.Name] = c.OK
		}
		want := map[string][]string{"registry": {"storage", "trust", "keys"}, "trustd": {"storage", "tuf", "keys"}}[name]
		for _, n := range want {
			if !names[n] {
				t.Errorf("%s /readyz: check %s missing or failing in %+v", name, n, rep)
			}
		}
	}
}

// TestReadyzFollowsS3 runs a registry on a real S3 server (versitygw), stops
// the server and starts it again: /readyz turns 503 naming storage, then 200,
// while /healthz stays 200.
func TestReadyzFollowsS3(t *testing.T) {
	t.Parallel()
	srv, err := s3test.Launch(testtools.MustPath(t, "versitygw"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	bucket := "signet-readyz"
	if err := srv.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	reg := startRegistryOn(t, store{Driver: "s3", Endpoint: srv.Endpoint, Bucket: bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	waitReadyz(t, reg.URL(""), http.StatusOK, 10*time.Second, nil)

	srv.Stop()
	waitReadyz(t, reg.URL(""), http.StatusServiceUnavailable, 20*time.Second, failing("storage", "storage (s3) does not answer"))
	resp, err := http.Get(reg.URL("/healthz"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz with storage down: %s, want 200 (the process still serves)", resp.Status)
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitReadyz(t, reg.URL(""), http.StatusOK, 20*time.Second, nil)
}

// TestReadyzFollowsTrustFreshness runs the registry and trustd of a stack as
// two processes, the registry refreshing every second with a staleness bound
// of three: with trustd killed, /readyz turns 503 saying the trust metadata is
// stale and the metadata age grows past the bound; with trustd back, 200.
func TestReadyzFollowsTrustFreshness(t *testing.T) {
	t.Parallel()
	if trustdErr != nil {
		t.Fatal(trustdErr)
	}
	st := startStack(t)
	st.stop()
	data := filepath.Join(filepath.Dir(st.Home), "data")
	var acct struct{ Username, Password string }
	readJSON(t, filepath.Join(data, "registry-account.json"), &acct)
	trustdAddr := strings.TrimPrefix(st.Trustd, "http://")
	td := startTrustdOn(t, filepath.Join(data, "trustd"), trustdAddr, st.AdminPassword)
	reg := startRegistryEnv(t, store{Driver: "filesystem", Data: filepath.Join(data, "registry")},
		[]string{"SIGNET_REGISTRY_PASSWORD=" + acct.Password},
		"--trustd", td.url, "--trust-root", filepath.Join(data, "registry-root.json"), "--trust-user", acct.Username,
		"--trust-refresh", "1s", "--trust-max-staleness", "3s", "--metrics-addr", "127.0.0.1:0")
	metrics := metricsAddrs(t, reg.log, "registry")["registry"]
	waitReadyz(t, reg.URL(""), http.StatusOK, 10*time.Second, nil)

	td.kill()
	waitReadyz(t, reg.URL(""), http.StatusServiceUnavailable, 20*time.Second, failing("trust", "the trust metadata is stale"))
	if age := scrapeMetrics(t, metrics).get(t, "signet_registry_trust_metadata_age_seconds"); age <= 3 {
		t.Errorf("trust metadata age with trustd down past the bound: %v s, want over 3", age)
	}

	startTrustdOn(t, filepath.Join(data, "trustd"), trustdAddr, st.AdminPassword)
	waitReadyz(t, reg.URL(""), http.StatusOK, 20*time.Second, nil)
	if age := scrapeMetrics(t, metrics).get(t, "signet_registry_trust_metadata_age_seconds"); age > 3 {
		t.Errorf("trust metadata age with trustd back: %v s, want within the bound", age)
	}
}

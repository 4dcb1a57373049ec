package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signet-oss/signet/internal/s3test"
)

// store is where a registry keeps its state: a data directory of its own
// (the filesystem driver) or a bucket on a versitygw server started for the test
// (the s3 driver). Registries started on one store share it, as replicas do.
type store struct {
	// Driver is "filesystem" or "s3".
	Driver string
	// Data is the filesystem driver's data directory (unused on S3).
	Data string
	// The s3 driver's server, bucket, key prefix and credentials.
	Endpoint, Bucket, Prefix, AccessKey, SecretKey string
}

// newFilesystemStore is a fresh data directory, removed when the test ends.
func newFilesystemStore(t *testing.T) store {
	return store{Driver: "filesystem", Data: t.TempDir()}
}

// newS3Store starts a versitygw server with a fresh bucket, stopped when the test
// ends.
func newS3Store(t *testing.T) store {
	t.Helper()
	endpoint, bucket, access, secret := s3test.Start(t)
	return store{Driver: "s3", Endpoint: endpoint, Bucket: bucket, AccessKey: access, SecretKey: secret}
}

// withPrefix is the same bucket under a key prefix of its own, as deployments that
// share a bucket are.
func (s store) withPrefix(p string) store {
	s.Prefix = p
	return s
}

// bothStores names the stores every storage-sensitive test runs on.
var bothStores = []struct {
	name string
	open func(*testing.T) store
}{
	{"filesystem", newFilesystemStore},
	{"s3", newS3Store},
}

// flags are the command-line flags that select the store, for `registry serve` and
// `registry gc`.
func (s store) flags() []string {
	if s.Driver == "s3" {
		f := []string{"--storage", "s3", "--s3-endpoint", s.Endpoint, "--s3-bucket", s.Bucket, "--s3-region", s3test.Region}
		if s.Prefix != "" {
			f = append(f, "--s3-prefix", s.Prefix)
		}
		return f
	}
	return []string{"--data", s.Data}
}

// env is the environment the registry needs for the store: the S3 credentials.
func (s store) env() []string {
	if s.Driver == "s3" {
		return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey}
	}
	return nil
}

// referenceConfig is the store as the body of the reference registry's storage
// section (indented two spaces), serving blob bytes itself rather than redirecting.
func (s store) referenceConfig() string {
	if s.Driver == "s3" {
		root := ""
		if s.Prefix != "" {
			root = "    rootdirectory: /" + strings.Trim(s.Prefix, "/") + "\n"
		}
		return fmt.Sprintf(`  s3:
    regionendpoint: %s
    bucket: %s
%s    region: %s
    accesskey: %s
    secretkey: %s
    forcepathstyle: true
    secure: false
    v4auth: true
  redirect:
    disable: true
`, s.Endpoint, s.Bucket, root, s3test.Region, s.AccessKey, s.SecretKey)
	}
	return fmt.Sprintf("  filesystem:\n    rootdirectory: %s\n", s.Data)
}

// blobStored reports whether the store holds the bytes of blob d (not merely a
// repository's link to it), looking at the disk or the bucket directly. On S3 the
// bytes stay where they were uploaded, at the data object that the blob's record
// (blobrefs/...) names; on the filesystem they are moved to blobs/....
func (s store) blobStored(t *testing.T, d string) bool {
	t.Helper()
	hex := strings.TrimPrefix(d, "sha256:")
	if s.Driver != "s3" {
		_, err := os.Stat(s.Data + "/v1/blobs/sha256/" + hex[:2] + "/" + hex)
		return err == nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := s3test.Client(s.Endpoint, s.AccessKey, s.SecretKey)
	prefix := ""
	if p := strings.Trim(s.Prefix, "/"); p != "" {
		prefix = p + "/"
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket),
		Key: aws.String(prefix + "v1/blobrefs/sha256/" + hex[:2] + "/" + hex)})
	if err != nil {
		return false
	}
	defer out.Body.Close()
	var ref struct {
		Data string `json:"data"`
	}
	if err := json.NewDecoder(out.Body).Decode(&ref); err != nil || ref.Data == "" {
		t.Fatalf("the record of blob %s in the bucket: %v (data %q)", d, err, ref.Data)
	}
	_, err = client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.Bucket),
		Key: aws.String(prefix + strings.TrimPrefix(ref.Data, "/"))})
	return err == nil
}

// gc runs `registry gc` on the store as a process of its own, next to any registry
// serving it, and returns its stdout.
func (s store) gc(args ...string) (string, error) {
	return s.command(append([]string{"gc"}, args...)...)
}

// command runs a registry command that opens the store (gc, notifications)
// with the store's flags, as a process of its own, and returns its stdout.
func (s store) command(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = append(append([]string{}, args...), s.flags()...)
	cmd := exec.CommandContext(ctx, registryBin, args...)
	cmd.Env = append(os.Environ(), s.env()...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("registry %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// roundRobin is a reverse proxy in front of registry replicas that sends each
// request to the next replica in turn, with no stickiness: consecutive requests of
// one upload land on different replicas. It passes the client's Host through, so the
// replicas' Location headers point back at the proxy.
type roundRobin struct {
	Addr string // host:port of the proxy
	n    atomic.Uint64
}

// startRoundRobin starts the proxy on a loopback port chosen by the OS; it stops when
// the test ends.
func startRoundRobin(t *testing.T, replicas ...*registry) *roundRobin {
	t.Helper()
	rr := &roundRobin{}
	targets := make([]*url.URL, len(replicas))
	for i, r := range replicas {
		targets[i] = &url.URL{Scheme: "http", Host: r.Addr}
	}
	// The proxy's own transport, without keep-alive: a pooled connection may
	// be closed by the replica just as the proxy reuses it for a PATCH, which is
	// then not retried; a fresh connection per request leaves no such race.
	transport := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(transport.CloseIdleConnections)
	proxy := &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := targets[(rr.n.Add(1)-1)%uint64(len(targets))]
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			t.Logf("round-robin proxy: %s %s: %v", r.Method, r.URL, err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	rr.Addr = strings.TrimPrefix(srv.URL, "http://")
	return rr
}

// requests is how many requests the proxy has forwarded.
func (rr *roundRobin) requests() uint64 { return rr.n.Load() }

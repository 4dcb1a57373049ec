// Package s3test starts a real S3 server for tests: versitygw with its posix
// backend, on a free loopback port, over a fresh temporary directory. Every call
// to Start gets its own server and bucket, so tests never see each other's
// objects; the server stops when the test ends.
//
// versitygw maps object keys to files, so, unlike AWS S3, it cannot hold both
// "a" and "a/b": tests of code that must also run on such servers find that out.
//
// For fault tests, StartFaulty puts the server behind a real TCP fault injector
// (Toxiproxy: latency, bandwidth, resets, black holes) and an HTTP proxy that
// answers chosen operations with S3's error answers (503 SlowDown, 500
// InternalError).
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signet-oss/signet/internal/testlog"
	"github.com/signet-oss/signet/internal/testtools"
)

// Region is the region the server accepts signatures for.
const Region = "us-east-1"

// startTimeout bounds how long a server may take to answer.
const startTimeout = 30 * time.Second

// Start starts versitygw on a free loopback port over a fresh data directory,
// creates a bucket, and returns the endpoint URL, the bucket and the credentials.
// The server is stopped, and its data removed, when tb ends.
func Start(tb testing.TB) (endpoint, bucket, accessKey, secretKey string) {
	tb.Helper()
	bin := testtools.MustPath(tb, "versitygw")
	srv, err := Launch(bin, tb.TempDir())
	if err != nil {
		tb.Fatalf("s3test: %v", err)
	}
	tb.Cleanup(srv.Stop)
	bucket = "signet-" + randomHex(6)
	if err := srv.CreateBucket(bucket); err != nil {
		tb.Fatalf("s3test: %v", err)
	}
	return srv.Endpoint, bucket, srv.AccessKey, srv.SecretKey
}

// Server is a running versitygw, for programs that are not tests (the benchmark).
type Server struct {
	// Endpoint is the server's URL, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the credentials it accepts.
	AccessKey, SecretKey string
	// DataDir holds its objects: a bucket is a top-level directory of it.
	DataDir string

	srv *server
}

// Launch starts the versitygw binary bin on a free loopback port over dataDir
// (created if missing), with fresh credentials, and waits until it answers. Stop it with Stop.
func Launch(bin, dataDir string) (*Server, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	accessKey, secretKey := "signet-test-"+randomHex(4), randomHex(20)
	var lastErr error
	for range 5 { // a port picked free may be taken before the server binds it
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
		srv, err := launch(bin, "127.0.0.1:"+strconv.Itoa(port), accessKey, secretKey, dataDir)
		if err != nil {
			return nil, err
		}
		if lastErr = srv.waitReady(endpoint); lastErr == nil {
			return &Server{Endpoint: endpoint, AccessKey: accessKey, SecretKey: secretKey, DataDir: dataDir, srv: srv}, nil
		}
		srv.stop()
	}
	return nil, fmt.Errorf("versitygw did not start: %w", lastErr)
}

// CreateBucket creates a bucket.
func (s *Server) CreateBucket(bucket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := Client(s.Endpoint, s.AccessKey, s.SecretKey).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("creating bucket %s: %w", bucket, err)
	}
	return nil
}

// Stop stops the server (SIGINT, then SIGKILL after 5s); its data stays.
func (s *Server) Stop() { s.srv.stop() }

// Client returns an S3 client for a server started by Start (path-style
// addressing, static credentials), for tests that look at the bucket directly.
func Client(endpoint, accessKey, secretKey string) *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	})
}

type server struct {
	cmd    *exec.Cmd
	out    *testlog.Buffer
	exited chan struct{}
}

func launch(bin, addr, accessKey, secretKey, dataDir string) (*server, error) {
	cmd := exec.Command(bin, "--port", addr, "--access", accessKey, "--secret", secretKey,
		"--quiet", "posix", dataDir)
	out := &testlog.Buffer{Max: 64 << 10} // enough to explain a failure
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = filepath.Dir(dataDir)
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting versitygw: %w", err)
	}
	s := &server{cmd: cmd, out: out, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(s.exited) }()
	return s, nil
}

// waitReady polls the endpoint until the server answers HTTP (any status: an
// unsigned request is refused, which proves the server is up).
func (s *server) waitReady(endpoint string) error {
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("versitygw exited: %s", s.out.String())
		default:
		}
		if resp, err := client.Get(endpoint + "/"); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no answer at %s within %v: %s", endpoint, startTimeout, s.out.String())
}

func (s *server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// PID is the server's process ID, for measuring its CPU time.
func (s *Server) PID() int { return s.srv.cmd.Process.Pid }

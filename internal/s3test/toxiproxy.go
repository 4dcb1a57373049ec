package s3test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/testlog"
	"github.com/signet-oss/signet/internal/testtools"
)

// Toxiproxy is a running toxiproxy-server (Shopify's TCP fault injector),
// driven over its HTTP API on loopback. Each proxy it holds listens on a free
// loopback port and forwards to one upstream; toxics added to it delay,
// throttle, cut or silence the connections through it.
type Toxiproxy struct {
	api    string
	client *http.Client
}

// ToxicProxy is one proxy of a Toxiproxy.
type ToxicProxy struct {
	tp   *Toxiproxy
	name string
	// Listen is the proxy's address, 127.0.0.1:PORT.
	Listen string
}

// Toxic is one fault, as toxiproxy's API takes it: Type is latency, bandwidth,
// timeout, reset_peer, limit_data, slicer or slow_close; Stream is upstream
// (client to server) or downstream; Toxicity is the share of connections it
// applies to (0 means 1); Attributes are the type's (latency and jitter in ms,
// rate in KB/s, timeout in ms, bytes).
type Toxic struct {
	Name       string           `json:"name"`
	Type       string           `json:"type"`
	Stream     string           `json:"stream"`
	Toxicity   float64          `json:"toxicity"`
	Attributes map[string]int64 `json:"attributes"`
}

// StartToxiproxy starts toxiproxy-server, installed by testtools, with its API
// on a free loopback port. It is stopped when tb ends.
func StartToxiproxy(tb testing.TB) *Toxiproxy {
	tb.Helper()
	bin := testtools.MustPath(tb, "toxiproxy-server")
	var lastErr error
	for range 5 { // a port picked free may be taken before the server binds it
		port, err := freePort()
		if err != nil {
			tb.Fatalf("s3test: %v", err)
		}
		cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", strconv.Itoa(port))
		out := &testlog.Buffer{Max: 64 << 10} // enough to explain a failure
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Env = append(os.Environ(), "LOG_LEVEL=warn")
		if err := cmd.Start(); err != nil {
			tb.Fatalf("s3test: starting toxiproxy-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() {
			cmd.Process.Kill()
			<-exited
		}
		tp := &Toxiproxy{api: "http://127.0.0.1:" + strconv.Itoa(port), client: &http.Client{Timeout: 10 * time.Second}}
		if lastErr = tp.waitReady(exited, out); lastErr == nil {
			tb.Cleanup(stop)
			return tp
		}
		stop()
	}
	tb.Fatalf("s3test: toxiproxy-server did not start: %v", lastErr)
	return nil
}

func (tp *Toxiproxy) waitReady(exited <-chan struct{}, out *testlog.Buffer) error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("toxiproxy-server exited: %s", out.String())
		default:
		}
		if resp, err := tp.client.Get(tp.api + "/version"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no answer at %s within %v: %s", tp.api, startTimeout, out.String())
}

// Proxy creates a proxy named name, on a free loopback port, to upstream
// (host:port).
func (tp *Toxiproxy) Proxy(tb testing.TB, name, upstream string) *ToxicProxy {
	tb.Helper()
	var created struct {
		Listen string `json:"listen"`
	}
	if err := tp.call(http.MethodPost, "/proxies", map[string]any{
		"name": name, "listen": "127.0.0.1:0", "upstream": upstream, "enabled": true,
	}, &created); err != nil {
		tb.Fatalf("s3test: creating proxy %s: %v", name, err)
	}
	return &ToxicProxy{tp: tp, name: name, Listen: created.Listen}
}

// Add adds a toxic to the proxy: new and open connections suffer it at once.
func (p *ToxicProxy) Add(tb testing.TB, t Toxic) {
	tb.Helper()
	if t.Toxicity == 0 {
		t.Toxicity = 1
	}
	if t.Stream == "" {
		t.Stream = "downstream"
	}
	if err := p.tp.call(http.MethodPost, "/proxies/"+p.name+"/toxics", t, nil); err != nil {
		tb.Fatalf("s3test: adding toxic %s to %s: %v", t.Name, p.name, err)
	}
}

// Remove removes the named toxic. A timeout toxic's connections, silenced
// until then, are closed.
func (p *ToxicProxy) Remove(tb testing.TB, name string) {
	tb.Helper()
	if err := p.tp.call(http.MethodDelete, "/proxies/"+p.name+"/toxics/"+name, nil, nil); err != nil {
		tb.Fatalf("s3test: removing toxic %s from %s: %v", name, p.name, err)
	}
}

func (tp *Toxiproxy) call(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, tp.api+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := tp.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// Faulty is an S3 server behind both fault injectors. Its clients reach
// Endpoint, a Toxiproxy proxy (TCP faults on their own connections), which
// forwards to a FaultProxy (S3 error answers), which forwards to versitygw.
type Faulty struct {
	// Endpoint is what the client under test is given.
	Endpoint string
	// Direct is versitygw's own endpoint, for checks that must not meet the
	// faults.
	Direct               string
	Bucket               string
	AccessKey, SecretKey string
	TCP                  *ToxicProxy
	HTTP                 *FaultProxy
}

// StartFaulty starts versitygw with a fresh bucket, a FaultProxy and a
// Toxiproxy in front of it; all stop when tb ends.
func StartFaulty(tb testing.TB) *Faulty {
	tb.Helper()
	endpoint, bucket, accessKey, secretKey := Start(tb)
	fp := StartFaultProxy(tb, endpoint)
	tcp := StartToxiproxy(tb).Proxy(tb, "s3", fp.URL[len("http://"):])
	return &Faulty{
		Endpoint: "http://" + tcp.Listen, Direct: endpoint, Bucket: bucket,
		AccessKey: accessKey, SecretKey: secretKey, TCP: tcp, HTTP: fp,
	}
}

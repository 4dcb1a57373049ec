package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/signet-oss/signet/internal/s3test"
)

// startTimeout bounds how long a server may take to start answering /v2/.
const startTimeout = 30 * time.Second

// server is a registry process under measurement.
type server struct {
	name string
	url  string // http://127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // the process's exit status, valid after done

	mu   sync.Mutex
	tail []string // the last lines of its stderr, for error reports
}

// startSignet starts `registry serve` on a port the OS picks and reads the address
// from its "registry listening" log line.
func startSignet(ctx context.Context, bin string, st storage) (*server, error) {
	s := &server{name: Signet}
	addrc := make(chan string, 1)
	// Metrics on, as an operator runs it: the figures include the cost of the
	// instrumentation (the reference's Prometheus metrics are on too).
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data", st.dir, "--metrics-addr", "127.0.0.1:0"}
	var env []string
	if st.s3 != nil {
		args = append(args, "--storage", "s3", "--s3-endpoint", st.s3.Endpoint, "--s3-bucket", st.bucket, "--s3-region", s3test.Region)
		env = []string{"AWS_ACCESS_KEY_ID=" + st.s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + st.s3.SecretKey}
	}
	if err := s.start(bin, args, env, func(line string) {
		if a, ok := parseListenAddr(line); ok {
			select {
			case addrc <- a:
			default:
			}
		}
	}); err != nil {
		return nil, err
	}
	select {
	case a := <-addrc:
		s.url = "http://" + a
	case <-s.done:
		return nil, fmt.Errorf("bench: signet exited before listening: %v%s", s.err, s.stderrTail())
	case <-time.After(startTimeout):
		s.stop()
		return nil, fmt.Errorf("bench: signet did not log %q within %s%s", "registry listening", startTimeout, s.stderrTail())
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// referenceConfig is the reference registry's configuration: the storage driver
// (see referenceStorage), no auth, deletes enabled, logging at its default level
// (info: a line per request, as Signet writes at its default), Prometheus
// metrics on (as Signet's are), and the blob-descriptor cache its example
// configuration ships with.
const referenceConfig = `version: 0.1
log:
  level: info
storage:
%s  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  debug:
    addr: %s
    prometheus:
      enabled: true
      path: /metrics
`

// referenceStorage is the storage section of the reference's configuration: the
// filesystem driver under dir, or the s3 driver on the run's versitygw with
// redirects disabled, so that it serves blob bytes itself as Signet does.
func referenceStorage(st storage) string {
	if st.s3 == nil {
		return fmt.Sprintf("  filesystem:\n    rootdirectory: %s\n", filepath.Join(st.dir, "root"))
	}
	return fmt.Sprintf(`  s3:
    regionendpoint: %s
    bucket: %s
    region: %s
    accesskey: %s
    secretkey: %s
    forcepathstyle: true
    secure: false
    v4auth: true
  redirect:
    disable: true
`, st.s3.Endpoint, st.bucket, s3test.Region, st.s3.AccessKey, st.s3.SecretKey)
}

// startReference starts the reference registry on a free loopback port. It takes
// its address from a config file, so the port is found by binding and releasing it.
func startReference(ctx context.Context, bin string, st storage) (*server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	debugAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(st.dir, "config.yml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, referenceConfig, referenceStorage(st), addr, debugAddr), 0o644); err != nil {
		return nil, fmt.Errorf("bench: reference config: %w", err)
	}
	s := &server{name: Reference, url: "http://" + addr}
	// Its OpenTelemetry setup exports every span to an OTLP collector on localhost
	// unless told otherwise; no collector runs here, so say none.
	env := []string{"OTEL_TRACES_EXPORTER=none"}
	if err := s.start(bin, []string{"serve", conf}, env, nil); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start runs the process, keeping the tail of its stderr and passing each line to
// onLine.
func (s *server) start(bin string, args, env []string, onLine func(string)) error {
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout = io.Discard
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("bench: %s: %w", s.name, err)
	}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("bench: starting %s: %w", s.name, err)
	}
	s.done = make(chan struct{})
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.tail = append(s.tail, line)
			if len(s.tail) > 40 {
				s.tail = s.tail[len(s.tail)-40:]
			}
			s.mu.Unlock()
			if onLine != nil {
				onLine(line)
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-lines // Wait must not run before the pipe is drained
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	return nil
}

// waitReady polls GET /v2/ until the server answers.
func (s *server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(startTimeout)
	hc := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/v2/", nil)
		resp, err := hc.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		select {
		case <-s.done:
			return fmt.Errorf("bench: %s exited before answering: %v%s", s.name, s.err, s.stderrTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s not ready within %s: %v%s", s.name, startTimeout, err, s.stderrTail())
		}
	}
}

// stop sends SIGTERM and kills the process if it has not exited within 10s.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) stderrTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tail) == 0 {
		return ""
	}
	return "\n" + s.name + " stderr (last lines):\n  " + strings.Join(s.tail, "\n  ")
}

// peakRSS returns the process's peak resident set size in bytes.
func (s *server) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid()))
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	return parseVmHWM(string(b))
}

// cpuTime returns the user+system CPU time the process has used so far, or 0 when
// /proc cannot tell.
func (s *server) cpuTime() time.Duration { return pidCPUTime(s.pid()) }

// pidCPUTime returns the user+system CPU time process pid has used so far, or 0
// when /proc cannot tell.
func pidCPUTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	d, _ := parseStatCPU(string(b))
	return d
}

// selfCPUTime returns the user+system CPU time this process has used so far.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parseVmHWM returns VmHWM, in bytes, from a /proc/PID/status text.
func parseVmHWM(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		v, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("peak RSS: unexpected VmHWM line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("peak RSS: VmHWM %q: %w", f[0], err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("peak RSS: no VmHWM in /proc status")
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat; 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// parseStatCPU returns utime+stime from a /proc/PID/stat text. The command name in
// field 2 may hold spaces and parentheses, so fields are counted after its last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("cpu time: malformed /proc stat")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("cpu time: short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	return time.Duration(u+st) * clockTick, nil
}

// parseListenAddr finds addr=HOST:PORT in Signet's `msg="registry listening"` line
// (slog text format; the value may be quoted).
func parseListenAddr(line string) (string, bool) {
	if !strings.Contains(line, `msg="registry listening"`) {
		return "", false
	}
	for _, f := range strings.Fields(line) {
		v, ok := strings.CutPrefix(f, "addr=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		if _, port, err := net.SplitHostPort(v); err == nil && port != "0" && port != "" {
			return v, true
		}
	}
	return "", false
}

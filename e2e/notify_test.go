package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	"sync/atomic"
	"testing"
	"time"
)

// The notification tests run the registry with webhook endpoints served by the
// test itself, which checks the HMAC of every delivery the way a receiver
// should (README: Notifications) and records the CloudEvents it is sent.

// hookEvent is the part of a CloudEvent the tests look at.
type hookEvent struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            string `json:"type"`
	Subject         string `json:"subject"`
	Time            string `json:"time"`
	DataContentType string `json:"datacontenttype"`
	Data            struct {
		Repository, Digest, Tag, MediaType, Subject, Actor, RequestID, Reason string
		Size                                                                  int64
	} `json:"data"`
}

// hookReceiver is one webhook endpoint.
type hookReceiver struct {
	t      *testing.T
	secret string
	// status is what it answers (a 2xx: the delivery is taken).
	status atomic.Int32
	URL    string
	ln     net.Listener
	srv    *http.Server

	mu sync.Mutex
	// byID holds every event taken, by CloudEvent id; taken counts the
	// deliveries of each id (more than one is allowed: at least once).
	byID     map[string]hookEvent
	taken    map[string]int
	attempts int
	batches  int
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hookReceiver{t: t, secret: secret, ln: ln, URL: "http://" + ln.Addr().String() + "/hook",
		byID: map[string]hookEvent{}, taken: map[string]int{}}
	h.status.Store(http.StatusOK)
	h.srv = &http.Server{Handler: h}
	go h.srv.Serve(ln)
	t.Cleanup(func() { h.srv.Close() })
	return h
}

// ServeHTTP verifies the signature (rejecting a stale timestamp, as a
// receiver must to stop replays), then records the events.
func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := verifyHookSignature(h.secret, r.Header.Get("Signet-Signature"), body, time.Now()); err != nil {
		h.t.Errorf("delivery to %s: %v", h.URL, err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var events []hookEvent
	switch ct := r.Header.Get("Content-Type"); ct {
	case "application/cloudevents+json":
		var e hookEvent
		if err := json.Unmarshal(body, &e); err != nil {
			h.t.Errorf("delivery to %s: %v: %s", h.URL, err, body)
		}
		events = append(events, e)
	case "application/cloudevents-batch+json":
		if err := json.Unmarshal(body, &events); err != nil {
			h.t.Errorf("batch delivery to %s: %v: %s", h.URL, err, body)
		}
	default:
		h.t.Errorf("delivery to %s with Content-Type %q", h.URL, ct)
	}
	status := int(h.status.Load())
	h.mu.Lock()
	h.attempts++
	if status < 300 {
		if r.Header.Get("Content-Type") == "application/cloudevents-batch+json" {
			h.batches++
		}
		for _, e := range events {
			h.byID[e.ID] = e
			h.taken[e.ID]++
		}
	}
	h.mu.Unlock()
	w.WriteHeader(status)
}

// verifyHookSignature checks "t=<unix>,v1=<hex HMAC-SHA256(secret, t.body)>",
// written here from the README's description rather than with the registry's
// own code.
func verifyHookSignature(secret, header string, body []byte, now time.Time) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("malformed Signet-Signature %q", header)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("Signet-Signature timestamp %s is %s off", ts, d)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, m.Sum(nil)) {
		return fmt.Errorf("Signet-Signature does not match the body")
	}
	return nil
}

// events returns the events taken, keyed "type subject", failing the test when
// one such key came under two ids (the same event notified twice as two).
func (h *hookReceiver) events(t *testing.T) map[string]hookEvent {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]hookEvent{}
	for _, e := range h.byID {
		k := e.Type + " " + e.Subject
		if prev, ok := out[k]; ok {
			t.Errorf("%s arrived under two ids, %s and %s", k, prev.ID, e.ID)
		}
		out[k] = e
	}
	return out
}

// waitEvents waits until the receiver has taken every key in want.
func (h *hookReceiver) waitEvents(t *testing.T, want ...string) map[string]hookEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := h.events(t)
		var missing []string
		for _, k := range want {
			if _, ok := got[k]; !ok {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not receive %v within 30s; it has %v", h.URL, missing, keysOf(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func keysOf[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// hookEndpoint is one entry of notifications.endpoints.
type hookEndpoint struct {
	name, url, secret string
	events, repos     []string
	headers           map[string]string
}

// writeNotifyConfig writes a registry config file with these endpoints and
// short delays, so that retries and takeovers happen within a test.
func writeNotifyConfig(t *testing.T, endpoints ...hookEndpoint) string {
	t.Helper()
	secretDir := t.TempDir()
	var b strings.Builder
	b.WriteString("notifications:\n  heartbeat: 200ms\n  takeoverAfter: 1s\n  pullBatch:\n    window: 300ms\n    maxEvents: 50\n  endpoints:\n")
	for _, e := range endpoints {
		// Secrets come from files, as they should in production.
		sf := filepath.Join(secretDir, e.name)
		if err := os.WriteFile(sf, []byte(e.secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "    - name: %s\n      url: %s\n      secretFile: %s\n      backoff: 50ms\n      maxBackoff: 300ms\n      timeout: 2s\n", e.name, e.url, sf)
		if len(e.events) > 0 {
			fmt.Fprintf(&b, "      events: [%s]\n", strings.Join(e.events, ", "))
		}
		if len(e.repos) > 0 {
			fmt.Fprintf(&b, "      repositories: [%q]\n", strings.Join(e.repos, `", "`))
		}
		if len(e.headers) > 0 {
			b.WriteString("      headers:\n")
			for k, v := range e.headers {
				fmt.Fprintf(&b, "        %q: %q\n", k, v) // Go's quoting is YAML's double-quoted style for these
			}
		}
	}
	p := filepath.Join(t.TempDir(), "registry.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNotifyScriptedRun(t *testing.T) {
	t.Parallel()
	if reference {
		t.Skip("the reference registry's notifications are another format")
	}
	st := startStack(t) // for the trust graph the gate reads; every repository is enforced
	all := newHookReceiver(t, "all-secret-not-for-production")
	deletes := newHookReceiver(t, "deletes-secret-not-for-production")
	other := newHookReceiver(t, "other-secret-not-for-production")
	cfg := writeNotifyConfig(t,
		hookEndpoint{name: "all", url: all.URL, secret: all.secret},
		hookEndpoint{name: "deletes", url: deletes.URL, secret: deletes.secret, events: []string{"delete"}},
		hookEndpoint{name: "other", url: other.URL, secret: other.secret, repos: []string{"other/**"}},
	)
	// A registry of its own, gated by the stack's trust graph, with open/** and
	// other/** open and everything else enforced.
	data := filepath.Join(filepath.Dir(st.Home), "data")
	var acct struct{ Username, Password string }
	readJSON(t, filepath.Join(data, "registry-account.json"), &acct)
	reg := startRegistryEnv(t, newFilesystemStore(t), []string{"SIGNET_REGISTRY_PASSWORD=" + acct.Password},
		"--config", cfg, "--trustd", st.Trustd, "--trust-root", filepath.Join(data, "registry-root.json"),
		"--trust-user", acct.Username, "--open", "open/**", "--open", "other/**")
	rc := newRegClient(reg.Addr)
	rc.hc = &http.Client{Timeout: time.Minute, Transport: &bearerTransport{user: "admin", password: st.AdminPassword, tokens: map[string]string{}}}

	img := newImage(t, "notify", newLayer(t, "notify.bin", 4<<10))
	if err := rc.pushImage("open/app", "v1", img, uploadMonolithicPost); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rc.getManifest("open/app", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rc.getManifest("open/app", img.ManifestDigest); err != nil {
		t.Fatal(err)
	}
	sigTag := "sha256-" + strings.TrimPrefix(img.ManifestDigest, "sha256:") + ".sig"
	sig := newImage(t, "notify-signature", newLayer(t, "sig.json", 256))
	if err := rc.pushImage("open/app", sigTag, sig, uploadMonolithicPost); err != nil {
		t.Fatal(err)
	}
	putDenied(t, rc, "acme/app", "v1", img.Manifest, "")
	for _, ref := range []string{"v1", sig.ManifestDigest} {
		if _, _, err := rc.do(rc.newRequest("DELETE", "/v2/open/app/manifests/"+ref, nil), http.StatusAccepted); err != nil {
			t.Fatal(err)
		}
	}

	const p = "dev.signet.registry."
	got := all.waitEvents(t,
		p+"push open/app:v1", p+"pull open/app:v1", p+"pull open/app@"+img.ManifestDigest,
		p+"push open/app:"+sigTag, p+"signature open/app:"+sigTag, p+"admission-denied acme/app:v1",
		p+"delete open/app:v1", p+"delete open/app@"+sig.ManifestDigest)
	if len(got) != 8 {
		t.Errorf("the catch-all endpoint got %d events, want 8: %v", len(got), keysOf(got))
	}
	for k, e := range got {
		if e.SpecVersion != "1.0" || e.Source != "http://"+reg.Addr || e.DataContentType != "application/json" || e.Time == "" || e.ID == "" {
			t.Errorf("%s: CloudEvents attributes %+v", k, e)
		}
		if e.Data.Repository == "" || e.Data.RequestID == "" || e.Data.Actor != "admin" {
			t.Errorf("%s: data %+v, want the repository, the request ID and actor admin", k, e.Data)
		}
	}
	if e := got[p+"push open/app:v1"]; e.Data.Digest != img.ManifestDigest || e.Data.Size != int64(len(img.Manifest)) || e.Data.MediaType != mediaTypeOCIManifest {
		t.Errorf("push: %+v", e.Data)
	}
	if e := got[p+"signature open/app:"+sigTag]; e.Data.Subject != img.ManifestDigest || e.Data.Digest != sig.ManifestDigest {
		t.Errorf("signature: %+v, want subject %s", e.Data, img.ManifestDigest)
	}
	if e := got[p+"admission-denied acme/app:v1"]; e.Data.Reason == "" || e.Data.Digest != img.ManifestDigest {
		t.Errorf("admission-denied: %+v, want a reason and the refused digest", e.Data)
	}
	all.mu.Lock()
	if all.batches < 1 {
		t.Errorf("pulls came in %d batch requests, want them batched", all.batches)
	}
	all.mu.Unlock()

	// The delete endpoint got the two deletes and nothing else, under the same
	// ids as the catch-all one.
	dg := deletes.waitEvents(t, p+"delete open/app:v1", p+"delete open/app@"+sig.ManifestDigest)
	if len(dg) != 2 {
		t.Errorf("the delete endpoint got %v, want only the two deletes", keysOf(dg))
	}
	for k, e := range dg {
		if got[k].ID != e.ID {
			t.Errorf("%s: id %s at the delete endpoint, %s at the catch-all one", k, e.ID, got[k].ID)
		}
	}
	// The other/** endpoint got nothing so far: a push there shows it would
	// have, and it must then hold exactly that one.
	if err := rc.pushImage("other/x", "v1", img, uploadMonolithicPost); err != nil {
		t.Fatal(err)
	}
	og := other.waitEvents(t, p+"push other/x:v1")
	if len(og) != 1 {
		t.Errorf("the other/** endpoint got %v, want only its own push", keysOf(og))
	}
}

func TestNotifyEndpointDownAcrossRestart(t *testing.T) {
	t.Parallel()
	if reference {
		t.Skip("the reference registry's notifications are another format")
	}
	// The queue lives on the registry's storage driver: on disk, and in a bucket.
	for name, newStore := range map[string]func(*testing.T) store{"filesystem": newFilesystemStore, "s3": newS3Store} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			endpointDownAcrossRestart(t, newStore(t))
		})
	}
}

func endpointDownAcrossRestart(t *testing.T, st store) {
	hook := newHookReceiver(t, "restart-secret-not-for-production")
	hook.status.Store(http.StatusServiceUnavailable)
	cfg := writeNotifyConfig(t, hookEndpoint{name: "hook", url: hook.URL, secret: hook.secret})
	reg := startRegistryOn(t, st, "--config", cfg)
	rc := newRegClient(reg.Addr)

	img := newImage(t, "notify-restart", newLayer(t, "restart.bin", 4<<10))
	if err := rc.pushImage("team/app", "v1", img, uploadMonolithicPost); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rc.getManifest("team/app", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rc.do(rc.newRequest("DELETE", "/v2/team/app/manifests/v1", nil), http.StatusAccepted); err != nil {
		t.Fatal(err)
	}
	// The endpoint refuses while the pull batch's window closes and the
	// registry retries.
	deadline := time.Now().Add(20 * time.Second)
	for {
		hook.mu.Lock()
		n := hook.attempts
		hook.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry made %d delivery attempts to the endpoint that is down, want retries", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // past the pull batch window (300ms)
	if got := hook.events(t); len(got) != 0 {
		t.Fatalf("an endpoint answering 503 took %v", keysOf(got))
	}

	// Now the endpoint stops listening altogether, the registry is killed and
	// started again on its storage, and then the endpoint comes back.
	hook.srv.Close()
	reg.restart()
	back := newHookReceiverOn(t, hook)
	const p = "dev.signet.registry."
	got := back.waitEvents(t, p+"push team/app:v1", p+"pull team/app:v1", p+"delete team/app:v1")
	if len(got) != 3 {
		t.Errorf("after the restart the endpoint got %v, want the push, the pull and the delete", keysOf(got))
	}
	// Events after the restart are delivered too, by the new process.
	if err := newRegClient(reg.Addr).pushImage("team/app", "v2", img, uploadMonolithicPost); err != nil {
		t.Fatal(err)
	}
	back.waitEvents(t, p+"push team/app:v2")
}

// newHookReceiverOn listens again on the address of a closed receiver, as an
// endpoint that comes back up.
func newHookReceiverOn(t *testing.T, old *hookReceiver) *hookReceiver {
	t.Helper()
	addr := old.ln.Addr().String()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	h := &hookReceiver{t: t, secret: old.secret, ln: ln, URL: old.URL, byID: map[string]hookEvent{}, taken: map[string]int{}}
	h.status.Store(http.StatusOK)
	h.srv = &http.Server{Handler: h}
	go h.srv.Serve(ln)
	t.Cleanup(func() { h.srv.Close() })
	return h
}

// TestNotifyDeadLettersAreListedAndRequeued has an endpoint refuse an event
// for good (400), lists the dead letter with `registry notifications dead`,
// and requeues it with `registry notifications requeue` while the registry
// runs: the endpoint, now accepting, gets the event under its original id.
func TestNotifyDeadLettersAreListedAndRequeued(t *testing.T) {
	t.Parallel()
	if reference {
		t.Skip("the reference registry's notifications are another format")
	}
	hook := newHookReceiver(t, "dead-letter-secret-not-for-production")
	hook.status.Store(http.StatusBadRequest)
	cfg := writeNotifyConfig(t, hookEndpoint{name: "hook", url: hook.URL, secret: hook.secret, events: []string{"push"}})
	st := newFilesystemStore(t)
	reg := startRegistryOn(t, st, "--config", cfg)
	img := newImage(t, "notify-dead", newLayer(t, "dead.bin", 4<<10))
	if err := newRegClient(reg.Addr).pushImage("team/dead", "v1", img, uploadMonolithicPost); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := st.command(args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var dead struct {
		Endpoint, Key, Error string
		Events               []hookEvent
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := run("notifications", "dead", "--output", "json")
		if strings.TrimSpace(out) != "" {
			if err := json.Unmarshal([]byte(out), &dead); err != nil {
				t.Fatalf("notifications dead --output json: %v: %s", err, out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no dead letter appeared after the endpoint refused the event with 400")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if dead.Endpoint != "hook" || !strings.Contains(dead.Error, "400") || len(dead.Events) != 1 || dead.Events[0].Subject != "team/dead:v1" {
		t.Fatalf("dead letter %+v", dead)
	}
	if table := run("notifications", "dead"); !strings.Contains(table, dead.Key) {
		t.Fatalf("the table does not list %s:\n%s", dead.Key, table)
	}
	if out, err := st.command("notifications", "requeue", "hook", "no-such-key"); err == nil || !strings.Contains(err.Error(), "no dead letter") {
		t.Fatalf("requeueing a key that is no dead letter: %q, %v", out, err)
	}

	hook.status.Store(http.StatusOK)
	run("notifications", "requeue", "hook", dead.Key)
	got := hook.waitEvents(t, "dev.signet.registry.push team/dead:v1")
	if e := got["dev.signet.registry.push team/dead:v1"]; e.ID != dead.Events[0].ID {
		t.Fatalf("the requeued event arrived with id %s, want its own %s", e.ID, dead.Events[0].ID)
	}
	if out := run("notifications", "dead", "--output", "json"); strings.TrimSpace(out) != "" {
		t.Fatalf("dead letters after the requeue: %s", out)
	}
}

// TestNotifyRefusesAHeaderThatCannotBeSent starts the registry with a header
// value holding a newline: it must not start (every delivery would fail), and
// its error names the key without printing the value, which is often a
// credential.
func TestNotifyRefusesAHeaderThatCannotBeSent(t *testing.T) {
	t.Parallel()
	if reference {
		t.Skip("the reference registry's notifications are another format")
	}
	const value = "Bearer HeaderTokenXYZ\r\nX-Injected: 1"
	cfg := writeNotifyConfig(t, hookEndpoint{name: "hook", url: "http://127.0.0.1:1/hook", secret: "header-secret-not-for-production",
		headers: map[string]string{"Authorization": value}})
	st := newFilesystemStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, registryBin, append([]string{"serve", "--addr", "127.0.0.1:0", "--config", cfg}, st.flags()...)...)
	cmd.Env = append(os.Environ(), st.env()...)
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("registry serve with a header value holding a newline: %v (it should exit at once with an error)\n%s", err, out)
	}
	if !strings.Contains(string(out), "notifications.endpoints[0].headers") {
		t.Errorf("the error does not name notifications.endpoints[0].headers:\n%s", out)
	}
	if strings.Contains(string(out), "HeaderTokenXYZ") {
		t.Errorf("the error prints the header's value:\n%s", out)
	}
}

// TestNotifyLogsNameTheEndpointNotItsURL has the registry fail to reach an
// endpoint whose URL carries its token, as Slack-style webhook URLs do: the
// registry's log says which endpoint failed, by name, and never prints the
// URL's path or query.
func TestNotifyLogsNameTheEndpointNotItsURL(t *testing.T) {
	t.Parallel()
	if reference {
		t.Skip("the reference registry's notifications are another format")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close() // nothing listens there: every attempt fails
	cfg := writeNotifyConfig(t, hookEndpoint{name: "slack", secret: "slack-secret-not-for-production",
		url: "http://" + down + "/services/T0000/B0000/PathTokenXYZ?token=QueryTokenXYZ"})
	reg := startRegistry(t, "--config", cfg)
	img := newImage(t, "notify-url", newLayer(t, "url.bin", 1<<10))
	if err := newRegClient(reg.Addr).pushImage("team/app", "v1", img, uploadMonolithicPost); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(reg.log.String(), "notification delivery failed") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no failed delivery logged within 20s:\n%s", reg.log.Tail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
	log := reg.log.String()
	if strings.Contains(log, "PathTokenXYZ") || strings.Contains(log, "QueryTokenXYZ") {
		t.Fatalf("the registry's log holds the endpoint's URL:\n%s", log)
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "notification delivery failed") && (!strings.Contains(line, "endpoint=slack") || !strings.Contains(line, down)) {
			t.Errorf("a failed delivery does not say which endpoint, at which address, failed: %s", line)
		}
	}
}

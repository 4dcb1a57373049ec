package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The probes an attacker on the stack tries: a mount that names no source, to
// learn which other repositories hold a blob; uploads under names the gate can
// never admit; and logins that name a new client in X-Forwarded-For each time,
// to escape the per-client limit.

// probeAnswer is what a probe saw: everything a client can tell apart, with the
// upload session's own ID left out.
type probeAnswer struct {
	Status  int
	Headers []string
	Body    string
}

func probe(t *testing.T, method, u, token string, body []byte) probeAnswer {
	t.Helper()
	req, _ := http.NewRequest(method, u, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	a := probeAnswer{Status: resp.StatusCode, Body: string(got)}
	for k, vs := range resp.Header {
		switch k {
		case "Date", "X-Request-Id":
			continue
		case "Location", "Docker-Upload-Uuid":
			a.Headers = append(a.Headers, k) // the session's own ID
			continue
		}
		a.Headers = append(a.Headers, k+": "+strings.Join(vs, ","))
	}
	slices.Sort(a.Headers)
	return a
}

// TestProbesRevealNoRepositoryAndNoUndelegableNameTakesBlobs: on an enforcing
// stack, a robot scoped to acme/app alone mounts, without from, a blob that only
// acme/hidden-project holds and one stored nowhere: both are the same plain upload,
// naming no repository. Blob uploads under acme/a/b/c/d, which no org pattern can
// ever cover, are refused at the first POST with NAME_INVALID, while a repository
// not delegated yet takes them.
func TestProbesRevealNoRepositoryAndNoUndelegableNameTakesBlobs(t *testing.T) {
	t.Parallel()
	st := startStack(t)
	st.ctl(t, "", "org", "create", "acme")
	hidden := randomBytes(8 << 10)
	if err := st.admin().pushBlob("acme/hidden-project", hidden, uploadMonolithicPost); err != nil {
		t.Fatal(err)
	}
	out := st.ctl(t, "", "token", "create", "--org", "acme", "--scope", "repository:acme/app:pull,push",
		"--ttl", "1h", "--name", "probe-bot", "--output", "json")
	var robot struct{ Name, Secret string }
	if err := json.Unmarshal([]byte(out), &robot); err != nil || robot.Secret == "" {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	ch := st.discover(t)
	tok := st.passwordGrant(t, ch, robot.Name, robot.Secret, false, "repository:acme/app:pull,push").Token

	t.Run("a mount without from answers the same for a blob held elsewhere and a missing one", func(t *testing.T) {
		present := probe(t, http.MethodPost, st.URL("/v2/acme/app/blobs/uploads/?mount="+sha256Digest(hidden)), tok, nil)
		absent := probe(t, http.MethodPost, st.URL("/v2/acme/app/blobs/uploads/?mount="+sha256Digest(randomBytes(64))), tok, nil)
		if present.Status != http.StatusAccepted {
			t.Errorf("mount of a blob held by acme/hidden-project: %+v, want 202 (a plain upload)", present)
		}
		if !slices.Equal(present.Headers, absent.Headers) || present.Status != absent.Status || present.Body != absent.Body {
			t.Errorf("the answers tell the blobs apart:\n held elsewhere: %+v\n missing:        %+v", present, absent)
		}
		if strings.Contains(strings.Join(present.Headers, " ")+present.Body, "hidden-project") {
			t.Errorf("the answer names the repository holding the blob: %+v", present)
		}
		if status, err := st.admin().blobStatus("acme/app", sha256Digest(hidden)); err != nil || status != http.StatusNotFound {
			t.Errorf("HEAD the hidden blob in acme/app as admin: %d %v, want 404", status, err)
		}
	})

	t.Run("uploads under a name no delegation can cover are refused at POST", func(t *testing.T) {
		admin := st.passwordGrant(t, ch, "admin", st.AdminPassword, false,
			"repository:acme/a/b/c/d:pull,push", "repository:acme/not-yet/app:pull,push").Token
		blob := randomBytes(1 << 10)
		for q, body := range map[string][]byte{"": nil, "?digest=" + sha256Digest(blob): blob} {
			a := probe(t, http.MethodPost, st.URL("/v2/acme/a/b/c/d/blobs/uploads/"+q), admin, body)
			if a.Status != http.StatusBadRequest || !strings.Contains(a.Body, "NAME_INVALID") ||
				!strings.Contains(a.Body, "acme/a/b/c/d has 5 components; enforced repositories have at most 4") {
				t.Errorf("POST /v2/acme/a/b/c/d/blobs/uploads/%s: %+v, want 400 NAME_INVALID saying why", q, a)
			}
		}
		if files := filesUnder(t, filepath.Join(st.registryData(), "repos", "acme", "a")); len(files) > 0 {
			t.Errorf("the refused uploads left %v in storage", files)
		}
		if err := newRegClientWith(st.Addr, admin).pushBlob("acme/not-yet/app", randomBytes(4<<10), uploadPostPut); err != nil {
			t.Errorf("a blob upload to a repository not delegated yet: %v", err)
		}
	})
}

// newRegClientWith is a raw OCI client sending a fixed bearer token.
func newRegClientWith(addr, token string) *regClient {
	rc := newRegClient(addr)
	rc.hc = &http.Client{Timeout: time.Minute, Transport: fixedBearer(token)}
	return rc
}

type fixedBearer string

func (f fixedBearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+string(f))
	return http.DefaultTransport.RoundTrip(req)
}

// clientFrom is an HTTP client whose connections come from the loopback address
// ip (127.0.0.0/8 is all local): a distinct client address on one host.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// login sends one GET /token with Basic credentials through hc, with header
// set on the request, and returns the status.
func login(t *testing.T, hc *http.Client, realm, user, password string, header map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, realm+"?"+url.Values{"service": {"signet-registry"}}.Encode(), nil)
	req.SetBasicAuth(user, password)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// failUntilLimited sends failed logins (an unknown user each time, so only the
// per-client limit applies) from hc, with a new X-Forwarded-For on each and extra
// headers, until one is refused with 429 or 60 were sent, and returns the
// statuses. trustd allows 30 failures a minute by default, refilled as they age:
// a client limited by its own address meets 429 well within 60.
func failUntilLimited(t *testing.T, hc *http.Client, realm string, extra map[string]string) []int {
	t.Helper()
	var statuses []int
	for i := 0; i < 60 && !slices.Contains(statuses, http.StatusTooManyRequests); i++ {
		h := map[string]string{"X-Forwarded-For": "198.51.100." + strconv.Itoa(i+1)}
		for k, v := range extra {
			h[k] = v
		}
		statuses = append(statuses, login(t, hc, realm, "nobody-"+strconv.Itoa(i)+"-"+newPassword()[:6], "guess", h))
	}
	return statuses
}

// TestLoginLimitsTrustNoLocalForwardedFor: a process on trustd's host that names a
// new client in X-Forwarded-For on every failed login (and forges the proxy
// header) is limited by its own address all the same; through the registry's
// /token, whose hop `trustctl up` authenticates with a secret of its own, the
// limit still falls on each real client: one client's failures (with a spoofed
// X-Forwarded-For sent to the registry) lock that client out, not another, nor
// does the lock-out of the registry's own address.
func TestLoginLimitsTrustNoLocalForwardedFor(t *testing.T) {
	t.Parallel()
	st := startStack(t, openAll...)
	realm := st.discover(t)["realm"]
	want := func(statuses []int, who string) {
		t.Helper()
		if n := len(statuses); n < 31 || statuses[n-2] != http.StatusUnauthorized || statuses[n-1] != http.StatusTooManyRequests {
			t.Errorf("%s: statuses %v, want 401 at least thirty times, then 429", who, statuses)
		}
	}

	// A local process connects from 127.0.0.1, the address the registry calls
	// trustd from too.
	want(failUntilLimited(t, clientFrom("127.0.0.1"), st.Trustd+"/token", map[string]string{"Signet-Proxy-Secret": "forged-" + newPassword()}),
		"a local process spoofing X-Forwarded-For straight at trustd")
	want(failUntilLimited(t, clientFrom("127.0.0.2"), realm, map[string]string{"Signet-Proxy-Secret": "forged-" + newPassword()}),
		"a client spoofing X-Forwarded-For through the registry's /token")
	// The bucket refuses below one whole token, and keeps refilling: a slow
	// machine can reach the correct login with the fraction made whole. Each
	// try starts from a fresh refusal; one refused correct login shows the
	// limit holds for the right password too.
	status := login(t, clientFrom("127.0.0.2"), realm, "admin", st.AdminPassword, nil)
	for try := 0; try < 3 && status != http.StatusTooManyRequests; try++ {
		failUntilLimited(t, clientFrom("127.0.0.2"), realm, nil)
		status = login(t, clientFrom("127.0.0.2"), realm, "admin", st.AdminPassword, nil)
	}
	if status != http.StatusTooManyRequests {
		t.Errorf("the limited client's correct login through /token: %d, want 429", status)
	}
	if status := login(t, clientFrom("127.0.0.3"), realm, "admin", st.AdminPassword, nil); status != http.StatusOK {
		t.Errorf("another client's login through /token: %d, want 200 (the limit is per client, not per registry)", status)
	}
}

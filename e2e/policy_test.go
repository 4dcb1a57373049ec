package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/policy"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/trustnames"
)

// The pull-policy tests run one enforcing stack (trust refreshed every
// second) where acme requires, for acme/app, SLSA provenance from builder X,
// set with `trustctl policy set`: trustctl pull and verify (exit 14), and
// docker, crane and skopeo through the registry (403 DENIED), refuse a signed
// tag without it, or with an attestation of builder Y, serve it once alice (a
// delegated publisher) attests with cosign, and refuse it again once alice's
// delegation is revoked. A warn-mode policy serves, warning; a policy of
// acme/* leaves acme-corp alone; trustd refuses a policy signed by any key but
// the org's.
//
// Subtests named "registry ..." check the registry's enforcement.

const (
	policyBuilderX = "https://ci.example.com/builder-x"
	policyBuilderY = "https://ci.example.com/builder-y"
	// policySLSAFromX is what the policy of acme/app requires, in the
	// policy package's words.
	policySLSAFromX = `the pull policy for acme/app requires an attestation of type https://slsa.dev/provenance/v1 where runDetails.builder.id is "https://ci.example.com/builder-x*"`
)

// policyPredicate is a SLSA provenance v1 predicate naming builder.
func policyPredicate(builder string) string {
	return `{"buildDefinition":{"buildType":"https://example.com/build/v1","externalParameters":{"source":"git+https://example.com/acme/app@refs/heads/main"}},"runDetails":{"builder":{"id":"` + builder + `/run/1"}}}`
}

// policyVerdict is the "policy" of trustctl verify --output json.
type policyVerdict struct {
	Met       bool     `json:"met"`
	Warnings  []string `json:"warnings"`
	Error     string   `json:"error"`
	Documents []struct {
		Repositories string `json:"repositories"`
		Mode         string `json:"mode"`
		Met          bool   `json:"met"`
		Requirements []struct {
			Requirement string `json:"requirement"`
			Met         bool   `json:"met"`
			Found       int    `json:"found"`
			Detail      string `json:"detail"`
		} `json:"requirements"`
	} `json:"documents"`
}

func TestPullPolicy(t *testing.T) {
	t.Parallel()
	st := startStack(t, "--trust-refresh", "1s")
	alice := newCosignKeys(t)
	if code, out := st.trustctlCode(t, []string{"COSIGN_PASSWORD=" + cosignPassword}, "keys", "import", "alice", "--cosign", alice.key); code != 0 {
		t.Fatalf("trustctl keys import alice --cosign exited %d:\n%s", code, out)
	}
	st.trustctl(t, "keys", "generate", "bob")
	for _, org := range []string{"acme", "acme-corp"} {
		st.trustctl(t, "org", "create", org)
	}
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice", "--key", "bob")
	for _, repo := range []string{"acme/warn", "acme-corp/app"} {
		st.trustctl(t, "org", "delegate", repo, "--key", "bob")
	}
	st.trustctl(t, "org", "delegate", "acme/other", "--key", "bob", "--key", "alice")
	imgs := map[string]image{}
	for _, repo := range []string{"acme/app", "acme/warn", "acme/other", "acme-corp/app"} {
		imgs[repo] = newImage(t, "policy-"+repo, newLayer(t, repo+"/bin", 8<<10))
		st.pushLayout(t, repo+":v1", "bob", imgs[repo])
	}
	app := imgs["acme/app"]
	appRef := st.Addr + "/acme/app@" + app.ManifestDigest
	files := t.TempDir()
	writeFile := func(name, content string) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	slsaDoc := writeFile("slsa.json", `{"repositories": "acme/app", "require": [{"predicateType": "https://slsa.dev/provenance/v1", "match": {"runDetails.builder.id": "`+policyBuilderX+`*"}}]}`)
	cosign := newTool(t, "cosign", "DOCKER_CONFIG="+st.Home, "COSIGN_PASSWORD="+cosignPassword, "COSIGN_YES=true")
	attest := func(t *testing.T, builder string) {
		t.Helper()
		pred := writeFile("predicate-"+filepath.Base(builder)+".json", policyPredicate(builder))
		cosign.run(t, "attest", "--key", alice.key, "--type", "slsaprovenance1", "--predicate", pred, "--tlog-upload=false", "--allow-insecure-registry", appRef)
	}
	reg := registryClients(t, st)

	t.Run("policy set signs the org role with the org key, and show reads it from the verified graph", func(t *testing.T) {
		if out := st.trustctl(t, "policy", "set", slsaDoc); !strings.Contains(out, "The policy for acme/app is set (org-acme v") {
			t.Errorf("trustctl policy set said:\n%s", out)
		}
		out := st.trustctl(t, "policy", "show", "acme/app")
		if !strings.Contains(out, "acme/app (enforce) requires:") || !strings.Contains(out, strings.TrimPrefix(policySLSAFromX, "the pull policy for acme/app requires ")) {
			t.Errorf("trustctl policy show acme/app:\n%s", out)
		}
		var view struct {
			Org      string            `json:"org"`
			Policies []policy.Document `json:"policies"`
		}
		if err := json.Unmarshal([]byte(st.trustctl(t, "policy", "show", "acme", "--output", "json")), &view); err != nil {
			t.Fatal(err)
		}
		if view.Org != "acme" || len(view.Policies) != 1 || view.Policies[0].Repositories != "acme/app" || view.Policies[0].Mode != policy.Enforce {
			t.Errorf("trustctl policy show acme --output json: %+v", view)
		}
		if out := st.trustctl(t, "policy", "show", "acme-corp/app"); !strings.Contains(out, "No pull policy of acme-corp applies to acme-corp/app") {
			t.Errorf("trustctl policy show acme-corp/app:\n%s", out)
		}
		if out := st.trustctl(t, "policy", "set", slsaDoc); !strings.Contains(out, "nothing to change") {
			t.Errorf("setting the same policy again:\n%s", out)
		}
		bad := writeFile("typo.json", `{"repositories": "acme/app", "require": [{"predicateTyp": "https://slsa.dev/provenance/v1"}]}`)
		if out := st.trustctlFails(t, "policy", "set", bad); !strings.Contains(out, `unknown field "predicateTyp"`) {
			t.Errorf("a document with a typo: want it refused naming the field, got:\n%s", out)
		}
		if out := st.trustctlFails(t, "policy", "unset", "acme/nothing"); !strings.Contains(out, "trustctl policy show acme") {
			t.Errorf("unsetting a policy that is not there:\n%s", out)
		}
		// Without the org key in the store, it says which key is needed.
		keyFiles, _ := filepath.Glob(filepath.Join(st.Home, "keys", "*org-acme.*"))
		if len(keyFiles) == 0 {
			t.Fatal("no org key for acme in the store")
		}
		aside := t.TempDir()
		for _, f := range keyFiles {
			if err := os.Rename(f, filepath.Join(aside, filepath.Base(f))); err != nil {
				t.Fatal(err)
			}
		}
		out = st.trustctlFails(t, "policy", "unset", "acme/app")
		for _, f := range keyFiles {
			if err := os.Rename(filepath.Join(aside, filepath.Base(f)), f); err != nil {
				t.Fatal(err)
			}
		}
		if !strings.Contains(out, "org-acme is signed with acme's org key") || !strings.Contains(out, "trustctl keys import") {
			t.Errorf("policy unset without the org key: want it to name the key needed, got:\n%s", out)
		}
	})

	t.Run("trustd refuses a policy signed by any key but the org's", func(t *testing.T) {
		trustdRefusesPolicy(t, st)
	})

	t.Run("a signed tag without the attestation is refused", func(t *testing.T) {
		mustBeUnmet(t, st, "acme/app:v1", policySLSAFromX+": none is attached")
		t.Run("trustctl verify says which requirement is not met", func(t *testing.T) {
			p := st.policyVerdict(t, "acme/app:v1", 14)
			if p == nil || p.Met || len(p.Documents) != 1 || len(p.Documents[0].Requirements) != 1 {
				t.Fatalf("policy %+v, want acme/app's one requirement, not met", p)
			}
			if q := p.Documents[0].Requirements[0]; q.Met || q.Found != 0 || q.Detail != "none is attached" {
				t.Errorf("requirement %+v", q)
			}
		})
		t.Run("trustctl policy test", func(t *testing.T) {
			code, out := st.trustctlCode(t, nil, "policy", "test", st.Addr+"/acme/app:v1")
			if code != 14 || !strings.Contains(out, "no: none is attached") || !strings.Contains(out, "0 of 1") {
				t.Errorf("trustctl policy test exited %d:\n%s", code, out)
			}
		})
		t.Run("registry refuses docker, crane and skopeo", func(t *testing.T) {
			reg.mustRefuse(t, "acme/app:v1", policySLSAFromX+": none is attached")
		})
	})

	t.Run("an attestation naming builder Y does not satisfy it", func(t *testing.T) {
		attest(t, policyBuilderY)
		mustBeUnmet(t, st, "acme/app:v1", policySLSAFromX+`: 1 attached do not match (runDetails.builder.id is "`+policyBuilderY+`/run/1")`)
		t.Run("registry refuses docker, crane and skopeo", func(t *testing.T) {
			reg.mustRefuse(t, "acme/app:v1", "do not match")
		})
	})

	t.Run("alice's attestation naming builder X: served to every client", func(t *testing.T) {
		attest(t, policyBuilderX)
		code, out, dir := st.pullCode(t, "acme/app:v1")
		if code != 0 {
			t.Fatalf("trustctl pull exited %d:\n%s", code, out)
		}
		if got := layoutDigest(t, dir); got != app.ManifestDigest {
			t.Errorf("trustctl pull wrote %s, want %s", got, app.ManifestDigest)
		}
		if p := st.policyVerdict(t, "acme/app:v1", 0); p == nil || !p.Met || p.Documents[0].Requirements[0].Found != 1 {
			t.Errorf("policy %+v, want met by one key", p)
		}
		if code, out := st.trustctlCode(t, nil, "policy", "test", st.Addr+"/acme/app:v1"); code != 0 || !strings.Contains(out, "Met: the registry serves it.") {
			t.Errorf("trustctl policy test exited %d:\n%s", code, out)
		}
		t.Run("registry serves docker, crane and skopeo", func(t *testing.T) {
			reg.mustServe(t, "acme/app:v1", app)
		})
	})

	t.Run("once alice's key is no longer delegated, it is refused within a refresh interval", func(t *testing.T) {
		st.trustctl(t, "org", "delegate", "acme/app", "--key", "bob")
		mustBeUnmet(t, st, "acme/app:v1", policySLSAFromX)
		t.Run("registry refuses docker, crane and skopeo", func(t *testing.T) {
			reg.mustRefuse(t, "acme/app:v1", policySLSAFromX)
		})
	})

	t.Run("warn mode: served, with a warning on each pull", func(t *testing.T) {
		doc := writeFile("warn.json", `{"repositories": "acme/warn", "mode": "warn", "require": [{"predicateType": "https://slsa.dev/provenance/v1"}]}`)
		st.trustctl(t, "policy", "set", doc)
		const want = "the pull policy for acme/warn requires an attestation of type https://slsa.dev/provenance/v1: none is attached"
		code, out := st.trustctlCombined(t, "pull", st.Addr+"/acme/warn:v1", filepath.Join(t.TempDir(), "oci"))
		if code != 0 || !strings.Contains(out, "warning: "+want) {
			t.Errorf("trustctl pull of a warn-mode image exited %d, want 0 with a warning:\n%s", code, out)
		}
		if p := st.policyVerdict(t, "acme/warn:v1", 0); p == nil || !p.Met || len(p.Warnings) != 1 || p.Warnings[0] != want {
			t.Errorf("policy %+v, want met, warning %q", p, want)
		}
		t.Run("registry serves it, logging and notifying each pull", func(t *testing.T) {
			warnServedAndNotified(t, st, imgs["acme/warn"], want)
		})
	})

	t.Run("a policy of every acme repository one level down applies to acme-other, not to acme-corp-app", func(t *testing.T) {
		doc := writeFile("star.json", `{"repositories": "acme/*", "require": [{"signers": 2}]}`)
		st.trustctl(t, "policy", "set", doc)
		const want = "the pull policy for acme/* requires 2 distinct delegated signers of the image: 1 signed it"
		mustBeUnmet(t, st, "acme/other:v1", want)
		if p := st.policyVerdict(t, "acme-corp/app:v1", 0); p != nil {
			t.Errorf("acme-corp/app has a policy verdict: %+v", p)
		}
		t.Run("registry refuses acme-other and serves acme-corp-app", func(t *testing.T) {
			reg.mustRefuse(t, "acme/other:v1", want)
			reg.mustServe(t, "acme-corp/app:v1", imgs["acme-corp/app"])
		})
		st.trustctl(t, "policy", "unset", "acme/*")
		waitPull(t, st, "acme/other:v1", 0)
		reg.waitStatus(t, "acme/other", "v1", http.StatusOK)
	})

	t.Run("a second signer signs with cosign, which reads the image its policy holds back", func(t *testing.T) {
		doc := writeFile("star.json", `{"repositories": "acme/*", "require": [{"signers": 2}]}`)
		st.trustctl(t, "policy", "set", doc)
		reg.waitStatus(t, "acme/other", "v1", http.StatusForbidden)
		// cosign sign reads the manifest before it signs, with a token that
		// asks for pull alone: held to the policy like any pull.
		other := st.Addr + "/acme/other@" + imgs["acme/other"].ManifestDigest
		if out := cosign.mustFail(t, "sign", "--key", alice.key, "--tlog-upload=false", "--allow-insecure-registry", other); !strings.Contains(out, "DENIED") {
			t.Errorf("cosign sign with a pull token: want DENIED, got:\n%s", out)
		}
		// With a token that may push, a publisher is served what a pull is not.
		cosign.run(t, "sign", "--key", alice.key, "--tlog-upload=false", "--allow-insecure-registry",
			"--registry-token", st.pushToken(t, "acme/other"), other)
		if p := st.policyVerdict(t, "acme/other:v1", 0); p == nil || !p.Met || p.Documents[0].Requirements[0].Found != 2 {
			t.Errorf("policy %+v, want met by bob (the target) and alice (cosign)", p)
		}
		t.Run("registry serves docker, crane and skopeo", func(t *testing.T) {
			reg.mustServe(t, "acme/other:v1", imgs["acme/other"])
		})
	})
}

// mustBeUnmet checks trustctl pull exits 14 saying want, and writes nothing.
func mustBeUnmet(t *testing.T, st *stack, ref, want string) {
	t.Helper()
	code, out, dir := st.pullCode(t, ref)
	if code != 14 || !strings.Contains(out, "policy not met: "+want) {
		t.Errorf("trustctl pull %s exited %d, want 14 saying %q:\n%s", ref, code, want, out)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("trustctl pull of an image whose policy is not met wrote %s (%v)", dir, err)
	}
}

// policyVerdict runs trustctl verify --output json and returns its "policy".
func (st *stack) policyVerdict(t *testing.T, ref string, want int) *policyVerdict {
	t.Helper()
	code, out := st.trustctlCode(t, nil, "verify", st.Addr+"/"+ref, "--output", "json")
	if code != want {
		t.Fatalf("trustctl verify %s exited %d, want %d:\n%s", ref, code, want, out)
	}
	var res struct {
		Code   int            `json:"code"`
		Policy *policyVerdict `json:"policy"`
	}
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&res); err != nil || res.Code != want {
		t.Fatalf("trustctl verify --output json printed %q: %v", out, err)
	}
	return res.Policy
}

// trustctlCombined runs trustctl as the admin and returns its exit code and
// its stdout and stderr together, whether it fails or not.
func (st *stack) trustctlCombined(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, trustctlBin, args...)
	cmd.Env = []string{"HOME=" + filepath.Dir(st.Home), "PATH=" + os.Getenv("PATH"), "SIGNET_HOME=" + st.Home, "SIGNET_PASSPHRASE=" + e2ePassphrase}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("trustctl %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// policyClients are the registry's clients: docker (through dockerd),
// crane and skopeo, and a raw OCI client, all as the admin.
type policyClients struct {
	st            *stack
	rc            *regClient
	crane, skopeo *tool
	skopeoPolicy  string
}

func registryClients(t *testing.T, st *stack) *policyClients {
	t.Helper()
	c := &policyClients{st: st, rc: st.admin(), crane: newTool(t, "crane", "DOCKER_CONFIG="+st.Home), skopeo: newTool(t, "skopeo")}
	c.skopeoPolicy = filepath.Join(c.skopeo.dir, "policy.json")
	if err := os.WriteFile(c.skopeoPolicy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *policyClients) docker(t *testing.T) *tool {
	t.Helper()
	d := dockerClient(t)
	d.env = append(d.env, "DOCKER_CONFIG="+c.st.Home)
	return d
}

// waitStatus polls GET of repo's manifest ref until it answers status, within
// a few refresh intervals of the registry's trust metadata.
func (c *policyClients) waitStatus(t *testing.T, repo, ref string, status int) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, body, err := c.rc.do(c.rc.newRequest("GET", "/v2/"+repo+"/manifests/"+ref, nil), http.StatusOK, http.StatusForbidden)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == status {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s:%s still answers %d 20s on, want %d: %s", repo, ref, resp.StatusCode, status, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// mustRefuse checks the registry answers 403 DENIED saying want, and that
// crane, skopeo and docker fail to pull ref, showing that message.
func (c *policyClients) mustRefuse(t *testing.T, ref, want string) {
	t.Helper()
	repo, tag, _ := strings.Cut(ref, ":")
	body := c.waitStatus(t, repo, tag, http.StatusForbidden)
	var eb struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(body, &eb) != nil || len(eb.Errors) != 1 || eb.Errors[0].Code != "DENIED" || !strings.Contains(eb.Errors[0].Message, want) {
		t.Errorf("GET %s: 403 %s, want DENIED saying %q", ref, body, want)
	}
	full := c.st.Addr + "/" + ref
	t.Run("crane", func(t *testing.T) {
		out := c.crane.mustFail(t, "pull", "--format", "oci", full, filepath.Join(t.TempDir(), "oci"))
		if !strings.Contains(out, "DENIED") || !strings.Contains(out, want) {
			t.Errorf("crane pull: want DENIED saying %q, got:\n%s", want, out)
		}
	})
	t.Run("skopeo", func(t *testing.T) {
		out := c.skopeo.mustFail(t, "--policy", c.skopeoPolicy, "copy", "--src-tls-verify=false", "--src-creds", "admin:"+c.st.AdminPassword,
			"docker://"+full, "oci:"+filepath.Join(t.TempDir(), "oci")+":v1")
		// skopeo quotes the registry's message with its quotes escaped.
		out = strings.ReplaceAll(out, `\"`, `"`)
		if !strings.Contains(strings.ToLower(out), "denied") || !strings.Contains(out, want) {
			t.Errorf("skopeo copy: want denied saying %q, got:\n%s", want, out)
		}
	})
	t.Run("docker", func(t *testing.T) {
		docker := c.docker(t)
		t.Cleanup(func() { docker.try("rmi", "-f", full) })
		out := docker.mustFail(t, "pull", full)
		if !strings.Contains(strings.ToLower(out), "denied") || !strings.Contains(out, want) {
			t.Errorf("docker pull: want the registry's denial saying %q, got:\n%s", want, out)
		}
	})
}

// mustServe checks crane, skopeo and docker pull ref as img.
func (c *policyClients) mustServe(t *testing.T, ref string, img image) {
	t.Helper()
	repo, tag, _ := strings.Cut(ref, ":")
	c.waitStatus(t, repo, tag, http.StatusOK)
	full := c.st.Addr + "/" + ref
	t.Run("crane", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "oci")
		c.crane.run(t, "pull", "--format", "oci", full, dir)
		if got := layoutDigest(t, dir); got != img.ManifestDigest {
			t.Errorf("crane pull wrote %s, want %s", got, img.ManifestDigest)
		}
	})
	t.Run("skopeo", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "oci")
		c.skopeo.run(t, "--policy", c.skopeoPolicy, "copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds", "admin:"+c.st.AdminPassword,
			"docker://"+full, "oci:"+dir+":v1")
		if got := layoutDigest(t, dir); got != img.ManifestDigest {
			t.Errorf("skopeo copy wrote %s, want %s", got, img.ManifestDigest)
		}
	})
	t.Run("docker", func(t *testing.T) {
		docker := c.docker(t)
		t.Cleanup(func() { docker.try("rmi", "-f", full) })
		if out := docker.run(t, "pull", full); !strings.Contains(out, img.ManifestDigest) {
			t.Errorf("docker pull did not report %s:\n%s", img.ManifestDigest, out)
		}
	})
}

// warnServedAndNotified runs a registry of its own, gated by the stack's
// trust graph, with a webhook endpoint: img (signed, under a warn-mode
// policy) is admitted and served, and each pull logs a line saying want and
// emits an event saying it.
func warnServedAndNotified(t *testing.T, st *stack, img image, want string) {
	hook := newHookReceiver(t, "policy-secret-not-for-production")
	cfg := writeNotifyConfig(t, hookEndpoint{name: "hook", url: hook.URL, secret: hook.secret})
	data := filepath.Join(filepath.Dir(st.Home), "data")
	var acct struct{ Username, Password string }
	readJSON(t, filepath.Join(data, "registry-account.json"), &acct)
	reg := startRegistryEnv(t, newFilesystemStore(t), []string{"SIGNET_REGISTRY_PASSWORD=" + acct.Password},
		"--config", cfg, "--trustd", st.Trustd, "--trust-root", filepath.Join(data, "registry-root.json"),
		"--trust-user", acct.Username, "--trust-refresh", "1s")
	rc := newRegClient(reg.Addr)
	rc.hc = &http.Client{Timeout: time.Minute, Transport: &bearerTransport{user: "admin", password: st.AdminPassword, tokens: map[string]string{}}}
	if err := rc.pushImage("acme/warn", "v1", img, uploadMonolithicPost); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if body, _, err := rc.getManifest("acme/warn", "v1"); err != nil || !bytes.Equal(body, img.Manifest) {
			t.Fatalf("GET acme/warn:v1 under a warn-mode policy: %v", err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		lines := strings.Count(reg.log.String(), want)
		events := policyEvents(hook, "acme/warn", want)
		if lines >= 2 && events >= 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 2 pulls, %d log lines and %d events say %q; want a line per pull and an event:\n%s", lines, events, want, reg.log.Tail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// policyEvents counts the events hook took about repo whose type names a
// policy and whose data says want.
func policyEvents(hook *hookReceiver, repo, want string) int {
	hook.mu.Lock()
	defer hook.mu.Unlock()
	n := 0
	for _, e := range hook.byID {
		if strings.Contains(e.Type, "policy") && strings.Contains(e.Subject, repo) && strings.Contains(e.Data.Reason, want) {
			n++
		}
	}
	return n
}

// trustdRefusesPolicy publishes, straight to trustd's API, a policy target in
// the org role signed by bob (a publisher key), and in acme/app's role: trustd
// refuses both, naming why.
func trustdRefusesPolicy(t *testing.T, st *stack) {
	ctx := context.Background()
	vc := st.verifier(t, st.pinnedRoot(t), nil)
	s, err := vc.Walk(ctx, "acme/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	ks := signer.NewFileKeyStore(filepath.Join(st.Home, "keys"), func(bool) ([]byte, error) { return []byte(e2ePassphrase), nil })
	bob, err := ks.Load(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	lax, err := policy.ParseDocument([]byte(`{"repositories":"acme/**","mode":"warn","require":[{"signers":1}]}`), "acme")
	if err != nil {
		t.Fatal(err)
	}
	enc := (&policy.Set{}).With(*lax).Encode()
	tf, err := metadata.TargetFile().FromBytes(policy.Target("acme"), enc, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	custom := json.RawMessage(enc)
	tf.Custom = &custom
	token := st.trustdToken(t)
	publish := func(t *testing.T, role string, want ...string) {
		t.Helper()
		cur := s.Roles[role]
		if cur == nil {
			t.Fatalf("the walk did not reach %s", role)
		}
		b, _ := cur.ToBytes(false)
		md, err := metadata.Targets().FromBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		md.Signed.Version++
		md.Signed.Targets[policy.Target("acme")] = tf
		if err := signer.SignMetadata(md, true, bob); err != nil {
			t.Fatal(err)
		}
		raw, _ := md.ToBytes(false)
		req, _ := http.NewRequest(http.MethodPut, st.Trustd+"/tuf/api/metadata/"+role, bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("publishing %s with a policy target signed by bob: %d %s, want a 4xx refusal", role, resp.StatusCode, body.String())
		}
		t.Logf("trustd: %d %s", resp.StatusCode, body.String())
		for _, w := range want {
			if !strings.Contains(body.String(), w) {
				t.Errorf("publishing %s: %d %s, want it to say %q", role, resp.StatusCode, body.String(), w)
			}
		}
	}
	t.Run("an org role version signed by a publisher key", func(t *testing.T) {
		publish(t, trustnames.RoleForOrg("acme"), "org-acme")
	})
	t.Run("a repository role carrying the policy target", func(t *testing.T) {
		publish(t, trustnames.RoleForRepo("acme/app"), fmt.Sprintf("belong in its own role, %s", trustnames.RoleForOrg("acme")))
	})
	if out := st.trustctl(t, "policy", "show", "acme"); strings.Contains(out, "acme/**") {
		t.Errorf("a refused policy is in force:\n%s", out)
	}
}

// waitPull runs trustctl pull of ref until it exits want, for at most 20s:
// the registry sees a new version of the trust graph within its refresh
// interval.
func waitPull(t *testing.T, st *stack, ref string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, out, _ := st.pullCode(t, ref)
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("trustctl pull %s still exits %d 20s on, want %d:\n%s", ref, code, want, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pushToken gets an access token for pull and push on repo as the admin, as
// a publisher hands one to a client that reads with pull tokens.
func (st *stack) pushToken(t *testing.T, repo string) string {
	t.Helper()
	ch := st.discover(t)
	req, _ := http.NewRequest(http.MethodGet, st.URL("/token?service="+url.QueryEscape(ch["service"])+"&scope="+url.QueryEscape("repository:"+repo+":pull,push")), nil)
	req.SetBasicAuth("admin", st.AdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != http.StatusOK || tr.Token == "" {
		t.Fatalf("GET /token for push on %s: %s %v", repo, resp.Status, err)
	}
	return tr.Token
}

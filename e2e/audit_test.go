package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-oss/signet/audit"
)

// TestAuditLog: on an enforcing `trustctl up`, an org, a grant, a robot token
// made and revoked, a signed publish and a denied unsigned push each leave their
// audit records, in trustd's log and the registry's, and `trustctl audit` with
// filters shows exactly those, with no secret in any of them.
func TestAuditLog(t *testing.T) {
	t.Parallel()
	st := startStack(t)
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")
	davePassword := newPassword()
	st.ctl(t, davePassword+"\n", "user", "create", "dave", "--password-stdin")
	st.trustdAPI(t, http.StatusCreated, "POST", "/api/v1/grants", map[string]any{"subject": "dave", "pattern": "acme/**", "actions": []string{"pull"}})

	out := st.ctl(t, "", "token", "create", "--org", "acme", "--scope", "repository:acme/app:pull", "--name", "ci", "--output", "json")
	var robot struct{ Name, Secret string }
	if err := json.Unmarshal([]byte(out), &robot); err != nil || robot.Secret == "" {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	st.ctl(t, "", "token", "revoke", "--org", "acme", "ci")

	signed := newImage(t, "audit-signed", newLayer(t, "app/signed.bin", 8<<10))
	st.trustctl(t, "push", writeLayout(t, signed), st.Addr+"/acme/app:v1", "--key", "alice")
	unsigned := newImage(t, "audit-unsigned", newLayer(t, "app/unsigned.bin", 8<<10))
	crane := newTool(t, "crane", "DOCKER_CONFIG="+st.Home)
	if out := crane.mustFail(t, "push", writeLayout(t, unsigned), st.Addr+"/acme/app:v2"); !strings.Contains(out, "DENIED") {
		t.Fatalf("the unsigned push was not denied:\n%s", out)
	}

	all, raw := st.audit(t, "--since", "10m", "--limit", "1000")
	secrets := map[string]string{"the robot's secret": robot.Secret, "the admin's password": st.AdminPassword, "dave's password": davePassword}
	for i, tok := range identityTokens(t, filepath.Join(st.Home, "config.json")) {
		secrets["login token "+string(rune('A'+i))] = tok
	}
	for what, s := range secrets {
		if strings.Contains(raw, s) {
			t.Errorf("trustctl audit shows %s", what)
		}
	}
	for i := 1; i < len(all); i++ {
		if all[i].Time.Before(all[i-1].Time) {
			t.Errorf("records out of time order: %s after %s", all[i].Time, all[i-1].Time)
		}
	}
	sources := map[string]int{}
	for _, r := range all {
		sources[r.Source]++
	}
	if sources["trustd"] == 0 || sources["registry"] != 1 {
		t.Errorf("records by source %v, want trustd's and the registry's one denial", sources)
	}

	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"the org", []string{"--action", "org.create"}, []string{"trustd admin org.create acme"}},
		{"the grant", []string{"--org", "acme", "--action", "grant.*"}, []string{"trustd admin grant.create acme dave"}},
		{"the robot token made and revoked", []string{"--org", "acme", "--action", "token.*"},
			[]string{"trustd admin token.create acme acme+ci", "trustd admin token.revoke acme acme+ci"}},
		{"the signed publish", []string{"--repo", "acme/app", "--action", "target.publish"},
			[]string{"trustd admin target.publish acme acme/app v1 " + signed.ManifestDigest}},
		{"the denied push", []string{"--repo", "acme/**", "--action", "admission.deny"},
			[]string{"registry admin admission.deny acme acme/app v2 " + unsigned.ManifestDigest}},
		{"an actor nobody is", []string{"--actor", "mallory"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs, _ := st.audit(t, append([]string{"--since", "10m"}, tc.args...)...)
			var got []string
			for _, r := range recs {
				f := []string{r.Source, r.Actor, r.Action, r.Org, r.Repository, r.Tag, r.Digest, r.Subject}
				got = append(got, strings.Join(slices.DeleteFunc(f, func(s string) bool { return s == "" }), " "))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("trustctl audit %s:\n%q\nwant\n%q", strings.Join(tc.args, " "), got, tc.want)
			}
		})
	}
	t.Run("the table", func(t *testing.T) {
		out := st.trustctl(t, "audit", "--since", "10m", "--repo", "acme/app")
		for _, want := range []string{"SOURCE", "admission.deny", "acme/app:v2@" + unsigned.ManifestDigest[:19], "is not signed for acme/app:v2", "target.publish"} {
			if !strings.Contains(out, want) {
				t.Errorf("the table lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("a client_id that is not printable ASCII is refused", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, st.Trustd+"/token?service=trustd&offline_token=true&client_id=ci%1b%5b2J", nil)
		req.SetBasicAuth("admin", st.AdminPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /token with an escape in client_id: %d, want 400", resp.StatusCode)
		}
	})
	t.Run("the table escapes control characters", func(t *testing.T) {
		// A record as an older trustd, which kept any client_id, wrote it.
		st.plantRecord(t, audit.Record{Time: time.Now(), Actor: "dave", Action: audit.ActionTokenCreate, Subject: "dave",
			Detail: "refresh token for trustd (client \x1b]0;owned\a\x1b[2J\u202e)"})
		out := st.trustctl(t, "audit", "--since", "10m", "--actor", "dave")
		if strings.ContainsAny(out, "\x1b\a\u202e") || !strings.Contains(out, `(client \x1b]0;owned\a\x1b[2J\u202e)`) {
			t.Errorf("the table does not escape the record's control characters:\n%q", out)
		}
	})
	t.Run("a filter matching one record behind many is answered", func(t *testing.T) {
		// More records than trustd reads for one page, then the one asked for:
		// trustctl pages on through the empty pages to it.
		start := time.Now().Add(-5 * time.Minute)
		for i := range audit.MaxExamined + 50 {
			st.plantRecord(t, audit.Record{Time: start.Add(time.Duration(i) * time.Microsecond), Actor: "filler", Action: audit.ActionRolePublish, Org: "acme"})
		}
		st.plantRecord(t, audit.Record{Time: start.Add(time.Second), Actor: "needle", Action: audit.ActionRolePublish, Org: "acme"})
		recs, _ := st.audit(t, "--since", "10m", "--actor", "needle")
		if len(recs) != 1 || recs[0].Actor != "needle" {
			t.Errorf("trustctl audit --actor needle gave %d records, want the one behind %d others", len(recs), audit.MaxExamined+50)
		}
	})
	t.Run("a bad flag is refused before any request", func(t *testing.T) {
		if out := st.trustctlFails(t, "audit", "--since", "yesterday"); !strings.Contains(out, "--since") {
			t.Errorf("got:\n%s", out)
		}
	})
}

// audit runs `trustctl audit --jsonl` with args and returns its records and output.
func (st *stack) audit(t *testing.T, args ...string) ([]audit.Record, string) {
	t.Helper()
	out := st.trustctl(t, append([]string{"audit", "--jsonl"}, args...)...)
	var recs []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("trustctl audit --jsonl printed a line that is not a record: %q", line)
		}
		recs = append(recs, r)
	}
	return recs, out
}

// plantRecord writes rec into trustd's audit log on the stack's data directory
// directly, as a trustd of another version might have written it.
func (st *stack) plantRecord(t *testing.T, rec audit.Record) {
	t.Helper()
	at := rec.Time.UTC()
	var rnd [8]byte
	rand.Read(rnd[:])
	rec.ID = at.Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(rnd[:])
	rec.Time, rec.Source, rec.Outcome = at, "trustd", audit.OutcomeSuccess
	dir := filepath.Join(filepath.Dir(st.Home), "data", "trustd", "trustd", "v1", "audit", at.Format("2006/01/02"))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(dir, rec.ID+".json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// trustdAPI calls trustd's management API as the admin.
func (st *stack) trustdAPI(t *testing.T, want int, method, path string, body any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, st.Trustd+"/token?service=trustd", nil)
	req.SetBasicAuth("admin", st.AdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok tokenResponse
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	b, _ := json.Marshal(body)
	req, _ = http.NewRequest(method, st.Trustd+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d", method, path, resp.StatusCode, want)
	}
}

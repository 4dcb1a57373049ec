package tuf_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/trustnames"
)

// auditSince returns the audit records written after the record after (all
// when ""), as "action role repo tag digest keys actor".
func (e *env) auditSince(t *testing.T, after string) ([]string, []audit.Record) {
	t.Helper()
	q := url.Values{"limit": {"1000"}}
	if after != "" {
		q.Set("after", after)
	}
	r := e.do("GET", "/api/v1/audit?"+q.Encode(), e.admin, nil)
	var page audit.Page
	if err := json.Unmarshal(r.body, &page); err != nil || r.status != 200 {
		t.Fatalf("GET /api/v1/audit: %d %s", r.status, r.body)
	}
	var out []string
	for _, rec := range page.Records {
		if strings.HasPrefix(rec.Action, "user.") || strings.HasPrefix(rec.Action, "member.") || rec.Action == audit.ActionOrgCreate {
			continue
		}
		f := []string{rec.Action, rec.Role, rec.Repository, rec.Tag, rec.Digest, strings.Join(rec.KeyIDs, ","), rec.Actor}
		out = append(out, strings.Join(slices.DeleteFunc(f, func(s string) bool { return s == "" }), " "))
	}
	return out, page.Records
}

func lastID(recs []audit.Record) string {
	if len(recs) == 0 {
		return ""
	}
	return recs[len(recs)-1].ID
}

func sha(content string) string {
	t := target(content)
	return "sha256:" + hex.EncodeToString(t.Hashes["sha256"])
}

func TestPublishesAreAudited(t *testing.T) {
	e := newEnv(t, nil)
	got, recs := e.auditSince(t, "")
	want := []string{
		"trust.init root " + e.root.id + " admin",
	}
	if !slices.Equal(got, want) {
		t.Errorf("after init:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	orgKey, pub, pub2 := newKey(t), newKey(t), newKey(t)
	repoRole := trustnames.RoleForRepo("acme/app")
	e.org("acme", []*key{orgKey}, 1, repoDelegation("acme/app", 1, pub))
	bob := e.user("bob", "acme", "publisher")
	got, recs = e.auditSince(t, lastID(recs))
	// targets and org-acme are held until acme/app has its first version.
	want = []string{
		"role.stage targets admin",
		"role.stage org-acme admin",
	}
	if !slices.Equal(got, want) {
		t.Errorf("after delegating acme and acme/app:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	e.mustPut(201, repoRole, sign(t, role(1, nil, targets("acme/app:v1", target("one"))), pub), bob)
	e.mustPut(201, repoRole, sign(t, role(2, nil, targets("acme/app:v1", target("two"), "acme/app@"+sha("one"), target("one"))), pub), bob)
	e.mustPut(201, repoRole, sign(t, role(3, nil, targets("acme/app:v1", target("two"))), pub), bob)
	got, recs = e.auditSince(t, lastID(recs))
	want = []string{
		"role.publish " + repoRole + " acme/app bob",
		"role.publish targets bob",
		"role.publish org-acme bob",
		"delegation.add org-acme " + orgKey.id + " bob",
		"delegation.add " + repoRole + " acme/app " + pub.id + " bob",
		"target.publish " + repoRole + " acme/app v1 " + sha("one") + " bob",
		"role.publish " + repoRole + " acme/app bob",
		"target.publish " + repoRole + " acme/app v1 " + sha("two") + " bob",
		"target.publish " + repoRole + " acme/app " + sha("one") + " bob",
		"role.publish " + repoRole + " acme/app bob",
		"target.remove " + repoRole + " acme/app " + sha("one") + " bob",
	}
	if !slices.Equal(got, want) {
		t.Errorf("after three publishes:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range recs {
		if r.Action == audit.ActionTargetPublish && (r.Org != "acme" || r.Version == 0) {
			t.Errorf("target record %+v lacks its org or role version", r)
		}
	}

	// The org rotates the repository's key.
	e.mustPut(201, trustnames.RoleForOrg("acme"), sign(t, role(2, []delegation{repoDelegation("acme/app", 1, pub2)}, nil), orgKey), e.admin)
	got, recs = e.auditSince(t, lastID(recs))
	want = []string{
		"role.publish org-acme admin",
		"key.rotate " + repoRole + " acme/app " + pub2.id + " admin",
	}
	if !slices.Equal(got, want) || !strings.Contains(recs[len(recs)-1].Detail, pub.id) {
		t.Errorf("after a key rotation:\n%s\nwant\n%s (detail naming the old key)", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The operators add a second targets key in a new root.
	targets2 := newKey(t)
	root := e.rootMD
	root.Signed.Version = 2
	if err := root.Signed.AddKey(targets2.tuf, metadata.TARGETS); err != nil {
		t.Fatal(err)
	}
	e.mustPut(201, "root", sign(t, root, e.root), e.admin)
	got, _ = e.auditSince(t, lastID(recs))
	want = []string{
		"role.publish root admin",
		"key.add targets " + targets2.id + " admin",
	}
	if !slices.Equal(got, want) {
		t.Errorf("after adding a targets key:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestOrgTargetsAreAudited(t *testing.T) {
	e := newEnv(t, nil)
	orgKey, pub := newKey(t), newKey(t)
	orgRole := trustnames.RoleForOrg("acme")
	e.org("acme", []*key{orgKey}, 1)
	_, recs := e.auditSince(t, "")

	// The org signs a target of its repository itself, and delegates another.
	md := role(2, []delegation{repoDelegation("acme/lib", 1, pub)}, targets("acme/app:v1", target("one")))
	// That version is held until acme/lib has its first version, then
	// recorded as published with it.
	e.mustPut(202, orgRole, sign(t, md, orgKey), e.admin)
	e.mustPut(201, trustnames.RoleForRepo("acme/lib"), sign(t, role(1, nil, nil), pub), e.admin)
	got, recs := e.auditSince(t, lastID(recs))
	want := []string{
		"role.stage org-acme admin",
		"role.publish " + trustnames.RoleForRepo("acme/lib") + " acme/lib admin",
		"role.publish org-acme admin",
		"delegation.add " + trustnames.RoleForRepo("acme/lib") + " acme/lib " + pub.id + " admin",
		"target.publish org-acme acme/app v1 " + sha("one") + " admin",
	}
	if !slices.Equal(got, want) {
		t.Errorf("after the org signed a target:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range recs {
		if r.Action == audit.ActionTargetPublish && (r.Org != "acme" || r.Version != 2) {
			t.Errorf("the org's target record %+v lacks its org or role version", r)
		}
	}

	// It moves the tag and then drops it.
	e.mustPut(201, orgRole, sign(t, role(3, []delegation{repoDelegation("acme/lib", 1, pub)}, targets("acme/app:v1", target("two"))), orgKey), e.admin)
	e.mustPut(201, orgRole, sign(t, role(4, []delegation{repoDelegation("acme/lib", 1, pub)}, nil), orgKey), e.admin)
	got, _ = e.auditSince(t, lastID(recs))
	want = []string{
		"role.publish org-acme admin",
		"target.publish org-acme acme/app v1 " + sha("two") + " admin",
		"role.publish org-acme admin",
		"target.remove org-acme acme/app v1 " + sha("two") + " admin",
	}
	if !slices.Equal(got, want) {
		t.Errorf("after moving and removing the org's target:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// slowAudit makes every audit write take a while and counts how many run at
// once.
type slowAudit struct {
	driver.Driver
	inFlight, most atomic.Int32
}

func (d *slowAudit) PutContentIf(ctx context.Context, p string, data []byte, c driver.Condition) (string, error) {
	if strings.HasPrefix(p, "/trustd/v1/audit/") {
		n := d.inFlight.Add(1)
		defer d.inFlight.Add(-1)
		for m := d.most.Load(); n > m && !d.most.CompareAndSwap(m, n); m = d.most.Load() {
		}
		time.Sleep(2 * time.Millisecond)
	}
	return d.Driver.PutContentIf(ctx, p, data, c)
}

func TestAPublishOfManyTargetsWritesItsRecordsConcurrentlyInOrder(t *testing.T) {
	d := &slowAudit{Driver: inmemory.New()}
	e := newEnv(t, d)
	orgKey, pub := newKey(t), newKey(t)
	repoRole := trustnames.RoleForRepo("acme/app")
	e.org("acme", []*key{orgKey}, 1, repoDelegation("acme/app", 1, pub))
	bob := e.user("bob", "acme", "publisher")
	_, recs := e.auditSince(t, "")

	const n = 40
	var kv []any
	// The first version also publishes targets and org-acme, held until then.
	want := []string{
		"role.publish " + repoRole + " acme/app bob",
		"role.publish targets bob",
		"role.publish org-acme bob",
		"delegation.add org-acme " + orgKey.id + " bob",
		"delegation.add " + repoRole + " acme/app " + pub.id + " bob",
	}
	for i := range n {
		tag := fmt.Sprintf("v%02d", i)
		kv = append(kv, "acme/app:"+tag, target(tag))
		want = append(want, "target.publish "+repoRole+" acme/app "+tag+" "+sha(tag)+" bob")
	}
	d.most.Store(0)
	e.mustPut(201, repoRole, sign(t, role(1, nil, targets(kv...)), pub), bob)
	if got, _ := e.auditSince(t, lastID(recs)); !slices.Equal(got, want) {
		t.Errorf("the publish of %d targets left\n%s\nwant\n%s", n, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if most := d.most.Load(); most < 2 || most > 8 {
		t.Errorf("at most %d audit writes ran at once, want 2 to 8", most)
	}
}

func TestStagedPublishIsAudited(t *testing.T) {
	e := newEnv(t, nil)
	k1, k2 := newKey(t), newKey(t)
	e.org("acme", []*key{k1, k2}, 2)
	_, recs := e.auditSince(t, "")
	e.mustPut(202, trustnames.RoleForOrg("acme"), sign(t, role(2, nil, nil), k1), e.admin)
	got, recs := e.auditSince(t, lastID(recs))
	if !slices.Equal(got, []string{"role.stage org-acme admin"}) || recs[len(recs)-1].Outcome != audit.OutcomeStaged {
		t.Errorf("a staged upload left %q", got)
	}
}

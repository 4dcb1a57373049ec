package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSignThenPushWaitsForNoRefresh: a signed push right after another hands
// the registry the timestamp of its publish, so the gate admits it on a
// refresh that timestamp started at once, never on a miss that waits out the
// pause between refreshes.
func TestSignThenPushWaitsForNoRefresh(t *testing.T) {
	t.Parallel()
	st := startStack(t)
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")
	st.pushLayout(t, "acme/app:v0", "alice", newImage(t, "v0", newLayer(t, "a", 1<<10)))

	misses := strings.Count(st.log.String(), `reason=miss repo=acme/app`)
	offered := strings.Count(st.log.String(), `reason="offered timestamp" repo=acme/app`)
	for _, tag := range []string{"v1", "v2", "v3"} {
		st.pushLayout(t, "acme/app:"+tag, "alice", newImage(t, tag, newLayer(t, "a", 1<<10)))
		dir := filepath.Join(t.TempDir(), "oci")
		writeOCILayout(t, dir, "", newImage(t, tag+"-again", newLayer(t, "b", 1<<10)))
		st.trustctl(t, "push", dir, st.Addr+"/acme/app:"+tag+"-again", "--key", "alice")
	}
	log := st.log.String()
	if n := strings.Count(log, `reason=miss repo=acme/app`) - misses; n != 0 {
		t.Errorf("%d pushes right after a publish waited for a refresh on a miss:\n%s", n, problems(st.log, 40))
	}
	if n := strings.Count(log, `reason="offered timestamp" repo=acme/app`) - offered; n != 6 {
		t.Errorf("%d refreshes started by an offered timestamp, want one per push (6):\n%s", n, st.log.Tail(60))
	}
}

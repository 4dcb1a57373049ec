package trustd_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
)

// wholeSecondUTC is how the management API writes times: RFC 3339, UTC, no
// fraction of a second.
var wholeSecondUTC = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func TestTheManagementAPIWritesTimesAsWholeSecondsInUTC(t *testing.T) {
	e := newEnv(t)
	admin := e.fixture()
	r := e.mustAPI(http.StatusCreated, "POST", "/orgs/acme/robots", admin, map[string]any{"name": "ci", "scopes": []string{"repository:acme/app:pull"}})
	var created map[string]any
	if err := json.Unmarshal(r.body, &created); err != nil {
		t.Fatal(err)
	}
	if _, ok := created["created"]; ok {
		t.Errorf("the answer that creates a robot has a created time: %s", r.body)
	}
	var robots []map[string]any
	if err := json.Unmarshal(e.mustAPI(http.StatusOK, "GET", "/orgs/acme/robots", admin, nil).body, &robots); err != nil || len(robots) != 1 {
		t.Fatalf("robots: %v", err)
	}
	var grant map[string]any
	body := e.mustAPI(http.StatusCreated, "POST", "/grants", admin, map[string]any{"subject": "dave", "pattern": "acme/**", "actions": []string{"pull"}}).body
	if err := json.Unmarshal(body, &grant); err != nil {
		t.Fatal(err)
	}
	for what, v := range map[string]any{
		"a new robot's expiry":    created["expires"],
		"a listed robot's expiry": robots[0]["expires"],
		"a listed robot's time":   robots[0]["created"],
		"a new grant's time":      grant["created"],
	} {
		if s, _ := v.(string); !wholeSecondUTC.MatchString(s) {
			t.Errorf("%s is %v, want RFC 3339 in UTC with whole seconds", what, v)
		}
	}
}

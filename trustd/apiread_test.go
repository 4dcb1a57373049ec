package trustd_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestListings: GET /orgs answers the orgs the caller may read, GET /users is
// for admins, and whoami names the caller's orgs and roles.
func TestListings(t *testing.T) {
	e := newEnv(t)
	admin := e.fixture()
	e.mustAPI(http.StatusCreated, "POST", "/orgs", admin, map[string]string{"name": "beta"})
	names := func(body []byte) []string {
		var orgs []struct{ Name string }
		json.Unmarshal(body, &orgs)
		var out []string
		for _, o := range orgs {
			out = append(out, o.Name)
		}
		return out
	}
	if got := names(e.mustAPI(200, "GET", "/orgs", admin, nil).body); len(got) != 2 || got[0] != "acme" || got[1] != "beta" {
		t.Errorf("the admin's org list: %v, want acme, beta", got)
	}
	alice := e.login("alice", userPassword)
	if got := names(e.mustAPI(200, "GET", "/orgs", alice, nil).body); len(got) != 1 || got[0] != "acme" {
		t.Errorf("a reader's org list: %v, want acme only", got)
	}
	dave := e.login("dave", userPassword)
	if r := e.mustAPI(200, "GET", "/orgs", dave, nil); string(r.body) != "[]\n" && string(r.body) != "[]" {
		t.Errorf("a non-member's org list: %s, want []", r.body)
	}
	e.mustAPI(http.StatusForbidden, "GET", "/users", alice, nil)
	var users []struct {
		Name string
		Orgs map[string]string
	}
	json.Unmarshal(e.mustAPI(200, "GET", "/users", admin, nil).body, &users)
	byName := map[string]map[string]string{}
	for _, u := range users {
		byName[u.Name] = u.Orgs
	}
	if len(users) != 5 || byName["carol"]["acme"] != "owner" || len(byName["dave"]) != 0 {
		t.Errorf("users: %+v, want 5 with carol an owner of acme", users)
	}
	var me struct{ Orgs map[string]string }
	json.Unmarshal(e.mustAPI(200, "GET", "/whoami", alice, nil).body, &me)
	if len(me.Orgs) != 1 || me.Orgs["acme"] != "reader" {
		t.Errorf("alice's whoami orgs: %v, want acme: reader", me.Orgs)
	}
}

package client

import (
	"context"
	"path/filepath"
	"testing"
)

func TestLogoutRemovesWhatLoginStored(t *testing.T) {
	dir := t.TempDir()
	home, _ := LoadConfigFile(filepath.Join(dir, "signet", "config.json"))
	home.SetLogin("127.0.0.1:5000", "alice", "registry-refresh")
	home.SetLogin("127.0.0.1:5001", "alice", "trustd-refresh")
	home.SetLogin("other:5000", "bob", "other-refresh")
	home.SetSignet(Signet{Registry: "127.0.0.1:5000", Trustd: "http://127.0.0.1:5001"})
	if err := home.Save(); err != nil {
		t.Fatal(err)
	}
	docker, _ := LoadConfigFile(filepath.Join(dir, "docker", "config.json"))
	docker.SetLogin("127.0.0.1:5000", "alice", "registry-refresh")
	if err := docker.Save(); err != nil {
		t.Fatal(err)
	}

	res, err := Logout(context.Background(), "", home, docker)
	if err != nil {
		t.Fatal(err)
	}
	if res.Registry != "127.0.0.1:5000" || len(res.Removed) != 2 {
		t.Fatalf("Logout = %+v, want 127.0.0.1:5000 removed from both files", res)
	}
	home, _ = LoadConfigFile(home.Path)
	docker, _ = LoadConfigFile(docker.Path)
	for _, h := range []string{"127.0.0.1:5000", "127.0.0.1:5001"} {
		if _, tok := home.Login(h); tok != "" {
			t.Errorf("%s still holds a login for %s", home.Path, h)
		}
	}
	if _, tok := docker.Login("127.0.0.1:5000"); tok != "" {
		t.Errorf("%s still holds the login", docker.Path)
	}
	if _, tok := home.Login("other:5000"); tok != "other-refresh" {
		t.Errorf("the login of another registry was removed too")
	}
	if home.Signet().Registry != "" {
		t.Errorf("the signet section still names %s", home.Signet().Registry)
	}
	if _, err := Logout(context.Background(), "127.0.0.1:5000", home, docker); err == nil {
		t.Errorf("a second logout succeeded: want 'not logged in'")
	}
}

package client

import (
	"path/filepath"
	"testing"
)

func TestMoveLoginLeavesNothingAtTheOldAddress(t *testing.T) {
	c, err := LoadConfigFile(filepath.Join(t.TempDir(), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogin("127.0.0.1:5000", "admin", "refresh-1")
	c.SetLogin("127.0.0.1:6000", "someone", "stale")
	if !c.MoveLogin("127.0.0.1:5000", "127.0.0.1:6000") {
		t.Fatal("MoveLogin found no entry to move")
	}
	if user, tok := c.Login("127.0.0.1:6000"); user != "admin" || tok != "refresh-1" {
		t.Errorf("the new address has %q %q, want the moved login", user, tok)
	}
	if _, tok := c.Login("127.0.0.1:5000"); tok != "" {
		t.Error("the old address still has the refresh token")
	}
	if c.MoveLogin("127.0.0.1:5000", "127.0.0.1:7000") {
		t.Error("MoveLogin moved an entry that is not there")
	}
}

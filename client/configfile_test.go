package client

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestConfigFileKeepsWhatItDoesNotKnow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	path := filepath.Join(dir, "config.json")
	os.MkdirAll(dir, 0o755)
	orig := `{"auths":{"other.example":{"auth":"dTpw","email":"x@y"}},"proxies":{"default":{"httpProxy":"http://p"}},"detachKeys":"ctrl-x"}`
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogin("127.0.0.1:5000", "admin", "refresh-1")
	c.SetSignet(Signet{Registry: "127.0.0.1:5000", Trustd: "http://127.0.0.1:5001"})
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["detachKeys"] != "ctrl-x" || got["proxies"] == nil {
		t.Errorf("unknown keys lost: %s", b)
	}
	other := got["auths"].(map[string]any)["other.example"].(map[string]any)
	if other["email"] != "x@y" || other["auth"] != "dTpw" {
		t.Errorf("another registry's entry changed: %v", other)
	}
	again, err := LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if u, tok := again.Login("127.0.0.1:5000"); u != "admin" || tok != "refresh-1" {
		t.Errorf("Login = %q %q, want admin refresh-1", u, tok)
	}
	if s := again.Signet(); s.Trustd != "http://127.0.0.1:5001" {
		t.Errorf("Signet() = %+v", s)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestConfigFileCreatesPrivateDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "signet")
	c, err := LoadConfigFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogin("h:1", "u", "t")
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
}

func TestCredentialHelperChoice(t *testing.T) {
	c := &ConfigFile{top: map[string]json.RawMessage{
		"credsStore":  json.RawMessage(`"pass"`),
		"credHelpers": json.RawMessage(`{"127.0.0.1:5000":"signet-test"}`),
	}}
	if h := c.CredentialHelper("127.0.0.1:5000"); h != "signet-test" {
		t.Errorf("credHelpers entry: got %q", h)
	}
	if h := c.CredentialHelper("other:1"); h != "pass" {
		t.Errorf("credsStore fallback: got %q", h)
	}
}

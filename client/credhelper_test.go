package client

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHelper installs docker-credential-<name> on PATH: a shell script that keeps
// one credential per server in a directory, as a real helper would.
func fakeHelper(t *testing.T, name string) string {
	t.Helper()
	bin := t.TempDir()
	store := t.TempDir()
	script := `#!/bin/sh
set -e
store=` + store + `
case "$1" in
store) cat > "$store/last.json"; sed -e 's/.*"ServerURL":"\([^"]*\)".*/\1/' "$store/last.json" > "$store/last.url"; cp "$store/last.json" "$store/$(cat "$store/last.url" | tr ':/' '__')" ;;
get) url=$(cat); f="$store/$(echo "$url" | tr ':/' '__')"; if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) url=$(cat); rm -f "$store/$(echo "$url" | tr ':/' '__')" ;;
*) echo "unknown action" ; exit 1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-"+name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return store
}

func TestHelperProtocol(t *testing.T) {
	fakeHelper(t, "signet-test")
	ctx := context.Background()
	h := Helper{Name: "signet-test"}
	if _, err := h.Get(ctx, "127.0.0.1:5000"); !errors.Is(err, ErrCredentialsNotFound) {
		t.Fatalf("get before store: %v, want ErrCredentialsNotFound", err)
	}
	want := Credentials{ServerURL: "127.0.0.1:5000", Username: TokenUsername, Secret: "refresh-1"}
	if err := h.Store(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := h.Get(ctx, "127.0.0.1:5000")
	if err != nil || got != want {
		t.Fatalf("get = %+v, %v; want %+v", got, err, want)
	}
	if err := h.Erase(ctx, "127.0.0.1:5000"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Get(ctx, "127.0.0.1:5000"); !errors.Is(err, ErrCredentialsNotFound) {
		t.Fatalf("get after erase: %v", err)
	}
}

func TestStoreDockerLoginThroughHelper(t *testing.T) {
	fakeHelper(t, "signet-test")
	path := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(path, []byte(`{"credsStore":"signet-test"}`), 0o600)
	cfg, err := LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := StoreDockerLogin(context.Background(), cfg, "127.0.0.1:5000", "alice", "refresh-2"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "refresh-2") {
		t.Fatalf("the token is in the file although a helper is configured:\n%s", b)
	}
	if !strings.Contains(string(b), `"127.0.0.1:5000": {}`) {
		t.Errorf("no empty auths entry for the registry:\n%s", b)
	}
	got, err := Helper{Name: "signet-test"}.Get(context.Background(), "127.0.0.1:5000")
	if err != nil || got.Secret != "refresh-2" || got.Username != TokenUsername {
		t.Fatalf("helper holds %+v, %v", got, err)
	}
}

func TestMissingHelperSaysWhatToDo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Helper{Name: "nope"}.Store(context.Background(), Credentials{ServerURL: "h"})
	if err == nil || !strings.Contains(err.Error(), "docker-credential-nope is not on PATH") {
		t.Fatalf("got %v", err)
	}
}

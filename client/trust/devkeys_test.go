package trust

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/signer"
)

// A session on a local stack's registry finds the stack's development keys
// beside the user's, makes new keys in the user's store, and, without the
// targets key, names the key it needs.
func TestStackKeysFindTheStacksRootKeys(t *testing.T) {
	ctx := context.Background()
	home, stack := t.TempDir(), filepath.Join(t.TempDir(), "keys")
	const reg = "127.0.0.1:5000"
	pass := func(bool) ([]byte, error) { return []byte("test-passphrase"), nil }
	dev := signer.NewFileKeyStore(stack, pass)
	targets, err := dev.Generate(ctx, "dev-targets", "")
	if err != nil {
		t.Fatal(err)
	}
	role := &metadata.Role{KeyIDs: []string{targets.ID}, Threshold: 1}

	alone := &Session{Home: home, Registry: reg, Keys: StackKeys(home, reg, pass)}
	_, err = alone.signingKeys(ctx, metadata.TARGETS, role)
	if err == nil || !strings.Contains(err.Error(), "dev-targets") || !strings.Contains(err.Error(), targets.ID[:16]) {
		t.Fatalf("without the stack's keys: %v, want an error naming dev-targets and its key ID", err)
	}

	if err := SetDevKeyDir(home, reg, stack); err != nil {
		t.Fatal(err)
	}
	s := &Session{Home: home, Registry: reg, Keys: StackKeys(home, reg, pass)}
	keys, err := s.signingKeys(ctx, metadata.TARGETS, role)
	if err != nil || len(keys) != 1 || keys[0].Name != "dev-targets" {
		t.Fatalf("with the stack's keys: %v, %v", keys, err)
	}
	if _, err := s.Keys.Generate(ctx, "dev-org-acme", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := signer.NewFileKeyStore(KeyDir(home), pass).Public(ctx, "dev-org-acme"); err != nil {
		t.Errorf("a key made in the session is not in the user's store: %v", err)
	}
	infos, err := s.Keys.List(ctx)
	if err != nil || len(infos) != 2 || infos[0].Name != "dev-org-acme" || infos[1].Name != "dev-targets" {
		t.Errorf("List: %v, %v; want both stores' keys, sorted", infos, err)
	}
	// Another registry's session does not see this stack's keys.
	other := StackKeys(home, "127.0.0.1:6000", pass)
	if _, err := other.Public(ctx, "dev-targets"); !errors.Is(err, signer.ErrKeyNotFound) {
		t.Errorf("another registry's session found dev-targets: %v", err)
	}
}

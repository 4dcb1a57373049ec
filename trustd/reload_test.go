package trustd

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/signet-oss/signet/storage/driver/inmemory"
)

func TestAReplicaSeesAnotherReplicasChangesAfterAReload(t *testing.T) {
	ctx := context.Background()
	d := inmemory.New()
	cfg := Defaults()
	cfg.AdminPassword = "admin-password"
	cfg.BcryptCost = bcrypt.MinCost
	a, err := New(ctx, cfg, d, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, cfg, d, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.createPerson(ctx, "erin", "erin-password", false); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.account("erin"); p != nil {
		t.Fatal("a replica saw a new account before reloading")
	}
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.account("erin"); p == nil {
		t.Fatal("after a reload the replica does not know the account the other made")
	}
}

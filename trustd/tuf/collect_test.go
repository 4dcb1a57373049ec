package tuf_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/trustd/tuf"
)

func TestCollectDeletesOnlyLeftovers(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	d := inmemory.New()
	repo, err := tuf.New(ctx, d, tuf.Config{TimestampExpiry: 24 * time.Hour, SnapshotExpiry: 7 * 24 * time.Hour, ResignBefore: 6 * time.Hour, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := repo.Collect(ctx); n != 0 || err != nil {
		t.Fatalf("Collect before Init: %d, %v", n, err)
	}
	rootKey, targetsKey := newKey(t), newKey(t)
	snapKey, tsKey := repo.OnlineKeys()
	root := metadata.Root(clk.now().Add(365 * 24 * time.Hour))
	for r, k := range map[string]*metadata.Key{"root": rootKey.tuf, "targets": targetsKey.tuf, "snapshot": snapKey, "timestamp": tsKey} {
		root.Signed.AddKey(k, r)
	}
	if err := repo.Init(ctx, sign(t, root, rootKey), sign(t, role(1, nil, nil), targetsKey)); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Publish(ctx, "targets", sign(t, role(2, nil, nil), targetsKey)); err != nil {
		t.Fatal(err)
	}
	const dir = "/trustd/v1/tuf/"
	hash := strings.Repeat("ab", 32)
	plant := func(p string) {
		if _, err := d.PutContent(ctx, dir+p, []byte(`{"leftover":true}`)); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(p string) bool {
		_, err := d.Stat(ctx, dir+p)
		if err != nil && !errors.Is(err, driver.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	loser := "pending/targets/2." + hash + ".json"        // another upload of a committed version
	inFlight := "pending/targets/3." + hash + ".json"     // a version not committed yet
	obsoleteStage := "staged/targets/2." + hash + ".json" // signatures for a committed version
	openStage := "staged/targets/3." + hash + ".json"     // still collecting signatures
	for _, p := range []string{loser, inFlight, obsoleteStage, openStage} {
		plant(p)
	}

	n, err := repo.Collect(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Collect deleted %d (%v), want the 2 leftovers of committed versions", n, err)
	}
	for p, want := range map[string]bool{loser: false, obsoleteStage: false, inFlight: true, openStage: true, "meta/targets/2.json": true, "meta/targets/1.json": true, "meta/root/1.json": true} {
		if exists(p) != want {
			t.Errorf("after Collect, %s exists = %v, want %v", p, !want, want)
		}
	}

	clk.add(2 * time.Hour)
	if n, err := repo.Collect(ctx); err != nil || n != 1 || exists(inFlight) || !exists(openStage) {
		t.Fatalf("two hours on, Collect deleted %d (%v); the abandoned pending file exists: %v, the open stage: %v", n, err, exists(inFlight), exists(openStage))
	}
	// What is committed still publishes on top.
	if _, err := repo.Publish(ctx, "targets", sign(t, role(3, nil, nil), targetsKey)); err != nil {
		t.Fatalf("publishing after Collect: %v", err)
	}
	if !exists("meta/targets/3.json") {
		t.Fatal("version 3 was not committed")
	}
}

package verify

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/internal/tuftest"
	"github.com/signet-oss/signet/trustnames"
)

// pausedIndex is an index refreshed once, whose clock stands still and whose
// pause between refreshes is an hour: a refresh now, other than one an offer
// starts, would wait out the hour.
func pausedIndex(t *testing.T, f *fixture) *Index {
	t.Helper()
	clock := &tuftest.Clock{}
	ix := f.newIndex(t, &memStore{}, func(c *IndexConfig) { c.Now, c.MinInterval = clock.Now, time.Hour })
	if err := ix.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestIndexRefreshesAtOnceForAnOfferedNewerTimestamp(t *testing.T) {
	f := newFixture(t)
	ix := pausedIndex(t, f)
	f.repo.AddTarget(trustnames.RoleForRepo("acme/app"), "acme/app:new", []byte("new"), imageType)
	f.repo.Publish(trustnames.RoleForRepo("acme/app"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	refreshed, err := ix.Offer(ctx, f.repo.File("timestamp.json"))
	if err != nil || !refreshed {
		t.Fatalf("offering trustd's newer timestamp: refreshed %v, %v; want a refresh at once", refreshed, err)
	}
	if n := ix.Refreshes(); n != 2 {
		t.Fatalf("%d refreshes, want 2 (the first, and the one the offer started)", n)
	}
	if rt, _ := ix.Lookup("acme/app"); rt == nil || rt.Tags["new"] == nil {
		t.Fatal("the target the offered timestamp covers is not in the view")
	}
	// The same timestamp again (a replay, or the next PUT of the same push)
	// starts nothing.
	if refreshed, err := ix.Offer(ctx, f.repo.File("timestamp.json")); refreshed || err != nil {
		t.Fatalf("the held timestamp offered again: refreshed %v, %v", refreshed, err)
	}
	if n := ix.Refreshes(); n != 2 {
		t.Fatalf("a replayed timestamp started a refresh (%d)", n)
	}
}

func TestIndexIgnoresForgedReplayedAndOlderTimestamps(t *testing.T) {
	f := newFixture(t)
	older := f.repo.File("timestamp.json")
	f.repo.AddTarget(trustnames.RoleForRepo("acme/app"), "acme/app:mid", []byte("mid"), imageType)
	f.repo.Publish(trustnames.RoleForRepo("acme/app"))
	ix := pausedIndex(t, f)
	held := f.repo.File("timestamp.json")
	f.repo.AddTarget(trustnames.RoleForRepo("acme/app"), "acme/app:new", []byte("new"), imageType)
	f.repo.Publish(trustnames.RoleForRepo("acme/app"))
	newer := f.repo.File("timestamp.json")

	// A forged timestamp: trustd's newest, a version further on, signed with
	// a key the root does not list for the timestamp role.
	forged, err := metadata.Timestamp().FromBytes(newer)
	if err != nil {
		t.Fatal(err)
	}
	forged.Signed.Version += 100
	f.repo.Sign(forged, tuftest.NewKey(t))
	forgedBytes, err := forged.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []struct {
		name    string
		raw     []byte
		wantErr error
	}{
		{"forged", forgedBytes, ErrInvalidMetadata},
		{"replayed", held, nil},
		{"older", older, nil},
		{"not a timestamp", []byte(`{"signed":{"_type":"snapshot"}}`), ErrMalformedOffer},
		{"garbage", []byte("not json"), ErrMalformedOffer},
	} {
		refreshed, err := ix.Offer(ctx, c.raw)
		if refreshed || (c.wantErr == nil) != (err == nil) || (c.wantErr != nil && !errors.Is(err, c.wantErr)) {
			t.Errorf("%s: refreshed %v, err %v; want no refresh and %v", c.name, refreshed, err, c.wantErr)
		}
		if n := ix.Refreshes(); n != 1 {
			t.Fatalf("%s: %d refreshes, want 1 (none started)", c.name, n)
		}
		if rt, _ := ix.Lookup("acme/app"); rt == nil || rt.Tags["new"] != nil || rt.Tags["mid"] == nil {
			t.Fatalf("%s: the view changed", c.name)
		}
	}
	// The forged version number left no mark: the genuine newer timestamp,
	// far below it, still refreshes at once.
	if refreshed, err := ix.Offer(ctx, newer); !refreshed || err != nil {
		t.Fatalf("the genuine newer timestamp after the forged one: refreshed %v, %v", refreshed, err)
	}
	if rt, _ := ix.Lookup("acme/app"); rt == nil || rt.Tags["new"] == nil {
		t.Fatal("the genuine newer timestamp's target is not in the view")
	}
}

func TestIndexIgnoresAnOfferBeforeItHoldsAnything(t *testing.T) {
	f := newFixture(t)
	ix := f.newIndex(t, &memStore{})
	if refreshed, err := ix.Offer(context.Background(), f.repo.File("timestamp.json")); refreshed || err != nil {
		t.Fatalf("an offer before any refresh: refreshed %v, %v; want nothing", refreshed, err)
	}
	if n := ix.Refreshes(); n != 0 {
		t.Fatalf("%d refreshes, want 0", n)
	}
}

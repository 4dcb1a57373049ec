package inmemory_test

import (
	"errors"
	"testing"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
)

// TestPrefixRuleRejected pins this driver's choice, the filesystem driver's: a
// write that would put an object at a prefix of another object's path fails with
// ErrInvalidPath.
func TestPrefixRuleRejected(t *testing.T) {
	d := inmemory.New()
	ctx := t.Context()
	if _, err := d.PutContent(ctx, "/a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/a", "/a/b/c"} {
		if _, err := d.PutContent(ctx, p, []byte("y")); !errors.Is(err, driver.ErrInvalidPath) {
			t.Errorf("PutContent(%s) error = %v, want ErrInvalidPath", p, err)
		}
	}
}

package filesystem

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/signet-oss/signet/storage/driver"
)

// TestSpaceErr: a full filesystem (ENOSPC) and a used-up quota (EDQUOT, which no
// test filesystem here can produce) both become driver.ErrNoSpace naming the
// root; other errors stay as they are.
func TestSpaceErr(t *testing.T) {
	d := &Driver{root: "/srv/registry"}
	for _, c := range []struct {
		errno   syscall.Errno
		noSpace bool
	}{
		{syscall.ENOSPC, true},
		{syscall.EDQUOT, true},
		{syscall.EIO, false},
		{syscall.EROFS, false},
	} {
		err := d.spaceErr(fmt.Errorf("filesystem: put /a: %w", c.errno))
		var ns *driver.NoSpaceError
		if got := errors.As(err, &ns); got != c.noSpace || errors.Is(err, driver.ErrNoSpace) != c.noSpace {
			t.Errorf("%v: %v; want a NoSpaceError: %v", c.errno, err, c.noSpace)
		}
		if !errors.Is(err, c.errno) {
			t.Errorf("%v: %v no longer wraps the errno", c.errno, err)
		}
		if c.noSpace && ns.Where != "/srv/registry" {
			t.Errorf("%v: says space ran out under %q, want /srv/registry", c.errno, ns.Where)
		}
	}
	if d.spaceErr(nil) != nil {
		t.Error("spaceErr(nil) is not nil")
	}
}

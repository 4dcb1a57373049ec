package driver_test

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/signet-oss/signet/storage/driver"
)

func TestNoSpaceAdvice(t *testing.T) {
	full := fmt.Errorf("writing the manifest: %w", &driver.NoSpaceError{Where: "/srv/registry", Err: syscall.ENOSPC})
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"a full filesystem names its root", full,
			"storage is full: free space under /srv/registry or grow the volume; pushes resume without a restart"},
		{"a driver that does not say where", fmt.Errorf("put: %w", driver.ErrNoSpace),
			"storage is full: free space under the storage volume or grow the volume; pushes resume without a restart"},
		{"any other error gets none", errors.New("disk on fire"), ""},
		{"nor does the errno alone", syscall.ENOSPC, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := driver.NoSpaceAdvice(c.err, "pushes"); got != c.want {
				t.Errorf("NoSpaceAdvice = %q, want %q", got, c.want)
			}
		})
	}
	if !errors.Is(full, driver.ErrNoSpace) || !errors.Is(full, syscall.ENOSPC) {
		t.Error("a NoSpaceError matches neither ErrNoSpace nor its errno")
	}
}

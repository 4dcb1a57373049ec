package driver

import (
	"errors"
	"time"
)

// ErrNoSpace: the store has no room for a write: the disk or volume is full, or
// a quota is used up. A write that fails with it leaves nothing visible, as any
// failed write (whole-object writes keep the old object; a Writer's bytes stay
// in its upload area until the caller cancels or truncates them), and the same
// call succeeds once space is freed: no restart, no repair. Drivers return it
// as a *NoSpaceError, which says where space ran out. A driver whose store
// cannot fill up (inmemory) never returns it.
var ErrNoSpace = errors.New("storage: no space left")

// NoSpaceError is ErrNoSpace with where space ran out, for the operator who must
// free it. errors.Is matches both ErrNoSpace and Err's own cause (such as
// syscall.ENOSPC).
type NoSpaceError struct {
	// Where is what filled up: the filesystem driver's root directory.
	Where string
	// Err is the error of the write that failed.
	Err error
}

func (e *NoSpaceError) Error() string {
	return "storage is full under " + e.Where + ": " + e.Err.Error()
}

func (e *NoSpaceError) Unwrap() []error { return []error{ErrNoSpace, e.Err} }

// NoSpaceRetryAfter is how long the servers ask a client to wait (Retry-After)
// after refusing a write for lack of space: freeing space is an operator's work,
// minutes rather than the seconds of a client's own backoff.
const NoSpaceRetryAfter = 60 * time.Second

// NoSpaceAdvice is the line a server logs for its operator when err is ErrNoSpace
// (and "" when it is not): what is full, what to do, and that writes of what
// ("pushes", "publishes") resume by themselves once there is room.
func NoSpaceAdvice(err error, what string) string {
	if !errors.Is(err, ErrNoSpace) {
		return ""
	}
	where := "the storage volume"
	var ns *NoSpaceError
	if errors.As(err, &ns) && ns.Where != "" {
		where = ns.Where
	}
	return "storage is full: free space under " + where + " or grow the volume; " + what + " resume without a restart"
}

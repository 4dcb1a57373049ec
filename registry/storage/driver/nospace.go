package driver

import "errors"

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

// NoSpaceWhere returns where space ran out if err is ErrNoSpace ("" if it is not,
// "the storage volume" if the driver did not say).
func NoSpaceWhere(err error) string {
	if !errors.Is(err, ErrNoSpace) {
		return ""
	}
	var ns *NoSpaceError
	if errors.As(err, &ns) && ns.Where != "" {
		return ns.Where
	}
	return "the storage volume"
}

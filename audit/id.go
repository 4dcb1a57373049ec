package audit

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// idTimeLayout is the time part of a record's ID.
const idTimeLayout = "20060102T150405.000000000Z"

// idLen is the length of an ID: the time, "-", 16 hex digits.
const idLen = len(idTimeLayout) + 1 + 16

// NewID returns a fresh ID for a record made at t: its UTC time, fixed width to
// the nanosecond, then 64 random bits, so IDs sort in time order within a day,
// and two writers never pick the same one.
func NewID(t time.Time) string {
	var b [8]byte
	rand.Read(b[:])
	return t.UTC().Format(idTimeLayout) + "-" + hex.EncodeToString(b[:])
}

// IDTime parses the time of an ID.
func IDTime(id string) (time.Time, error) {
	if len(id) != idLen || id[len(idTimeLayout)] != '-' {
		return time.Time{}, fmt.Errorf("%q is not an audit record ID", id)
	}
	return time.Parse(idTimeLayout, id[:len(idTimeLayout)])
}

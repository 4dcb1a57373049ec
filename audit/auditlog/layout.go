package auditlog

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/signet-oss/signet/audit"
)

// The audit log's objects on a storage driver, under the root its owner gives
// (trustd: /trustd/v1/audit, the registry: /audit/v1):
//
//	<root>/
//	└── <YYYY>/<MM>/<DD>/                               one directory per UTC day
//	    └── <YYYYMMDD>T<hhmmss>.<nnnnnnnnn>Z-<16 hex>.json  one record, JSON
//
// A record's name is its ID: its UTC time, fixed width to the nanosecond, then
// 64 random bits, so names sort in time order within a day, and two writers (two
// requests, two replicas) never pick the same name. Every record is written once
// with put-if-absent and never changed or overwritten; nothing is ever appended
// to a shared object, so the log works on object stores (S3) and with any number
// of replicas writing at once. Only record objects sit at depth four, and every
// one ends in .json, so no object path is a prefix of another.
//
// A query lists only the year, month and day directories its time range
// touches, and in each day only the names (which carry the time) before it reads
// any record.

// dayDir is the directory of the records of t's UTC day.
func dayDir(root string, t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%s/%04d/%02d/%02d", root, t.Year(), int(t.Month()), t.Day())
}

// recordPath is where the record id lives.
func recordPath(root, id string) (string, error) {
	t, err := audit.IDTime(id)
	if err != nil {
		return "", err
	}
	return dayDir(root, t) + "/" + id + ".json", nil
}

// idOf is the ID of the record at path p (or of a name "<id>.json"), "" if p
// names no record.
func idOf(p string) string {
	name := p[strings.LastIndexByte(p, '/')+1:]
	id, ok := strings.CutSuffix(name, ".json")
	if !ok {
		return ""
	}
	if _, err := audit.IDTime(id); err != nil {
		return ""
	}
	return id
}

// component parses the last path component of p as a number of width digits.
func component(p string, width int) (int, bool) {
	name := p[strings.LastIndexByte(p, '/')+1:]
	if len(name) != width {
		return 0, false
	}
	n, err := strconv.Atoi(name)
	return n, err == nil && n >= 0
}

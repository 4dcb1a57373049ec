package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/signet-oss/signet/storage/driver"
)

// trustd's records on the storage driver, one JSON object each:
//
//	/trustd/v1/                         Root
//	├── keys/token-signing.pem          the token signing key, PKCS#8 PEM (trustd)
//	├── people/<name>.json              a person: bcrypt hash, admin flag
//	├── robots/<org>/<name>.json        a robot of org: sha256 of its secret, scopes
//	├── orgs/<org>.json                 an organisation and its members' roles
//	├── grants/<id>.json                a grant of actions on a repository pattern
//	├── refresh/<sha256 hex>.json       a refresh token, by the hash of its value
//	├── tuf/...                         the TUF repository (trustd/tuf/layout.go)
//	└── audit/<YYYY>/<MM>/<DD>/<id>.json  the audit log, append-only (audit/layout.go)
//
// The directory owns people, robots, orgs, grants and refresh; the rest belong to
// trustd and its TUF repository. Every directory holds only objects, and every
// object name ends in .json or .pem, so no object path is a prefix of another.
//
// Creates are put-if-absent, so of two creators (two requests, or two replicas)
// exactly one wins; updates are put-if-match against the version this process
// loaded. The records are read once, at Open, into memory and written through, so
// the token endpoint never touches the driver. Replicas see each other's changes
// when they read the records again (Reload, which trustd calls every
// reloadInterval).
const Root = "/trustd/v1"

const (
	peopleDir  = Root + "/people"
	robotsDir  = Root + "/robots"
	orgsDir    = Root + "/orgs"
	grantsDir  = Root + "/grants"
	refreshDir = Root + "/refresh"
)

func personPath(name string) string     { return peopleDir + "/" + name + ".json" }
func robotPath(org, name string) string { return robotsDir + "/" + org + "/" + name + ".json" }
func orgPath(name string) string        { return orgsDir + "/" + name + ".json" }
func grantPath(id string) string        { return grantsDir + "/" + id + ".json" }
func refreshPath(hash string) string    { return refreshDir + "/" + hash + ".json" }

// records reads and writes JSON records on the driver.
type records struct {
	d driver.Driver
}

// create stores v at p only if nothing is there yet. ErrConflict otherwise.
func (rs records) create(ctx context.Context, p string, v any) (version string, err error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	version, err = rs.d.PutContentIf(ctx, p, data, driver.Condition{IfAbsent: true})
	if errors.Is(err, driver.ErrPreconditionFailed) {
		return "", fmt.Errorf("%s: %w", p, ErrConflict)
	}
	return version, err
}

// update replaces the record at p if its version is still prev. ErrConflict otherwise.
func (rs records) update(ctx context.Context, p, prev string, v any) (version string, err error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	version, err = rs.d.PutContentIf(ctx, p, data, driver.Condition{IfMatch: prev})
	if errors.Is(err, driver.ErrPreconditionFailed) {
		return "", fmt.Errorf("%s: %w", p, ErrConflict)
	}
	return version, err
}

// remove deletes the record at p; a record already gone is not an error.
func (rs records) remove(ctx context.Context, p string) error {
	if err := rs.d.Delete(ctx, p); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	return nil
}

// loadAll calls fn with every .json record below dir (recursively), its path and
// its version. A missing dir holds nothing.
func (rs records) loadAll(ctx context.Context, dir string, fn func(p string, data []byte, version string) error) error {
	err := rs.d.Walk(ctx, dir, func(fi driver.FileInfo) error {
		if fi.IsDir || !strings.HasSuffix(fi.Path, ".json") {
			return nil
		}
		data, version, err := rs.d.GetContent(ctx, fi.Path)
		if errors.Is(err, driver.ErrNotFound) { // deleted while walking
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(fi.Path, data, version); err != nil {
			return fmt.Errorf("%s: %w", fi.Path, err)
		}
		return nil
	})
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	return err
}

// baseName is a record path's file name without .json.
func baseName(p string) string { return strings.TrimSuffix(path.Base(p), ".json") }

// view is the in-memory view of the records, guarded by Directory.mu. Reload
// builds a fresh one and swaps it in whole.
type view struct {
	people map[string]*Person
	robots map[string]*Robot // by full name, "<org>+<name>"
	orgs   map[string]*Org
	grants map[string]*Grant // by id
	// grantsBy indexes grants by subject, for the token endpoint.
	grantsBy map[string][]*Grant
}

func newView() view {
	return view{
		people:   make(map[string]*Person),
		robots:   make(map[string]*Robot),
		orgs:     make(map[string]*Org),
		grants:   make(map[string]*Grant),
		grantsBy: make(map[string][]*Grant),
	}
}

// addGrant indexes g. The view's lock is held for writing, or the view is not
// shared yet.
func (v view) addGrant(g *Grant) {
	v.grants[g.ID] = g
	v.grantsBy[g.Subject] = append(slices.Clip(v.grantsBy[g.Subject]), g)
}

// Reload reads every record again and replaces the in-memory view, so that a
// replica sharing the store sees what the others changed: accounts, orgs, robots
// (and their revocation), grants, refresh tokens. Changes through this process's
// own API wait for it; a refresh token this process issued meanwhile is kept.
func (d *Directory) Reload(ctx context.Context) error {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	started := d.now()
	next, tokens, err := d.loadRecords(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.view = next
	d.mu.Unlock()
	d.refresh.mu.Lock()
	for h, t := range d.refresh.tokens {
		if _, ok := tokens[h]; !ok && !t.Created.Before(started.Add(-time.Second)) {
			tokens[h] = t // issued here while the store was being read
		}
	}
	d.refresh.tokens = tokens
	d.refresh.mu.Unlock()
	return nil
}

// loadRecords reads every record into a new view and a new set of refresh
// tokens. A record that does not parse fails it: trustd must not run on a
// partial view of who may do what.
func (d *Directory) loadRecords(ctx context.Context) (view, map[string]*refreshToken, error) {
	v, tokens := newView(), make(map[string]*refreshToken)
	if err := d.rec.loadAll(ctx, peopleDir, func(p string, data []byte, version string) error {
		var rec Person
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
		rec.version = version
		v.people[rec.Name] = &rec
		return nil
	}); err != nil {
		return view{}, nil, err
	}
	if err := d.rec.loadAll(ctx, robotsDir, func(p string, data []byte, version string) error {
		var rec Robot
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
		access, err := parseRobotScopes(rec.Org, rec.Scopes)
		if err != nil {
			return err
		}
		rec.access, rec.version = access, version
		v.robots[rec.FullName()] = &rec
		return nil
	}); err != nil {
		return view{}, nil, err
	}
	if err := d.rec.loadAll(ctx, orgsDir, func(p string, data []byte, version string) error {
		var rec Org
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
		if rec.Members == nil {
			rec.Members = map[string]string{}
		}
		rec.version = version
		v.orgs[rec.Name] = &rec
		return nil
	}); err != nil {
		return view{}, nil, err
	}
	if err := d.rec.loadAll(ctx, grantsDir, func(p string, data []byte, version string) error {
		var rec Grant
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
		set, err := parseActions(rec.Actions)
		if err != nil {
			return err
		}
		rec.actions = set
		v.addGrant(&rec)
		return nil
	}); err != nil {
		return view{}, nil, err
	}
	if err := d.rec.loadAll(ctx, refreshDir, func(p string, data []byte, version string) error {
		var rec refreshToken
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
		rec.hash = baseName(p)
		tokens[rec.hash] = &rec
		return nil
	}); err != nil {
		return view{}, nil, err
	}
	return v, tokens, nil
}

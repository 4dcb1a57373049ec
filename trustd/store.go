package trustd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/signet-oss/signet/storage/driver"
)

// trustd's records on the storage driver, one JSON object each:
//
//	/trustd/v1/
//	├── keys/token-signing.pem          the token signing key, PKCS#8 PEM
//	├── people/<name>.json              a person: bcrypt hash, admin flag
//	├── robots/<org>/<name>.json        a robot of org: sha256 of its secret, scopes
//	├── orgs/<org>.json                 an organisation and its members' roles
//	├── grants/<id>.json                a grant of actions on a repository pattern
//	├── refresh/<sha256 hex>.json       a refresh token, by the hash of its value
//	├── tuf/...                         the TUF repository (trustd/tuf/layout.go)
//	└── audit/<YYYY>/<MM>/<DD>/<id>.json  the audit log, append-only (audit/layout.go)
//
// Every directory holds only objects, and every object name ends in .json or .pem,
// so no object path is a prefix of another.
//
// Creates are put-if-absent, so of two creators (two requests, or two replicas)
// exactly one wins; updates are put-if-match against the version this process
// loaded. The records are read once, at start, into memory and written through, so
// the token endpoint never touches the driver. Replicas see each other's changes
// when they read the records again, every reloadInterval (reloadLoop).
const (
	rootPath       = "/trustd/v1"
	signingKeyPath = rootPath + "/keys/token-signing.pem"
	peopleDir      = rootPath + "/people"
	robotsDir      = rootPath + "/robots"
	orgsDir        = rootPath + "/orgs"
	grantsDir      = rootPath + "/grants"
	refreshDir     = rootPath + "/refresh"
)

func personPath(name string) string     { return peopleDir + "/" + name + ".json" }
func robotPath(org, name string) string { return robotsDir + "/" + org + "/" + name + ".json" }
func orgPath(name string) string        { return orgsDir + "/" + name + ".json" }
func grantPath(id string) string        { return grantsDir + "/" + id + ".json" }
func refreshPath(hash string) string    { return refreshDir + "/" + hash + ".json" }

// errConflict: a create found the record already there, or an update found it
// changed since it was loaded.
var errConflict = errors.New("already exists or changed concurrently")

// records reads and writes JSON records on the driver.
type records struct {
	d driver.Driver
}

// create stores v at p only if nothing is there yet. errConflict otherwise.
func (s records) create(ctx context.Context, p string, v any) (version string, err error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	version, err = s.d.PutContentIf(ctx, p, data, driver.Condition{IfAbsent: true})
	if errors.Is(err, driver.ErrPreconditionFailed) {
		return "", fmt.Errorf("%s: %w", p, errConflict)
	}
	return version, err
}

// update replaces the record at p if its version is still prev. errConflict otherwise.
func (s records) update(ctx context.Context, p, prev string, v any) (version string, err error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	version, err = s.d.PutContentIf(ctx, p, data, driver.Condition{IfMatch: prev})
	if errors.Is(err, driver.ErrPreconditionFailed) {
		return "", fmt.Errorf("%s: %w", p, errConflict)
	}
	return version, err
}

// remove deletes the record at p; a record already gone is not an error.
func (s records) remove(ctx context.Context, p string) error {
	if err := s.d.Delete(ctx, p); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	return nil
}

// loadAll calls fn with every .json record below dir (recursively), its path and
// its version. A missing dir holds nothing.
func (s records) loadAll(ctx context.Context, dir string, fn func(p string, data []byte, version string) error) error {
	err := s.d.Walk(ctx, dir, func(fi driver.FileInfo) error {
		if fi.IsDir || !strings.HasSuffix(fi.Path, ".json") {
			return nil
		}
		data, version, err := s.d.GetContent(ctx, fi.Path)
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

// load reads every record into memory. A record that does not parse stops the
// start: trustd must not run on a partial view of who may do what.
func (s *Server) load(ctx context.Context) error {
	if err := s.loadRecords(ctx); err != nil {
		return err
	}
	s.pruneRefreshTokens(ctx)
	return nil
}

// Reload reads every record again and replaces the in-memory view, so that a
// replica sharing the store sees what the others changed: accounts, orgs, robots
// (and their revocation), grants, refresh tokens. Changes through this process's
// own API wait for it; a refresh token this process issued meanwhile is kept.
func (s *Server) Reload(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	started := s.now()
	scratch := &Server{cfg: s.cfg, log: s.log, now: s.now, rec: s.rec,
		people: map[string]*person{}, robots: map[string]*robot{}, orgs: map[string]*org{},
		grants: map[string]*grant{}, grantsBy: map[string][]*grant{},
		refresh: refreshStore{tokens: map[string]*refreshToken{}}}
	if err := scratch.loadRecords(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.people, s.robots, s.orgs, s.grants, s.grantsBy = scratch.people, scratch.robots, scratch.orgs, scratch.grants, scratch.grantsBy
	s.mu.Unlock()
	s.refresh.mu.Lock()
	for h, t := range s.refresh.tokens {
		if _, ok := scratch.refresh.tokens[h]; !ok && !t.Created.Before(started.Add(-time.Second)) {
			scratch.refresh.tokens[h] = t // issued here while the store was being read
		}
	}
	s.refresh.tokens = scratch.refresh.tokens
	s.refresh.mu.Unlock()
	return nil
}

// loadRecords reads every record into s's maps.
func (s *Server) loadRecords(ctx context.Context) error {
	if err := s.rec.loadAll(ctx, peopleDir, func(p string, data []byte, version string) error {
		var rec person
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
		rec.version = version
		s.people[rec.Name] = &rec
		return nil
	}); err != nil {
		return err
	}
	if err := s.rec.loadAll(ctx, robotsDir, func(p string, data []byte, version string) error {
		var rec robot
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
		access, err := parseRobotScopes(rec.Org, rec.Scopes)
		if err != nil {
			return err
		}
		rec.access, rec.version = access, version
		s.robots[rec.fullName()] = &rec
		return nil
	}); err != nil {
		return err
	}
	if err := s.rec.loadAll(ctx, orgsDir, func(p string, data []byte, version string) error {
		var rec org
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
		if rec.Members == nil {
			rec.Members = map[string]string{}
		}
		rec.version = version
		s.orgs[rec.Name] = &rec
		return nil
	}); err != nil {
		return err
	}
	if err := s.rec.loadAll(ctx, grantsDir, func(p string, data []byte, version string) error {
		var rec grant
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
		set, err := parseActions(rec.Actions)
		if err != nil {
			return err
		}
		rec.actions = set
		s.addGrantLocked(&rec)
		return nil
	}); err != nil {
		return err
	}
	if err := s.rec.loadAll(ctx, refreshDir, func(p string, data []byte, version string) error {
		var rec refreshToken
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
		rec.hash = baseName(p)
		s.refresh.tokens[rec.hash] = &rec
		return nil
	}); err != nil {
		return err
	}
	return nil
}

func jsonBytes(v any) ([]byte, error) { return json.Marshal(v) }

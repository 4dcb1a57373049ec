// Package directory is trustd's domain: who may do what. It holds the accounts
// (people and robots), the organisations and their members' roles, the grants,
// the refresh tokens, and the rights they add up to, as records on a storage
// driver read once into memory and written through (store.go). It knows nothing
// of HTTP: trustd's handlers call it and map its errors to codes.
//
// Its main invariant: what Allowed and GrantAccess give a subject follows from
// the current records alone, and a robot never gets more than the scopes it was
// made with.
//
// Locks: writeMu serialises changes (rare, from the management API), so a change
// is checked against the state it replaces; mu guards the view's maps, held only
// to read or swap entries, never across driver calls; the refresh tokens and the
// authenticator have locks of their own. Reload holds writeMu while it reads, so
// a change made meanwhile is not lost to the swap.
package directory

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/signet-oss/signet/storage/driver"
)

// Errors of the directory, matched with errors.Is (the HTTP layer maps each to a
// code). ErrBadCredentials and *RateLimitedError are in accounts.go.
var (
	ErrNotFound    = errors.New("not found")
	ErrInvalid     = errors.New("invalid request")
	ErrNameInvalid = errors.New("invalid name")
	// ErrConflict: a create found the record already there, or an update found
	// it changed since it was loaded.
	ErrConflict = errors.New("already exists or changed concurrently")
)

// Config is what the directory takes from trustd's configuration.
type Config struct {
	// AnonymousPull lists the repository patterns anyone may pull.
	AnonymousPull []string
	// RefreshTokenTTL is a new refresh token's lifetime.
	RefreshTokenTTL time.Duration
	// BcryptCost is the cost of new password hashes.
	BcryptCost int
	// UserFailures and IPFailures are the failed sign-ins allowed per minute, per
	// account name and per client IP.
	UserFailures, IPFailures int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log takes warnings about records that could not be removed.
	Log *slog.Logger
}

// Directory is the in-memory view of trustd's records, written through to the
// driver. Safe for concurrent use.
type Directory struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	rec  records
	auth *authenticator

	writeMu sync.Mutex
	mu      sync.RWMutex
	view

	refresh refreshStore
}

// Open reads every record on drv into memory and drops expired refresh tokens. A
// record that does not parse fails it: trustd must not run on a partial view of
// who may do what.
func Open(ctx context.Context, drv driver.Driver, cfg Config) (*Directory, error) {
	d := &Directory{cfg: cfg, log: cfg.Log, now: cfg.Now, rec: records{d: drv}}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	auth, err := newAuthenticator(cfg.BcryptCost, newFailureLimiter(cfg.UserFailures, cfg.IPFailures), d.now)
	if err != nil {
		return nil, err
	}
	d.auth = auth
	v, tokens, err := d.loadRecords(ctx)
	if err != nil {
		return nil, err
	}
	d.view, d.refresh.tokens = v, tokens
	d.PruneRefreshTokens(ctx)
	return d, nil
}

// EnsureAdmin makes the person name an admin with password, unless an account of
// that name exists (an existing admin is never changed: its password is whatever
// it was set to). With password empty it generates one and returns it, to be
// shown once; otherwise it returns "".
func (d *Directory) EnsureAdmin(ctx context.Context, name, password string) (generated string, err error) {
	if p, _ := d.Account(name); p != nil {
		if !p.Admin {
			d.log.Warn("the configured admin account exists without admin rights", "sub", name)
		}
		return "", nil
	}
	if password == "" {
		password = randomToken()[:24]
		generated = password
	}
	err = d.CreatePerson(ctx, name, password, true)
	if errors.Is(err, ErrConflict) { // another replica made it first
		return "", nil
	}
	if err != nil {
		return "", err
	}
	d.log.Info("created the admin account", "sub", name)
	return generated, nil
}

// Authenticate checks name and secret (a password, or a robot's secret) from
// client IP ip. It returns ErrBadCredentials for any mismatch, unknown or
// expired account alike, and a *RateLimitedError while name or ip has failed too
// often; then not even a correct secret is checked.
func (d *Directory) Authenticate(name, secret, ip string) (Principal, error) {
	return d.auth.authenticate(name, secret, ip, d.Account)
}

// RedeemRefreshToken returns who the refresh token value speaks for, for
// service, asked from client IP ip. Failures count against ip as failed
// sign-ins do: any failure is ErrBadCredentials, and a *RateLimitedError while
// ip has failed too often.
func (d *Directory) RedeemRefreshToken(value, service, ip string) (Principal, error) {
	now := d.now()
	if wait, limited := d.auth.limiter.limited("", ip, now); limited {
		return Principal{}, &RateLimitedError{RetryAfter: wait}
	}
	p, err := d.redeemRefreshToken(value, service)
	if err != nil {
		d.auth.limiter.fail("", ip, now)
	}
	return p, err
}

// PrincipalOf is the current account named name, if it exists (and, for a
// robot, has not expired).
func (d *Directory) PrincipalOf(name string) (Principal, bool) {
	if name == "" {
		return Principal{}, false
	}
	pers, rob := d.Account(name)
	switch {
	case pers != nil:
		return Principal{Name: pers.Name, Kind: "person", ID: pers.ID, Admin: pers.Admin, Person: pers}, true
	case rob != nil && !rob.Expired(d.now()):
		return Principal{Name: rob.FullName(), Kind: "robot", ID: rob.ID, Robot: rob}, true
	}
	return Principal{}, false
}

// OwnedOrgs lists the orgs p owns, by name.
func (d *Directory) OwnedOrgs(p Principal) []string {
	if p.Kind != "person" {
		return nil
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []string
	for name, o := range d.orgs {
		if o.Members[p.Name] == RoleOwner {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

package directory

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/signet-oss/signet/tokenauth"
)

// Accounts are people (a name and a bcrypt password) and robots (a name
// "<org>+<name>", a random secret and fixed scopes, made by an org for CI).
//
// How Basic auth stays affordable: docker and friends send Basic credentials to
// /token on every token exchange, and bcrypt at cost 10 takes ~50 ms of CPU by
// design, so a plain check per request would cap a 2-core trustd at ~40 tokens/s.
//   - A robot's secret is 256 random bits, so no dictionary attack applies and a
//     slow hash buys nothing: it is stored as SHA-256 and checked in constant time,
//     which costs well under a microsecond.
//   - A person's successful bcrypt check is remembered for authCacheTTL under
//     HMAC(per-process key, name, password): a repeat costs one HMAC and a map
//     lookup. The entry holds the bcrypt hash it was checked against, so a password
//     change invalidates it at once; the key never leaves memory, so the cache is
//     useless to anyone who reads it.
//   - Failures are never cached, and failed attempts are rate limited per account
//     name and per client IP (failureLimiter, below), so the slow path cannot
//     be used to burn CPU or to guess passwords.
//
// Refresh tokens (refresh.go) skip the password altogether: the fast path that the
// benchmark targets.

// Person is a person's account record.
type Person struct {
	// ID is random and changes if the account is deleted and made again, so
	// refresh tokens of a previous holder of the name never revive.
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	PasswordHash string    `json:"passwordHash"`
	Admin        bool      `json:"admin,omitempty"`
	Created      time.Time `json:"created"`

	version string // the driver's version of this record, for put-if-match
}

// Robot is a robot's account record: a credential an organisation hands out to
// a machine, confined to Scopes forever.
type Robot struct {
	ID         string    `json:"id"`
	Org        string    `json:"org"`
	Name       string    `json:"name"` // without the "<org>+" prefix
	SecretHash string    `json:"secretHash"`
	Scopes     []string  `json:"scopes"`
	Expires    time.Time `json:"expires"`
	Created    time.Time `json:"created"`

	access  []tokenauth.Access // Scopes, parsed
	version string
}

// FullName is the robot's account name, "<org>+<name>".
func (r *Robot) FullName() string { return r.Org + "+" + r.Name }

// Expired reports whether r may no longer sign in at now.
func (r *Robot) Expired(now time.Time) bool { return !r.Expires.IsZero() && !now.Before(r.Expires) }

// Principal is who a request acts as: a person, a robot, or anonymous (zero).
type Principal struct {
	Name   string
	Kind   string // "person", "robot", or "" for anonymous
	ID     string // the account's ID, to bind refresh tokens to this account
	Admin  bool
	Robot  *Robot  // the robot's record, for a robot
	Person *Person // the person's record, for a person
}

// Anonymous reports whether p is nobody in particular.
func (p Principal) Anonymous() bool { return p.Kind == "" }

// Names: accounts, orgs and robots' own names are lower-case words joined by
// ".", "_" or "-", at most 64 characters, so they are safe in paths, in
// repository names (an org is a repository name's first component) and in logs.
var accountNameRegexp = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*$`)

const maxAccountName = 64

// ValidateAccountName checks the name of a person, an org or a robot (without
// its "<org>+" prefix).
func ValidateAccountName(name string) error {
	if len(name) == 0 || len(name) > maxAccountName || !accountNameRegexp.MatchString(name) {
		return fmt.Errorf("%q is not a valid name: lower-case letters and digits, separated by '.', '_' or '-', at most %d characters", name, maxAccountName)
	}
	return nil
}

// Passwords: bcrypt reads at most 72 bytes, so longer ones are refused rather
// than silently truncated.
const (
	minPassword = 8
	maxPassword = 72
)

// ValidatePassword checks a new password's length.
func ValidatePassword(pw string) error {
	if len(pw) < minPassword || len(pw) > maxPassword {
		return fmt.Errorf("a password must be %d to %d bytes long", minPassword, maxPassword)
	}
	return nil
}

// randomToken returns 256 random bits, base64url: robot secrets, refresh tokens,
// generated passwords.
func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// randomID returns 128 random bits, hex: record IDs.
func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Errors of authentication, which the HTTP layer sends as 401 and 429.
var (
	ErrBadCredentials = errors.New("invalid username or password")
	ErrRateLimited    = errors.New("too many failed sign-in attempts")
)

// RateLimitedError says when to try again.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("%v: try again in %s", ErrRateLimited, e.RetryAfter.Round(time.Second))
}
func (e *RateLimitedError) Unwrap() error { return ErrRateLimited }

// authCacheTTL is how long a person's successful bcrypt check is remembered.
const authCacheTTL = 5 * time.Minute

// maxAuthCache bounds the cache; past it, expired entries go, then all of them.
const maxAuthCache = 100_000

// authenticator checks passwords and robot secrets. Safe for concurrent use.
type authenticator struct {
	cost      int
	dummyHash []byte // a bcrypt hash checked for unknown people, so they cost as much as known ones
	dummySHA  string // likewise for unknown robots
	limiter   *failureLimiter
	now       func() time.Time

	cacheKey []byte
	mu       sync.Mutex
	cache    map[[32]byte]authCacheEntry
}

type authCacheEntry struct {
	passwordHash string // the bcrypt hash the password was checked against
	expires      time.Time
}

func newAuthenticator(cost int, limiter *failureLimiter, now func() time.Time) (*authenticator, error) {
	dummy, err := bcrypt.GenerateFromPassword([]byte(randomToken()[:32]), cost)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	return &authenticator{
		cost:      cost,
		dummyHash: dummy,
		dummySHA:  sha256Hex(randomToken()),
		limiter:   limiter,
		now:       now,
		cacheKey:  key,
		cache:     make(map[[32]byte]authCacheEntry),
	}, nil
}

// hashPassword returns the bcrypt hash of a new password.
func (a *authenticator) hashPassword(pw string) (string, error) {
	if err := ValidatePassword(pw); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), a.cost)
	return string(h), err
}

// lookup finds the account a name refers to; either result may be nil.
type lookup func(name string) (*Person, *Robot)

// authenticate checks name and secret (a password, or a robot's secret) from
// client IP ip. It returns ErrBadCredentials for any mismatch, unknown or expired
// account alike, and a *RateLimitedError while name or ip has failed too often;
// then not even a correct secret is checked.
func (a *authenticator) authenticate(name, secret, ip string, find lookup) (Principal, error) {
	now := a.now()
	if wait, limited := a.limiter.limited(name, ip, now); limited {
		return Principal{}, &RateLimitedError{RetryAfter: wait}
	}
	p, ok := a.check(name, secret, find, now)
	if !ok {
		a.limiter.fail(name, ip, now)
		return Principal{}, ErrBadCredentials
	}
	return p, nil
}

func (a *authenticator) check(name, secret string, find lookup, now time.Time) (Principal, bool) {
	pers, rob := find(name)
	if strings.Contains(name, "+") {
		want := a.dummySHA
		if rob != nil {
			want = rob.SecretHash
		}
		got := sha256Hex(secret)
		match := subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
		if rob == nil || !match || rob.Expired(now) {
			return Principal{}, false
		}
		return Principal{Name: rob.FullName(), Kind: "robot", ID: rob.ID, Robot: rob}, true
	}
	if pers == nil {
		bcrypt.CompareHashAndPassword(a.dummyHash, []byte(secret))
		return Principal{}, false
	}
	if len(secret) > maxPassword { // bcrypt would refuse it anyway; do the same work
		bcrypt.CompareHashAndPassword(a.dummyHash, []byte(secret[:maxPassword]))
		return Principal{}, false
	}
	ok := a.cached(name, secret, pers.PasswordHash, now)
	if !ok {
		if bcrypt.CompareHashAndPassword([]byte(pers.PasswordHash), []byte(secret)) != nil {
			return Principal{}, false
		}
		a.remember(name, secret, pers.PasswordHash, now)
	}
	return Principal{Name: pers.Name, Kind: "person", ID: pers.ID, Admin: pers.Admin, Person: pers}, true
}

func (a *authenticator) cacheKeyOf(name, secret string) (k [32]byte) {
	m := hmac.New(sha256.New, a.cacheKey)
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	m.Sum(k[:0])
	return k
}

// cached reports whether name and secret passed bcrypt against passwordHash
// within authCacheTTL. The stored hash is compared too, so a changed password
// never matches an entry made for the old one.
func (a *authenticator) cached(name, secret, passwordHash string, now time.Time) bool {
	k := a.cacheKeyOf(name, secret)
	a.mu.Lock()
	e, ok := a.cache[k]
	a.mu.Unlock()
	return ok && now.Before(e.expires) && subtle.ConstantTimeCompare([]byte(e.passwordHash), []byte(passwordHash)) == 1
}

func (a *authenticator) remember(name, secret, passwordHash string, now time.Time) {
	k := a.cacheKeyOf(name, secret)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= maxAuthCache {
		for k, e := range a.cache {
			if !now.Before(e.expires) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= maxAuthCache {
			clear(a.cache)
		}
	}
	a.cache[k] = authCacheEntry{passwordHash: passwordHash, expires: now.Add(authCacheTTL)}
}

// failureLimiter rate limits failed sign-ins with two sets of token buckets, one
// per account name (known or not, so probing names costs the same) and one per
// client IP. A failure takes a token from both; while either is empty every
// attempt for that name or from that IP is refused before any secret is checked.
// Buckets that have refilled are forgotten, so memory follows recent failures.
type failureLimiter struct {
	mu        sync.Mutex
	users     map[string]*rate.Limiter
	ips       map[string]*rate.Limiter
	userRate  rate.Limit
	userBurst int
	ipRate    rate.Limit
	ipBurst   int
	lastSweep time.Time
}

func newFailureLimiter(userPerMinute, ipPerMinute int) *failureLimiter {
	return &failureLimiter{
		users:     make(map[string]*rate.Limiter),
		ips:       make(map[string]*rate.Limiter),
		userRate:  rate.Limit(float64(userPerMinute) / 60),
		userBurst: userPerMinute,
		ipRate:    rate.Limit(float64(ipPerMinute) / 60),
		ipBurst:   ipPerMinute,
	}
}

// limited reports whether name or ip is out of attempts, and how long until one
// more is allowed.
func (l *failureLimiter) limited(name, ip string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, lim := range [2]*rate.Limiter{l.users[name], l.ips[ip]} {
		if lim == nil {
			continue
		}
		if t := lim.TokensAt(now); t < 1 {
			w := time.Duration((1 - t) / float64(lim.Limit()) * float64(time.Second))
			wait = max(wait, w)
		}
	}
	return wait, wait > 0
}

// fail records a failed attempt for name from ip.
func (l *failureLimiter) fail(name, ip string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	take(l.users, name, l.userRate, l.userBurst, now)
	take(l.ips, ip, l.ipRate, l.ipBurst, now)
}

func take(m map[string]*rate.Limiter, key string, r rate.Limit, burst int, now time.Time) {
	if key == "" { // a refresh token failure has no account name
		return
	}
	lim := m[key]
	if lim == nil {
		lim = rate.NewLimiter(r, burst)
		m[key] = lim
	}
	lim.AllowN(now, 1)
}

// sweep forgets full buckets (a full bucket is the same as none), at most once a
// minute and only once there are many.
func (l *failureLimiter) sweep(now time.Time) {
	if len(l.users)+len(l.ips) < 1024 || now.Sub(l.lastSweep) < time.Minute {
		return
	}
	l.lastSweep = now
	for _, m := range [2]map[string]*rate.Limiter{l.users, l.ips} {
		for k, lim := range m {
			if lim.TokensAt(now) >= float64(lim.Burst()) {
				delete(m, k)
			}
		}
	}
}

// Account finds the person or robot called name; either may be nil.
func (d *Directory) Account(name string) (*Person, *Robot) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.people[name], d.robots[name]
}

// CreatePerson makes a person's account. ErrConflict if the name is taken.
func (d *Directory) CreatePerson(ctx context.Context, name, password string, admin bool) error {
	if err := ValidateAccountName(name); err != nil {
		return fmt.Errorf("%w: %v", ErrNameInvalid, err)
	}
	if err := ValidatePassword(password); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	hash, err := d.auth.hashPassword(password) // slow: outside the write lock
	if err != nil {
		return err
	}
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if p, _ := d.Account(name); p != nil {
		return fmt.Errorf("user %q: %w", name, ErrConflict)
	}
	p := &Person{ID: randomID(), Name: name, PasswordHash: hash, Admin: admin, Created: d.now().UTC()}
	if p.version, err = d.rec.create(ctx, personPath(name), p); err != nil {
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("user %q: %w", name, ErrConflict)
		}
		return err
	}
	d.mu.Lock()
	d.people[name] = p
	d.mu.Unlock()
	return nil
}

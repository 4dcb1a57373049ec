package directory

import (
	"context"
	"crypto/subtle"
	"fmt"
	"sync"
	"time"
)

// Refresh tokens ("offline" tokens, docker's identitytoken) let a client get
// access tokens without sending a password again. Each is 256 random bits, given
// to the client once and stored only as its SHA-256, so the store leaks nothing
// usable. A refresh token is bound to one account (by the account's ID, so a
// deleted and re-made name does not inherit it) and to one service (audience):
// a token issued for the registry cannot get tokens for trustd's API. It is not a
// JWT, so nothing that verifies access tokens (the registry, trustd's own API)
// can ever accept it.

// refreshToken is a refresh token's record, stored at refreshPath(sha256(value)).
type refreshToken struct {
	Subject   string    `json:"subject"`
	AccountID string    `json:"accountID"`
	Service   string    `json:"service"`
	ClientID  string    `json:"clientID,omitempty"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`

	hash string
}

// refreshStore holds every live refresh token in memory, by hash.
type refreshStore struct {
	mu     sync.RWMutex
	tokens map[string]*refreshToken
}

// NewRefreshToken issues a refresh token for p and service.
func (d *Directory) NewRefreshToken(ctx context.Context, p Principal, service, clientID string) (string, error) {
	value := randomToken()
	now := d.now().UTC()
	t := &refreshToken{
		Subject: p.Name, AccountID: p.ID, Service: service, ClientID: clientID,
		Created: now, Expires: now.Add(d.cfg.RefreshTokenTTL), hash: sha256Hex(value),
	}
	if _, err := d.rec.create(ctx, refreshPath(t.hash), t); err != nil {
		return "", fmt.Errorf("storing a refresh token: %w", err)
	}
	d.refresh.mu.Lock()
	d.refresh.tokens[t.hash] = t
	d.refresh.mu.Unlock()
	return value, nil
}

// redeemRefreshToken returns who value speaks for, if it is a live refresh token
// for service of an account that still exists. Any failure is ErrBadCredentials.
func (d *Directory) redeemRefreshToken(value, service string) (Principal, error) {
	hash := sha256Hex(value)
	d.refresh.mu.RLock()
	t := d.refresh.tokens[hash]
	d.refresh.mu.RUnlock()
	now := d.now()
	if t == nil || !now.Before(t.Expires) || t.Service != service {
		return Principal{}, ErrBadCredentials
	}
	pers, rob := d.Account(t.Subject)
	switch {
	case pers != nil && subtle.ConstantTimeCompare([]byte(pers.ID), []byte(t.AccountID)) == 1:
		return Principal{Name: pers.Name, Kind: "person", ID: pers.ID, Admin: pers.Admin, Person: pers}, nil
	case rob != nil && rob.ID == t.AccountID && !rob.Expired(now):
		return Principal{Name: rob.FullName(), Kind: "robot", ID: rob.ID, Robot: rob}, nil
	}
	return Principal{}, ErrBadCredentials
}

// revokeRefreshTokens drops every refresh token of the account accountID and
// returns how many there were. They would fail anyway (the account is gone);
// this frees their records.
func (d *Directory) revokeRefreshTokens(ctx context.Context, accountID string) int {
	var gone []string
	d.refresh.mu.Lock()
	for h, t := range d.refresh.tokens {
		if t.AccountID == accountID {
			delete(d.refresh.tokens, h)
			gone = append(gone, h)
		}
	}
	d.refresh.mu.Unlock()
	for _, h := range gone {
		if err := d.rec.remove(ctx, refreshPath(h)); err != nil {
			d.log.Warn("removing a revoked refresh token's record failed; it stays unusable", "err", err)
		}
	}
	return len(gone)
}

// PruneRefreshTokens drops expired refresh tokens from memory and the driver.
func (d *Directory) PruneRefreshTokens(ctx context.Context) {
	now := d.now()
	var gone []string
	d.refresh.mu.Lock()
	for h, t := range d.refresh.tokens {
		if !now.Before(t.Expires) {
			delete(d.refresh.tokens, h)
			gone = append(gone, h)
		}
	}
	d.refresh.mu.Unlock()
	for _, h := range gone {
		if err := d.rec.remove(ctx, refreshPath(h)); err != nil {
			d.log.Warn("removing an expired refresh token's record failed", "err", err)
		}
	}
}

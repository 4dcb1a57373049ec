package trustd

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

// newRefreshToken issues a refresh token for p and service.
func (s *Server) newRefreshToken(ctx context.Context, p principal, service, clientID string) (string, error) {
	value := randomToken()
	now := s.now().UTC()
	t := &refreshToken{
		Subject: p.Name, AccountID: p.ID, Service: service, ClientID: clientID,
		Created: now, Expires: now.Add(s.cfg.RefreshTokenTTL), hash: sha256Hex(value),
	}
	if _, err := s.rec.create(ctx, refreshPath(t.hash), t); err != nil {
		return "", fmt.Errorf("storing a refresh token: %w", err)
	}
	s.refresh.mu.Lock()
	s.refresh.tokens[t.hash] = t
	s.refresh.mu.Unlock()
	return value, nil
}

// redeemRefreshToken returns who value speaks for, if it is a live refresh token
// for service of an account that still exists. Any failure is errBadCredentials.
func (s *Server) redeemRefreshToken(value, service string) (principal, error) {
	hash := sha256Hex(value)
	s.refresh.mu.RLock()
	t := s.refresh.tokens[hash]
	s.refresh.mu.RUnlock()
	now := s.now()
	if t == nil || !now.Before(t.Expires) || t.Service != service {
		return principal{}, errBadCredentials
	}
	pers, rob := s.account(t.Subject)
	switch {
	case pers != nil && subtle.ConstantTimeCompare([]byte(pers.ID), []byte(t.AccountID)) == 1:
		return principal{Name: pers.Name, Kind: "person", ID: pers.ID, Admin: pers.Admin, person: pers}, nil
	case rob != nil && rob.ID == t.AccountID && !rob.expired(now):
		return principal{Name: rob.fullName(), Kind: "robot", ID: rob.ID, robot: rob}, nil
	}
	return principal{}, errBadCredentials
}

// revokeRefreshTokens drops every refresh token of the account accountID and
// returns how many there were. They would fail anyway (the account is gone);
// this frees their records.
func (s *Server) revokeRefreshTokens(ctx context.Context, accountID string) int {
	var gone []string
	s.refresh.mu.Lock()
	for h, t := range s.refresh.tokens {
		if t.AccountID == accountID {
			delete(s.refresh.tokens, h)
			gone = append(gone, h)
		}
	}
	s.refresh.mu.Unlock()
	for _, h := range gone {
		if err := s.rec.remove(ctx, refreshPath(h)); err != nil {
			s.log.Warn("removing a revoked refresh token's record failed; it stays unusable", "err", err)
		}
	}
	return len(gone)
}

// pruneRefreshTokens drops expired refresh tokens from memory and the driver.
func (s *Server) pruneRefreshTokens(ctx context.Context) {
	now := s.now()
	var gone []string
	s.refresh.mu.Lock()
	for h, t := range s.refresh.tokens {
		if !now.Before(t.Expires) {
			delete(s.refresh.tokens, h)
			gone = append(gone, h)
		}
	}
	s.refresh.mu.Unlock()
	for _, h := range gone {
		if err := s.rec.remove(ctx, refreshPath(h)); err != nil {
			s.log.Warn("removing an expired refresh token's record failed", "err", err)
		}
	}
}

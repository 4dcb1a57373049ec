package client

import (
	"context"
	"net/http"

	"github.com/signet-oss/signet/trustd/api"
)

// Orgs lists the organisations the caller may read (all of them for an
// admin), with their members.
func (c *Trustd) Orgs(ctx context.Context) ([]api.Org, error) {
	out := []api.Org{}
	_, err := c.do(ctx, "listing organisations", http.MethodGet, "/api/v1/orgs", nil, &out, http.StatusOK)
	return out, err
}

// Users lists every person's account with their organisations (admin only).
func (c *Trustd) Users(ctx context.Context) ([]api.Identity, error) {
	out := []api.Identity{}
	_, err := c.do(ctx, "listing users", http.MethodGet, "/api/v1/users", nil, &out, http.StatusOK)
	return out, err
}

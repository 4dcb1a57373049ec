package tuf

import (
	"context"
	"errors"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/trustd/api"
	"github.com/signet-oss/signet/trustnames"
)

// PublishResult is the outcome of an accepted upload.
type PublishResult struct {
	// Published is what the client is told.
	api.Published
	// Repository is the repository of a repository role.
	Repository string `json:"-"`
	// Changes lists what a published version changed (none when staged).
	Changes []Change `json:"-"`
}

// Publish validates data as the next version of role and publishes it, or stages it
// while its signatures fall short of a threshold. Errors are *Error values.
func (r *Repo) Publish(ctx context.Context, role string, data []byte) (PublishResult, error) {
	u, err := parseUpload(role, data)
	if err != nil {
		return PublishResult{}, err
	}
	s := r.fresh(ctx)
	if s == nil {
		return PublishResult{}, ErrNotInitialised
	}
	res, err := s.validate(u, r.cfg.Now(), r.online)
	if err != nil {
		return PublishResult{}, err
	}
	if !res.met {
		if u, res, err = r.stage(ctx, s, u, res); err != nil || !res.met {
			repo, _ := s.repoOf(role)
			return PublishResult{Published: api.Published{Version: u.version(), Staged: true, Signatures: res.have, Threshold: res.need}, Repository: repo}, err
		}
	}
	switch {
	case len(res.unpublished) > 0:
		return r.hold(ctx, s, u, res)
	case res.heldParent != "":
		r.releaseMu.Lock()
		defer r.releaseMu.Unlock()
		// Validate again against what this process committed meanwhile: a
		// release that just published the parent makes this a plain publish.
		if s = r.current(); s == nil {
			return PublishResult{}, ErrNotInitialised
		}
		if res, err = s.validate(u, r.cfg.Now(), r.online); err != nil {
			return PublishResult{}, err
		}
		if res.heldParent != "" && res.met {
			return r.release(ctx, s, u, res)
		}
		if !res.met {
			return PublishResult{}, errConflict("%s changed while this publish waited: %s now needs %d signatures, this upload has %d; publish again", u.role, res.by, res.need, res.have)
		}
	}
	changes, err := r.changesOf(ctx, s, u)
	if err != nil {
		return PublishResult{}, err
	}
	raw, err := u.bytes()
	if err != nil {
		return PublishResult{}, err
	}
	sum := sha256Hex(raw)
	if _, err := r.st.d.PutContent(ctx, pendingPath(role, u.version(), sum), raw); err != nil {
		return PublishResult{}, fmt.Errorf("writing %s version %d: %w", role, u.version(), err)
	}
	req := &request{entries: []entry{{u: u, raw: raw, sum: sum}}, done: make(chan error, 1)}
	r.enqueue(req)
	if err := <-req.done; err != nil {
		return PublishResult{}, err
	}
	r.clearStaged(ctx, role, u.version())
	return PublishResult{Published: api.Published{Version: u.version()}, Changes: changes, Repository: s.repos[role]}, nil
}

// Init publishes the first root and targets, signed by their own thresholds, and
// snapshot and timestamp version 1. A repository that has a root refuses (409).
func (r *Repo) Init(ctx context.Context, rootData, targetsData []byte) error {
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	if s, err := r.reload(ctx); err != nil {
		return err
	} else if s != nil {
		return errConflict("the TUF repository is already initialised (root version %d)", s.root.Signed.Version)
	}
	now := r.cfg.Now()
	ru, err := parseUpload(trustnames.RoleRoot, rootData)
	if err != nil {
		return err
	}
	if ru.kind != kindRoot {
		return errInvalid("root is not a root")
	}
	res, err := (*state)(nil).validate(ru, now, r.online)
	if err != nil {
		return err
	}
	if !res.met {
		return errInvalid("root version 1 has %d of the %d signatures its root role needs", res.have, res.need)
	}
	tu, err := parseUpload(trustnames.RoleTargets, targetsData)
	if err != nil {
		return err
	}
	ws := &state{
		root:     ru.root,
		snapshot: &snapshotMD{Signed: metadata.SnapshotType{Meta: map[string]*metadata.MetaFiles{}}},
		orgs:     map[string]*targetsMD{},
		repos:    map[string]string{},
		held:     map[string]*heldVersion{},
	}
	if res, err = ws.validate(tu, now, r.online); err != nil {
		return err
	}
	if !res.met {
		return errInvalid("targets version 1 has %d of the %d signatures root gives its role", res.have, res.need)
	}
	var changed []pendingRef
	for _, u := range []*upload{ru, tu} {
		raw, err := u.bytes()
		if err != nil {
			return err
		}
		sum := sha256Hex(raw)
		if _, err := r.st.d.PutContent(ctx, pendingPath(u.role, 1, sum), raw); err != nil {
			return err
		}
		ws.apply(u, raw)
		changed = append(changed, pendingRef{Role: u.role, Version: 1, SHA256: sum})
	}
	err = r.commit(ctx, nil, ws, changed, true, now)
	if errors.Is(err, driver.ErrPreconditionFailed) {
		return errConflict("the TUF repository was just initialised by another trustd")
	}
	return err
}

package tuf

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/storage/driver"
)

// stage merges u's valid signatures into the staged copy of its signed content and
// reports how many it now has. When the merged copy meets every threshold it is
// returned to be published.
func (r *Repo) stage(ctx context.Context, s *state, u *upload, res sigResult) (*upload, sigResult, error) {
	sum, err := u.signedSum()
	if err != nil {
		return u, res, err
	}
	p := stagedPath(u.role, u.version(), sum)
	keepSignatures(u, res.valid)
	for range maxCommitAttempts {
		data, ver, err := r.st.d.GetContent(ctx, p)
		cond := driver.Condition{IfAbsent: true}
		merged := u
		switch {
		case err == nil:
			cond = driver.Condition{IfMatch: ver}
			prev, perr := parseUpload(u.role, data)
			if perr != nil {
				return u, res, fmt.Errorf("staged %s: %w", p, perr)
			}
			merged = mergeSignatures(prev, u)
		case !errors.Is(err, driver.ErrNotFound):
			return u, res, err
		}
		mres, err := s.validate(merged, r.cfg.Now(), r.online)
		if err != nil {
			return u, res, err
		}
		if mres.met {
			return merged, mres, nil
		}
		keepSignatures(merged, mres.valid)
		raw, err := merged.bytes()
		if err != nil {
			return u, res, err
		}
		_, err = r.st.d.PutContentIf(ctx, p, raw, cond)
		if errors.Is(err, driver.ErrPreconditionFailed) {
			continue // another signer staged at the same time: merge again
		}
		return merged, mres, err
	}
	return u, res, errConflict("%s version %d: too many signers at once; send it again", u.role, u.version())
}

// keepSignatures drops every signature not by one of ids.
func keepSignatures(u *upload, ids []string) {
	keep := func(sigs []metadata.Signature) []metadata.Signature {
		out := sigs[:0:0]
		for _, s := range sigs {
			for _, id := range ids {
				if s.KeyID == id {
					out = append(out, s)
					break
				}
			}
		}
		return out
	}
	if u.root != nil {
		u.root.Signatures = keep(u.root.Signatures)
	} else {
		u.targets.Signatures = keep(u.targets.Signatures)
	}
}

// mergeSignatures adds to prev the signatures of u by keys prev lacks. Both carry
// the same signed content.
func mergeSignatures(prev, u *upload) *upload {
	add := func(to, from []metadata.Signature) []metadata.Signature {
		for _, s := range from {
			found := false
			for _, t := range to {
				found = found || t.KeyID == s.KeyID
			}
			if !found {
				to = append(to, s)
			}
		}
		return to
	}
	if prev.root != nil {
		prev.root.Signatures = add(prev.root.Signatures, u.root.Signatures)
	} else {
		prev.targets.Signatures = add(prev.targets.Signatures, u.targets.Signatures)
	}
	return prev
}

// clearStaged removes staged copies of role up to version n, now published or
// superseded. Best effort: a left-over copy is never served as current.
func (r *Repo) clearStaged(ctx context.Context, role string, n int64) {
	names, err := r.st.d.List(ctx, stagedRoleDir(role))
	if err != nil {
		return
	}
	for _, p := range names {
		var v int64
		if _, err := fmt.Sscanf(p[len(stagedRoleDir(role))+1:], "%d.", &v); err == nil && v <= n {
			r.st.d.Delete(ctx, p)
		}
	}
}

// stagedCopies returns the staged copies of version n of role that parse, with
// their bytes. A copy that cannot be read or parsed is passed over: another
// signer may be replacing it, and the next merge writes a whole one.
func (r *Repo) stagedCopies(ctx context.Context, role string, n int64) ([]*upload, [][]byte, error) {
	names, err := r.st.d.List(ctx, stagedRoleDir(role))
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return nil, nil, err
	}
	var us []*upload
	var datas [][]byte
	prefix := stagedRoleDir(role) + "/" + fmt.Sprint(n) + "."
	for _, p := range names {
		if !strings.HasPrefix(p, prefix) || len(p) == len(prefix) {
			continue
		}
		data, _, err := r.st.d.GetContent(ctx, p)
		if err != nil {
			continue
		}
		u, err := parseUpload(role, data)
		if err != nil {
			continue
		}
		us, datas = append(us, u), append(datas, data)
	}
	return us, datas, nil
}

// stagedFor returns the staged copy of version n of role with the most signatures.
func (r *Repo) stagedFor(ctx context.Context, role string, n int64) ([]byte, error) {
	us, datas, err := r.stagedCopies(ctx, role, n)
	if err != nil {
		return nil, err
	}
	var best []byte
	bestSigs := -1
	for i, u := range us {
		if sigs := len(u.targetsOrRootSignatures()); sigs > bestSigs {
			best, bestSigs = datas[i], sigs
		}
	}
	if best == nil {
		return nil, errNotFound("no version %d of %s is staged", n, role)
	}
	return best, nil
}

func (u *upload) targetsOrRootSignatures() []metadata.Signature {
	if u.root != nil {
		return u.root.Signatures
	}
	return u.targets.Signatures
}

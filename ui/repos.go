package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/reference"
)

// Page sizes: the repository list and a repository's tags show pageSize rows a
// page. The list is the catalog's names the reader may pull, read catalogBatch
// at a time (the registry's largest page), at most maxCatalog of them, and
// kept in the session for catalogTTL: the registry's catalog walks every
// repository at each call (about 300 ms for 10,000), so paging and searching
// work on the kept list. A repository's page always asks the registry.
const (
	pageSize     = 50
	catalogBatch = 10000
	maxCatalog   = 100000
	catalogTTL   = 30 * time.Second
	// headWorkers is how many tags' manifests are asked about at once.
	headWorkers = 8
)

// manifestAccept are the manifest media types the UI asks for: those the
// registry stores.
var manifestAccept = strings.Join([]string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}, ", ")

// artifactTag matches the tags that hold signature artifacts rather than
// images: cosign's signatures, attestations and SBOMs ("sha256-<hex>.sig"),
// and the referrers-tag index ("sha256-<hex>"). They are counted, not listed.
var artifactTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}(\.(sig|att|sbom))?$`)

// errForbidden is the registry refusing the reader's token: the page is a 403,
// whether or not the repository exists.
var errForbidden = errors.New("forbidden")

var errNotFound = errors.New("not found")

// registryDo sends method path to the registry with a token for scope.
func (u *UI) registryDo(ctx context.Context, s *session, method, path, scope string) (*http.Response, error) {
	tok, err := u.registryToken(ctx, s, scope)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u.cfg.Registry+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", manifestAccept)
	resp, err := u.http.Do(req)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		resp.Body.Close()
		return nil, errForbidden
	case http.StatusNotFound:
		resp.Body.Close()
		return nil, errNotFound
	case http.StatusOK:
		return resp, nil
	}
	resp.Body.Close()
	return nil, fmt.Errorf("%s %s answered %s", method, path, resp.Status)
}

// registryJSON GETs path and decodes its JSON body into v; more says whether
// the answer links a next page.
func (u *UI) registryJSON(ctx context.Context, s *session, path, scope string, v any) (more bool, err error) {
	resp, err := u.registryDo(ctx, s, http.MethodGet, path, scope)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(v); err != nil {
		return false, fmt.Errorf("GET %s: unreadable answer: %w", path, err)
	}
	return resp.Header.Get("Link") != "", nil
}

// enforced reports whether the registry's gate enforces repo.
func (u *UI) enforced(repo string) bool {
	if u.cfg.TrustRoot == "" {
		return false
	}
	for _, p := range u.cfg.Open {
		if reference.MatchPattern(p, repo) {
			return false
		}
	}
	return true
}

type repoRow struct {
	Name     string
	Enforced bool
}

// repos lists the repositories the reader may pull whose names contain q, a
// page after the name "after".
func (u *UI) repos(w http.ResponseWriter, r *http.Request, s *session) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	after := r.URL.Query().Get("after")
	names, err := u.catalog(r.Context(), s)
	if err != nil {
		u.upstreamError(w, r, err)
		return
	}
	page, more := pageOf(names, q, after, pageSize)
	rows := make([]repoRow, len(page))
	for i, name := range page {
		rows[i] = repoRow{Name: name, Enforced: u.enforced(name)}
	}
	data := map[string]any{"Query": q, "Repos": rows, "After": after}
	if more {
		data["Next"] = Prefix + "repos?" + url.Values{"q": {q}, "after": {rows[len(rows)-1].Name}}.Encode()
	}
	u.render(w, r, http.StatusOK, "repos", data)
}

// pageOf is the page of up to size names after "after" (sorted names) that
// contain q (any case), and whether more follow.
func pageOf(names []string, q, after string, size int) ([]string, bool) {
	i, found := slices.BinarySearch(names, after)
	if found {
		i++
	}
	needle := strings.ToLower(q)
	var page []string
	for _, name := range names[i:] {
		if q != "" && !strings.Contains(strings.ToLower(name), needle) {
			continue
		}
		if len(page) == size {
			return page, true
		}
		page = append(page, name)
	}
	return page, false
}

// catalog returns the names the reader may pull, sorted: the registry's
// catalog, which lists for a token only those, kept in the session for
// catalogTTL.
func (u *UI) catalog(ctx context.Context, s *session) ([]string, error) {
	s.mu.Lock()
	names, at := s.catalog, s.catalogAt
	s.mu.Unlock()
	if names != nil && time.Since(at) < catalogTTL {
		return names, nil
	}
	names = []string{}
	last := ""
	for len(names) < maxCatalog {
		var page struct {
			Repositories []string `json:"repositories"`
		}
		path := "/v2/_catalog?" + url.Values{"n": {strconv.Itoa(catalogBatch)}, "last": {last}}.Encode()
		next, err := u.registryJSON(ctx, s, path, "registry:catalog:*", &page)
		if errors.Is(err, errForbidden) {
			break // may list nothing: an empty list
		}
		if err != nil {
			return nil, err
		}
		names = append(names, page.Repositories...)
		if !next || len(page.Repositories) == 0 {
			break
		}
		last = page.Repositories[len(page.Repositories)-1]
	}
	slices.Sort(names)
	s.mu.Lock()
	s.catalog, s.catalogAt = names, time.Now()
	s.mu.Unlock()
	return names, nil
}

type tagRow struct {
	Tag, Digest, MediaType string
	Size                   int64
	Status                 string // "signed", "staged" or "" (not signed)
	SignedBy               []string
	Signatures, Threshold  int
	Expires                string
	PullTag, PullDigest    string
}

// repo shows one repository's tags, a page after the tag "after", with what
// the verified trust graph says of each.
func (u *UI) repo(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	if err := reference.ValidateName(name); err != nil {
		u.errorPage(w, r, http.StatusNotFound, "No such repository", fmt.Sprintf("%q is not a repository name.", name))
		return
	}
	after := r.URL.Query().Get("after")
	var list struct {
		Tags []string `json:"tags"`
	}
	scope := "repository:" + name + ":pull"
	path := "/v2/" + name + "/tags/list?" + url.Values{"n": {strconv.Itoa(pageSize)}, "last": {after}}.Encode()
	more, err := u.registryJSON(r.Context(), s, path, scope, &list)
	switch {
	case errors.Is(err, errForbidden):
		u.errorPage(w, r, http.StatusForbidden, "Not allowed", "You may not pull "+name+", or it does not exist.")
		return
	case errors.Is(err, errNotFound):
		u.errorPage(w, r, http.StatusNotFound, "No such repository", name+" has no tags, or does not exist.")
		return
	case err != nil:
		u.upstreamError(w, r, err)
		return
	}
	var tags []string
	artifacts := 0
	for _, t := range list.Tags {
		if artifactTag.MatchString(t) {
			artifacts++
			continue
		}
		tags = append(tags, t)
	}
	rows := u.tagRows(r.Context(), s, name, r.Host, tags)
	data := map[string]any{"Name": name, "Enforced": u.enforced(name), "Tags": rows, "Artifacts": artifacts}
	if u.cfg.TrustRoot != "" {
		tl, err := u.trustTags(r.Context(), s, name)
		if err != nil {
			data["TrustError"] = err.Error()
		} else {
			data["Trust"] = tl
			byTag := map[string]trust.TagStatus{}
			for _, t := range tl.Tags {
				if prev, ok := byTag[t.Tag]; !ok || prev.Status != "signed" {
					byTag[t.Tag] = t
				}
			}
			for i := range rows {
				if t, ok := byTag[rows[i].Tag]; ok && (t.Digest == rows[i].Digest || rows[i].Digest == "") {
					rows[i].Status, rows[i].SignedBy, rows[i].Expires = t.Status, t.SignedBy, t.Expires
					rows[i].Signatures, rows[i].Threshold = t.Signatures, t.Threshold
				}
			}
		}
	}
	if more && len(list.Tags) > 0 {
		data["Next"] = Prefix + "r/" + name + "?" + url.Values{"after": {list.Tags[len(list.Tags)-1]}}.Encode()
	}
	u.render(w, r, http.StatusOK, "repo", data)
}

// tagRows asks the registry for each tag's manifest digest, media type and
// size (HEAD), a few at a time.
func (u *UI) tagRows(ctx context.Context, s *session, name, host string, tags []string) []tagRow {
	rows := make([]tagRow, len(tags))
	sem := make(chan struct{}, headWorkers)
	var wg sync.WaitGroup
	for i, tag := range tags {
		rows[i] = tagRow{Tag: tag, PullTag: "docker pull " + host + "/" + name + ":" + tag}
		wg.Add(1)
		sem <- struct{}{}
		go func(row *tagRow) {
			defer wg.Done()
			defer func() { <-sem }()
			resp, err := u.registryDo(ctx, s, http.MethodHead, "/v2/"+name+"/manifests/"+row.Tag, "repository:"+name+":pull")
			if err != nil {
				return
			}
			resp.Body.Close()
			row.Digest = resp.Header.Get("Docker-Content-Digest")
			row.MediaType = resp.Header.Get("Content-Type")
			row.Size = resp.ContentLength
			if row.Digest != "" {
				row.PullDigest = "docker pull " + host + "/" + name + "@" + row.Digest
			}
		}(&rows[i])
	}
	wg.Wait()
	return rows
}

// trustTags reads repo's tags from the trust graph, verified from the pinned
// root with the reader's own trustd token: roles the reader may not read stay
// unread. Walks share the metadata cache, so they run one at a time.
func (u *UI) trustTags(ctx context.Context, s *session, repo string) (*trust.TagList, error) {
	tok, err := u.trustdToken(ctx, s)
	if err != nil {
		return nil, err
	}
	sess := &trust.Session{Home: u.home, Registry: u.pinHost, HTTP: u.http,
		Trustd: &client.Trustd{Base: u.cfg.Trustd, Token: tok, HTTP: u.http}}
	u.trustMu.Lock()
	defer u.trustMu.Unlock()
	return sess.Tags(ctx, repo)
}

// upstreamError is a 502 page for a server that did not answer as expected.
func (u *UI) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	u.cfg.Log.Warn("ui: a call to the registry failed", "path", r.URL.Path, "err", err)
	u.errorPage(w, r, http.StatusBadGateway, "The registry did not answer", "The page could not be made; try again shortly.")
}

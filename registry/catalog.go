package registry

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/reference"
	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/tokenauth"
)

// Page sizes of the tag list and the catalog.
const (
	// defaultCatalogPage is the catalog's page size when the client names none.
	defaultCatalogPage = 100
	// maxPage caps n; a larger n gets this many and a Link to the rest.
	maxPage = 10000
)

// ping answers /v2/: 200 for any valid token (or without auth), else 401 with the
// challenge, so clients learn where to get tokens.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	if s.auth != nil && s.authenticate(w, r, "") == nil {
		return
	}
	writeJSON(w, "application/json", struct{}{})
}

type tagList struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

type catalogList struct {
	Repositories []string `json:"repositories"`
}

type referrersIndex struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
}

func (s *Server) tagsList(w http.ResponseWriter, r *http.Request, repo string) {
	n, last, err := pageParams(r, maxPage)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var tags []string
	var more bool
	if s.gate.enforced(repo) {
		all, _, err := s.store.Tags(r.Context(), repo, "", -1)
		if err == nil {
			all, err = s.gate.tags(r.Context(), repo, all)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		tags, more = storage.Paginate(all, last, n)
	} else {
		tags, more, err = s.store.Tags(r.Context(), repo, last, n)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if more && len(tags) > 0 {
		setNextLink(w, "/v2/"+repo+"/tags/list", tags[len(tags)-1], n)
	}
	writeJSON(w, "application/json", tagList{Name: repo, Tags: tags})
}

// catalog lists repositories; with auth, only those the token's catalog grant
// names patterns for.
func (s *Server) catalog(w http.ResponseWriter, r *http.Request) {
	n, last, err := pageParams(r, defaultCatalogPage)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var visible func(string) bool
	if s.auth != nil {
		const scope = "registry:catalog:*"
		claims := s.authenticate(w, r, scope)
		if claims == nil {
			return
		}
		patterns, ok := catalogPatterns(claims)
		if !ok {
			s.challenge(w, r, scope, "insufficient_scope", &Error{Code: CodeDenied, Detail: claims.Subject + " may not list the catalog"})
			return
		}
		visible = func(repo string) bool {
			for _, p := range patterns {
				if reference.MatchPattern(p, repo) {
					return true
				}
			}
			return false
		}
	}
	repos, more, err := s.store.Catalog(r.Context(), last, n, visible)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if more && len(repos) > 0 {
		setNextLink(w, "/v2/_catalog", repos[len(repos)-1], n)
	}
	writeJSON(w, "application/json", catalogList{Repositories: repos})
}

// pageParams reads n and last; n defaults to def and is capped at maxPage.
func pageParams(r *http.Request, def int) (int, string, error) {
	q := r.URL.Query()
	n := def
	if v := q.Get("n"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, "", &Error{Code: CodePaginationInvalid, Detail: "n must be a whole number >= 0, got " + strconv.Quote(v)}
		}
	}
	return min(n, maxPage), q.Get("last"), nil
}

func setNextLink(w http.ResponseWriter, path, last string, n int) {
	q := url.Values{"last": {last}, "n": {strconv.Itoa(n)}}
	w.Header().Set("Link", "<"+path+"?"+q.Encode()+`>; rel="next"`)
}

// catalogPatterns returns the patterns of the token's registry:catalog grant.
func catalogPatterns(c *tokenauth.Claims) ([]string, bool) {
	for _, a := range c.Access {
		if a.Type == "registry" && a.Name == "catalog" && slices.Contains(a.Actions, "*") {
			return a.Patterns, true
		}
	}
	return nil, false
}

func writeJSON(w http.ResponseWriter, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

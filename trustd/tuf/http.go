package tuf

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/trustd/api"
	"github.com/signet-oss/signet/trustnames"
)

// The HTTP API, under /tuf:
//
//	GET  /tuf/root.json               the latest root, for bootstrap        public, no-cache
//	GET  /tuf/timestamp.json          the current timestamp                 public, no-cache
//	GET  /tuf/<N>.root.json           root version N                        public, immutable
//	GET  /tuf/<N>.snapshot.json       snapshot version N                    public, immutable
//	GET  /tuf/<N>.targets.json        targets version N                     public, immutable
//	GET  /tuf/<N>.org-<org>.json      who may pull any repository of org    private, immutable
//	GET  /tuf/<N>.repo-<hash>.json    who may pull that repository          private, immutable
//	GET  /tuf/api/online-keys         {"snapshot": key, "timestamp": key}   public
//	POST /tuf/api/init                {"root": ..., "targets": ...}         admin
//	PUT  /tuf/api/metadata/<role>     signed metadata: 201, 202 staged/held see below
//	GET  /tuf/api/staged/<role>       the staged version of role            as reading the role
//	GET  /tuf/api/held/<role>         the held version of role (held.go)    as reading the role
//	GET  /tuf/api/roles/<role>        {"version", "repository"}             as reading the role
//
// Publishing root or targets needs an admin, an org role an owner of the org (or an
// admin), a repository role push on that repository. Only committed versions are
// ever served: a version written by a publish that has not committed is not found.

// Caller is who a request speaks for, with the rights trustd's records give now.
type Caller interface {
	Anonymous() bool
	Admin() bool
	// MayPull and MayPush: on one repository.
	MayPull(repo string) bool
	MayPush(repo string) bool
	// MayPullIn: on at least one repository of org.
	MayPullIn(org string) bool
	// OwnsOrg: may manage org (its owners, admins).
	OwnsOrg(org string) bool
}

// Authenticator finds the caller of a request: anonymous when it carries no
// credentials, an error (sent as 401) when its credentials are not valid here.
type Authenticator interface {
	Authenticate(r *http.Request) (Caller, error)
	// Challenge is the WWW-Authenticate value of a 401.
	Challenge(r *http.Request) string
}

// maxInitBody bounds POST /tuf/api/init: a root and a targets.
const maxInitBody = 2*MaxRoleSize + 4096

// Register adds the repository's routes under prefix (such as "/tuf") to m.
func (r *Repo) Register(m *mux.Router, prefix string, auth Authenticator) {
	h := &handler{repo: r, auth: auth}
	s := m.PathPrefix(prefix).Subrouter()
	s.HandleFunc("/api/online-keys", h.onlineKeys).Methods(http.MethodGet)
	s.HandleFunc("/api/init", h.init).Methods(http.MethodPost)
	s.HandleFunc("/api/metadata/{role}", h.publish).Methods(http.MethodPut)
	s.HandleFunc("/api/staged/{role}", h.staged).Methods(http.MethodGet)
	s.HandleFunc("/api/held/{role}", h.held).Methods(http.MethodGet)
	s.HandleFunc("/api/roles/{role}", h.roleInfo).Methods(http.MethodGet)
	s.HandleFunc("/{file:[^/]+\\.json}", h.metadataFile).Methods(http.MethodGet, http.MethodHead)
}

type handler struct {
	repo *Repo
	auth Authenticator
}

// caller authenticates r, writing the 401 itself on failure.
func (h *handler) caller(w http.ResponseWriter, r *http.Request) (Caller, bool) {
	c, err := h.auth.Authenticate(r)
	if err != nil {
		h.deny(w, r, nil, err.Error())
		return nil, false
	}
	return c, true
}

// deny answers 401 with a challenge to an anonymous (or unauthenticated) caller,
// 403 to anyone else.
func (h *handler) deny(w http.ResponseWriter, r *http.Request, c Caller, msg string) {
	if c == nil || c.Anonymous() {
		w.Header().Set("WWW-Authenticate", h.auth.Challenge(r))
		writeError(w, errUnauthorized("%s", msg))
		return
	}
	writeError(w, errDenied("%s", msg))
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	if advice := driver.NoSpaceAdvice(err, "publishes"); advice != "" {
		h.repo.cfg.Log.ErrorContext(r.Context(), advice, "method", r.Method, "path", r.URL.Path, "err", err)
	} else if e.Status >= 500 {
		h.repo.cfg.Log.ErrorContext(r.Context(), "TUF request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func (h *handler) onlineKeys(w http.ResponseWriter, r *http.Request) {
	snap, ts := h.repo.OnlineKeys()
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeJSON(w, http.StatusOK, map[string]*metadata.Key{trustnames.RoleSnapshot: snap, trustnames.RoleTimestamp: ts})
}

func (h *handler) init(w http.ResponseWriter, r *http.Request) {
	c, ok := h.caller(w, r)
	if !ok {
		return
	}
	if !c.Admin() {
		h.deny(w, r, c, "only an admin may initialise the TUF repository")
		return
	}
	var body struct {
		Root    json.RawMessage `json:"root"`
		Targets json.RawMessage `json:"targets"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxInitBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.fail(w, r, errTooLarge("the body is over %d bytes", maxInitBody))
			return
		}
		h.fail(w, r, errInvalid(`the body is not {"root": <signed root>, "targets": <signed targets>}: %v`, err))
		return
	}
	if len(body.Root) == 0 || len(body.Targets) == 0 {
		h.fail(w, r, errInvalid(`the body needs both "root" and "targets"`))
		return
	}
	if err := h.repo.Init(r.Context(), body.Root, body.Targets); err != nil {
		h.fail(w, r, err)
		return
	}
	res := PublishResult{Published: api.Published{Version: 1}}
	if s := h.repo.current(); s != nil {
		res.Changes = initChanges(s)
	}
	if !h.recorded(w, r, c, trustnames.RoleRoot, res) {
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

// mayPublish says whether c may publish role (whose repository the current state
// knows for repo roles).
func (h *handler) mayPublish(c Caller, s *state, role string, kind roleKind) (bool, string) {
	switch kind {
	case kindRoot, kindTargets:
		return c.Admin(), "only an admin may publish " + role
	case kindOrg:
		org, _ := trustnames.OrgOfRole(role)
		return c.OwnsOrg(org), "only an owner of " + org + " or an admin may publish " + role
	case kindRepo:
		repo, ok := s.repoOf(role)
		if !ok {
			return c.Admin(), role + " is not delegated by any organisation"
		}
		if !c.MayPull(repo) {
			// The snapshot lists role names to anyone: the refusal must not
			// turn one back into the name of a repository the caller may not read.
			return false, "publishing " + role + " needs push on the repository it is delegated for"
		}
		return c.MayPush(repo), "publishing " + role + " needs push on " + repo
	}
	return false, role + " cannot be published"
}

// mayRead says whether c may read role's metadata.
func (h *handler) mayRead(c Caller, s *state, role string, kind roleKind) bool {
	switch kind {
	case kindRoot, kindTargets, kindOnline:
		return true
	case kindOrg:
		org, _ := trustnames.OrgOfRole(role)
		return c.Admin() || c.MayPullIn(org)
	case kindRepo:
		if c.Admin() {
			return true
		}
		repo, ok := s.repoOf(role)
		return ok && c.MayPull(repo)
	}
	return false
}

func (h *handler) publish(w http.ResponseWriter, r *http.Request) {
	role := mux.Vars(r)["role"]
	kind, err := classify(role)
	if err != nil {
		h.fail(w, r, errInvalid("%v", err))
		return
	}
	if kind == kindOnline {
		h.fail(w, r, errInvalid("role %q is signed by trustd's online key; it cannot be published", role))
		return
	}
	c, ok := h.caller(w, r)
	if !ok {
		return
	}
	s := h.repo.fresh(r.Context())
	if s == nil {
		h.fail(w, r, ErrNotInitialised)
		return
	}
	if may, why := h.mayPublish(c, s, role, kind); !may {
		h.deny(w, r, c, why)
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRoleSize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.fail(w, r, errTooLarge("%s is over %d bytes, the limit of a role", role, MaxRoleSize))
			return
		}
		h.fail(w, r, errInvalid("reading the body: %v", err))
		return
	}
	res, err := h.repo.Publish(r.Context(), role, data)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.recorded(w, r, c, role, res) {
		return
	}
	if res.Staged || res.Held {
		writeJSON(w, http.StatusAccepted, res)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

// recorded tells cfg.OnPublish of an accepted publish, answering 500 itself
// when that fails.
func (h *handler) recorded(w http.ResponseWriter, r *http.Request, c Caller, role string, res PublishResult) bool {
	if h.repo.cfg.OnPublish == nil {
		return true
	}
	if err := h.repo.cfg.OnPublish(r, c, role, res); err != nil {
		if advice := driver.NoSpaceAdvice(err, "publishes"); advice != "" {
			// The version fit but its record did not: it stays published (the
			// log never claims what did not happen), and the answer says so,
			// so that nobody publishes it again.
			h.repo.cfg.Log.ErrorContext(r.Context(), advice, "role", role, "version", res.Version, "err", err)
			writeError(w, newError(http.StatusInternalServerError, "AUDIT_FAILED",
				"%s version %d was published, but trustd is out of storage space and could not write its audit record; the publish needs no retry", role, res.Version))
			return false
		}
		h.repo.cfg.Log.ErrorContext(r.Context(), "writing the audit record of a publish failed", "role", role, "version", res.Version, "err", err)
		writeError(w, newError(http.StatusInternalServerError, "AUDIT_FAILED",
			"%s version %d was accepted, but its audit record could not be written; see trustd's log", role, res.Version))
		return false
	}
	return true
}

// readable authorises a read of role, answering the refusal itself.
func (h *handler) readable(w http.ResponseWriter, r *http.Request, role string) (*state, bool) {
	kind, err := classify(role)
	if err != nil {
		h.fail(w, r, errNotFound("%v", err))
		return nil, false
	}
	s := h.repo.fresh(r.Context())
	if s == nil {
		h.fail(w, r, ErrNotInitialised)
		return nil, false
	}
	if kind == kindOrg || kind == kindRepo {
		_, delegated := s.repoOf(role)
		if kind == kindOrg {
			delegated = targetsDelegation(trustnames.RoleTargets, s.targets, role) != nil ||
				s.held[trustnames.RoleTargets] != nil && targetsDelegation(trustnames.RoleTargets, s.held[trustnames.RoleTargets].md, role) != nil
		}
		if s.version(role) == 0 && !delegated {
			h.fail(w, r, errNotFound("role %s is not in the repository", role))
			return nil, false
		}
		c, ok := h.caller(w, r)
		if !ok {
			return nil, false
		}
		if !h.mayRead(c, s, role, kind) {
			h.deny(w, r, c, "reading "+role+" needs pull on what it covers")
			return nil, false
		}
	}
	return s, true
}

func (h *handler) metadataFile(w http.ResponseWriter, r *http.Request) {
	file := mux.Vars(r)["file"]
	name := strings.TrimSuffix(file, ".json")
	var data []byte
	switch name {
	case trustnames.RoleTimestamp, trustnames.RoleRoot:
		s := h.repo.fresh(r.Context())
		if s == nil {
			h.fail(w, r, ErrNotInitialised)
			return
		}
		data = s.timestampRaw
		if name == trustnames.RoleRoot {
			data = s.rootRaw
		}
		w.Header().Set("Cache-Control", "no-cache")
	default:
		vs, role, ok := strings.Cut(name, ".")
		n, err := strconv.ParseInt(vs, 10, 64)
		if !ok || err != nil || n < 1 || role == trustnames.RoleTimestamp {
			h.fail(w, r, errNotFound("%s is not a file of this repository: timestamp.json, root.json or <version>.<role>.json", file))
			return
		}
		s, ok := h.readable(w, r, role)
		if !ok {
			return
		}
		if data, err = h.repo.read(r, s, role, n); err != nil {
			h.fail(w, r, err)
			return
		}
		if kind, _ := classify(role); kind == kindOrg || kind == kindRepo {
			w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method != http.MethodHead {
		w.Write(data)
	}
}

// read returns committed version n of role, or a not-found error: a version that is
// newer than s's (uncommitted, or committed after s) is never served from here.
func (r *Repo) read(req *http.Request, s *state, role string, n int64) ([]byte, error) {
	if n > s.version(role) {
		return nil, errNotFound("%s version %d is not published (the current version is %d)", role, n, s.version(role))
	}
	switch {
	case role == trustnames.RoleSnapshot && n == s.snapshot.Signed.Version:
		return s.snapshotRaw, nil
	case role == trustnames.RoleRoot && n == s.root.Signed.Version:
		return s.rootRaw, nil
	}
	data, err := r.st.readCommitted(req.Context(), &s.head, role, n)
	if errors.Is(err, driver.ErrNotFound) {
		return nil, errNotFound("%s version %d is not in the repository", role, n)
	}
	return data, err
}

func (h *handler) staged(w http.ResponseWriter, r *http.Request) {
	role := mux.Vars(r)["role"]
	s, ok := h.readable(w, r, role)
	if !ok {
		return
	}
	data, err := h.repo.stagedFor(r.Context(), role, s.version(role)+1)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
}

// held serves the held version of role: the one trustctl builds the role's
// next version on, so that a pending delegation is carried along.
func (h *handler) held(w http.ResponseWriter, r *http.Request) {
	role := mux.Vars(r)["role"]
	s, ok := h.readable(w, r, role)
	if !ok {
		return
	}
	data, err := h.repo.heldFor(s, role)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
}

func (h *handler) roleInfo(w http.ResponseWriter, r *http.Request) {
	role := mux.Vars(r)["role"]
	s, ok := h.readable(w, r, role)
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, struct {
		Version    int64  `json:"version"`
		Repository string `json:"repository,omitempty"`
	}{s.version(role), func() string { repo, _ := s.repoOf(role); return repo }()})
}

package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"muon/internal/fault"
	"muon/internal/store"
)

// maxBody bounds a request body.
const maxBody = 64 << 10

// timeFormat is Keystone's timestamp format.
const timeFormat = "2006-01-02T15:04:05.000000Z"

func fmtTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(timeFormat) }

func (s *Service) routes() {
	m := http.NewServeMux()
	s.mux = m
	m.HandleFunc("GET /{$}", s.handle(s.versions))
	m.HandleFunc("GET /v3", s.handle(s.version))
	m.HandleFunc("GET /v3/{$}", s.handle(s.version))

	m.HandleFunc("POST /v3/auth/tokens", s.handle(s.issueToken))
	m.HandleFunc("GET /v3/auth/tokens", s.authed(s.checkToken))
	m.HandleFunc("DELETE /v3/auth/tokens", s.authed(s.revokeToken))
	m.HandleFunc("GET /v3/auth/projects", s.authed(s.authProjects))
	m.HandleFunc("GET /v3/auth/domains", s.authed(s.authDomains))
	m.HandleFunc("GET /v3/auth/system", s.authed(s.authSystem))
	m.HandleFunc("GET /v3/auth/catalog", s.authed(s.authCatalog))
	m.HandleFunc("GET /v3/services", s.authed(s.listServices))
	m.HandleFunc("GET /v3/endpoints", s.authed(s.listEndpoints))
	m.HandleFunc("GET /v3/regions", s.authed(s.listRegions))

	m.HandleFunc("POST /v3/domains", s.admin(s.createDomain))
	m.HandleFunc("GET /v3/domains", s.admin(s.listDomains))
	m.HandleFunc("GET /v3/domains/{id}", s.admin(s.showDomain))
	m.HandleFunc("PATCH /v3/domains/{id}", s.admin(s.updateDomain))
	m.HandleFunc("DELETE /v3/domains/{id}", s.admin(s.deleteDomain))

	m.HandleFunc("POST /v3/projects", s.admin(s.createProject))
	m.HandleFunc("GET /v3/projects", s.admin(s.listProjects))
	m.HandleFunc("GET /v3/projects/{id}", s.authed(s.showProject))
	m.HandleFunc("PATCH /v3/projects/{id}", s.admin(s.updateProject))
	m.HandleFunc("DELETE /v3/projects/{id}", s.admin(s.deleteProject))

	m.HandleFunc("POST /v3/users", s.admin(s.createUser))
	m.HandleFunc("GET /v3/users", s.admin(s.listUsers))
	m.HandleFunc("GET /v3/users/{id}", s.authed(s.showUser))
	m.HandleFunc("PATCH /v3/users/{id}", s.admin(s.updateUser))
	m.HandleFunc("DELETE /v3/users/{id}", s.admin(s.deleteUser))
	m.HandleFunc("GET /v3/users/{id}/projects", s.authed(s.userProjects))
	m.HandleFunc("POST /v3/users/{id}/password", s.handle(s.changePassword))

	m.HandleFunc("POST /v3/roles", s.admin(s.createRole))
	m.HandleFunc("GET /v3/roles", s.admin(s.listRoles))
	m.HandleFunc("GET /v3/roles/{id}", s.admin(s.showRole))
	m.HandleFunc("PATCH /v3/roles/{id}", s.admin(s.updateRole))
	m.HandleFunc("DELETE /v3/roles/{id}", s.admin(s.deleteRole))

	for _, t := range []string{"projects", "domains"} {
		base := "/v3/" + t + "/{target}/users/{user}/roles"
		m.HandleFunc("GET "+base, s.admin(s.listGrants))
		m.HandleFunc("PUT "+base+"/{role}", s.admin(s.putGrant))
		m.HandleFunc("GET "+base+"/{role}", s.admin(s.checkGrant))
		m.HandleFunc("DELETE "+base+"/{role}", s.admin(s.deleteGrant))
	}
	m.HandleFunc("GET /v3/system/users/{user}/roles", s.admin(s.listGrants))
	m.HandleFunc("PUT /v3/system/users/{user}/roles/{role}", s.admin(s.putGrant))
	m.HandleFunc("GET /v3/system/users/{user}/roles/{role}", s.admin(s.checkGrant))
	m.HandleFunc("DELETE /v3/system/users/{user}/roles/{role}", s.admin(s.deleteGrant))
	m.HandleFunc("GET /v3/role_assignments", s.admin(s.listAssignments))

	m.HandleFunc("/", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return notFound("the resource could not be found")
	}))
}

// Faults, with Keystone's titles.

func fail(status int, format string, args ...any) *fault.Error {
	return fault.New(status, http.StatusText(status), format, args...)
}

func badRequest(format string, args ...any) *fault.Error {
	return fail(http.StatusBadRequest, format, args...)
}

func unauthorized(format string, args ...any) *fault.Error {
	return fail(http.StatusUnauthorized, format, args...)
}

func forbidden(format string, args ...any) *fault.Error {
	return fail(http.StatusForbidden, format, args...)
}

func notFound(format string, args ...any) *fault.Error {
	return fail(http.StatusNotFound, format, args...)
}

func conflict(format string, args ...any) *fault.Error {
	return fail(http.StatusConflict, format, args...)
}

// authRequired is Keystone's (and keystonemiddleware's) 401 message.
const authRequired = "The request you have made requires authentication."

func (s *Service) handle(fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// authed requires a valid X-Auth-Token.
func (s *Service) authed(fn func(http.ResponseWriter, *http.Request, *validated) error) http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		tok := r.Header.Get("X-Auth-Token")
		if tok == "" {
			return unauthorized(authRequired)
		}
		v, err := s.validate(r.Context(), tok)
		if err != nil {
			return err
		}
		return fn(w, r, v)
	})
}

// admin requires a token with the admin role (in any scope, as Keystone's
// admin_required rule without enforced scope).
func (s *Service) admin(fn func(http.ResponseWriter, *http.Request, *validated) error) http.HandlerFunc {
	return s.authed(func(w http.ResponseWriter, r *http.Request, v *validated) error {
		if !v.hasRole("admin") {
			return forbidden("You are not authorized to perform the requested action.")
		}
		return fn(w, r, v)
	})
}

type errorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Title   string `json:"title"`
		Message string `json:"message"`
	} `json:"error"`
}

func keystoneError(status int, msg string) errorBody {
	var b errorBody
	b.Error.Code, b.Error.Title, b.Error.Message = status, http.StatusText(status), msg
	return b
}

func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "An unexpected error prevented the server from fulfilling your request."
	if f, ok := fault.As(err); ok {
		status, msg = f.Status, f.Message
	} else if errors.Is(err, ErrInvalidToken) {
		status, msg = http.StatusUnauthorized, authRequired
		s.log.DebugContext(r.Context(), "token rejected", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Keystone uri=%q", s.base(r)))
	}
	writeJSON(w, status, keystoneError(status, msg))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Vary", "X-Auth-Token")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// base is this service's URL, without /v3.
func (s *Service) base(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Service) versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id":      "v3.14",
		"status":  "stable",
		"updated": "2020-04-07T00:00:00Z",
		"links":   []map[string]string{{"rel": "self", "href": s.base(r) + "/v3/"}},
		"media-types": []map[string]string{{
			"base": "application/json", "type": "application/vnd.openstack.identity-v3+json",
		}},
	}
}

// versions answers GET / as Keystone: 300 Multiple Choices.
func (s *Service) versions(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusMultipleChoices, map[string]any{
		"versions": map[string]any{"values": []any{s.versionDoc(r)}},
	})
	return nil
}

func (s *Service) version(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"version": s.versionDoc(r)})
	return nil
}

// fields is a request's member object, attribute by attribute.
type fields map[string]json.RawMessage

// decodeBody reads {"<member>": {...}}.
func decodeBody(r *http.Request, member string) (fields, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, badRequest("cannot read the request body")
	}
	if len(b) > maxBody {
		return nil, fail(http.StatusRequestEntityTooLarge, "request is too large")
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(b, &outer); err != nil {
		return nil, badRequest("malformed request body: %v", err)
	}
	raw, ok := outer[member]
	if !ok {
		return nil, badRequest("Expecting to find %s in request body.", member)
	}
	var f fields
	if err := json.Unmarshal(raw, &f); err != nil || f == nil {
		return nil, badRequest("Invalid input for field '%s': not an object.", member)
	}
	return f, nil
}

// str reads a string attribute; null reads as "". ok tells it was given.
func (f fields) str(name string, maxLen int) (v string, ok bool, err error) {
	raw, ok := f[name]
	if !ok || string(raw) == "null" {
		return "", ok, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", true, badRequest("Invalid input for field '%s': %s is not a string.", name, raw)
	}
	if maxLen > 0 && len(v) > maxLen {
		return "", true, badRequest("Invalid input for field '%s': longer than %d characters.", name, maxLen)
	}
	return v, true, nil
}

// name reads a required-when-given, non-empty name.
func (f fields) name(required bool) (string, bool, error) {
	v, ok, err := f.str("name", 255)
	if err != nil {
		return "", ok, err
	}
	if (ok || required) && strings.TrimSpace(v) == "" {
		return "", ok, badRequest("Invalid input for field 'name': a non-empty string is required.")
	}
	return v, ok, nil
}

func (f fields) boolean(name string) (v bool, ok bool, err error) {
	raw, ok := f[name]
	if !ok {
		return false, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil || string(raw) == "null" {
		return false, true, badRequest("Invalid input for field '%s': %s is not a boolean.", name, raw)
	}
	return v, true, nil
}

func (f fields) strings(name string) (v []string, ok bool, err error) {
	raw, ok := f[name]
	if !ok {
		return nil, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, true, badRequest("Invalid input for field '%s': %s is not a list of strings.", name, raw)
	}
	return v, true, nil
}

// extra keeps what is left: Keystone stores unknown attributes and shows
// them back.
func (f fields) extra(old map[string]json.RawMessage, known ...string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range old {
		out[k] = v
	}
	for k, v := range f {
		if slices.Contains(known, k) || k == "id" || k == "links" {
			continue
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// view merges a resource's extras under its attributes.
func view(extra map[string]json.RawMessage, attrs map[string]any) map[string]any {
	out := make(map[string]any, len(extra)+len(attrs))
	for k, v := range extra {
		out[k] = v
	}
	for k, v := range attrs {
		out[k] = v
	}
	return out
}

func listLinks(r *http.Request, base string) map[string]any {
	return map[string]any{"self": base + r.URL.RequestURI(), "previous": nil, "next": nil}
}

// missing turns store.ErrNotFound into a 404 naming what was missing.
func missing(err error, what, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound("Could not find %s: %s.", what, id)
	}
	return err
}

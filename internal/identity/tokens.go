package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"

	"muon/internal/store"
)

// The request of POST /v3/auth/tokens.
type authRequest struct {
	Auth *struct {
		Identity *struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User *userRef `json:"user"`
			} `json:"password"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token"`
		} `json:"identity"`
		Scope json.RawMessage `json:"scope"`
	} `json:"auth"`
}

type ref struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type userRef struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	Domain   *ref    `json:"domain"`
	Password *string `json:"password"`
}

type scopeRequest struct {
	Project *struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Domain *ref   `json:"domain"`
	} `json:"project"`
	Domain *ref `json:"domain"`
	System *struct {
		All bool `json:"all"`
	} `json:"system"`
	Unscoped *struct{} `json:"unscoped"`
}

func (s *Service) issueToken(w http.ResponseWriter, r *http.Request) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return badRequest("cannot read the request body")
	}
	if len(b) > maxBody {
		return fail(http.StatusRequestEntityTooLarge, "request is too large")
	}
	var req authRequest
	if err := json.Unmarshal(b, &req); err != nil {
		return badRequest("malformed request body: %v", err)
	}
	if req.Auth == nil || req.Auth.Identity == nil || len(req.Auth.Identity.Methods) == 0 {
		return badRequest("Expecting to find identity in auth.")
	}
	id := req.Auth.Identity
	var scope scopeRequest
	explicitUnscoped := false
	switch raw := string(req.Auth.Scope); {
	case raw == "" || raw == "null":
	case raw == `"unscoped"`:
		explicitUnscoped = true
	default:
		if err := json.Unmarshal(req.Auth.Scope, &scope); err != nil {
			return badRequest("Invalid input for field 'scope': %v", err)
		}
		explicitUnscoped = scope.Unscoped != nil
	}
	now := s.cfg.Now()
	p := &payload{Issued: now.UnixMilli(), Expires: now.Add(s.cfg.TokenTTL).UnixMilli(), Audit: []string{newAuditID()}}
	var tok string
	var v *validated
	err = s.st.View(r.Context(), func(tx store.Tx) error {
		var user *userDoc
		switch {
		case slices.Contains(id.Methods, "password"):
			if id.Password == nil || id.Password.User == nil {
				return badRequest("Expecting to find user in password.")
			}
			u, err := s.checkPassword(r.Context(), tx, id.Password.User)
			if err != nil {
				return err
			}
			user = u
			p.Methods = []string{"password"}
		case slices.Contains(id.Methods, "token"):
			if id.Token == nil || id.Token.ID == "" {
				return badRequest("Expecting to find id in token.")
			}
			orig, err := s.resolve(r.Context(), tx, id.Token.ID)
			if errors.Is(err, ErrInvalidToken) {
				return unauthorized(authRequired)
			} else if err != nil {
				return err
			}
			user = orig.user
			p.Methods = []string{"token"}
			for _, m := range orig.p.Methods {
				if !slices.Contains(p.Methods, m) {
					p.Methods = append(p.Methods, m)
				}
			}
			p.Expires = min(p.Expires, orig.p.Expires)
			p.Audit = append(p.Audit, orig.p.Audit[len(orig.p.Audit)-1])
		default:
			return unauthorized("Attempted to authenticate with an unsupported method.")
		}
		p.User = user.ID
		if err := s.scope(r.Context(), tx, p, user, &scope, explicitUnscoped || slices.Contains(id.Methods, "token")); err != nil {
			return err
		}
		var err error
		if tok, err = encodeToken(s.keys.signing(r.Context()), p); err != nil {
			return err
		}
		v, err = s.resolve(r.Context(), tx, tok)
		if errors.Is(err, ErrInvalidToken) {
			return unauthorized("%v", err)
		}
		return err
	})
	if err != nil {
		return err
	}
	w.Header().Set("X-Subject-Token", tok)
	writeJSON(w, http.StatusCreated, map[string]any{"token": s.tokenView(r, v)})
	return nil
}

// checkPassword finds the user (by id, or by name in a domain) and checks
// the password.
func (s *Service) checkPassword(ctx context.Context, tx store.Tx, ur *userRef) (*userDoc, error) {
	if ur.Password == nil {
		return nil, badRequest("Expecting to find password in user.")
	}
	id := ur.ID
	if id == "" {
		if ur.Name == "" {
			return nil, badRequest("Expecting to find id or name in user.")
		}
		if ur.Domain == nil {
			return nil, badRequest("Expecting to find domain in user.")
		}
		did, err := domainRef(ctx, tx, ur.Domain)
		if err != nil {
			return nil, err
		}
		if id, err = tx.NameID(ctx, nameUser, did, ur.Name); errors.Is(err, store.ErrNotFound) {
			return nil, unauthorized(authRequired)
		} else if err != nil {
			return nil, err
		}
	}
	u, err := get[userDoc](ctx, tx, kindUser, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unauthorized(authRequired)
	} else if err != nil {
		return nil, err
	}
	if !passwordMatches(u.PasswordHash, *ur.Password) {
		s.log.InfoContext(ctx, "authentication failed", "user", u.ID)
		return nil, unauthorized(authRequired)
	}
	if !u.Enabled {
		return nil, unauthorized("The account is disabled for user: %s.", u.ID)
	}
	return u, nil
}

// domainRef finds a domain by id or name; a missing one is a 401, as
// Keystone answers during authentication.
func domainRef(ctx context.Context, tx store.Tx, d *ref) (string, error) {
	if d.ID != "" {
		if _, err := tx.Get(ctx, kindDomain, d.ID); err != nil {
			return "", notFoundAs(err, unauthorized("Could not find domain: %s.", d.ID))
		}
		return d.ID, nil
	}
	if d.Name == "" {
		return "", badRequest("Expecting to find id or name in domain.")
	}
	id, err := tx.NameID(ctx, nameDomain, "", d.Name)
	return id, notFoundAs(err, unauthorized("Could not find domain: %s.", d.Name))
}

// scope fills the payload's scope from the request, or the user's default
// project when none is asked for.
func (s *Service) scope(ctx context.Context, tx store.Tx, p *payload, u *userDoc, sc *scopeRequest, unscoped bool) error {
	switch {
	case sc.Project != nil:
		pid := sc.Project.ID
		if pid == "" {
			if sc.Project.Name == "" || sc.Project.Domain == nil {
				return badRequest("Expecting to find id, or name and domain, in project.")
			}
			did, err := domainRef(ctx, tx, sc.Project.Domain)
			if err != nil {
				return err
			}
			if pid, err = tx.NameID(ctx, nameProject, did, sc.Project.Name); err != nil {
				return notFoundAs(err, unauthorized("Could not find project: %s.", sc.Project.Name))
			}
		}
		if _, _, err := activeProject(ctx, tx, pid); err != nil {
			return tokenFault(err)
		}
		p.Project = pid
	case sc.Domain != nil:
		did, err := domainRef(ctx, tx, sc.Domain)
		if err != nil {
			return err
		}
		if _, err := activeDomain(ctx, tx, did); err != nil {
			return tokenFault(err)
		}
		p.Domain = did
	case sc.System != nil:
		if !sc.System.All {
			return badRequest("Invalid input for field 'system': only {\"all\": true} is supported.")
		}
		p.System = true
	case !unscoped && u.DefaultProjectID != "":
		if _, _, err := activeProject(ctx, tx, u.DefaultProjectID); err != nil {
			return nil // a stale default project leaves the token unscoped
		}
		roles, err := effectiveRoles(ctx, tx, u.ID, u.DefaultProjectID)
		if err != nil {
			return err
		}
		if len(roles) > 0 {
			p.Project = u.DefaultProjectID
		}
		return nil
	default:
		return nil
	}
	target := p.Project + p.Domain
	if p.System {
		target = systemID
	}
	roles, err := effectiveRoles(ctx, tx, u.ID, target)
	if err != nil {
		return err
	}
	if len(roles) == 0 {
		what := "project " + p.Project
		if p.Domain != "" {
			what = "domain " + p.Domain
		} else if p.System {
			what = "the system"
		}
		return unauthorized("User %s has no access to %s.", u.ID, what)
	}
	return nil
}

// tokenFault is an invalid scope as a 401.
func tokenFault(err error) error {
	if errors.Is(err, ErrInvalidToken) {
		return unauthorized("%v", errors.Unwrap(err))
	}
	return err
}

// subject resolves X-Subject-Token for a caller allowed to see it: an
// admin, a service, or the token's own user.
func (s *Service) subject(r *http.Request, caller *validated) (*validated, string, error) {
	tok := r.Header.Get("X-Subject-Token")
	if tok == "" {
		return nil, "", notFound("Could not find token: X-Subject-Token is missing.")
	}
	v, err := s.validate(r.Context(), tok)
	if errors.Is(err, ErrInvalidToken) {
		return nil, "", notFound("Failed to validate token")
	} else if err != nil {
		return nil, "", err
	}
	if !caller.hasRole("admin", "service") && caller.user.ID != v.user.ID {
		return nil, "", forbidden("You are not authorized to perform the requested action: identity:validate_token.")
	}
	return v, tok, nil
}

func (s *Service) checkToken(w http.ResponseWriter, r *http.Request, caller *validated) error {
	v, tok, err := s.subject(r, caller)
	if err != nil {
		return err
	}
	w.Header().Set("X-Subject-Token", tok)
	writeJSON(w, http.StatusOK, map[string]any{"token": s.tokenView(r, v)})
	return nil
}

func (s *Service) revokeToken(w http.ResponseWriter, r *http.Request, caller *validated) error {
	v, _, err := s.subject(r, caller)
	if err != nil {
		return err
	}
	now := s.cfg.Now().UnixMilli()
	prune := now-s.pruned.Load() > pruneEvery.Milliseconds()
	err = s.update(r.Context(), func(tx store.Tx) error {
		// Expired revocations can go (their tokens are invalid anyway),
		// looked for at most every pruneEvery, not on every revocation.
		if prune {
			old, err := list[revocationDoc](r.Context(), tx, store.Filter{Kind: kindRevocation})
			if err != nil {
				return err
			}
			for _, o := range old {
				if o.ExpiresAt < now && o.ID != "" {
					if err := tx.Delete(r.Context(), kindRevocation, o.ID); err != nil {
						return err
					}
				}
			}
		}
		id := revocationID(v.p.Audit[0])
		if _, err := tx.Get(r.Context(), kindRevocation, id); err == nil {
			return nil
		}
		return put(r.Context(), tx, true, kindRevocation, id, v.user.ID, revocationDoc{ID: id, ExpiresAt: v.p.Expires})
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	if prune {
		s.pruned.Store(now)
	}
	s.log.InfoContext(r.Context(), "token revoked", "user", v.user.ID, "audit_id", v.p.Audit[0])
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// tokenView is the token as Keystone shows it.
func (s *Service) tokenView(r *http.Request, v *validated) map[string]any {
	t := map[string]any{
		"methods":    v.p.Methods,
		"audit_ids":  v.p.Audit,
		"issued_at":  fmtTime(v.p.Issued),
		"expires_at": fmtTime(v.p.Expires),
		"user": map[string]any{
			"id": v.user.ID, "name": v.user.Name, "password_expires_at": nil,
			"domain": map[string]string{"id": v.userDomain.ID, "name": v.userDomain.Name},
		},
	}
	scoped := true
	switch {
	case v.project != nil:
		t["project"] = map[string]any{
			"id": v.project.ID, "name": v.project.Name,
			"domain": map[string]string{"id": v.projectDomain.ID, "name": v.projectDomain.Name},
		}
		t["is_domain"] = false
	case v.domain != nil:
		t["domain"] = map[string]string{"id": v.domain.ID, "name": v.domain.Name}
	case v.p.System:
		t["system"] = map[string]bool{"all": true}
	default:
		scoped = false
	}
	if scoped {
		roles := make([]map[string]string, len(v.roles))
		for i, role := range v.roles {
			roles[i] = map[string]string{"id": role.ID, "name": role.Name}
		}
		t["roles"] = roles
		if _, no := r.URL.Query()["nocatalog"]; !no {
			t["catalog"] = s.catalog(r)
		}
	}
	return t
}

// The catalog: this service and the Networking API.

type endpoint struct {
	ID        string `json:"id"`
	Interface string `json:"interface"`
	Region    string `json:"region"`
	RegionID  string `json:"region_id"`
	URL       string `json:"url"`
}

type catalogService struct {
	ID        string     `json:"id"`
	Type      string     `json:"type"`
	Name      string     `json:"name"`
	Endpoints []endpoint `json:"endpoints"`
}

func stableID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func (s *Service) catalog(r *http.Request) []catalogService {
	svc := func(typ, name, url string) catalogService {
		c := catalogService{ID: stableID("service", typ), Type: typ, Name: name, Endpoints: []endpoint{}}
		for _, iface := range []string{"public", "internal", "admin"} {
			c.Endpoints = append(c.Endpoints, endpoint{
				ID: stableID("endpoint", typ, iface), Interface: iface,
				Region: s.cfg.Region, RegionID: s.cfg.Region, URL: url,
			})
		}
		return c
	}
	out := []catalogService{svc("identity", "keystone", s.base(r)+"/v3")}
	if s.cfg.NetworkURL != "" {
		out = append(out, svc("network", "neutron", s.cfg.NetworkURL))
	}
	return out
}

func (s *Service) authCatalog(w http.ResponseWriter, r *http.Request, v *validated) error {
	if v.project == nil && v.domain == nil && !v.p.System {
		return forbidden("A scoped token is required to produce a service catalog.")
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"catalog": s.catalog(r), "links": map[string]string{"self": s.base(r) + "/v3/auth/catalog"},
	})
	return nil
}

func (s *Service) listServices(w http.ResponseWriter, r *http.Request, _ *validated) error {
	var out []map[string]any
	for _, c := range s.catalog(r) {
		out = append(out, map[string]any{
			"id": c.ID, "type": c.Type, "name": c.Name, "enabled": true, "description": "",
			"links": map[string]string{"self": s.base(r) + "/v3/services/" + c.ID},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": out, "links": listLinks(r, s.base(r))})
	return nil
}

func (s *Service) listEndpoints(w http.ResponseWriter, r *http.Request, _ *validated) error {
	out := []map[string]any{}
	for _, c := range s.catalog(r) {
		for _, e := range c.Endpoints {
			out = append(out, map[string]any{
				"id": e.ID, "interface": e.Interface, "region": e.Region, "region_id": e.RegionID,
				"url": e.URL, "service_id": c.ID, "enabled": true,
				"links": map[string]string{"self": s.base(r) + "/v3/endpoints/" + e.ID},
			})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoints": out, "links": listLinks(r, s.base(r))})
	return nil
}

func (s *Service) listRegions(w http.ResponseWriter, r *http.Request, _ *validated) error {
	writeJSON(w, http.StatusOK, map[string]any{"regions": []map[string]any{{
		"id": s.cfg.Region, "description": "", "parent_region_id": nil,
		"links": map[string]string{"self": s.base(r) + "/v3/regions/" + s.cfg.Region},
	}}, "links": listLinks(r, s.base(r))})
	return nil
}

// targets lists the projects or domains a user holds a role on, enabled
// ones only when active is set.
func targets[T any](ctx context.Context, tx store.Tx, kind, user string, active func(*T) bool) ([]*T, error) {
	gs, err := tx.Grants(ctx, store.Grant{ActorID: user})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, g := range gs {
		if !slices.Contains(ids, g.TargetID) {
			ids = append(ids, g.TargetID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	all, err := list[T](ctx, tx, store.Filter{Kind: kind, IDs: ids})
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, t := range all {
		if active == nil || active(t) {
			out = append(out, t)
		}
	}
	return out, nil
}

func (s *Service) authProjects(w http.ResponseWriter, r *http.Request, v *validated) error {
	return s.writeUserProjects(w, r, v.user.ID, true)
}

func (s *Service) writeUserProjects(w http.ResponseWriter, r *http.Request, user string, onlyEnabled bool) error {
	var ps []*projectDoc
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		var err error
		ps, err = targets(r.Context(), tx, kindProject, user, func(p *projectDoc) bool { return !onlyEnabled || p.Enabled })
		return err
	})
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, s.projectView(r, p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": out, "links": listLinks(r, s.base(r))})
	return nil
}

func (s *Service) authDomains(w http.ResponseWriter, r *http.Request, v *validated) error {
	var ds []*domainDoc
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		var err error
		ds, err = targets(r.Context(), tx, kindDomain, v.user.ID, func(d *domainDoc) bool { return d.Enabled })
		return err
	})
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(ds))
	for _, d := range ds {
		out = append(out, s.domainView(r, d))
	}
	writeJSON(w, http.StatusOK, map[string]any{"domains": out, "links": listLinks(r, s.base(r))})
	return nil
}

func (s *Service) authSystem(w http.ResponseWriter, r *http.Request, v *validated) error {
	var n int
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		gs, err := tx.Grants(r.Context(), store.Grant{ActorID: v.user.ID, TargetID: systemID})
		n = len(gs)
		return err
	})
	if err != nil {
		return err
	}
	sys := []map[string]bool{}
	if n > 0 {
		sys = append(sys, map[string]bool{"all": true})
	}
	writeJSON(w, http.StatusOK, map[string]any{"system": sys, "links": listLinks(r, s.base(r))})
	return nil
}

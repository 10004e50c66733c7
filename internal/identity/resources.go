package identity

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"muon/internal/store"
)

// Domains, projects, users and roles: create, list, show, update, delete.

func (s *Service) domainView(r *http.Request, d *domainDoc) map[string]any {
	return view(d.Extra, map[string]any{
		"id": d.ID, "name": d.Name, "description": d.Description, "enabled": d.Enabled,
		"tags": nonNil(d.Tags), "options": map[string]any{},
		"links": map[string]string{"self": s.base(r) + "/v3/domains/" + d.ID},
	})
}

func (s *Service) projectView(r *http.Request, p *projectDoc) map[string]any {
	return view(p.Extra, map[string]any{
		"id": p.ID, "name": p.Name, "domain_id": p.DomainID, "parent_id": p.ParentID,
		"description": p.Description, "enabled": p.Enabled, "is_domain": false,
		"tags": nonNil(p.Tags), "options": map[string]any{},
		"links": map[string]string{"self": s.base(r) + "/v3/projects/" + p.ID},
	})
}

func (s *Service) userView(r *http.Request, u *userDoc) map[string]any {
	v := view(u.Extra, map[string]any{
		"id": u.ID, "name": u.Name, "domain_id": u.DomainID, "enabled": u.Enabled,
		"password_expires_at": nil, "options": map[string]any{},
		"links": map[string]string{"self": s.base(r) + "/v3/users/" + u.ID},
	})
	if u.DefaultProjectID != "" {
		v["default_project_id"] = u.DefaultProjectID
	}
	if u.Description != "" {
		v["description"] = u.Description
	}
	if u.Email != "" {
		v["email"] = u.Email
	}
	return v
}

func (s *Service) roleView(r *http.Request, role *roleDoc) map[string]any {
	v := view(role.Extra, map[string]any{
		"id": role.ID, "name": role.Name, "domain_id": nil, "options": map[string]any{},
		"links": map[string]string{"self": s.base(r) + "/v3/roles/" + role.ID},
	})
	if role.Description != "" {
		v["description"] = role.Description
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// claimName records a unique name; taken is a 409 as Keystone words it.
func claimName(ctx context.Context, tx store.Tx, kind, scope, name, id, what string) error {
	ok, err := tx.ClaimName(ctx, kind, scope, name, id)
	if err != nil {
		return err
	}
	if !ok {
		if scope != "" {
			return conflict("Conflict occurred attempting to store %s - Duplicate entry found with name %s at domain ID %s.", what, name, scope)
		}
		return conflict("Conflict occurred attempting to store %s - Duplicate entry found with name %s.", what, name)
	}
	return nil
}

func rename(ctx context.Context, tx store.Tx, kind, scope, old, name, id, what string) error {
	if old == name {
		return nil
	}
	if err := tx.ReleaseName(ctx, kind, scope, old); err != nil {
		return err
	}
	return claimName(ctx, tx, kind, scope, name, id, what)
}

// writeOne answers with one member.
func writeOne(w http.ResponseWriter, status int, member string, v map[string]any) error {
	writeJSON(w, status, map[string]any{member: v})
	return nil
}

// boolFilter reads ?enabled=true|false (absent: nil).
func boolFilter(r *http.Request, name string) (*bool, error) {
	v, ok := r.URL.Query()[name]
	if !ok || len(v) == 0 {
		return nil, nil
	}
	switch strings.ToLower(v[0]) {
	case "true", "1", "yes", "on", "":
		t := true
		return &t, nil
	case "false", "0", "no", "off":
		f := false
		return &f, nil
	}
	return nil, badRequest("Invalid input for filter '%s': %s is not a boolean.", name, v[0])
}

// Domains.

func (s *Service) createDomain(w http.ResponseWriter, r *http.Request, _ *validated) error {
	f, err := decodeBody(r, "domain")
	if err != nil {
		return err
	}
	d := &domainDoc{ID: newID(), Enabled: true}
	if d.Name, _, err = f.name(true); err != nil {
		return err
	}
	if err := d.apply(f); err != nil {
		return err
	}
	err = s.update(r.Context(), func(tx store.Tx) error {
		if err := put(r.Context(), tx, true, kindDomain, d.ID, "", d); err != nil {
			return err
		}
		return claimName(r.Context(), tx, nameDomain, "", d.Name, d.ID, "domain")
	})
	if err != nil {
		return err
	}
	return writeOne(w, http.StatusCreated, "domain", s.domainView(r, d))
}

// apply sets the attributes other than the name.
func (d *domainDoc) apply(f fields) error {
	var err error
	if v, ok, err := f.str("description", 0); err != nil {
		return err
	} else if ok {
		d.Description = v
	}
	if v, ok, err := f.boolean("enabled"); err != nil {
		return err
	} else if ok {
		d.Enabled = v
	}
	if v, ok, err := f.strings("tags"); err != nil {
		return err
	} else if ok {
		d.Tags = v
	}
	d.Extra = f.extra(d.Extra, "name", "description", "enabled", "tags", "options")
	return err
}

func (s *Service) listDomains(w http.ResponseWriter, r *http.Request, _ *validated) error {
	enabled, err := boolFilter(r, "enabled")
	if err != nil {
		return err
	}
	name, byName := r.URL.Query()["name"]
	var ds []*domainDoc
	err = s.st.View(r.Context(), func(tx store.Tx) error {
		var err error
		ds, err = list[domainDoc](r.Context(), tx, store.Filter{Kind: kindDomain})
		return err
	})
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, d := range ds {
		if (byName && d.Name != name[0]) || (enabled != nil && d.Enabled != *enabled) {
			continue
		}
		out = append(out, s.domainView(r, d))
	}
	writeJSON(w, http.StatusOK, map[string]any{"domains": out, "links": listLinks(r, s.base(r))})
	return nil
}

func (s *Service) showDomain(w http.ResponseWriter, r *http.Request, _ *validated) error {
	id := r.PathValue("id")
	var d *domainDoc
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		var err error
		d, err = get[domainDoc](r.Context(), tx, kindDomain, id)
		return missing(err, "domain", id)
	})
	if err != nil {
		return err
	}
	return writeOne(w, http.StatusOK, "domain", s.domainView(r, d))
}

func (s *Service) updateDomain(w http.ResponseWriter, r *http.Request, _ *validated) error {
	id := r.PathValue("id")
	f, err := decodeBody(r, "domain")
	if err != nil {
		return err
	}
	var d *domainDoc
	err = s.update(r.Context(), func(tx store.Tx) error {
		var err error
		if d, err = get[domainDoc](r.Context(), tx, kindDomain, id); err != nil {
			return missing(err, "domain", id)
		}
		if name, ok, err := f.name(false); err != nil {
			return err
		} else if ok {
			if err := rename(r.Context(), tx, nameDomain, "", d.Name, name, id, "domain"); err != nil {
				return err
			}
			d.Name = name
		}
		if err := d.apply(f); err != nil {
			return err
		}
		return put(r.Context(), tx, false, kindDomain, id, "", d)
	})
	if err != nil {
		return err
	}
	return writeOne(w, http.StatusOK, "domain", s.domainView(r, d))
}

// deleteDomain deletes a disabled domain with its projects and users, as
// Keystone does.
func (s *Service) deleteDomain(w http.ResponseWriter, r *http.Request, _ *validated) error {
	id := r.PathValue("id")
	err := s.update(r.Context(), func(tx store.Tx) error {
		d, err := get[domainDoc](r.Context(), tx, kindDomain, id)
		if err != nil {
			return missing(err, "domain", id)
		}
		if d.Enabled {
			return forbidden("Cannot delete a domain that is enabled, please disable it first.")
		}
		for _, kind := range []string{kindProject, kindUser} {
			rs, err := tx.List(r.Context(), store.Filter{Kind: kind, Parents: []string{id}})
			if err != nil {
				return err
			}
			for _, rec := range rs {
				if err := tx.Delete(r.Context(), kind, rec.ID); err != nil {
					return err
				}
			}
		}
		return tx.Delete(r.Context(), kindDomain, id)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Projects.

// callerDomain is where a new project or user goes when the request names
// no domain: the caller's scope's domain.
func callerDomain(v *validated) string {
	switch {
	case v.project != nil:
		return v.project.DomainID
	case v.domain != nil:
		return v.domain.ID
	}
	return "default"
}

func (s *Service) createProject(w http.ResponseWriter, r *http.Request, caller *validated) error {
	f, err := decodeBody(r, "project")
	if err != nil {
		return err
	}
	p := &projectDoc{ID: newID(), Enabled: true, Tags: []string{}}
	if p.Name, _, err = f.name(true); err != nil {
		return err
	}
	if p.DomainID, _, err = f.str("domain_id", 64); err != nil {
		return err
	}
	if p.ParentID, _, err = f.str("parent_id", 64); err != nil {
		return err
	}
	if isDomain, _, err := f.boolean("is_domain"); err != nil {
		return err
	} else if isDomain {
		return badRequest("Invalid input for field 'is_domain': projects acting as domains are not supported.")
	}
	if err := p.apply(f); err != nil {
		return err
	}
	err = s.update(r.Context(), func(tx store.Tx) error {
		if p.ParentID != "" {
			parent, err := get[projectDoc](r.Context(), tx, kindProject, p.ParentID)
			if errors.Is(err, store.ErrNotFound) {
				if p.DomainID == "" {
					p.DomainID = p.ParentID // the parent may be the domain
				}
				if p.ParentID != p.DomainID {
					return notFound("Could not find project: %s.", p.ParentID)
				}
			} else if err != nil {
				return err
			} else {
				if p.DomainID == "" {
					p.DomainID = parent.DomainID
				}
				if p.DomainID != parent.DomainID {
					return badRequest("Cannot create project, the parent (%s) is in a different domain.", p.ParentID)
				}
			}
		}
		if p.DomainID == "" {
			p.DomainID = callerDomain(caller)
		}
		if p.ParentID == "" {
			p.ParentID = p.DomainID
		}
		if _, err := tx.Get(r.Context(), kindDomain, p.DomainID); err != nil {
			return missing(err, "domain", p.DomainID)
		}
		if err := put(r.Context(), tx, true, kindProject, p.ID, p.DomainID, p); err != nil {
			return err
		}
		return claimName(r.Context(), tx, nameProject, p.DomainID, p.Name, p.ID, "project")
	})
	if err != nil {
		return err
	}
	return writeOne(w, http.StatusCreated, "project", s.projectView(r, p))
}

func (p *projectDoc) apply(f fields) error {
	if v, ok, err := f.str("description", 0); err != nil {
		return err
	} else if ok {
		p.Description = v
	}
	if v, ok, err := f.boolean("enabled"); err != nil {
		return err
	} else if ok {
		p.Enabled = v
	}
	if v, ok, err := f.strings("tags"); err != nil {
		return err
	} else if ok {
		p.Tags = v
	}
	p.Extra = f.extra(p.Extra, "name", "domain_id", "parent_id", "is_domain", "description", "enabled", "tags", "options")
	return nil
}

func (s *Service) listProjects(w http.ResponseWriter, r *http.Request, _ *validated) error {
	q := r.URL.Query()
	enabled, err := boolFilter(r, "enabled")
	if err != nil {
		return err
	}
	isDomain, err := boolFilter(r, "is_domain")
	if err != nil {
		return err
	}
	flt := store.Filter{Kind: kindProject}
	if d := q.Get("domain_id"); q.Has("domain_id") {
		flt.Parents = []string{d}
	}
	var ps []*projectDoc
	err = s.st.View(r.Context(), func(tx store.Tx) error {
		var err error
		ps, err = list[projectDoc](r.Context(), tx, flt)
		return err
	})
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, p := range ps {
		if (q.Has("name") && p.Name != q.Get("name")) || (q.Has("parent_id") && p.ParentID != q.Get("parent_id")) ||
			(enabled != nil && p.Enabled != *enabled) || (isDomain != nil && *isDomain) {
			continue
		}
		out = append(out, s.projectView(r, p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": out, "links": listLinks(r, s.base(r))})
	return nil
}

// showProject is for admins and for the members of the project.
func (s *Service) showProject(w http.ResponseWriter, r *http.Request, caller *validated) error {
	id := r.PathValue("id")
	var p *projectDoc
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		if !caller.hasRole("admin") {
			gs, err := tx.Grants(r.Context(), store.Grant{ActorID: caller.user.ID, TargetID: id})
			if err != nil {
				return err
			}
			if len(gs) == 0 {
				return forbidden("You are not authorized to perform the requested action: identity:get_project.")
			}
		}
		var err error
		p, err = get[projectDoc](r.Context(), tx, kindProject, id)
		return missing(err, "project", id)
	})
	if err != nil {
		return err
	}
	return writeOne(w, http.StatusOK, "project", s.projectView(r, p))
}

func (s *Service) updateProject(w http.ResponseWriter, r *http.Request, _ *validated) error {
	id := r.PathValue("id")
	f, err := decodeBody(r, "project")
	if err != nil {
		return err
	}
	var p *projectDoc
	err = s.update(r.Context(), func(tx store.Tx) error {
		var err error
		if p, err = get[projectDoc](r.Context(), tx, kindProject, id); err != nil {
			return missing(err, "project", id)
		}
		if d, ok, err := f.str("domain_id", 64); err != nil {
			return err
		} else if ok && d != p.DomainID {
			return badRequest("Cannot change Domain ID.")
		}
		if pid, ok, err := f.str("parent_id", 64); err != nil {
			return err
		} else if ok && pid != p.ParentID {
			return forbidden("Cannot change the parent of a project.")
		}
		if name, ok, err := f.name(false); err != nil {
			return err
		} else if ok {
			if err := rename(r.Context(), tx, nameProject, p.DomainID, p.Name, name, id, "project"); err != nil {
				return err
			}
			p.Name = name
		}
		if err := p.apply(f); err != nil {
			return err
		}
		return put(r.Context(), tx, false, kindProject, id, p.DomainID, p)
	})
	if err != nil {
		return err
	}
	return writeOne(w, http.StatusOK, "project", s.projectView(r, p))
}

func (s *Service) deleteProject(w http.ResponseWriter, r *http.Request, _ *validated) error {
	id := r.PathValue("id")
	err := s.update(r.Context(), func(tx store.Tx) error {
		p, err := get[projectDoc](r.Context(), tx, kindProject, id)
		if err != nil {
			return missing(err, "project", id)
		}
		siblings, err := list[projectDoc](r.Context(), tx, store.Filter{Kind: kindProject, Parents: []string{p.DomainID}})
		if err != nil {
			return err
		}
		for _, c := range siblings {
			if c.ParentID == id {
				return forbidden("Cannot delete project %s: it has child projects.", id)
			}
		}
		return tx.Delete(r.Context(), kindProject, id)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Users.

// bcrypt reads at most 72 bytes of a password; Keystone truncates too.
func truncate(pw string) []byte {
	b := []byte(pw)
	if len(b) > 72 {
		b = b[:72]
	}
	return b
}

// hashCost is bcrypt's work factor (tests lower it).
var hashCost = bcrypt.DefaultCost

func hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword(truncate(pw), hashCost)
	return string(h), err
}

func passwordMatches(hash, pw string) bool {
	return hash != "" && bcrypt.CompareHashAndPassword([]byte(hash), truncate(pw)) == nil
}

func (s *Service) createUser(w http.ResponseWriter, r *http.Request, caller *validated) error {
	f, err := decodeBody(r, "user")
	if err != nil {
		return err
	}
	u := &userDoc{ID: newID(), Enabled: true}
	if u.Name, _, err = f.name(true); err != nil {
		return err
	}
	if u.DomainID, _, err = f.str("domain_id", 64); err != nil {
		return err
	}
	if u.DomainID == "" {
		u.DomainID = callerDomain(caller)
	}
	if err := s.applyUser(u, f); err != nil {
		return err
	}
	err = s.update(r.Context(), func(tx store.Tx) error {
		if _, err := tx.Get(r.Context(), kindDomain, u.DomainID); err != nil {
			return missing(err, "domain", u.DomainID)
		}
		if err := put(r.Context(), tx, true, kindUser, u.ID, u.DomainID, u); err != nil {
			return err
		}
		return claimName(r.Context(), tx, nameUser, u.DomainID, u.Name, u.ID, "user")
	})
	if err != nil {
		return err
	}
	return writeOne(w, http.StatusCreated, "user", s.userView(r, u))
}

// applyUser sets the attributes other than the name and domain; a new
// password revokes the user's tokens.
func (s *Service) applyUser(u *userDoc, f fields) error {
	if pw, ok, err := f.str("password", 4096); err != nil {
		return err
	} else if ok {
		u.PasswordHash = ""
		if pw != "" {
			h, err := hashPassword(pw)
			if err != nil {
				return err
			}
			u.PasswordHash = h
		}
		u.RevokedBefore = s.cfg.Now().UnixMilli()
	}
	if v, ok, err := f.boolean("enabled"); err != nil {
		return err
	} else if ok {
		u.Enabled = v
	}
	for _, a := range []struct {
		name string
		dst  *string
	}{{"default_project_id", &u.DefaultProjectID}, {"description", &u.Description}, {"email", &u.Email}} {
		if v, ok, err := f.str(a.name, 0); err != nil {
			return err
		} else if ok {
			*a.dst = v
		}
	}
	u.Extra = f.extra(u.Extra, "name", "domain_id", "password", "enabled", "default_project_id", "description", "email", "options", "federated")
	return nil
}

func (s *Service) listUsers(w http.ResponseWriter, r *http.Request, _ *validated) error {
	q := r.URL.Query()
	enabled, err := boolFilter(r, "enabled")
	if err != nil {
		return err
	}
	flt := store.Filter{Kind: kindUser}
	if q.Has("domain_id") {
		flt.Parents = []string{q.Get("domain_id")}
	}
	var us []*userDoc
	err = s.st.View(r.Context(), func(tx store.Tx) error {
		var err error
		us, err = list[userDoc](r.Context(), tx, flt)
		return err
	})
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, u := range us {
		if (q.Has("name") && u.Name != q.Get("name")) || (enabled != nil && u.Enabled != *enabled) {
			continue
		}
		out = append(out, s.userView(r, u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out, "links": listLinks(r, s.base(r))})
	return nil
}

// self allows admins and the user itself.
func self(caller *validated, id, action string) error {
	if caller.hasRole("admin") || caller.user.ID == id {
		return nil
	}
	return forbidden("You are not authorized to perform the requested action: identity:%s.", action)
}

func (s *Service) showUser(w http.ResponseWriter, r *http.Request, caller *validated) error {
	id := r.PathValue("id")
	if err := self(caller, id, "get_user"); err != nil {
		return err
	}
	var u *userDoc
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		var err error
		u, err = get[userDoc](r.Context(), tx, kindUser, id)
		return missing(err, "user", id)
	})
	if err != nil {
		return err
	}
	return writeOne(w, http.StatusOK, "user", s.userView(r, u))
}

func (s *Service) updateUser(w http.ResponseWriter, r *http.Request, _ *validated) error {
	id := r.PathValue("id")
	f, err := decodeBody(r, "user")
	if err != nil {
		return err
	}
	var u *userDoc
	err = s.update(r.Context(), func(tx store.Tx) error {
		var err error
		if u, err = get[userDoc](r.Context(), tx, kindUser, id); err != nil {
			return missing(err, "user", id)
		}
		if d, ok, err := f.str("domain_id", 64); err != nil {
			return err
		} else if ok && d != u.DomainID {
			return badRequest("Cannot change Domain ID.")
		}
		if name, ok, err := f.name(false); err != nil {
			return err
		} else if ok {
			if err := rename(r.Context(), tx, nameUser, u.DomainID, u.Name, name, id, "user"); err != nil {
				return err
			}
			u.Name = name
		}
		if err := s.applyUser(u, f); err != nil {
			return err
		}
		return put(r.Context(), tx, false, kindUser, id, u.DomainID, u)
	})
	if err != nil {
		return err
	}
	return writeOne(w, http.StatusOK, "user", s.userView(r, u))
}

func (s *Service) deleteUser(w http.ResponseWriter, r *http.Request, _ *validated) error {
	id := r.PathValue("id")
	err := s.update(r.Context(), func(tx store.Tx) error {
		return missing(tx.Delete(r.Context(), kindUser, id), "user", id)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// userProjects lists the projects a user holds a role on (for admins and
// the user itself).
func (s *Service) userProjects(w http.ResponseWriter, r *http.Request, caller *validated) error {
	id := r.PathValue("id")
	if err := self(caller, id, "list_user_projects"); err != nil {
		return err
	}
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		_, err := tx.Get(r.Context(), kindUser, id)
		return missing(err, "user", id)
	})
	if err != nil {
		return err
	}
	return s.writeUserProjects(w, r, id, false)
}

// changePassword is POST /v3/users/{id}/password: the original password
// authorises it.
func (s *Service) changePassword(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	f, err := decodeBody(r, "user")
	if err != nil {
		return err
	}
	orig, _, err := f.str("original_password", 4096)
	if err != nil {
		return err
	}
	pw, ok, err := f.str("password", 4096)
	if err != nil {
		return err
	}
	if !ok || pw == "" {
		return badRequest("Expecting to find password in user.")
	}
	var u *userDoc
	err = s.st.View(r.Context(), func(tx store.Tx) error {
		var err error
		u, err = get[userDoc](r.Context(), tx, kindUser, id)
		return notFoundAs(err, unauthorized(authRequired))
	})
	if err != nil {
		return err
	}
	if !passwordMatches(u.PasswordHash, orig) {
		return unauthorized(authRequired)
	}
	h, err := hashPassword(pw)
	if err != nil {
		return err
	}
	err = s.update(r.Context(), func(tx store.Tx) error {
		u, err := get[userDoc](r.Context(), tx, kindUser, id)
		if err != nil {
			return notFoundAs(err, unauthorized(authRequired))
		}
		u.PasswordHash, u.RevokedBefore = h, s.cfg.Now().UnixMilli()
		return put(r.Context(), tx, false, kindUser, id, u.DomainID, u)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Roles.

func (s *Service) createRole(w http.ResponseWriter, r *http.Request, _ *validated) error {
	f, err := decodeBody(r, "role")
	if err != nil {
		return err
	}
	role := &roleDoc{ID: newID()}
	if role.Name, _, err = f.name(true); err != nil {
		return err
	}
	if d, _, err := f.str("domain_id", 64); err != nil {
		return err
	} else if d != "" {
		return badRequest("Invalid input for field 'domain_id': domain-specific roles are not supported.")
	}
	if err := role.apply(f); err != nil {
		return err
	}
	err = s.update(r.Context(), func(tx store.Tx) error {
		if err := put(r.Context(), tx, true, kindRole, role.ID, "", role); err != nil {
			return err
		}
		return claimName(r.Context(), tx, nameRole, "", role.Name, role.ID, "role")
	})
	if err != nil {
		return err
	}
	return writeOne(w, http.StatusCreated, "role", s.roleView(r, role))
}

func (role *roleDoc) apply(f fields) error {
	if v, ok, err := f.str("description", 0); err != nil {
		return err
	} else if ok {
		role.Description = v
	}
	role.Extra = f.extra(role.Extra, "name", "domain_id", "description", "options")
	return nil
}

func (s *Service) listRoles(w http.ResponseWriter, r *http.Request, _ *validated) error {
	q := r.URL.Query()
	var rs []*roleDoc
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		var err error
		rs, err = list[roleDoc](r.Context(), tx, store.Filter{Kind: kindRole})
		return err
	})
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, role := range rs {
		if (q.Has("name") && role.Name != q.Get("name")) || (q.Get("domain_id") != "") {
			continue
		}
		out = append(out, s.roleView(r, role))
	}
	writeJSON(w, http.StatusOK, map[string]any{"roles": out, "links": listLinks(r, s.base(r))})
	return nil
}

func (s *Service) showRole(w http.ResponseWriter, r *http.Request, _ *validated) error {
	id := r.PathValue("id")
	var role *roleDoc
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		var err error
		role, err = get[roleDoc](r.Context(), tx, kindRole, id)
		return missing(err, "role", id)
	})
	if err != nil {
		return err
	}
	return writeOne(w, http.StatusOK, "role", s.roleView(r, role))
}

func (s *Service) updateRole(w http.ResponseWriter, r *http.Request, _ *validated) error {
	id := r.PathValue("id")
	f, err := decodeBody(r, "role")
	if err != nil {
		return err
	}
	var role *roleDoc
	err = s.update(r.Context(), func(tx store.Tx) error {
		var err error
		if role, err = get[roleDoc](r.Context(), tx, kindRole, id); err != nil {
			return missing(err, "role", id)
		}
		if name, ok, err := f.name(false); err != nil {
			return err
		} else if ok {
			if err := rename(r.Context(), tx, nameRole, "", role.Name, name, id, "role"); err != nil {
				return err
			}
			role.Name = name
		}
		if err := role.apply(f); err != nil {
			return err
		}
		return put(r.Context(), tx, false, kindRole, id, "", role)
	})
	if err != nil {
		return err
	}
	return writeOne(w, http.StatusOK, "role", s.roleView(r, role))
}

func (s *Service) deleteRole(w http.ResponseWriter, r *http.Request, _ *validated) error {
	id := r.PathValue("id")
	err := s.update(r.Context(), func(tx store.Tx) error {
		return missing(tx.Delete(r.Context(), kindRole, id), "role", id)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

package identity

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"muon/internal/store"
)

// Role assignments: a user's roles on a project, a domain or the system.

// grantTarget reads the target of /v3/{projects,domains}/{target}/users/...
// or /v3/system/users/...: its record kind and id.
func grantTarget(r *http.Request) (kind, id, what string) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/v3/projects/"):
		return kindProject, r.PathValue("target"), "project"
	case strings.HasPrefix(r.URL.Path, "/v3/domains/"):
		return kindDomain, r.PathValue("target"), "domain"
	}
	return kindSystem, systemID, "system"
}

// grantOf checks that the user, the target and (if named) the role exist.
func grantOf(ctx context.Context, tx store.Tx, r *http.Request) (store.Grant, error) {
	kind, target, what := grantTarget(r)
	g := store.Grant{ActorID: r.PathValue("user"), TargetID: target, RoleID: r.PathValue("role")}
	if _, err := tx.Get(ctx, kind, target); err != nil {
		return g, missing(err, what, target)
	}
	if _, err := tx.Get(ctx, kindUser, g.ActorID); err != nil {
		return g, missing(err, "user", g.ActorID)
	}
	if g.RoleID != "" {
		if _, err := tx.Get(ctx, kindRole, g.RoleID); err != nil {
			return g, missing(err, "role", g.RoleID)
		}
	}
	return g, nil
}

func (s *Service) putGrant(w http.ResponseWriter, r *http.Request, _ *validated) error {
	err := s.update(r.Context(), func(tx store.Tx) error {
		g, err := grantOf(r.Context(), tx, r)
		if err != nil {
			return err
		}
		_, err = tx.AddGrant(r.Context(), g)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) checkGrant(w http.ResponseWriter, r *http.Request, _ *validated) error {
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		g, err := grantOf(r.Context(), tx, r)
		if err != nil {
			return err
		}
		gs, err := tx.Grants(r.Context(), g)
		if err != nil {
			return err
		}
		if len(gs) == 0 {
			return notFound("Could not find role assignment.")
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) deleteGrant(w http.ResponseWriter, r *http.Request, _ *validated) error {
	err := s.update(r.Context(), func(tx store.Tx) error {
		g, err := grantOf(r.Context(), tx, r)
		if err != nil {
			return err
		}
		if err := tx.RemoveGrant(r.Context(), g); errors.Is(err, store.ErrNotFound) {
			return notFound("Could not find role assignment.")
		} else if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listGrants lists a user's direct roles on a target.
func (s *Service) listGrants(w http.ResponseWriter, r *http.Request, _ *validated) error {
	var roles []*roleDoc
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		g, err := grantOf(r.Context(), tx, r)
		if err != nil {
			return err
		}
		gs, err := tx.Grants(r.Context(), g)
		if err != nil {
			return err
		}
		for _, g := range gs {
			role, err := get[roleDoc](r.Context(), tx, kindRole, g.RoleID)
			if err != nil {
				return err
			}
			roles = append(roles, role)
		}
		return nil
	})
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, role := range roles {
		out = append(out, s.roleView(r, role))
	}
	writeJSON(w, http.StatusOK, map[string]any{"roles": out, "links": listLinks(r, s.base(r))})
	return nil
}

// listAssignments is GET /v3/role_assignments with the filters user.id,
// role.id, scope.project.id, scope.domain.id, scope.system, effective and
// include_names.
func (s *Service) listAssignments(w http.ResponseWriter, r *http.Request, _ *validated) error {
	q := r.URL.Query()
	f := store.Grant{ActorID: q.Get("user.id"), RoleID: q.Get("role.id")}
	scopes := 0
	for _, k := range []string{"scope.project.id", "scope.domain.id", "scope.system"} {
		if q.Has(k) {
			scopes++
		}
	}
	if scopes > 1 {
		return badRequest("Specify one of scope.project.id, scope.domain.id and scope.system.")
	}
	switch {
	case q.Has("scope.project.id"):
		f.TargetID = q.Get("scope.project.id")
	case q.Has("scope.domain.id"):
		f.TargetID = q.Get("scope.domain.id")
	case q.Has("scope.system"):
		f.TargetID = systemID
	}
	if q.Has("group.id") {
		writeJSON(w, http.StatusOK, map[string]any{"role_assignments": []any{}, "links": listLinks(r, s.base(r))})
		return nil
	}
	effective, names := queryTrue(r, "effective"), queryTrue(r, "include_names")
	base := s.base(r)
	out := []map[string]any{}
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		// With effective, a role filter applies after implication.
		lf := f
		if effective {
			lf.RoleID = ""
		}
		gs, err := tx.Grants(r.Context(), lf)
		if err != nil {
			return err
		}
		l := &loader{ctx: r.Context(), tx: tx}
		type key struct{ actor, target string }
		done := map[key]bool{}
		for _, g := range gs {
			roles := []string{g.RoleID}
			if effective {
				k := key{g.ActorID, g.TargetID}
				if done[k] {
					continue
				}
				done[k] = true
				eff, err := effectiveRoles(r.Context(), tx, g.ActorID, g.TargetID)
				if err != nil {
					return err
				}
				roles = roles[:0]
				for _, role := range eff {
					if f.RoleID == "" || role.ID == f.RoleID {
						roles = append(roles, role.ID)
					}
				}
			}
			for _, roleID := range roles {
				a, err := l.assignment(base, g.ActorID, g.TargetID, roleID, names)
				if err != nil {
					return err
				}
				if a != nil && (!q.Has("scope.project.id") || a["scope"].(map[string]any)["project"] != nil) &&
					(!q.Has("scope.domain.id") || a["scope"].(map[string]any)["domain"] != nil) {
					out = append(out, a)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"role_assignments": out, "links": listLinks(r, base)})
	return nil
}

// queryTrue tells a flag parameter is set: present, and not false.
func queryTrue(r *http.Request, name string) bool {
	v, ok := r.URL.Query()[name]
	if !ok {
		return false
	}
	return len(v) == 0 || !slices.Contains([]string{"false", "0", "no", "off"}, strings.ToLower(v[0]))
}

// loader reads the records assignments name, each once.
type loader struct {
	ctx      context.Context
	tx       store.Tx
	users    map[string]*userDoc
	roles    map[string]*roleDoc
	projects map[string]*projectDoc
	domains  map[string]*domainDoc
}

func load[T any](l *loader, m *map[string]*T, kind, id string) (*T, error) {
	if *m == nil {
		*m = map[string]*T{}
	}
	if v, ok := (*m)[id]; ok {
		return v, nil
	}
	v, err := get[T](l.ctx, l.tx, kind, id)
	if errors.Is(err, store.ErrNotFound) {
		v, err = nil, nil
	}
	(*m)[id] = v
	return v, err
}

func (l *loader) domainRef(id string, names bool) (map[string]any, error) {
	ref := map[string]any{"id": id}
	if names {
		d, err := load(l, &l.domains, kindDomain, id)
		if err != nil {
			return nil, err
		}
		if d != nil {
			ref["name"] = d.Name
		}
	}
	return ref, nil
}

// assignment shapes one assignment, or nil if a record is gone.
func (l *loader) assignment(base, actor, target, roleID string, names bool) (map[string]any, error) {
	u, err := load(l, &l.users, kindUser, actor)
	if err != nil || u == nil {
		return nil, err
	}
	role, err := load(l, &l.roles, kindRole, roleID)
	if err != nil || role == nil {
		return nil, err
	}
	userRef := map[string]any{"id": u.ID}
	roleRef := map[string]any{"id": role.ID}
	if names {
		userRef["name"] = u.Name
		if userRef["domain"], err = l.domainRef(u.DomainID, true); err != nil {
			return nil, err
		}
		roleRef["name"] = role.Name
	}
	scope := map[string]any{}
	var link string
	if target == systemID {
		scope["system"] = map[string]bool{"all": true}
		link = base + "/v3/system/users/" + u.ID + "/roles/" + role.ID
	} else if p, err := load(l, &l.projects, kindProject, target); err != nil {
		return nil, err
	} else if p != nil {
		ref := map[string]any{"id": p.ID}
		if names {
			ref["name"] = p.Name
			if ref["domain"], err = l.domainRef(p.DomainID, true); err != nil {
				return nil, err
			}
		}
		scope["project"] = ref
		link = base + "/v3/projects/" + p.ID + "/users/" + u.ID + "/roles/" + role.ID
	} else {
		ref, err := l.domainRef(target, names)
		if err != nil {
			return nil, err
		}
		scope["domain"] = ref
		link = base + "/v3/domains/" + target + "/users/" + u.ID + "/roles/" + role.ID
	}
	return map[string]any{
		"user": userRef, "role": roleRef, "scope": scope,
		"links": map[string]string{"assignment": link},
	}, nil
}

package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"muon/internal/auth"
	"muon/internal/store"
)

// ErrInvalidToken is a token that is malformed, wrongly signed, expired,
// revoked, or whose user, project or roles are gone or disabled.
var ErrInvalidToken = errors.New("identity: invalid token")

// Validator turns a token into the caller's credentials. An invalid token
// is ErrInvalidToken; any other error means the validator could not tell
// (the identity service is unreachable).
type Validator interface {
	Validate(ctx context.Context, token string) (*auth.Credentials, error)
}

// validated is a token that passed every check, with what it names.
type validated struct {
	p             *payload
	user          *userDoc
	userDomain    *domainDoc
	project       *projectDoc
	projectDomain *domainDoc
	domain        *domainDoc // domain scope
	roles         []*roleDoc // effective: implied roles included
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...)
}

// resolve checks a token and loads what it names.
func (s *Service) resolve(ctx context.Context, tx store.Tx, tok string) (*validated, error) {
	keys, _ := s.keys.verifying(ctx, false)
	p, err := decodeToken(keys, tok)
	if err != nil {
		// Signed by a key this server has not read yet (rotated on
		// another)? Read the set again, at most every keyRetry.
		if keys, again := s.keys.verifying(ctx, true); again {
			p, err = decodeToken(keys, tok)
		}
	}
	if err != nil {
		return nil, invalid("%v", err)
	}
	if s.cfg.Now().UnixMilli() >= p.Expires {
		return nil, invalid("expired")
	}
	if _, err := tx.Get(ctx, kindRevocation, revocationID(p.Audit[0])); err == nil {
		return nil, invalid("revoked")
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	v := &validated{p: p}
	if v.user, v.userDomain, err = activeUser(ctx, tx, p.User); err != nil {
		return nil, err
	}
	if p.Issued < v.user.RevokedBefore {
		return nil, invalid("issued before the user's tokens were revoked")
	}
	var target string
	switch {
	case p.Project != "":
		if v.project, v.projectDomain, err = activeProject(ctx, tx, p.Project); err != nil {
			return nil, err
		}
		target = p.Project
	case p.Domain != "":
		if v.domain, err = activeDomain(ctx, tx, p.Domain); err != nil {
			return nil, err
		}
		target = p.Domain
	case p.System:
		target = systemID
	default:
		return v, nil
	}
	if v.roles, err = effectiveRoles(ctx, tx, p.User, target); err != nil {
		return nil, err
	}
	if len(v.roles) == 0 {
		return nil, invalid("user %s has no role on %s", p.User, target)
	}
	return v, nil
}

// notFoundAs turns a missing record into err.
func notFoundAs(got, err error) error {
	if errors.Is(got, store.ErrNotFound) {
		return err
	}
	return got
}

func activeDomain(ctx context.Context, tx store.Tx, id string) (*domainDoc, error) {
	d, err := get[domainDoc](ctx, tx, kindDomain, id)
	if err != nil {
		return nil, notFoundAs(err, invalid("domain %s not found", id))
	}
	if !d.Enabled {
		return nil, invalid("domain %s is disabled", id)
	}
	return d, nil
}

func activeUser(ctx context.Context, tx store.Tx, id string) (*userDoc, *domainDoc, error) {
	u, err := get[userDoc](ctx, tx, kindUser, id)
	if err != nil {
		return nil, nil, notFoundAs(err, invalid("user %s not found", id))
	}
	if !u.Enabled {
		return nil, nil, invalid("user %s is disabled", id)
	}
	d, err := activeDomain(ctx, tx, u.DomainID)
	return u, d, err
}

func activeProject(ctx context.Context, tx store.Tx, id string) (*projectDoc, *domainDoc, error) {
	p, err := get[projectDoc](ctx, tx, kindProject, id)
	if err != nil {
		return nil, nil, notFoundAs(err, invalid("project %s not found", id))
	}
	if !p.Enabled {
		return nil, nil, invalid("project %s is disabled", id)
	}
	d, err := activeDomain(ctx, tx, p.DomainID)
	return p, d, err
}

// implies is Keystone's default role implication: admin implies member
// implies reader.
var implies = map[string]string{"admin": "member", "member": "reader"}

// effectiveRoles are the roles an actor holds on a target, with the roles
// they imply, sorted by name.
func effectiveRoles(ctx context.Context, tx store.Tx, actor, target string) ([]*roleDoc, error) {
	gs, err := tx.Grants(ctx, store.Grant{ActorID: actor, TargetID: target})
	if err != nil {
		return nil, err
	}
	var out []*roleDoc
	seen := map[string]bool{}
	add := func(r *roleDoc) {
		if !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, r)
		}
	}
	for _, g := range gs {
		r, err := get[roleDoc](ctx, tx, kindRole, g.RoleID)
		if err != nil {
			return nil, err
		}
		add(r)
	}
	for i := 0; i < len(out); i++ {
		name, ok := implies[out[i].Name]
		if !ok {
			continue
		}
		id, err := tx.NameID(ctx, nameRole, "", name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		if seen[id] {
			continue
		}
		r, err := get[roleDoc](ctx, tx, kindRole, id)
		if err != nil {
			return nil, err
		}
		add(r)
	}
	slices.SortFunc(out, func(a, b *roleDoc) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func revocationID(audit string) string { return "revoked-" + audit }

func (v *validated) roleNames() []string {
	out := make([]string, len(v.roles))
	for i, r := range v.roles {
		out[i] = r.Name
	}
	return out
}

func (v *validated) hasRole(names ...string) bool {
	for _, r := range v.roles {
		if slices.Contains(names, r.Name) {
			return true
		}
	}
	return false
}

// credentials are the validated token as the Networking API sees it.
func (v *validated) credentials() *auth.Credentials {
	c := &auth.Credentials{
		UserID:       v.user.ID,
		UserName:     v.user.Name,
		UserDomainID: v.user.DomainID,
		Roles:        v.roleNames(),
		System:       v.p.System,
	}
	if v.project != nil {
		c.ProjectID, c.ProjectName, c.ProjectDomainID = v.project.ID, v.project.Name, v.project.DomainID
	}
	if v.domain != nil {
		c.DomainID, c.DomainName = v.domain.ID, v.domain.Name
	}
	return c
}

// localValidator validates against this service's store, no HTTP.
type localValidator struct{ s *Service }

func (l localValidator) Validate(ctx context.Context, tok string) (*auth.Credentials, error) {
	v, err := l.s.validate(ctx, tok)
	if err != nil {
		return nil, err
	}
	return v.credentials(), nil
}

// validate resolves a token, from the cache when this service has not
// written since.
func (s *Service) validate(ctx context.Context, tok string) (*validated, error) {
	now := s.cfg.Now()
	gen := s.gen.Load()
	if v := s.cache.get(tok, gen, now); v != nil {
		return v, nil
	}
	var v *validated
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		v, err = s.resolve(ctx, tx, tok)
		return err
	})
	if err != nil {
		return nil, err
	}
	until := now.Add(cacheTTL)
	if exp := time.UnixMilli(v.p.Expires); exp.Before(until) {
		until = exp
	}
	s.cache.put(tok, v, gen, until)
	return v, nil
}

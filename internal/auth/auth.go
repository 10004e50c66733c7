// Package auth carries who is calling through a request's context. The
// shape follows a Keystone token (user, project, domain, roles), whether it
// came from a validated token or, with auth_strategy noauth, from headers.
package auth

import (
	"context"
	"net/http"
	"slices"
	"strings"
)

// Credentials are the caller's identity for one request.
type Credentials struct {
	UserID    string
	ProjectID string
	DomainID  string
	Roles     []string
	// System marks a system-scoped token (cloud administration).
	System bool

	// Names and domains, as a Keystone token carries them (empty with
	// noauth).
	UserName        string
	UserDomainID    string
	ProjectName     string
	ProjectDomainID string
	DomainName      string // the scope's domain, with DomainID
}

// Admin tells whether the caller holds the admin role.
func (c *Credentials) Admin() bool { return slices.Contains(c.Roles, "admin") }

// AdvSvc tells whether the caller holds Neutron's advsvc role (an advanced
// service that manages other projects' ports).
func (c *Credentials) AdvSvc() bool { return slices.Contains(c.Roles, "advsvc") }

// Owns tells whether the caller may act on a resource of the project.
func (c *Credentials) Owns(projectID string) bool {
	return c.Admin() || c.ProjectID == projectID
}

type key struct{}

// NewContext returns ctx carrying c.
func NewContext(ctx context.Context, c *Credentials) context.Context {
	return context.WithValue(ctx, key{}, c)
}

// FromContext returns the caller; a context without one is an anonymous
// caller with no roles.
func FromContext(ctx context.Context) *Credentials {
	if c, ok := ctx.Value(key{}).(*Credentials); ok {
		return c
	}
	return &Credentials{}
}

// NoAuth is Neutron's auth_strategy=noauth: the project comes from the
// X-Project-Id (or X-Tenant-Id) header and roles from X-Roles. A request
// without a project header is an administrator's, as Neutron's noauth
// context is.
func NoAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &Credentials{
			UserID:    r.Header.Get("X-User-Id"),
			ProjectID: r.Header.Get("X-Project-Id"),
		}
		if c.ProjectID == "" {
			c.ProjectID = r.Header.Get("X-Tenant-Id")
		}
		for role := range strings.SplitSeq(r.Header.Get("X-Roles"), ",") {
			if role = strings.TrimSpace(role); role != "" {
				c.Roles = append(c.Roles, role)
			}
		}
		if c.ProjectID == "" && len(c.Roles) == 0 {
			c.Roles = []string{"admin"}
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), c)))
	})
}

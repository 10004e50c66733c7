package identity

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
)

// TestOnboarding is what tempest's dynamic credentials do: find the
// domain and a role, create a project and a user, assign the role, log in
// as the user, and clean up.
func TestOnboarding(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.admin(t)

	pages, err := domains.List(admin, domains.ListOpts{Name: "Default"}).AllPages(ctx)
	wantCode(t, err, 0)
	ds, _ := domains.ExtractDomains(pages)
	if len(ds) != 1 || ds[0].ID != "default" {
		t.Fatalf("domains?name=Default: %+v", ds)
	}
	pages, err = roles.List(admin, roles.ListOpts{Name: "member"}).AllPages(ctx)
	wantCode(t, err, 0)
	rs, _ := roles.ExtractRoles(pages)
	if len(rs) != 1 || rs[0].ID != e.res.Roles["member"] {
		t.Fatalf("roles?name=member: %+v", rs)
	}
	member := rs[0].ID

	p, err := projects.Create(ctx, admin, projects.CreateOpts{Name: "tempest-p1", DomainID: "default", Description: "d"}).Extract()
	wantCode(t, err, 0)
	if p.DomainID != "default" || p.ParentID != "default" || !p.Enabled {
		t.Fatalf("project: %+v", p)
	}
	_, err = projects.Create(ctx, admin, projects.CreateOpts{Name: "tempest-p1", DomainID: "default"}).Extract()
	wantCode(t, err, 409)

	u, err := users.Create(ctx, admin, users.CreateOpts{Name: "tempest-u1", DomainID: "default", Password: "pw-u1",
		Extra: map[string]any{"email": "u1@example.com", "project_id": p.ID}}).Extract()
	wantCode(t, err, 0)
	if u.DomainID != "default" || !u.Enabled || u.Extra["project_id"] != p.ID {
		t.Fatalf("user: %+v", u)
	}
	_, err = users.Create(ctx, admin, users.CreateOpts{Name: "tempest-u1", DomainID: "default", Password: "x"}).Extract()
	wantCode(t, err, 409)

	// Logging in before the assignment fails; after it works.
	o := tokens.AuthOptions{Username: "tempest-u1", DomainName: "Default", Password: "pw-u1",
		Scope: tokens.Scope{ProjectName: "tempest-p1", DomainName: "Default"}}
	_, _, err = e.issue(t, o)
	wantCode(t, err, 401)
	wantCode(t, roles.Assign(ctx, admin, member, roles.AssignOpts{UserID: u.ID, ProjectID: p.ID}).Err, 0)
	wantCode(t, roles.Assign(ctx, admin, member, roles.AssignOpts{UserID: u.ID, ProjectID: p.ID}).Err, 0)
	wantCode(t, roles.Validate(ctx, admin, member, roles.ValidateOpts{UserID: u.ID, ProjectID: p.ID}).Err, 0)
	wantCode(t, roles.Validate(ctx, admin, e.res.Roles["admin"], roles.ValidateOpts{UserID: u.ID, ProjectID: p.ID}).Err, 404)
	_, v, err := e.issue(t, o)
	wantCode(t, err, 0)
	if v.Project.ID != p.ID || !slices.Equal(v.roleNames(), []string{"member", "reader"}) {
		t.Fatalf("user token: %+v", v)
	}
	// by id too
	_, _, err = e.issue(t, tokens.AuthOptions{UserID: u.ID, Password: "pw-u1", Scope: tokens.Scope{ProjectID: p.ID}})
	wantCode(t, err, 0)

	pages, err = roles.ListAssignments(admin, roles.ListAssignmentsOpts{UserID: u.ID, ScopeProjectID: p.ID}).AllPages(ctx)
	wantCode(t, err, 0)
	as, _ := roles.ExtractRoleAssignments(pages)
	if len(as) != 1 || as[0].Role.ID != member || as[0].Scope.Project.ID != p.ID || as[0].User.ID != u.ID {
		t.Fatalf("role_assignments: %+v", as)
	}
	yes := true
	pages, err = roles.ListAssignments(admin, roles.ListAssignmentsOpts{UserID: u.ID, Effective: &yes, IncludeNames: &yes}).AllPages(ctx)
	wantCode(t, err, 0)
	as, _ = roles.ExtractRoleAssignments(pages)
	if len(as) != 2 || as[0].Role.Name == "" || as[0].Scope.Project.Name != "tempest-p1" {
		t.Fatalf("effective role_assignments: %+v", as)
	}
	pages, err = roles.ListAssignmentsOnResource(admin, roles.ListAssignmentsOnResourceOpts{UserID: u.ID, ProjectID: p.ID}).AllPages(ctx)
	wantCode(t, err, 0)
	if rs, _ := roles.ExtractRoles(pages); len(rs) != 1 || rs[0].Name != "member" {
		t.Fatalf("project user roles: %+v", rs)
	}
	pages, err = users.ListProjects(admin, u.ID).AllPages(ctx)
	wantCode(t, err, 0)
	if ps, _ := projects.ExtractProjects(pages); len(ps) != 1 || ps[0].ID != p.ID {
		t.Fatalf("user projects: %+v", ps)
	}

	// Filters.
	pages, err = projects.List(admin, projects.ListOpts{Name: "tempest-p1", DomainID: "default"}).AllPages(ctx)
	wantCode(t, err, 0)
	if ps, _ := projects.ExtractProjects(pages); len(ps) != 1 || ps[0].ID != p.ID {
		t.Fatalf("projects?name: %+v", ps)
	}
	pages, err = users.List(admin, users.ListOpts{Name: "tempest-u1", DomainID: "default"}).AllPages(ctx)
	wantCode(t, err, 0)
	if us, _ := users.ExtractUsers(pages); len(us) != 1 || us[0].ID != u.ID {
		t.Fatalf("users?name: %+v", us)
	}

	wantCode(t, roles.Unassign(ctx, admin, member, roles.UnassignOpts{UserID: u.ID, ProjectID: p.ID}).Err, 0)
	wantCode(t, roles.Unassign(ctx, admin, member, roles.UnassignOpts{UserID: u.ID, ProjectID: p.ID}).Err, 404)
	wantCode(t, users.Delete(ctx, admin, u.ID).ExtractErr(), 0)
	wantCode(t, users.Delete(ctx, admin, u.ID).ExtractErr(), 404)
	wantCode(t, projects.Delete(ctx, admin, p.ID).ExtractErr(), 0)
	_, err = projects.Get(ctx, admin, p.ID).Extract()
	wantCode(t, err, 404)
	// The names are free again.
	_, err = projects.Create(ctx, admin, projects.CreateOpts{Name: "tempest-p1", DomainID: "default"}).Extract()
	wantCode(t, err, 0)
}

func TestCRUD(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.admin(t)

	d, err := domains.Create(ctx, admin, domains.CreateOpts{Name: "other", Description: "another domain"}).Extract()
	wantCode(t, err, 0)
	_, err = domains.Create(ctx, admin, domains.CreateOpts{Name: "other"}).Extract()
	wantCode(t, err, 409)

	// Names are unique per domain: "demo" may exist in another domain.
	u2, err := users.Create(ctx, admin, users.CreateOpts{Name: "demo", DomainID: d.ID, Password: "other-demo"}).Extract()
	wantCode(t, err, 0)
	p2, err := projects.Create(ctx, admin, projects.CreateOpts{Name: "demo", DomainID: d.ID}).Extract()
	wantCode(t, err, 0)
	child, err := projects.Create(ctx, admin, projects.CreateOpts{Name: "child", ParentID: p2.ID}).Extract()
	wantCode(t, err, 0)
	if child.DomainID != d.ID || child.ParentID != p2.ID {
		t.Fatalf("child: %+v", child)
	}
	wantCode(t, projects.Delete(ctx, admin, p2.ID).ExtractErr(), 403)
	wantCode(t, roles.Assign(ctx, admin, e.res.Roles["member"], roles.AssignOpts{UserID: u2.ID, ProjectID: p2.ID}).Err, 0)
	_, v, err := e.issue(t, tokens.AuthOptions{Username: "demo", DomainID: d.ID, Password: "other-demo",
		Scope: tokens.Scope{ProjectName: "demo", DomainName: "other"}})
	wantCode(t, err, 0)
	if v.User.ID != u2.ID || v.Project.ID != p2.ID {
		t.Fatalf("other demo: %+v", v)
	}

	// Rename and conflicts on rename.
	name := "renamed"
	p, err := projects.Update(ctx, admin, child.ID, projects.UpdateOpts{Name: name}).Extract()
	wantCode(t, err, 0)
	if p.Name != name {
		t.Fatalf("renamed: %+v", p)
	}
	_, err = projects.Update(ctx, admin, child.ID, projects.UpdateOpts{Name: "demo"}).Extract()
	wantCode(t, err, 409)
	_, err = users.Update(ctx, admin, u2.ID, users.UpdateOpts{Name: "admin"}).Extract() // admin is in Default
	wantCode(t, err, 0)

	// Roles.
	r, err := roles.Create(ctx, admin, roles.CreateOpts{Name: "auditor"}).Extract()
	wantCode(t, err, 0)
	_, err = roles.Create(ctx, admin, roles.CreateOpts{Name: "auditor"}).Extract()
	wantCode(t, err, 409)
	wantCode(t, roles.Assign(ctx, admin, r.ID, roles.AssignOpts{UserID: u2.ID, DomainID: d.ID}).Err, 0)
	wantCode(t, roles.Delete(ctx, admin, r.ID).ExtractErr(), 0)
	yes := true
	pages, err := roles.ListAssignments(admin, roles.ListAssignmentsOpts{UserID: u2.ID, IncludeNames: &yes}).AllPages(ctx)
	wantCode(t, err, 0)
	if as, _ := roles.ExtractRoleAssignments(pages); len(as) != 1 || as[0].Role.Name != "member" {
		t.Fatalf("assignments after the role went: %+v", as)
	}

	// Disabling the project invalidates its tokens and refuses new ones.
	tok, _, err := e.issue(t, tokens.AuthOptions{UserID: u2.ID, Password: "other-demo", Scope: tokens.Scope{ProjectID: p2.ID}})
	wantCode(t, err, 0)
	no := false
	_, err = projects.Update(ctx, admin, p2.ID, projects.UpdateOpts{Enabled: &no}).Extract()
	wantCode(t, err, 0)
	if code, _, _ := e.do(t, "GET", "/v3/auth/projects", tok, ""); code != 401 {
		t.Fatalf("token of a disabled project: %d", code)
	}
	_, _, err = e.issue(t, tokens.AuthOptions{UserID: u2.ID, Password: "other-demo", Scope: tokens.Scope{ProjectID: p2.ID}})
	wantCode(t, err, 401)

	// A domain is deleted once disabled, with what is in it.
	wantCode(t, domains.Delete(ctx, admin, d.ID).ExtractErr(), 403)
	_, err = domains.Update(ctx, admin, d.ID, domains.UpdateOpts{Enabled: &no}).Extract()
	wantCode(t, err, 0)
	wantCode(t, domains.Delete(ctx, admin, d.ID).ExtractErr(), 0)
	_, err = users.Get(ctx, admin, u2.ID).Extract()
	wantCode(t, err, 404)
	_, err = projects.Get(ctx, admin, child.ID).Extract()
	wantCode(t, err, 404)

	// Bad input.
	for _, tc := range []struct{ name, path, body string }{
		{"project-no-name", "/v3/projects", `{"project": {}}`},
		{"project-bad-enabled", "/v3/projects", `{"project": {"name": "x", "enabled": "yes"}}`},
		{"user-name-number", "/v3/users", `{"user": {"name": 5}}`},
		{"not-json", "/v3/roles", `{"role": `},
		{"no-member", "/v3/roles", `{"name": "x"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := e.do(t, "POST", tc.path, admin.TokenID, tc.body)
			if code != 400 || !strings.Contains(body, `"code": 400`) && !strings.Contains(body, `"code":400`) {
				t.Fatalf("%d %s", code, body)
			}
		})
	}
	if code, _, body := e.do(t, "POST", "/v3/projects", admin.TokenID, `{"project": {"name": "x", "domain_id": "nowhere"}}`); code != 404 {
		t.Fatalf("unknown domain: %d %s", code, body)
	}
}

func TestAdminOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	demo := e.client(t, e.opts("demo", demoPW, projectScope("demo")))
	_, err := projects.Create(ctx, demo, projects.CreateOpts{Name: "mine"}).Extract()
	wantCode(t, err, 403)
	_, err = users.List(demo, nil).AllPages(ctx)
	wantCode(t, err, 403)
	wantCode(t, roles.Assign(ctx, demo, e.res.Roles["admin"], roles.AssignOpts{UserID: e.res.DemoUserID, ProjectID: e.res.DemoProjectID}).Err, 403)
	// Its own user and project it may read.
	_, err = users.Get(ctx, demo, e.res.DemoUserID).Extract()
	wantCode(t, err, 0)
	_, err = users.Get(ctx, demo, e.res.AdminUserID).Extract()
	wantCode(t, err, 403)
	_, err = projects.Get(ctx, demo, e.res.DemoProjectID).Extract()
	wantCode(t, err, 0)
	_, err = projects.Get(ctx, demo, e.res.AdminProjectID).Extract()
	wantCode(t, err, 403)
	pages, err := users.ListProjects(demo, e.res.DemoUserID).AllPages(ctx)
	wantCode(t, err, 0)
	if ps, _ := projects.ExtractProjects(pages); len(ps) != 1 {
		t.Fatalf("own projects: %+v", ps)
	}
	// No token at all.
	code, hdr, _ := e.do(t, "GET", "/v3/projects", "", "")
	if code != 401 || hdr.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d %v", code, hdr)
	}
}

func TestChangePassword(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	demo := e.client(t, e.opts("demo", demoPW, projectScope("demo")))
	err := users.ChangePassword(ctx, demo, e.res.DemoUserID, users.ChangePasswordOpts{OriginalPassword: "wrong", Password: "new-pw"}).ExtractErr()
	wantCode(t, err, 401)
	e.clk.Advance(time.Millisecond) // tokens issued before the change are revoked
	err = users.ChangePassword(ctx, demo, e.res.DemoUserID, users.ChangePasswordOpts{OriginalPassword: demoPW, Password: "new-pw"}).ExtractErr()
	wantCode(t, err, 0)
	if code, _, _ := e.do(t, "GET", "/v3/auth/projects", demo.TokenID, ""); code != 401 {
		t.Fatalf("token from before the password change: %d", code)
	}
	_, _, err = e.issue(t, tokens.AuthOptions{Username: "demo", DomainName: "Default", Password: demoPW})
	wantCode(t, err, 401)
	e.client(t, gophercloud.AuthOptions{IdentityEndpoint: e.srv.URL + "/v3", Username: "demo", Password: "new-pw", DomainName: "Default"})
}

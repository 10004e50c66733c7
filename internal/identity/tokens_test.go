package identity

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

func TestVersionDiscovery(t *testing.T) {
	e := newEnv(t)
	code, _, body := e.do(t, "GET", "/", "", "")
	if code != http.StatusMultipleChoices || !strings.Contains(body, `"v3.14"`) || !strings.Contains(body, e.srv.URL+"/v3/") {
		t.Fatalf("GET /: %d %s", code, body)
	}
	for _, p := range []string{"/v3", "/v3/"} {
		code, _, body = e.do(t, "GET", p, "", "")
		if code != http.StatusOK || !strings.Contains(body, "application/vnd.openstack.identity-v3+json") {
			t.Fatalf("GET %s: %d %s", p, code, body)
		}
	}
	// gophercloud discovers v3 from the unversioned URL.
	o := e.opts("admin", adminPW, projectScope("admin"))
	o.IdentityEndpoint = e.srv.URL
	if _, err := openstack.AuthenticatedClient(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

type tokenView struct {
	Methods   []string `json:"methods"`
	AuditIDs  []string `json:"audit_ids"`
	ExpiresAt string   `json:"expires_at"`
	IssuedAt  string   `json:"issued_at"`
	User      struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Domain ref    `json:"domain"`
	} `json:"user"`
	Project *struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Domain ref    `json:"domain"`
	} `json:"project"`
	Domain  *ref            `json:"domain"`
	System  map[string]bool `json:"system"`
	Roles   []ref           `json:"roles"`
	Catalog []struct {
		Type      string `json:"type"`
		Endpoints []struct {
			Interface string `json:"interface"`
			Region    string `json:"region"`
			URL       string `json:"url"`
		} `json:"endpoints"`
	} `json:"catalog"`
}

func (v *tokenView) roleNames() []string {
	var out []string
	for _, r := range v.Roles {
		out = append(out, r.Name)
	}
	slices.Sort(out)
	return out
}

// issue authenticates with gophercloud's tokens.Create.
func (e *env) issue(t *testing.T, o tokens.AuthOptions) (string, *tokenView, error) {
	t.Helper()
	p, err := openstack.NewClient(e.srv.URL + "/v3")
	if err != nil {
		t.Fatal(err)
	}
	c := &gophercloud.ServiceClient{ProviderClient: p, Endpoint: e.srv.URL + "/v3/"}
	r := tokens.Create(context.Background(), c, &o)
	if r.Err != nil {
		return "", nil, r.Err
	}
	id, err := r.ExtractTokenID()
	if err != nil {
		t.Fatal(err)
	}
	var v tokenView
	if err := r.ExtractInto(&v); err != nil {
		t.Fatal(err)
	}
	return id, &v, nil
}

func TestPasswordAuth(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name      string
		opts      tokens.AuthOptions
		code      int
		project   string
		domain    string
		system    bool
		roles     []string
		noCatalog bool
	}{
		{name: "project-by-name", opts: tokens.AuthOptions{Username: "admin", DomainName: "Default", Password: adminPW,
			Scope: tokens.Scope{ProjectName: "admin", DomainName: "Default"}},
			project: "admin", roles: []string{"admin", "member", "reader"}},
		{name: "project-by-id", opts: tokens.AuthOptions{UserID: e.res.DemoUserID, Password: demoPW,
			Scope: tokens.Scope{ProjectID: e.res.DemoProjectID}},
			project: "demo", roles: []string{"member", "reader"}},
		{name: "reader", opts: tokens.AuthOptions{Username: "reader", DomainID: "default", Password: readerPW,
			Scope: tokens.Scope{ProjectName: "demo", DomainID: "default"}},
			project: "demo", roles: []string{"reader"}},
		{name: "default-project", opts: tokens.AuthOptions{Username: "demo", DomainName: "Default", Password: demoPW},
			project: "demo", roles: []string{"member", "reader"}},
		{name: "system", opts: tokens.AuthOptions{Username: "admin", DomainName: "Default", Password: adminPW,
			Scope: tokens.Scope{System: true}}, system: true, roles: []string{"admin", "member", "reader"}},
		{name: "wrong-password", opts: tokens.AuthOptions{Username: "admin", DomainName: "Default", Password: "nope"}, code: 401},
		{name: "unknown-user", opts: tokens.AuthOptions{Username: "nobody", DomainName: "Default", Password: "x"}, code: 401},
		{name: "unknown-domain", opts: tokens.AuthOptions{Username: "admin", DomainName: "Nowhere", Password: adminPW}, code: 401},
		{name: "no-role-on-project", opts: tokens.AuthOptions{Username: "demo", DomainName: "Default", Password: demoPW,
			Scope: tokens.Scope{ProjectName: "admin", DomainName: "Default"}}, code: 401},
		{name: "no-role-on-system", opts: tokens.AuthOptions{Username: "demo", DomainName: "Default", Password: demoPW,
			Scope: tokens.Scope{System: true}}, code: 401},
		{name: "no-role-on-domain", opts: tokens.AuthOptions{Username: "demo", DomainName: "Default", Password: demoPW,
			Scope: tokens.Scope{DomainID: "default"}}, code: 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, v, err := e.issue(t, tc.opts)
			wantCode(t, err, tc.code)
			if tc.code != 0 {
				return
			}
			if tok == "" || len(v.AuditIDs) != 1 || !slices.Equal(v.Methods, []string{"password"}) {
				t.Fatalf("token %q: %+v", tok, v)
			}
			if v.User.Domain.ID != "default" || v.User.Domain.Name != "Default" {
				t.Errorf("user domain %+v", v.User.Domain)
			}
			if got := v.roleNames(); !slices.Equal(got, tc.roles) {
				t.Errorf("roles %v, want %v", got, tc.roles)
			}
			switch {
			case tc.project != "":
				if v.Project == nil || v.Project.Name != tc.project || v.Project.Domain.ID != "default" {
					t.Errorf("project %+v, want %s", v.Project, tc.project)
				}
			case tc.system:
				if !v.System["all"] {
					t.Errorf("system %+v", v.System)
				}
			}
			exp, err := time.Parse(time.RFC3339, v.ExpiresAt)
			if err != nil || exp.Sub(e.clk.Now()) < 59*time.Minute || exp.Sub(e.clk.Now()) > time.Hour+time.Second {
				t.Errorf("expires_at %s: %v", v.ExpiresAt, err)
			}
			urls := map[string]string{}
			for _, s := range v.Catalog {
				for _, ep := range s.Endpoints {
					if ep.Region != "RegionOne" {
						t.Errorf("region %q", ep.Region)
					}
					urls[s.Type+"/"+ep.Interface] = ep.URL
				}
			}
			if urls["network/public"] != netURL || urls["identity/public"] != e.srv.URL+"/v3" || urls["identity/admin"] == "" {
				t.Errorf("catalog %v", urls)
			}
		})
	}
}

func TestUnscopedAndDomainScope(t *testing.T) {
	e := newEnv(t)
	admin := e.admin(t)
	// A user with no default project gets an unscoped token: no roles, no
	// catalog.
	code, _, body := e.do(t, "POST", "/v3/users", admin.TokenID,
		`{"user": {"name": "loner", "password": "pw-loner", "domain_id": "default"}}`)
	if code != 201 {
		t.Fatalf("create user: %d %s", code, body)
	}
	_, v, err := e.issue(t, tokens.AuthOptions{Username: "loner", DomainName: "Default", Password: "pw-loner"})
	wantCode(t, err, 0)
	if v.Project != nil || v.Roles != nil || v.Catalog != nil {
		t.Fatalf("unscoped token has a scope: %+v", v)
	}
	// An explicitly unscoped request by a user with a default project.
	code, hdr, body := e.do(t, "POST", "/v3/auth/tokens", "", `{"auth": {"identity": {"methods": ["password"],
		"password": {"user": {"name": "demo", "domain": {"name": "Default"}, "password": "`+demoPW+`"}}}, "scope": "unscoped"}}`)
	if code != 201 || hdr.Get("X-Subject-Token") == "" || strings.Contains(body, `"project"`) {
		t.Fatalf("unscoped: %d %s", code, body)
	}
	// Domain scope once the user has a role on the domain.
	code, _, body = e.do(t, "PUT", "/v3/domains/default/users/"+e.res.DemoUserID+"/roles/"+e.res.Roles["reader"], admin.TokenID, "")
	if code != 204 {
		t.Fatalf("grant on domain: %d %s", code, body)
	}
	_, v, err = e.issue(t, tokens.AuthOptions{Username: "demo", DomainName: "Default", Password: demoPW, Scope: tokens.Scope{DomainName: "Default"}})
	wantCode(t, err, 0)
	if v.Domain == nil || v.Domain.ID != "default" || !slices.Equal(v.roleNames(), []string{"reader"}) || len(v.Catalog) == 0 {
		t.Fatalf("domain token: %+v", v)
	}
	code, _, body = e.do(t, "GET", "/v3/auth/domains", hdr.Get("X-Subject-Token"), "")
	if code != 200 || !strings.Contains(body, `"Default"`) {
		t.Fatalf("auth/domains: %d %s", code, body)
	}
}

func TestTokenAuth(t *testing.T) {
	e := newEnv(t)
	unscoped, _, err := e.issue(t, tokens.AuthOptions{Username: "admin", DomainName: "Default", Password: adminPW,
		Scope: tokens.Scope{System: true}})
	wantCode(t, err, 0)
	e.clk.Advance(10 * time.Minute)
	_, v, err := e.issue(t, tokens.AuthOptions{TokenID: unscoped, Scope: tokens.Scope{ProjectID: e.res.DemoProjectID}})
	if err == nil {
		t.Fatalf("admin rescoped to demo without a role on it: %+v", v)
	}
	tok, v, err := e.issue(t, tokens.AuthOptions{TokenID: unscoped, Scope: tokens.Scope{ProjectName: "admin", DomainID: "default"}})
	wantCode(t, err, 0)
	if tok == unscoped || v.Project == nil || v.Project.Name != "admin" || !slices.Equal(v.Methods, []string{"token", "password"}) ||
		len(v.AuditIDs) != 2 {
		t.Fatalf("rescoped: %+v", v)
	}
	// The new token expires with the one it came from.
	exp, _ := time.Parse(time.RFC3339, v.ExpiresAt)
	if d := exp.Sub(e.clk.Now()); d > 51*time.Minute {
		t.Errorf("rescoped token lives %s", d)
	}
	// gophercloud's token-only client.
	c := e.client(t, gophercloud.AuthOptions{IdentityEndpoint: e.srv.URL + "/v3", TokenID: tok})
	if c.TokenID != tok {
		t.Errorf("client token %q", c.TokenID)
	}
	_, _, err = e.issue(t, tokens.AuthOptions{TokenID: "muon1.bogus.sig"})
	wantCode(t, err, 401)
}

func TestValidateAndRevoke(t *testing.T) {
	e := newEnv(t)
	admin := e.admin(t)
	demo := e.client(t, e.opts("demo", demoPW, projectScope("demo")))
	reader := e.client(t, e.opts("reader", readerPW, projectScope("demo")))
	ctx := context.Background()

	r := tokens.Get(ctx, admin, demo.TokenID)
	wantCode(t, r.Err, 0)
	if r.Header.Get("X-Subject-Token") != demo.TokenID {
		t.Errorf("X-Subject-Token %q", r.Header.Get("X-Subject-Token"))
	}
	u, err := r.ExtractUser()
	wantCode(t, err, 0)
	p, err := r.ExtractProject()
	wantCode(t, err, 0)
	roles, err := r.ExtractRoles()
	wantCode(t, err, 0)
	if u.Name != "demo" || p.ID != e.res.DemoProjectID || len(roles) != 2 {
		t.Fatalf("validated: %+v %+v %+v", u, p, roles)
	}
	// A user may validate its own token, not another's.
	wantCode(t, tokens.Get(ctx, demo, demo.TokenID).Err, 0)
	wantCode(t, tokens.Get(ctx, reader, admin.TokenID).Err, 403)

	ok, err := tokens.Validate(ctx, admin, demo.TokenID)
	if err != nil || !ok {
		t.Fatalf("HEAD: %v %v", ok, err)
	}
	wantCode(t, tokens.Revoke(ctx, admin, demo.TokenID).Err, 0)
	ok, err = tokens.Validate(ctx, admin, demo.TokenID)
	if err != nil || ok {
		t.Fatalf("HEAD after revoke: %v %v", ok, err)
	}
	wantCode(t, tokens.Get(ctx, admin, demo.TokenID).Err, 404)
	wantCode(t, tokens.Revoke(ctx, admin, demo.TokenID).Err, 404)
	// The revoked token no longer authenticates its holder.
	code, hdr, body := e.do(t, "GET", "/v3/auth/projects", demo.TokenID, "")
	if code != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Keystone uri=") {
		t.Fatalf("revoked caller: %d %s", code, body)
	}
	var fault struct {
		Error struct {
			Code  int    `json:"code"`
			Title string `json:"title"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(body), &fault) != nil || fault.Error.Code != 401 || fault.Error.Title != "Unauthorized" {
		t.Fatalf("error body %s", body)
	}
	// Self-revocation (logout).
	wantCode(t, tokens.Revoke(ctx, reader, reader.TokenID).Err, 0)
	code, _, _ = e.do(t, "GET", "/v3/auth/catalog", reader.TokenID, "")
	if code != 401 {
		t.Fatalf("self-revoked token: %d", code)
	}
}

func TestAuthCatalogAndProjects(t *testing.T) {
	e := newEnv(t)
	demo := e.client(t, e.opts("demo", demoPW, projectScope("demo")))
	code, _, body := e.do(t, "GET", "/v3/auth/catalog", demo.TokenID, "")
	if code != 200 || !strings.Contains(body, `"type":"network"`) || !strings.Contains(body, `"url":"`+netURL+`"`) {
		t.Fatalf("catalog: %d %s", code, body)
	}
	code, _, body = e.do(t, "GET", "/v3/auth/projects", demo.TokenID, "")
	if code != 200 || !strings.Contains(body, `"name":"demo"`) || strings.Contains(body, `"name":"admin"`) {
		t.Fatalf("auth/projects: %d %s", code, body)
	}
	code, _, body = e.do(t, "GET", "/v3/endpoints", demo.TokenID, "")
	if code != 200 || strings.Count(body, `"interface"`) != 6 {
		t.Fatalf("endpoints: %d %s", code, body)
	}
}

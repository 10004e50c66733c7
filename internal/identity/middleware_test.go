package identity

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"muon/internal/auth"
)

// echo answers with the caller's credentials.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	json.NewEncoder(w).Encode(auth.FromContext(r.Context()))
})

func call(t *testing.T, h http.Handler, tok string) (*httptest.ResponseRecorder, *auth.Credentials) {
	t.Helper()
	req := httptest.NewRequest("GET", "/v2.0/networks", nil)
	if tok != "" {
		req.Header.Set("X-Auth-Token", tok)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var c auth.Credentials
	if rec.Code == 200 {
		if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
	}
	return rec, &c
}

func TestMiddleware(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const uri = "http://127.0.0.1:5000"
	h := Middleware(e.svc.Validator(), uri)(echo)
	admin := e.admin(t)
	tok := func(user, pw string) string {
		id, _, err := e.issue(t, tokens.AuthOptions{Username: user, DomainName: "Default", Password: pw,
			Scope: tokens.Scope{ProjectName: "demo", DomainName: "Default"}})
		wantCode(t, err, 0)
		return id
	}

	demo := tok("demo", demoPW)
	rec, c := call(t, h, demo)
	if rec.Code != 200 || c.UserID != e.res.DemoUserID || c.ProjectID != e.res.DemoProjectID || c.UserName != "demo" ||
		c.ProjectName != "demo" || c.ProjectDomainID != "default" || !slices.Equal(c.Roles, []string{"member", "reader"}) || c.Admin() {
		t.Fatalf("demo: %d %+v", rec.Code, c)
	}
	rec, c = call(t, h, admin.TokenID)
	if rec.Code != 200 || !c.Admin() || c.ProjectID != e.res.AdminProjectID {
		t.Fatalf("admin: %d %+v", rec.Code, c)
	}

	// Tokens that must not pass.
	keys, _ := e.svc.keys.verifying(context.Background(), false)
	p, err := decodeToken(keys, demo)
	if err != nil {
		t.Fatal(err)
	}
	otherKey := make([]byte, 32)
	rand.Read(otherKey)
	forged, _ := encodeToken(otherKey, p)
	tampered := demo[:len(demo)-2] + "AA"
	if tampered == demo {
		tampered = demo[:len(demo)-2] + "BB"
	}
	revoked := tok("demo", demoPW)
	wantCode(t, tokens.Revoke(ctx, admin, revoked).Err, 0)
	readerTok := tok("reader", readerPW)
	no := false
	_, err = users.Update(ctx, admin, e.res.ReaderUserID, users.UpdateOpts{Enabled: &no}).Extract()
	wantCode(t, err, 0)
	for _, tc := range []struct{ name, tok string }{
		{"missing", ""},
		{"malformed", "not-a-token"},
		{"truncated", demo[:len(demo)/2]},
		{"wrongly-signed", forged},
		{"tampered", tampered},
		{"revoked", revoked},
		{"disabled-user", readerTok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, _ := call(t, h, tc.tok)
			if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") != `Keystone uri="`+uri+`"` ||
				!strings.Contains(rec.Body.String(), `"title":"Unauthorized"`) {
				t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
			}
		})
	}

	// Expiry: an hour later every token is invalid.
	e.clk.Advance(time.Hour)
	if rec, _ := call(t, h, demo); rec.Code != 401 {
		t.Fatalf("expired token: %d", rec.Code)
	}
}

func TestShortTTL(t *testing.T) {
	e := newEnv(t)
	svc, err := New(Config{TokenTTL: time.Minute, Now: e.clk.Now}, e.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	e.srv = srv
	tok, v, err := e.issue(t, tokens.AuthOptions{Username: "demo", DomainName: "Default", Password: demoPW})
	wantCode(t, err, 0)
	if v.Catalog == nil || len(v.Catalog) != 1 { // no network URL configured
		t.Fatalf("catalog %+v", v.Catalog)
	}
	if _, err := svc.Validator().Validate(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute)
	if _, err := svc.Validator().Validate(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("after a minute: %v", err)
	}
}

func TestRestartKeepsTokens(t *testing.T) {
	e := newEnv(t)
	demo := e.client(t, e.opts("demo", demoPW, projectScope("demo")))
	e.srv.Close()
	e.st.Close()
	e.st = openStore(t, e.path)
	e.start(t)
	c, err := e.svc.Validator().Validate(context.Background(), demo.TokenID)
	if err != nil || c.ProjectID != e.res.DemoProjectID {
		t.Fatalf("after restart: %+v %v", c, err)
	}
	// Bootstrap again: same ids, the token still good.
	res, err := Bootstrap(context.Background(), e.st, BootstrapOptions{AdminPassword: adminPW})
	if err != nil {
		t.Fatal(err)
	}
	if res.AdminUserID != e.res.AdminUserID || res.DemoProjectID != e.res.DemoProjectID || res.Roles["reader"] != e.res.Roles["reader"] ||
		res.AdminPassword != adminPW || res.DemoPassword != "" {
		t.Fatalf("second bootstrap: %+v", res)
	}
	if code, _, _ := e.do(t, "GET", "/v3/auth/projects", demo.TokenID, ""); code != 200 {
		t.Fatalf("token after second bootstrap: %d", code)
	}
}

func TestBootstrapGeneratesPasswords(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "muon.db"))
	defer st.Close()
	res, err := Bootstrap(context.Background(), st, BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.AdminPassword) < 16 || res.DemoPassword == "" || res.ReaderPassword == "" || res.AdminPassword == res.DemoPassword {
		t.Fatalf("generated passwords: %+v", res)
	}
	b := []byte(CloudsYAML("http://127.0.0.1:5000/v3", res))
	for _, want := range []string{"  muon-admin:\n", "  muon-demo:\n", `password: "` + res.AdminPassword + `"`,
		`project_name: "demo"`, `user_domain_name: "Default"`, "region_name: RegionOne", "identity_api_version: 3",
		`auth_url: "http://127.0.0.1:5000/v3"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("clouds.yaml lacks %q:\n%s", want, b)
		}
	}
}

func TestRemote(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rm, err := NewRemote(RemoteConfig{AuthURL: e.srv.URL + "/v3", Username: "admin", Password: adminPW, ProjectName: "admin", Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	demo := e.client(t, e.opts("demo", demoPW, projectScope("demo")))
	h := Middleware(rm, e.srv.URL)(echo)
	rec, c := call(t, h, demo.TokenID)
	if rec.Code != 200 || c.ProjectID != e.res.DemoProjectID || c.UserDomainID != "default" || !slices.Equal(c.Roles, []string{"member", "reader"}) {
		t.Fatalf("remote: %d %+v", rec.Code, c)
	}
	if rec, _ := call(t, h, "garbage"); rec.Code != 401 {
		t.Fatalf("garbage: %d", rec.Code)
	}
	// A revocation shows once the cached answer ages out.
	wantCode(t, tokens.Revoke(ctx, e.admin(t), demo.TokenID).Err, 0)
	if rec, _ := call(t, h, demo.TokenID); rec.Code != 200 {
		t.Fatalf("cached: %d", rec.Code)
	}
	e.clk.Advance(61 * time.Second)
	if rec, _ := call(t, h, demo.TokenID); rec.Code != 401 {
		t.Fatalf("after the cache: %d", rec.Code)
	}
	// A wrong service password: the validator cannot tell, 503.
	bad, _ := NewRemote(RemoteConfig{AuthURL: e.srv.URL, Username: "admin", Password: "wrong", ProjectName: "admin"})
	if rec, _ := call(t, Middleware(bad, e.srv.URL)(echo), demo.TokenID); rec.Code != 503 {
		t.Fatalf("bad service user: %d", rec.Code)
	}
}

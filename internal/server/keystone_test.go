package server_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"

	"muon/internal/server"
	"muon/internal/server/servertest"
)

// clouds runs fn against a keystone-authenticated server on each store.
func clouds(t *testing.T, edit func(*server.Config), fn func(t *testing.T, c *servertest.Cloud)) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		fn(t, servertest.StartCloud(t, e.Store, edit))
	})
}

// TestKeystoneIsolation drives the API with real tokens from the built-in
// identity service: projects keep apart, readers read, admins see all.
func TestKeystoneIsolation(t *testing.T) {
	clouds(t, nil, func(t *testing.T, c *servertest.Cloud) {
		ctx := context.Background()
		admin, demo, reader := c.Login(t, "admin"), c.Login(t, "demo"), c.Login(t, "reader")
		private, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "admin-only"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		shared := true
		if _, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "for-all", Shared: &shared}).Extract(); err != nil {
			t.Fatal(err)
		}
		mine, err := networks.Create(ctx, demo, networks.CreateOpts{Name: "demo-net"}).Extract()
		if err != nil {
			t.Fatalf("demo (member) creating a network: %v", err)
		}
		if mine.ProjectID != c.Boot.DemoProjectID {
			t.Errorf("demo's network belongs to %q, want the demo project %q", mine.ProjectID, c.Boot.DemoProjectID)
		}

		_, err = networks.Get(ctx, demo, private.ID).Extract()
		if got := faultKey(err); got != "Not Found NetworkNotFound" {
			t.Errorf("demo reading admin's private network: %s, want 404 NetworkNotFound", got)
		}
		err = networks.Delete(ctx, demo, private.ID).ExtractErr()
		if got := faultKey(err); got != "Not Found NetworkNotFound" {
			t.Errorf("demo deleting admin's private network: %s, want 404 NetworkNotFound", got)
		}
		names := func(c *gophercloud.ServiceClient) map[string]bool {
			pages, err := networks.List(c, nil).AllPages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			l, _ := networks.ExtractNetworks(pages)
			out := map[string]bool{}
			for _, n := range l {
				out[n.Name] = true
			}
			return out
		}
		if got := names(demo); !got["demo-net"] || !got["for-all"] || got["admin-only"] || len(got) != 2 {
			t.Errorf("demo lists %v, want demo-net and for-all", got)
		}
		if got := names(admin); len(got) != 3 {
			t.Errorf("admin lists %v, want all three", got)
		}
		if got := names(reader); !got["demo-net"] || got["admin-only"] {
			t.Errorf("reader lists %v, want demo's networks", got)
		}

		_, err = networks.Create(ctx, reader, networks.CreateOpts{Name: "nope"}).Extract()
		if got := faultKey(err); got != "Forbidden PolicyNotAuthorized" {
			t.Errorf("reader creating a network: %s, want 403 PolicyNotAuthorized", got)
		}
		newName := "renamed"
		_, err = networks.Update(ctx, reader, mine.ID, networks.UpdateOpts{Name: &newName}).Extract()
		if got := faultKey(err); got != "Forbidden PolicyNotAuthorized" {
			t.Errorf("reader renaming demo's network: %s, want 403 PolicyNotAuthorized", got)
		}
	})
}

// TestKeystoneTokens: requests without a valid token are refused with
// 401 and the challenge clients follow.
func TestKeystoneTokens(t *testing.T) {
	clouds(t, nil, func(t *testing.T, c *servertest.Cloud) {
		demo := c.Login(t, "demo")
		token := demo.Token()
		for _, tc := range []struct{ name, token string }{
			{"none", ""},
			{"garbage", "not-a-token"},
			{"tampered", token[:len(token)-2] + "xx"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequest("GET", c.URL+"/v2.0/networks", nil)
				if tc.token != "" {
					req.Header.Set("X-Auth-Token", tc.token)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Keystone uri="`+c.IdentityURL+`"` {
					t.Errorf("%d, WWW-Authenticate %q; want 401 with Keystone uri=%q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), c.IdentityURL)
				}
			})
		}
		t.Run("revoked", func(t *testing.T) {
			req, _ := http.NewRequest("DELETE", c.IdentityURL+"/v3/auth/tokens", nil)
			req.Header.Set("X-Auth-Token", token)
			req.Header.Set("X-Subject-Token", token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("revoke: %d", resp.StatusCode)
			}
			req, _ = http.NewRequest("GET", c.URL+"/v2.0/networks", nil)
			req.Header.Set("X-Auth-Token", token)
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("revoked token: %d, want 401", resp.StatusCode)
			}
		})
	})
}

// TestPolicyOverride: an operator's policy.yaml replaces default rules.
func TestPolicyOverride(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	rules := "create_network: \"role:admin\"\n" +
		"get_network:provider:network_type: \"@\"\n"
	if err := os.WriteFile(file, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	clouds(t, func(c *server.Config) { c.PolicyFile = file }, func(t *testing.T, c *servertest.Cloud) {
		ctx := context.Background()
		admin, demo := c.Login(t, "admin"), c.Login(t, "demo")
		_, err := networks.Create(ctx, demo, networks.CreateOpts{Name: "nope"}).Extract()
		if got := faultKey(err); got != "Forbidden PolicyNotAuthorized" {
			t.Errorf("member creating a network with create_network admin-only: %s, want 403", got)
		}
		shared := true
		n, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "for-all", Shared: &shared}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		res := networks.Get(ctx, demo, n.ID)
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		body, _ := res.Body.(map[string]any)
		net, _ := body["network"].(map[string]any)
		if net["provider:network_type"] != "vxlan" {
			t.Errorf("with get_network:provider:network_type open, a member sees %v, want vxlan", net["provider:network_type"])
		}
		if _, hidden := net["provider:segmentation_id"]; hidden {
			t.Errorf("provider:segmentation_id still admin-only by default, but a member sees it")
		}
	})
}

package server_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/addressscopes"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/subnetpools"

	"muon/internal/server/servertest"
)

func (b body) ToAddressScopeCreateMap() (map[string]any, error) {
	return map[string]any{"address_scope": map[string]any(b)}, nil
}
func (b body) ToAddressScopeUpdateMap() (map[string]any, error) {
	return map[string]any{"address_scope": map[string]any(b)}, nil
}

func TestAddressScopeCRUD(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		sc, err := addressscopes.Create(bg, c, addressscopes.CreateOpts{Name: "blue", IPVersion: 6}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if sc.Name != "blue" || sc.IPVersion != 6 || sc.Shared || sc.ProjectID != "p1" || sc.TenantID != "p1" {
			t.Errorf("scope %+v", sc)
		}
		// Zed gives address scopes no standard attributes.
		status, b := e.Do(t, http.MethodGet, "/v2.0/address-scopes/"+sc.ID, "p1", false, "")
		var raw map[string]map[string]any
		if status != 200 || json.Unmarshal([]byte(b), &raw) != nil {
			t.Fatalf("get: %d %s", status, b)
		}
		var keys []string
		for k := range raw["address_scope"] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"id", "ip_version", "name", "project_id", "shared", "tenant_id"}; !slices.Equal(keys, want) {
			t.Errorf("keys %v, want %v", keys, want)
		}

		got, err := addressscopes.Get(bg, c, sc.ID).Extract()
		if err != nil || got.ID != sc.ID {
			t.Fatalf("get %+v, %v", got, err)
		}
		if ids := listIDs(t, addressscopes.List(c, addressscopes.ListOpts{IPVersion: 6}), "address_scopes"); !slices.Equal(ids, []string{sc.ID}) {
			t.Errorf("list ip_version=6: %v, want [%s]", ids, sc.ID)
		}
		if ids := listIDs(t, addressscopes.List(c, addressscopes.ListOpts{IPVersion: 4}), "address_scopes"); len(ids) != 0 {
			t.Errorf("list ip_version=4: %v, want none", ids)
		}
		name := "green"
		up, err := addressscopes.Update(bg, c, sc.ID, addressscopes.UpdateOpts{Name: &name}).Extract()
		if err != nil || up.Name != "green" {
			t.Fatalf("update %+v, %v", up, err)
		}
		wantFault(t, addressscopes.Update(bg, c, sc.ID, body{"ip_version": 4}).Err, 400, "HTTPBadRequest")
		if err := addressscopes.Delete(bg, c, sc.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		wantFault(t, addressscopes.Get(bg, c, sc.ID).Err, 404, "AddressScopeNotFound")
		wantFault(t, addressscopes.Delete(bg, c, sc.ID).ExtractErr(), 404, "AddressScopeNotFound")

		// The name is optional.
		if sc := must[addressscopes.AddressScope](t, addressscopes.Create(bg, c, body{"ip_version": 4}), "address_scope"); sc.Name != "" {
			t.Errorf("name %q, want empty", sc.Name)
		}
	})
}

func TestAddressScopeCreateRefused(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		for _, tc := range []struct {
			name   string
			b      body
			status int
			typ    string
		}{
			{"no-version", body{"name": "s"}, 400, "HTTPBadRequest"},
			{"version-5", body{"name": "s", "ip_version": 5}, 400, "HTTPBadRequest"},
			{"version-string", body{"name": "s", "ip_version": "four"}, 400, "InvalidInput"},
			{"shared-member", body{"name": "s", "ip_version": 4, "shared": true}, 403, "PolicyNotAuthorized"},
			{"unknown-attr", body{"name": "s", "ip_version": 4, "description": "x"}, 400, "HTTPBadRequest"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantFault(t, addressscopes.Create(bg, e.Client("p1", false), tc.b).Err, tc.status, tc.typ)
			})
		}
		if ids := listIDs(t, addressscopes.List(e.Admin(), nil), "address_scopes"); len(ids) != 0 {
			t.Errorf("refused creates left scopes %v", ids)
		}
	})
}

func TestAddressScopeShared(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		admin, p1, p2 := e.Admin(), e.Client("p1", false), e.Client("p2", false)
		shared := must[addressscopes.AddressScope](t, addressscopes.Create(bg, admin, body{"name": "shared", "ip_version": 4, "shared": true}), "address_scope")
		private := must[addressscopes.AddressScope](t, addressscopes.Create(bg, p1, body{"name": "private", "ip_version": 4}), "address_scope")
		if !shared.Shared || private.Shared {
			t.Fatalf("shared %v private %v", shared.Shared, private.Shared)
		}

		if ids := listIDs(t, addressscopes.List(p2, nil), "address_scopes"); !slices.Equal(ids, []string{shared.ID}) {
			t.Errorf("p2 lists %v, want only the shared %s", ids, shared.ID)
		}
		wantFault(t, addressscopes.Get(bg, p2, private.ID).Err, 404, "AddressScopeNotFound")
		// Others may use a shared scope for their pools, not change it.
		sp := mkPool(t, p2, body{"name": "in-shared", "prefixes": []string{"10.1.0.0/16"}, "address_scope_id": shared.ID})
		if sp.AddressScopeID == nil || *sp.AddressScopeID != shared.ID {
			t.Errorf("pool scope %v, want %s", sp.AddressScopeID, shared.ID)
		}
		wantFault(t, addressscopes.Update(bg, p2, shared.ID, body{"name": "mine"}).Err, 403, "PolicyNotAuthorized")
		wantFault(t, addressscopes.Delete(bg, p2, shared.ID).ExtractErr(), 403, "PolicyNotAuthorized")
		wantFault(t, subnetpools.Create(bg, p2, body{"name": "x", "prefixes": []string{"10.2.0.0/16"}, "address_scope_id": private.ID}).Err,
			404, "AddressScopeNotFound")

		// Sharing is the admin's, and is for good.
		wantFault(t, addressscopes.Update(bg, p1, private.ID, body{"shared": true}).Err, 403, "PolicyNotAuthorized")
		up := must[addressscopes.AddressScope](t, addressscopes.Update(bg, admin, private.ID, body{"shared": true}), "address_scope")
		if !up.Shared {
			t.Errorf("shared false after sharing")
		}
		wantFault(t, addressscopes.Update(bg, admin, private.ID, body{"shared": false}).Err, 400, "AddressScopeUpdateError")
		if ids := listIDs(t, addressscopes.List(p2, nil), "address_scopes"); len(ids) != 2 {
			t.Errorf("p2 lists %v after sharing, want both", ids)
		}
	})
}

func TestAddressScopeDeleteInUse(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		sc := must[addressscopes.AddressScope](t, addressscopes.Create(bg, c, body{"name": "busy", "ip_version": 4}), "address_scope")
		sp := mkPool(t, c, body{"name": "in", "prefixes": []string{"10.3.0.0/16"}, "address_scope_id": sc.ID})
		wantFault(t, addressscopes.Delete(bg, c, sc.ID).ExtractErr(), 409, "AddressScopeInUse")
		if err := subnetpools.Delete(bg, c, sp.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if err := addressscopes.Delete(bg, c, sc.ID).ExtractErr(); err != nil {
			t.Fatalf("delete once no pool uses it: %v", err)
		}
	})
}

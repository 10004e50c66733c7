package server_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/rbacpolicies"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"muon/internal/server/servertest"
)

func share(netID, target string, action rbacpolicies.PolicyAction) rbacpolicies.CreateOpts {
	return rbacpolicies.CreateOpts{ObjectType: "network", ObjectID: netID, TargetTenant: target, Action: action}
}

func mkPolicy(t *testing.T, c *gophercloud.ServiceClient, opts rbacpolicies.CreateOpts) *rbacpolicies.RBACPolicy {
	t.Helper()
	p, err := rbacpolicies.Create(bg, c, opts).Extract()
	if err != nil {
		t.Fatalf("create rbac policy %+v: %v", opts, err)
	}
	return p
}

func policyIDs(t *testing.T, c *gophercloud.ServiceClient, opts rbacpolicies.ListOpts) []string {
	t.Helper()
	return listIDs(t, rbacpolicies.List(c, opts), "rbac_policies")
}

func TestRBACPolicies(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		admin := e.Admin()
		t.Run("share-with-one-project", func(t *testing.T) {
			owner, a, b := e.Client("s-own", false), e.Client("s-a", false), e.Client("s-b", false)
			n, s := netWithSubnet(t, owner, "10.70.1.0/24")
			pol := mkPolicy(t, owner, share(n.ID, "s-a", rbacpolicies.ActionAccessShared))
			if pol.ProjectID != "s-own" || pol.TenantID != "s-own" || pol.TargetTenant != "s-a" ||
				pol.ObjectType != "network" || pol.ObjectID != n.ID || pol.Action != rbacpolicies.ActionAccessShared {
				t.Errorf("policy %+v", pol)
			}
			got := must[network](t, networks.Get(bg, a, n.ID), "network")
			if !got.Shared {
				t.Errorf("target sees shared=%v, want true (shared with its project)", got.Shared)
			}
			if o := must[network](t, networks.Get(bg, owner, n.ID), "network"); o.Shared {
				t.Errorf("owner sees shared=true without a wildcard policy")
			}
			if ids := listIDs(t, networks.List(a, nil), "networks"); !slices.Contains(ids, n.ID) {
				t.Errorf("target's network list %v lacks %s", ids, n.ID)
			}
			must[subnet](t, subnets.Get(bg, a, s.ID), "subnet")
			if ids := listIDs(t, subnets.List(a, nil), "subnets"); !slices.Contains(ids, s.ID) {
				t.Errorf("target's subnet list %v lacks %s", ids, s.ID)
			}
			p := mkPort(t, a, body{"network_id": n.ID, "fixed_ips": []any{map[string]any{"subnet_id": s.ID}}})
			if p.ProjectID != "s-a" || len(p.FixedIPs) != 1 {
				t.Errorf("target's port %+v", p)
			}
			// A third project sees nothing.
			_, err := networks.Get(bg, b, n.ID).Extract()
			wantFault(t, err, 404, "NetworkNotFound")
			_, err = subnets.Get(bg, b, s.ID).Extract()
			wantFault(t, err, 404, "SubnetNotFound")
			_, err = ports.Create(bg, b, body{"network_id": n.ID}).Extract()
			wantFault(t, err, 404, "NetworkNotFound")
			if ids := listIDs(t, networks.List(b, nil), "networks"); slices.Contains(ids, n.ID) {
				t.Errorf("third project lists %s", n.ID)
			}
			// The policy is its owner's: the target neither lists nor reads it.
			if ids := policyIDs(t, owner, rbacpolicies.ListOpts{}); !slices.Equal(ids, []string{pol.ID}) {
				t.Errorf("owner's policies %v, want [%s]", ids, pol.ID)
			}
			if ids := policyIDs(t, a, rbacpolicies.ListOpts{}); len(ids) != 0 {
				t.Errorf("target lists policies %v", ids)
			}
			_, err = rbacpolicies.Get(bg, a, pol.ID).Extract()
			wantFault(t, err, 404, "RbacPolicyNotFound")
			// The target may not share what it was given.
			_, err = rbacpolicies.Create(bg, a, share(n.ID, "s-b", rbacpolicies.ActionAccessShared)).Extract()
			wantFault(t, err, 400, "InvalidInput")
		})
		t.Run("update-target", func(t *testing.T) {
			owner, a, b := e.Client("u-own", false), e.Client("u-a", false), e.Client("u-b", false)
			n := mkNet(t, owner, body{"name": "u"})
			pol := mkPolicy(t, owner, share(n.ID, "u-a", rbacpolicies.ActionAccessShared))
			up, err := rbacpolicies.Update(bg, owner, pol.ID, rbacpolicies.UpdateOpts{TargetTenant: "u-b"}).Extract()
			if err != nil || up.TargetTenant != "u-b" || up.ID != pol.ID || up.ObjectID != n.ID {
				t.Fatalf("update target: %+v %v", up, err)
			}
			must[network](t, networks.Get(bg, b, n.ID), "network")
			_, err = networks.Get(bg, a, n.ID).Extract()
			wantFault(t, err, 404, "NetworkNotFound")
			// Only admins share with everyone.
			_, err = rbacpolicies.Update(bg, owner, pol.ID, rbacpolicies.UpdateOpts{TargetTenant: "*"}).Extract()
			wantFault(t, err, 403, "PolicyNotAuthorized")
			_, err = rbacpolicies.Create(bg, owner, share(n.ID, "*", rbacpolicies.ActionAccessShared)).Extract()
			wantFault(t, err, 403, "PolicyNotAuthorized")
		})
		t.Run("wildcard-is-shared", func(t *testing.T) {
			n := mkNet(t, admin, body{"name": "w", "shared": true})
			pols, err := rbacpolicies.List(admin, rbacpolicies.ListOpts{ObjectID: n.ID}).AllPages(bg)
			if err != nil {
				t.Fatal(err)
			}
			all, _ := rbacpolicies.ExtractRBACPolicies(pols)
			if len(all) != 1 || all[0].TargetTenant != "*" || all[0].Action != rbacpolicies.ActionAccessShared || all[0].ProjectID != n.ProjectID {
				t.Fatalf("policies of a shared network %+v, want one wildcard access_as_shared of %s", all, n.ProjectID)
			}
			must[network](t, networks.Get(bg, e.Client("w-any", false), n.ID), "network")
			// shared=False removes it; a wildcard policy makes it shared again.
			u := must[network](t, networks.Update(bg, admin, n.ID, upd{body{"shared": false}}), "network")
			if u.Shared {
				t.Errorf("shared after unsharing")
			}
			if ids := policyIDs(t, admin, rbacpolicies.ListOpts{ObjectID: n.ID}); len(ids) != 0 {
				t.Errorf("policies after unsharing %v", ids)
			}
			_, err = networks.Get(bg, e.Client("w-any", false), n.ID).Extract()
			wantFault(t, err, 404, "NetworkNotFound")
			wild := mkPolicy(t, admin, share(n.ID, "*", rbacpolicies.ActionAccessShared))
			g := must[network](t, networks.Get(bg, admin, n.ID), "network")
			if !g.Shared || g.RevisionNumber <= u.RevisionNumber {
				t.Errorf("after a wildcard policy shared=%v revision %d (was %d)", g.Shared, g.RevisionNumber, u.RevisionNumber)
			}
			if ids := listIDs(t, networks.List(e.Client("w-any", false), networks.ListOpts{Shared: ptr(true)}), "networks"); !slices.Contains(ids, n.ID) {
				t.Errorf("shared=True list %v lacks %s", ids, n.ID)
			}
			if err := rbacpolicies.Delete(bg, admin, wild.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if g := must[network](t, networks.Get(bg, admin, n.ID), "network"); g.Shared {
				t.Errorf("shared after deleting the wildcard policy")
			}
		})
		t.Run("duplicate", func(t *testing.T) {
			n := mkNet(t, admin, body{"name": "d"})
			mkPolicy(t, admin, share(n.ID, "d-a", rbacpolicies.ActionAccessShared))
			_, err := rbacpolicies.Create(bg, admin, share(n.ID, "d-a", rbacpolicies.ActionAccessShared)).Extract()
			wantFault(t, err, 409, "DuplicateRbacPolicy")
			// Another action or target is another policy.
			mkPolicy(t, admin, share(n.ID, "d-a", rbacpolicies.ActionAccessExternal))
			other := mkPolicy(t, admin, share(n.ID, "d-b", rbacpolicies.ActionAccessShared))
			_, err = rbacpolicies.Update(bg, admin, other.ID, rbacpolicies.UpdateOpts{TargetTenant: "d-a"}).Extract()
			wantFault(t, err, 409, "DuplicateRbacPolicy")
			if g, err := rbacpolicies.Get(bg, admin, other.ID).Extract(); err != nil || g.TargetTenant != "d-b" {
				t.Errorf("after a refused update %+v %v", g, err)
			}
		})
		t.Run("in-use", func(t *testing.T) {
			a := e.Client("i-a", false)
			n, _ := netWithSubnet(t, admin, "10.70.2.0/24")
			pol := mkPolicy(t, admin, share(n.ID, "i-a", rbacpolicies.ActionAccessShared))
			p := mkPort(t, a, body{"network_id": n.ID})
			err := rbacpolicies.Delete(bg, admin, pol.ID).ExtractErr()
			wantFault(t, err, 409, "RbacPolicyInUse")
			_, err = rbacpolicies.Update(bg, admin, pol.ID, rbacpolicies.UpdateOpts{TargetTenant: "i-b"}).Extract()
			wantFault(t, err, 409, "RbacPolicyInUse")
			// A wildcard keeps the port's access: the specific one may go,
			// then the wildcard is the one it depends on.
			wild := mkPolicy(t, admin, share(n.ID, "*", rbacpolicies.ActionAccessShared))
			if err := rbacpolicies.Delete(bg, admin, pol.ID).ExtractErr(); err != nil {
				t.Fatalf("delete covered by a wildcard: %v", err)
			}
			wantFault(t, rbacpolicies.Delete(bg, admin, wild.ID).ExtractErr(), 409, "RbacPolicyInUse")
			_, err = rbacpolicies.Update(bg, admin, wild.ID, rbacpolicies.UpdateOpts{TargetTenant: "i-b"}).Extract()
			wantFault(t, err, 409, "RbacPolicyInUse")
			_, err = networks.Update(bg, admin, n.ID, upd{body{"shared": false}}).Extract()
			wantFault(t, err, 409, "InvalidSharedSetting")
			if err := ports.Delete(bg, a, p.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if err := rbacpolicies.Delete(bg, admin, wild.ID).ExtractErr(); err != nil {
				t.Fatalf("delete after the port went: %v", err)
			}
		})
		t.Run("self-share-not-in-use", func(t *testing.T) {
			owner := e.Client("ss-own", false)
			n, _ := netWithSubnet(t, owner, "10.70.3.0/24")
			self := mkPolicy(t, owner, share(n.ID, "ss-own", rbacpolicies.ActionAccessShared))
			mkPort(t, owner, body{"network_id": n.ID})
			if err := rbacpolicies.Delete(bg, owner, self.ID).ExtractErr(); err != nil {
				t.Errorf("deleting a self-share with the owner's port: %v", err)
			}
		})
		t.Run("external", func(t *testing.T) {
			x, y := e.Client("x-a", false), e.Client("x-b", false)
			n := mkNet(t, admin, body{"name": "x"})
			pol := mkPolicy(t, admin, share(n.ID, "x-a", rbacpolicies.ActionAccessExternal))
			got := must[network](t, networks.Get(bg, x, n.ID), "network")
			if !got.External || got.Shared {
				t.Errorf("target sees router:external=%v shared=%v, want true false", got.External, got.Shared)
			}
			_, err := networks.Get(bg, y, n.ID).Extract()
			wantFault(t, err, 404, "NetworkNotFound")
			if err := rbacpolicies.Delete(bg, admin, pol.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if g := must[network](t, networks.Get(bg, admin, n.ID), "network"); g.External {
				t.Errorf("router:external after its last access_as_external policy went")
			}
			// router:external=True is a wildcard access_as_external policy.
			ext := mkNet(t, admin, body{"name": "x2", "router:external": true})
			pols, _ := rbacpolicies.List(admin, rbacpolicies.ListOpts{ObjectID: ext.ID}).AllPages(bg)
			all, _ := rbacpolicies.ExtractRBACPolicies(pols)
			if len(all) != 1 || all[0].TargetTenant != "*" || all[0].Action != rbacpolicies.ActionAccessExternal {
				t.Errorf("policies of an external network %+v", all)
			}
			must[network](t, networks.Get(bg, y, ext.ID), "network")
			must[network](t, networks.Update(bg, admin, ext.ID, upd{body{"router:external": false}}), "network")
			if ids := policyIDs(t, admin, rbacpolicies.ListOpts{ObjectID: ext.ID}); len(ids) != 0 {
				t.Errorf("policies after router:external=False %v", ids)
			}
		})
		t.Run("not-owner", func(t *testing.T) {
			n := mkNet(t, e.Client("no-own", false), body{"name": "p"})
			_, err := rbacpolicies.Create(bg, e.Client("no-b", false), share(n.ID, "no-b", rbacpolicies.ActionAccessShared)).Extract()
			wantFault(t, err, 404, "NetworkNotFound")
			_, err = rbacpolicies.Create(bg, admin, rbacpolicies.CreateOpts{ObjectType: "subnet", ObjectID: n.ID, TargetTenant: "no-b", Action: rbacpolicies.ActionAccessShared}).Extract()
			wantFault(t, err, 400, "InvalidInput")
			_, err = rbacpolicies.Create(bg, admin, share(n.ID, "no-b", "access_as_readonly")).Extract()
			wantFault(t, err, 400, "InvalidInput")
			status, _ := e.Do(t, "POST", "/v2.0/rbac-policies", "admin", true,
				fmt.Sprintf(`{"rbac_policy": {"object_type": "network", "object_id": %q, "action": "access_as_shared", "target_tenant": null}}`, n.ID))
			if status != 400 {
				t.Errorf("null target_tenant: %d, want 400", status)
			}
		})
		t.Run("network-delete-drops-policies", func(t *testing.T) {
			n := mkNet(t, admin, body{"name": "nd", "shared": true})
			mkPolicy(t, admin, share(n.ID, "nd-a", rbacpolicies.ActionAccessExternal))
			if err := networks.Delete(bg, admin, n.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if ids := policyIDs(t, admin, rbacpolicies.ListOpts{ObjectID: n.ID}); len(ids) != 0 {
				t.Errorf("policies of a deleted network %v", ids)
			}
		})
		t.Run("quota", func(t *testing.T) {
			c := e.Client("qr", false)
			n := mkNet(t, c, body{"name": "q"})
			for i := range 10 {
				mkPolicy(t, c, share(n.ID, fmt.Sprintf("qr-%d", i), rbacpolicies.ActionAccessShared))
			}
			_, err := rbacpolicies.Create(bg, c, share(n.ID, "qr-10", rbacpolicies.ActionAccessShared)).Extract()
			wantFault(t, err, 409, "OverQuota")
		})
	})
}

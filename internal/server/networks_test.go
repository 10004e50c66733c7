package server_test

import (
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/mtu"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsecurity"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/provider"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"muon/internal/server"
	"muon/internal/server/servertest"
)

// storesWith is servertest.Stores with an adjusted configuration.
func storesWith(t *testing.T, edit func(*server.Config), fn func(t *testing.T, e *servertest.Env)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, servertest.Start(t, "sqlite", edit)) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv("MUON_TEST_POSTGRES") == "" {
			if os.Getenv("MUON_E2E") == "1" {
				t.Fatal("MUON_E2E=1 needs MUON_TEST_POSTGRES")
			}
			t.Skip("needs PostgreSQL: set MUON_TEST_POSTGRES")
		}
		fn(t, servertest.Start(t, "postgres", edit))
	})
}

func ptr[T any](v T) *T { return &v }

func TestNetworkAttributes(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		member := e.Client("p1", false)
		admin := e.Admin()

		t.Run("defaults", func(t *testing.T) {
			n := mkNet(t, member, body{"name": "plain"})
			if !n.AdminStateUp || n.Shared || n.External || !n.PortSecurityEnabled || n.Status != "ACTIVE" {
				t.Errorf("defaults: admin_state_up=%v shared=%v router:external=%v port_security_enabled=%v status=%s",
					n.AdminStateUp, n.Shared, n.External, n.PortSecurityEnabled, n.Status)
			}
			if n.ProjectID != "p1" || n.TenantID != "p1" {
				t.Errorf("project_id %q tenant_id %q, want p1", n.ProjectID, n.TenantID)
			}
			if n.MTU != 1450 {
				t.Errorf("tenant vxlan network mtu %d, want 1450", n.MTU)
			}
			if n.AvailabilityZoneHints == nil || len(n.AvailabilityZoneHints) != 0 || n.Subnets == nil || len(n.Subnets) != 0 {
				t.Errorf("availability_zone_hints %v subnets %v, want [] and []", n.AvailabilityZoneHints, n.Subnets)
			}
			// provider:* is the admin's business: a member's view has no such keys.
			raw := getJSON(t, func() (int, string) { return e.Do(t, "GET", "/v2.0/networks/"+n.ID, "p1", false, "") }, 200)["network"].(map[string]any)
			for _, k := range []string{"provider:network_type", "provider:physical_network", "provider:segmentation_id", "segments"} {
				if _, ok := raw[k]; ok {
					t.Errorf("member sees %s", k)
				}
			}
			an := must[network](t, networks.Get(bg, admin, n.ID), "network")
			if an.NetworkType == nil || *an.NetworkType != "vxlan" || an.SegmentationID == nil || *an.SegmentationID < 1 || an.PhysicalNetwork != nil {
				t.Errorf("admin view: type %v physnet %v segid %v, want vxlan, null, an id", an.NetworkType, an.PhysicalNetwork, an.SegmentationID)
			}
		})

		t.Run("set-and-update", func(t *testing.T) {
			opts := portsecurity.NetworkCreateOptsExt{
				CreateOptsBuilder: networks.CreateOpts{
					Name: "tuned", AdminStateUp: ptr(false), AvailabilityZoneHints: []string{"nova"}, Description: "d",
				},
				PortSecurityEnabled: ptr(false),
			}
			n := must[network](t, networks.Create(bg, member, opts), "network")
			if n.AdminStateUp || n.PortSecurityEnabled || !slices.Equal(n.AvailabilityZoneHints, []string{"nova"}) || n.Description != "d" {
				t.Fatalf("created %+v", n)
			}
			u := must[network](t, networks.Update(bg, member, n.ID, portsecurity.NetworkUpdateOptsExt{
				UpdateOptsBuilder:   networks.UpdateOpts{AdminStateUp: ptr(true), Name: ptr("renamed")},
				PortSecurityEnabled: ptr(true),
			}), "network")
			if !u.AdminStateUp || !u.PortSecurityEnabled || u.Name != "renamed" || u.RevisionNumber <= n.RevisionNumber {
				t.Errorf("updated: admin_state_up=%v port_security_enabled=%v name=%q revision %d -> %d",
					u.AdminStateUp, u.PortSecurityEnabled, u.Name, n.RevisionNumber, u.RevisionNumber)
			}
			_, err := networks.Update(bg, member, n.ID, upd{body{"availability_zone_hints": []string{"az2"}}}).Extract()
			wantFault(t, err, 400, "HTTPBadRequest")
		})

		t.Run("shared-external-admin-only", func(t *testing.T) {
			_, err := networks.Create(bg, member, networks.CreateOpts{Shared: ptr(true)}).Extract()
			wantFault(t, err, 403, "PolicyNotAuthorized")
			_, err = networks.Create(bg, member, external.CreateOptsExt{CreateOptsBuilder: networks.CreateOpts{}, External: ptr(true)}).Extract()
			wantFault(t, err, 403, "PolicyNotAuthorized")
			n := must[network](t, networks.Create(bg, admin, external.CreateOptsExt{
				CreateOptsBuilder: networks.CreateOpts{Shared: ptr(true)}, External: ptr(true)}), "network")
			if !n.Shared || !n.External {
				t.Errorf("shared=%v router:external=%v, want both", n.Shared, n.External)
			}
			mine := mkNet(t, member, body{})
			_, err = networks.Update(bg, member, mine.ID, networks.UpdateOpts{Shared: ptr(true)}).Extract()
			wantFault(t, err, 403, "PolicyNotAuthorized")
			u := must[network](t, networks.Update(bg, admin, mine.ID, external.UpdateOptsExt{
				UpdateOptsBuilder: networks.UpdateOpts{}, External: ptr(true)}), "network")
			if !u.External {
				t.Error("admin could not set router:external")
			}
		})

		t.Run("mtu", func(t *testing.T) {
			tests := []struct {
				name   string
				mtu    any
				status int
				want   int
			}{
				{"max", 1450, 201, 1450},
				{"below", 1400, 201, 1400},
				{"zero-is-max", 0, 201, 1450},
				{"too-big", 1451, 400, 0},
				{"negative", -1, 400, 0},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					r := networks.Create(bg, member, body{"mtu": tc.mtu})
					if tc.status != 201 {
						st, _ := faultOf(r.Err)
						if st != tc.status {
							t.Fatalf("mtu %v: status %d, want %d", tc.mtu, st, tc.status)
						}
						return
					}
					if n := must[network](t, r, "network"); n.MTU != tc.want {
						t.Errorf("mtu %v: got %d, want %d", tc.mtu, n.MTU, tc.want)
					}
				})
			}
			n := must[network](t, networks.Create(bg, member, mtu.CreateOptsExt{CreateOptsBuilder: networks.CreateOpts{}, MTU: 1300}), "network")
			_, err := networks.Update(bg, member, n.ID, mtu.UpdateOptsExt{UpdateOptsBuilder: networks.UpdateOpts{}, MTU: 1500}).Extract()
			wantFault(t, err, 400, "InvalidInput")
			if u := must[network](t, networks.Update(bg, member, n.ID, mtu.UpdateOptsExt{UpdateOptsBuilder: networks.UpdateOpts{}, MTU: 1450}), "network"); u.MTU != 1450 {
				t.Errorf("mtu after update %d, want 1450", u.MTU)
			}
		})
	})
}

func TestProviderNetworks(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		admin := e.Admin()
		// Claims that later cases collide with.
		mkNet(t, admin, body{"provider:network_type": "flat", "provider:physical_network": "taken"})
		mkNet(t, admin, body{"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 1500})
		mkNet(t, admin, body{"provider:network_type": "vxlan", "provider:segmentation_id": 7000})

		tests := []struct {
			name    string
			req     body
			status  int
			fault   string
			physnet any // want, nil for null
			segID   any // want: an int, nil for null, "range" for 1000..2999
			mtu     int
		}{
			{"local", body{"provider:network_type": "local"}, 201, "", nil, nil, 1500},
			{"local-physnet", body{"provider:network_type": "local", "provider:physical_network": "physnet1"}, 400, "InvalidInput", nil, nil, 0},
			{"local-segid", body{"provider:network_type": "local", "provider:segmentation_id": 3}, 400, "InvalidInput", nil, nil, 0},
			{"flat", body{"provider:network_type": "flat", "provider:physical_network": "physnet2"}, 201, "", "physnet2", nil, 1500},
			{"flat-no-physnet", body{"provider:network_type": "flat"}, 400, "InvalidInput", nil, nil, 0},
			{"flat-segid", body{"provider:network_type": "flat", "provider:physical_network": "physnet3", "provider:segmentation_id": 5}, 400, "InvalidInput", nil, nil, 0},
			{"flat-in-use", body{"provider:network_type": "flat", "provider:physical_network": "taken"}, 409, "FlatNetworkInUse", nil, nil, 0},
			{"vlan", body{"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 1501}, 201, "", "physnet1", 1501, 1500},
			{"vlan-out-of-tenant-range", body{"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 10}, 201, "", "physnet1", 10, 1500},
			{"vlan-allocated", body{"provider:network_type": "vlan", "provider:physical_network": "physnet1"}, 201, "", "physnet1", "range", 1500},
			{"vlan-in-use", body{"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 1500}, 409, "VlanIdInUse", nil, nil, 0},
			{"vlan-bad-id", body{"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 4095}, 400, "InvalidInput", nil, nil, 0},
			{"vlan-unknown-physnet", body{"provider:network_type": "vlan", "provider:physical_network": "nowhere", "provider:segmentation_id": 5}, 400, "InvalidInput", nil, nil, 0},
			{"vxlan", body{"provider:network_type": "vxlan", "provider:segmentation_id": 7001}, 201, "", nil, 7001, 1450},
			{"vxlan-in-use", body{"provider:network_type": "vxlan", "provider:segmentation_id": 7000}, 409, "TunnelIdInUse", nil, nil, 0},
			{"vxlan-physnet", body{"provider:network_type": "vxlan", "provider:physical_network": "physnet1"}, 400, "InvalidInput", nil, nil, 0},
			// geneve has its own ID space: vxlan's 7000 is free there.
			{"geneve", body{"provider:network_type": "geneve", "provider:segmentation_id": 7000}, 201, "", nil, 7000, 1450},
			{"unknown-type", body{"provider:network_type": "carrier-pigeon"}, 400, "InvalidInput", nil, nil, 0},
			{"no-type", body{"provider:physical_network": "physnet1"}, 400, "InvalidInput", nil, nil, 0},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := networks.Create(bg, admin, tc.req)
				if tc.status != 201 {
					wantFault(t, r.Err, tc.status, tc.fault)
					return
				}
				n := must[network](t, r, "network")
				if *n.NetworkType != tc.req["provider:network_type"] {
					t.Errorf("network_type %v", *n.NetworkType)
				}
				switch {
				case tc.physnet == nil && n.PhysicalNetwork != nil, tc.physnet != nil && (n.PhysicalNetwork == nil || *n.PhysicalNetwork != tc.physnet):
					t.Errorf("physical_network %v, want %v", deref(n.PhysicalNetwork), tc.physnet)
				}
				switch want := tc.segID.(type) {
				case nil:
					if n.SegmentationID != nil {
						t.Errorf("segmentation_id %d, want null", *n.SegmentationID)
					}
				case int:
					if n.SegmentationID == nil || *n.SegmentationID != want {
						t.Errorf("segmentation_id %v, want %d", deref(n.SegmentationID), want)
					}
				case string:
					if n.SegmentationID == nil || *n.SegmentationID < 1000 || *n.SegmentationID > 2999 {
						t.Errorf("segmentation_id %v, want one of physnet1's 1000-2999", deref(n.SegmentationID))
					}
				}
				if n.MTU != tc.mtu {
					t.Errorf("mtu %d, want %d", n.MTU, tc.mtu)
				}
				if n.Segments != nil {
					t.Errorf("a single-segment network shows segments %v", n.Segments)
				}
			})
		}
	})
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestMultiSegmentNetworks(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		admin := e.Admin()
		segs := []provider.Segment{
			{NetworkType: "vlan", PhysicalNetwork: "physnet1", SegmentationID: 2001},
			{NetworkType: "vxlan", SegmentationID: 9001},
		}
		r := networks.Create(bg, admin, provider.CreateOptsExt{CreateOptsBuilder: networks.CreateOpts{Name: "multi"}, Segments: segs})
		n := must[network](t, r, "network")
		raw := rawOf(t, r.Result, "network")
		for _, k := range []string{"provider:network_type", "provider:physical_network", "provider:segmentation_id"} {
			if _, ok := raw[k]; ok {
				t.Errorf("a multi-segment network shows %s", k)
			}
		}
		var got []provider.Segment
		b, _ := json.Marshal(n.Segments)
		json.Unmarshal(b, &got)
		if !slices.Equal(got, segs) {
			t.Errorf("segments %+v, want %+v", got, segs)
		}
		if n.MTU != 1450 {
			t.Errorf("mtu %d, want the smallest segment's 1450", n.MTU)
		}
		// Each segment's ID is claimed.
		_, err := networks.Create(bg, admin, body{"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 2001}).Extract()
		wantFault(t, err, 409, "VlanIdInUse")
		_, err = networks.Create(bg, admin, body{"provider:network_type": "vxlan", "provider:segmentation_id": 9001}).Extract()
		wantFault(t, err, 409, "TunnelIdInUse")

		t.Run("with-provider", func(t *testing.T) {
			_, err := networks.Create(bg, admin, body{"provider:network_type": "vxlan",
				"segments": []any{map[string]any{"provider:network_type": "vxlan"}}}).Extract()
			wantFault(t, err, 400, "InvalidInput")
		})
		t.Run("duplicate", func(t *testing.T) {
			s := map[string]any{"provider:network_type": "vxlan", "provider:segmentation_id": 9100}
			_, err := networks.Create(bg, admin, body{"segments": []any{s, s}}).Extract()
			wantFault(t, err, 400, "InvalidInput")
		})
		t.Run("member-refused", func(t *testing.T) {
			_, err := networks.Create(bg, e.Client("p1", false), provider.CreateOptsExt{CreateOptsBuilder: networks.CreateOpts{}, Segments: segs[1:]}).Extract()
			wantFault(t, err, 403, "PolicyNotAuthorized")
		})
		t.Run("delete-frees", func(t *testing.T) {
			if err := networks.Delete(bg, admin, n.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			mkNet(t, admin, body{"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 2001})
			mkNet(t, admin, body{"provider:network_type": "vxlan", "provider:segmentation_id": 9001})
		})
	})
}

func TestTenantSegmentAllocation(t *testing.T) {
	small := func(c *server.Config) { c.ML2.VNIRanges = "100:102" }
	storesWith(t, small, func(t *testing.T, e *servertest.Env) {
		c, admin := e.Client("p1", false), e.Admin()
		segID := func(id string) int {
			n := must[network](t, networks.Get(bg, admin, id), "network")
			if n.SegmentationID == nil {
				t.Fatalf("network %s has no segmentation_id", id)
			}
			return *n.SegmentationID
		}
		byVNI := map[int]string{}
		for range 3 {
			n := mkNet(t, c, body{})
			vni := segID(n.ID)
			if vni < 100 || vni > 102 {
				t.Errorf("vni %d outside 100:102", vni)
			}
			if other, dup := byVNI[vni]; dup {
				t.Fatalf("vni %d handed to %s and %s", vni, other, n.ID)
			}
			byVNI[vni] = n.ID
		}
		_, err := networks.Create(bg, c, body{}).Extract()
		wantFault(t, err, 503, "NoNetworkAvailable")
		// A provider network cannot take an allocated tenant VNI either.
		_, err = networks.Create(bg, admin, body{"provider:network_type": "vxlan", "provider:segmentation_id": 101}).Extract()
		wantFault(t, err, 409, "TunnelIdInUse")

		if err := networks.Delete(bg, c, byVNI[101]).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		n := mkNet(t, c, body{})
		if vni := segID(n.ID); vni != 101 {
			t.Errorf("after freeing 101 the new network got %d", vni)
		}
		_, err = networks.Create(bg, c, body{}).Extract()
		wantFault(t, err, 503, "NoNetworkAvailable")
	})
}

func TestMultiTenancy(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		a, b, admin := e.Client("pa", false), e.Client("pb", false), e.Admin()
		private := mkNet(t, a, body{"name": "a-private"})
		shared := mkNet(t, admin, body{"name": "shared", "shared": true})
		ext := mkNet(t, admin, body{"name": "ext", "router:external": true})

		t.Run("hidden", func(t *testing.T) {
			_, err := networks.Get(bg, b, private.ID).Extract()
			wantFault(t, err, 404, "NetworkNotFound")
			_, err = networks.Update(bg, b, private.ID, networks.UpdateOpts{Name: ptr("x")}).Extract()
			wantFault(t, err, 404, "NetworkNotFound")
			wantFault(t, networks.Delete(bg, b, private.ID).ExtractErr(), 404, "NetworkNotFound")
			_, err = ports.Create(bg, b, ports.CreateOpts{NetworkID: private.ID}).Extract()
			wantFault(t, err, 404, "NetworkNotFound")
		})
		t.Run("lists", func(t *testing.T) {
			ids := listIDs(t, networks.List(b, nil), "networks")
			if slices.Contains(ids, private.ID) || !slices.Contains(ids, shared.ID) || !slices.Contains(ids, ext.ID) {
				t.Errorf("project B lists %v; want shared %s and external %s, not A's %s", ids, shared.ID, ext.ID, private.ID)
			}
			ids = listIDs(t, networks.List(a, nil), "networks")
			if !slices.Contains(ids, private.ID) || !slices.Contains(ids, shared.ID) {
				t.Errorf("project A lists %v", ids)
			}
			if ids := listIDs(t, networks.List(admin, nil), "networks"); len(ids) != 3 {
				t.Errorf("admin lists %d networks, want all 3", len(ids))
			}
		})
		t.Run("shared-use", func(t *testing.T) {
			n := must[network](t, networks.Get(bg, b, shared.ID), "network")
			if !n.Shared {
				t.Error("shared network not shown as shared")
			}
			mkSubnet(t, admin, body{"network_id": shared.ID, "ip_version": 4, "cidr": "10.50.0.0/24"})
			p := mkPort(t, b, body{"network_id": shared.ID})
			if p.ProjectID != "pb" || len(p.FixedIPs) != 1 {
				t.Errorf("B's port on the shared network: project %s fixed_ips %v", p.ProjectID, p.FixedIPs)
			}
			// Visible is not owned.
			_, err := networks.Update(bg, b, shared.ID, networks.UpdateOpts{Name: ptr("mine")}).Extract()
			wantFault(t, err, 403, "PolicyNotAuthorized")
			_, err = networks.Create(bg, b, body{"project_id": "pa"}).Extract()
			if st, _ := faultOf(err); st != http.StatusForbidden && st != http.StatusBadRequest {
				t.Errorf("member creating for another project: status %d, want a refusal", st)
			}
			// Unsharing while B uses it is refused.
			_, err = networks.Update(bg, admin, shared.ID, networks.UpdateOpts{Shared: ptr(false)}).Extract()
			wantFault(t, err, 409, "InvalidSharedSetting")
		})
		t.Run("admin-for-project", func(t *testing.T) {
			n := mkNet(t, admin, body{"project_id": "pb", "name": "for-b"})
			if n.ProjectID != "pb" || n.TenantID != "pb" {
				t.Fatalf("project %s", n.ProjectID)
			}
			if _, err := networks.Get(bg, b, n.ID).Extract(); err != nil {
				t.Errorf("B cannot see the network made for it: %v", err)
			}
		})
	})
}

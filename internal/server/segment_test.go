package server_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/segments"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"muon/internal/server/servertest"
)

func (b body) ToSegmentCreateMap() (map[string]any, error) {
	return map[string]any{"segment": map[string]any(b)}, nil
}
func (b body) ToSegmentUpdateMap() (map[string]any, error) {
	return map[string]any{"segment": map[string]any(b)}, nil
}

// segment is the API's segment document; nulls stay visible.
type segment struct {
	ID              string  `json:"id"`
	NetworkID       string  `json:"network_id"`
	NetworkType     string  `json:"network_type"`
	PhysicalNetwork *string `json:"physical_network"`
	SegmentationID  *int    `json:"segmentation_id"`
	Name            *string `json:"name"`
	Description     *string `json:"description"`
	RevisionNumber  int     `json:"revision_number"`
}

func mkSegment(t *testing.T, c *gophercloud.ServiceClient, b body) segment {
	t.Helper()
	return must[segment](t, segments.Create(bg, c, b), "segment")
}

// segIDs lists a network's segments as type/physnet/id strings.
func segIDs(t *testing.T, c *gophercloud.ServiceClient, netID string) []string {
	t.Helper()
	all, err := segments.List(c, segments.ListOpts{NetworkID: netID}).AllPages(bg)
	if err != nil {
		t.Fatal(err)
	}
	var l []segment
	if err := segments.ExtractSegmentsInto(all, &l); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range l {
		out = append(out, s.ID)
	}
	return out
}

func TestSegmentCRUD(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		admin := e.Admin()
		// A vxlan network (MTU 1450) can take a vlan segment (up to 1500).
		n := mkNet(t, admin, body{"name": "multi", "provider:network_type": "vxlan", "provider:segmentation_id": 1100})
		first := segIDs(t, admin, n.ID)
		if len(first) != 1 {
			t.Fatalf("network has segments %v, want one", first)
		}

		s := mkSegment(t, admin, body{"network_id": n.ID, "network_type": "vlan", "physical_network": "physnet1", "segmentation_id": 1700})
		if s.NetworkID != n.ID || s.NetworkType != "vlan" || s.SegmentationID == nil || *s.SegmentationID != 1700 ||
			s.PhysicalNetwork == nil || *s.PhysicalNetwork != "physnet1" || s.Name != nil || s.Description != nil {
			t.Errorf("segment %+v", s)
		}
		status, b := e.Do(t, http.MethodGet, "/v2.0/segments/"+s.ID, "admin", true, "")
		var raw map[string]map[string]any
		if status != 200 || json.Unmarshal([]byte(b), &raw) != nil {
			t.Fatalf("get: %d %s", status, b)
		}
		for _, k := range []string{"tenant_id", "project_id", "segment_index", "hosts"} {
			if _, ok := raw["segment"][k]; ok {
				t.Errorf("segment shows %s", k)
			}
		}

		// Two segments: the network lists them and drops provider:*.
		got := must[network](t, networks.Get(bg, admin, n.ID), "network")
		if len(got.Segments) != 2 || got.NetworkType != nil || got.SegmentationID != nil {
			t.Fatalf("network segments %v provider:network_type %v, want two segments and no provider view", got.Segments, got.NetworkType)
		}
		types := []string{}
		for _, sg := range got.Segments {
			types = append(types, sg["provider:network_type"].(string))
		}
		slices.Sort(types)
		if !slices.Equal(types, []string{"vlan", "vxlan"}) {
			t.Errorf("segment types %v, want vlan and vxlan", types)
		}
		if ids := segIDs(t, admin, n.ID); len(ids) != 2 || !slices.Contains(ids, s.ID) {
			t.Errorf("segments %v, want two with %s", ids, s.ID)
		}

		name := "east"
		up, err := segments.Update(bg, admin, s.ID, segments.UpdateOpts{Name: &name}).Extract()
		if err != nil || up.Name != "east" || up.RevisionNumber <= s.RevisionNumber {
			t.Fatalf("update %+v, %v", up, err)
		}
		wantFault(t, segments.Update(bg, admin, s.ID, body{"segmentation_id": 7001}).Err, 400, "HTTPBadRequest")
		wantFault(t, segments.Update(bg, admin, s.ID, body{"network_type": "vlan"}).Err, 400, "HTTPBadRequest")

		if err := segments.Delete(bg, admin, s.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		wantFault(t, segments.Get(bg, admin, s.ID).Err, 404, "SegmentNotFound")
		wantFault(t, segments.Delete(bg, admin, s.ID).ExtractErr(), 404, "SegmentNotFound")
		got = must[network](t, networks.Get(bg, admin, n.ID), "network")
		if len(got.Segments) != 0 || got.NetworkType == nil || *got.NetworkType != "vxlan" ||
			got.SegmentationID == nil || *got.SegmentationID != 1100 {
			t.Errorf("after delete: segments %v provider %v/%v, want the vxlan 1100 view", got.Segments, got.NetworkType, got.SegmentationID)
		}
	})
}

func TestSegmentAdminOnly(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		admin, c := e.Admin(), e.Client("p1", false)
		n := mkNet(t, c, body{"name": "mine"})
		ids := segIDs(t, admin, n.ID)
		if len(ids) != 1 {
			t.Fatalf("network has segments %v, want one", ids)
		}
		wantFault(t, segments.Create(bg, c, body{"network_id": n.ID, "network_type": "vxlan"}).Err, 403, "PolicyNotAuthorized")
		if l := segIDs(t, c, n.ID); len(l) != 0 {
			t.Errorf("member lists segments %v, want none", l)
		}
		wantFault(t, segments.Get(bg, c, ids[0]).Err, 404, "HTTPNotFound")
		wantFault(t, segments.Update(bg, c, ids[0], body{"name": "x"}).Err, 404, "HTTPNotFound")
		wantFault(t, segments.Delete(bg, c, ids[0]).ExtractErr(), 404, "HTTPNotFound")
		if l := segIDs(t, admin, n.ID); !slices.Equal(l, ids) {
			t.Errorf("segments %v after refused calls, want %v", l, ids)
		}
		// A member does not see segments on the network either.
		status, b := e.Do(t, http.MethodGet, "/v2.0/networks/"+n.ID, "p1", false, "")
		var raw map[string]map[string]any
		json.Unmarshal([]byte(b), &raw)
		for _, k := range []string{"segments", "provider:network_type", "provider:segmentation_id"} {
			if _, ok := raw["network"][k]; status != 200 || ok {
				t.Errorf("member's network view (%d) shows %s", status, k)
			}
		}
	})
}

func TestSegmentIDs(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		admin := e.Admin()
		a := mkNet(t, admin, body{"name": "a"})
		b := mkNet(t, admin, body{"name": "b"})

		vx := mkSegment(t, admin, body{"network_id": a.ID, "network_type": "vxlan", "segmentation_id": 9000})
		vl := mkSegment(t, admin, body{"network_id": a.ID, "network_type": "vlan", "physical_network": "physnet1", "segmentation_id": 2000})
		if vl.PhysicalNetwork == nil || *vl.PhysicalNetwork != "physnet1" {
			t.Errorf("physical_network %v, want physnet1", vl.PhysicalNetwork)
		}
		for _, tc := range []struct {
			name   string
			b      body
			status int
			typ    string
		}{
			{"vxlan-reused", body{"network_id": b.ID, "network_type": "vxlan", "segmentation_id": 9000}, 409, "TunnelIdInUse"},
			{"vlan-reused", body{"network_id": b.ID, "network_type": "vlan", "physical_network": "physnet1", "segmentation_id": 2000}, 409, "VlanIdInUse"},
			{"vlan-too-big", body{"network_id": b.ID, "network_type": "vlan", "physical_network": "physnet1", "segmentation_id": 4095}, 400, "InvalidInput"},
			{"vlan-unknown-physnet", body{"network_id": b.ID, "network_type": "vlan", "physical_network": "nope", "segmentation_id": 10}, 400, "InvalidInput"},
			{"unknown-type", body{"network_id": b.ID, "network_type": "token-ring"}, 400, "InvalidInput"},
			{"missing-network", body{"network_id": "6e0b1bb6-5f1a-4a3c-8d1c-2f6e0e8a9b10", "network_type": "vxlan"}, 404, "NetworkNotFound"},
			{"no-type", body{"network_id": b.ID}, 400, "HTTPBadRequest"},
			{"no-network", body{"network_type": "vxlan"}, 400, "HTTPBadRequest"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantFault(t, segments.Create(bg, admin, tc.b).Err, tc.status, tc.typ)
			})
		}
		if l := segIDs(t, admin, b.ID); len(l) != 1 {
			t.Errorf("network b has segments %v after refusals, want its own one", l)
		}

		t.Run("allocated", func(t *testing.T) {
			s := mkSegment(t, admin, body{"network_id": b.ID, "network_type": "vxlan"})
			if s.SegmentationID == nil || *s.SegmentationID < 1 || *s.SegmentationID > 65535 {
				t.Errorf("segmentation_id %v, want one allocated from 1-65535", s.SegmentationID)
			}
			v := mkSegment(t, admin, body{"network_id": b.ID, "network_type": "vlan", "physical_network": "physnet1"})
			if v.SegmentationID == nil || *v.SegmentationID < 1000 || *v.SegmentationID > 2999 {
				t.Errorf("vlan segmentation_id %v, want one from 1000-2999", v.SegmentationID)
			}
		})
		t.Run("delete-frees", func(t *testing.T) {
			for _, s := range []segment{vx, vl} {
				if err := segments.Delete(bg, admin, s.ID).ExtractErr(); err != nil {
					t.Fatal(err)
				}
			}
			mkSegment(t, admin, body{"network_id": b.ID, "network_type": "vxlan", "segmentation_id": 9000})
			mkSegment(t, admin, body{"network_id": b.ID, "network_type": "vlan", "physical_network": "physnet1", "segmentation_id": 2000})
		})
		t.Run("network-delete-frees", func(t *testing.T) {
			if err := networks.Delete(bg, admin, b.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			c := mkNet(t, admin, body{"name": "c"})
			mkSegment(t, admin, body{"network_id": c.ID, "network_type": "vxlan", "segmentation_id": 9000})
		})
	})
}

func TestSegmentInUse(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		admin := e.Admin()
		n := mkNet(t, admin, body{"name": "routed"})
		s := mkSegment(t, admin, body{"network_id": n.ID, "network_type": "vxlan", "segmentation_id": 4242})
		sub := mkSubnet(t, admin, body{"network_id": n.ID, "ip_version": 4, "cidr": "10.5.0.0/24", "segment_id": s.ID})
		wantFault(t, segments.Delete(bg, admin, s.ID).ExtractErr(), 409, "SegmentInUse")
		if err := subnets.Delete(bg, admin, sub.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if err := segments.Delete(bg, admin, s.ID).ExtractErr(); err != nil {
			t.Fatalf("delete once no subnet is on it: %v", err)
		}
	})
}

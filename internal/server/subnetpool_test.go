package server_test

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/addressscopes"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/subnetpools"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"muon/internal/server/servertest"
)

func (b body) ToSubnetPoolCreateMap() (map[string]any, error) {
	return map[string]any{"subnetpool": map[string]any(b)}, nil
}

// poolPatch is a raw subnet pool update (gophercloud's Update wants a
// struct for its headers).
type poolPatch struct{ b body }

func (p poolPatch) ToSubnetPoolUpdateMap() (map[string]any, error) {
	return map[string]any{"subnetpool": map[string]any(p.b)}, nil
}

// subnetPool is the API's subnet pool document.
type subnetPool struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	ProjectID        string   `json:"project_id"`
	Prefixes         []string `json:"prefixes"`
	IPVersion        int      `json:"ip_version"`
	MinPrefixLen     int      `json:"min_prefixlen"`
	MaxPrefixLen     int      `json:"max_prefixlen"`
	DefaultPrefixLen int      `json:"default_prefixlen"`
	DefaultQuota     *int     `json:"default_quota"`
	Shared           bool     `json:"shared"`
	IsDefault        bool     `json:"is_default"`
	AddressScopeID   *string  `json:"address_scope_id"`
	RevisionNumber   int      `json:"revision_number"`
}

func mkPool(t *testing.T, c *gophercloud.ServiceClient, b body) subnetPool {
	t.Helper()
	return must[subnetPool](t, subnetpools.Create(bg, c, b), "subnetpool")
}

// poolSubnet asks for a subnet of prefixlen (0: the pool's default) from
// a pool on a new network.
func poolSubnet(c *gophercloud.ServiceClient, poolID string, plen int) (subnet, error) {
	n, err := networks.Create(bg, c, networks.CreateOpts{Name: "from-pool"}).Extract()
	if err != nil {
		return subnet{}, err
	}
	var s subnet
	err = subnets.Create(bg, c, subnets.CreateOpts{
		NetworkID: n.ID, IPVersion: gophercloud.IPv4, SubnetPoolID: poolID, Prefixlen: plen,
	}).ExtractIntoStructPtr(&s, "subnet")
	return s, err
}

// disjoint checks that cidrs do not overlap and all lie inside within.
func disjoint(t *testing.T, cidrs []string, within string) {
	t.Helper()
	w := netip.MustParsePrefix(within)
	var ps []netip.Prefix
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil || p != p.Masked() {
			t.Fatalf("cidr %q is not canonical", c)
		}
		if !w.Contains(p.Addr()) || p.Bits() < w.Bits() {
			t.Errorf("cidr %s is outside the pool's %s", c, within)
		}
		for _, q := range ps {
			if q.Overlaps(p) {
				t.Errorf("cidrs %s and %s overlap", q, p)
			}
		}
		ps = append(ps, p)
	}
}

// rawFault checks a raw answer's status and NeutronError type.
func rawFault(t *testing.T, status int, b string, wantStatus int, wantType string) {
	t.Helper()
	if status != wantStatus || faultType([]byte(b)) != wantType {
		t.Fatalf("got %d %s, want %d %s", status, b, wantStatus, wantType)
	}
}

func TestSubnetPoolCRUD(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		sp := mkPool(t, c, body{"name": "pool", "prefixes": []string{
			"10.0.1.0/24", "10.0.0.0/24", "10.0.0.128/25", "192.168.0.0/16", "192.168.3.0/24"}})
		if want := []string{"10.0.0.0/23", "192.168.0.0/16"}; !slices.Equal(sp.Prefixes, want) {
			t.Errorf("prefixes %v, want compacted %v", sp.Prefixes, want)
		}
		if sp.IPVersion != 4 || sp.MinPrefixLen != 8 || sp.MaxPrefixLen != 32 || sp.DefaultPrefixLen != 8 {
			t.Errorf("version %d min %d max %d default %d, want 4 8 32 8",
				sp.IPVersion, sp.MinPrefixLen, sp.MaxPrefixLen, sp.DefaultPrefixLen)
		}
		if sp.DefaultQuota != nil || sp.Shared || sp.IsDefault || sp.AddressScopeID != nil || sp.ProjectID != "p1" {
			t.Errorf("pool %+v, want no quota, not shared, not default, no scope, project p1", sp)
		}

		got := must[subnetPool](t, subnetpools.Get(bg, c, sp.ID), "subnetpool")
		if got.ID != sp.ID || !slices.Equal(got.Prefixes, sp.Prefixes) {
			t.Errorf("get %+v, want %+v", got, sp)
		}
		if ids := listIDs(t, subnetpools.List(c, nil), "subnetpools"); !slices.Equal(ids, []string{sp.ID}) {
			t.Errorf("list %v, want [%s]", ids, sp.ID)
		}
		if ids := listIDs(t, subnetpools.List(e.Client("p2", false), nil), "subnetpools"); len(ids) != 0 {
			t.Errorf("other project lists %v, want nothing", ids)
		}
		wantFault(t, subnetpools.Get(bg, e.Client("p2", false), sp.ID).Err, 404, "SubnetPoolNotFound")

		up := must[subnetPool](t, subnetpools.Update(bg, c, sp.ID, poolPatch{body{
			"name": "renamed", "min_prefixlen": 16, "default_prefixlen": 24, "max_prefixlen": 28,
			"prefixes": []string{"10.0.0.0/16", "192.168.0.0/16"}}}), "subnetpool")
		if up.Name != "renamed" || up.MinPrefixLen != 16 || up.DefaultPrefixLen != 24 || up.MaxPrefixLen != 28 ||
			!slices.Equal(up.Prefixes, []string{"10.0.0.0/16", "192.168.0.0/16"}) || up.RevisionNumber <= sp.RevisionNumber {
			t.Errorf("updated %+v", up)
		}
		wantFault(t, subnetpools.Update(bg, c, sp.ID, poolPatch{body{"prefixes": []string{"10.0.0.0/16"}}}).Err,
			400, "IllegalSubnetPoolPrefixUpdate")
		wantFault(t, subnetpools.Update(bg, c, sp.ID, poolPatch{body{"shared": true}}).Err, 400, "HTTPBadRequest")
		wantFault(t, subnetpools.Update(bg, e.Client("p2", false), sp.ID, poolPatch{body{"name": "x"}}).Err, 404, "SubnetPoolNotFound")

		if err := subnetpools.Delete(bg, c, sp.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		wantFault(t, subnetpools.Get(bg, c, sp.ID).Err, 404, "SubnetPoolNotFound")
		wantFault(t, subnetpools.Delete(bg, c, sp.ID).ExtractErr(), 404, "SubnetPoolNotFound")

		v6 := mkPool(t, c, body{"name": "v6", "prefixes": []string{"2001:db8::/48"}})
		if v6.IPVersion != 6 || v6.MinPrefixLen != 64 || v6.MaxPrefixLen != 128 || v6.DefaultPrefixLen != 64 {
			t.Errorf("v6 pool version %d min %d max %d default %d, want 6 64 128 64",
				v6.IPVersion, v6.MinPrefixLen, v6.MaxPrefixLen, v6.DefaultPrefixLen)
		}
	})
}

func TestSubnetPoolCreateRefused(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		for _, tc := range []struct {
			name   string
			b      body
			admin  bool
			status int
			typ    string
		}{
			{"no-name", body{"prefixes": []string{"10.0.0.0/8"}}, false, 400, "HTTPBadRequest"},
			{"blank-name", body{"name": " ", "prefixes": []string{"10.0.0.0/8"}}, false, 400, "HTTPBadRequest"},
			{"no-prefixes", body{"name": "p"}, false, 400, "HTTPBadRequest"},
			{"empty-prefixes", body{"name": "p", "prefixes": []string{}}, false, 400, "EmptySubnetPoolPrefixList"},
			{"bad-prefix", body{"name": "p", "prefixes": []string{"10.0.0.0/33"}}, false, 400, "HTTPBadRequest"},
			{"mixed-versions", body{"name": "p", "prefixes": []string{"10.0.0.0/8", "2001:db8::/32"}}, false, 400, "PrefixVersionMismatch"},
			{"min-above-max", body{"name": "p", "prefixes": []string{"10.0.0.0/8"}, "min_prefixlen": 24, "max_prefixlen": 16},
				false, 400, "IllegalSubnetPoolPrefixBounds"},
			{"max-above-32", body{"name": "p", "prefixes": []string{"10.0.0.0/8"}, "max_prefixlen": 33},
				false, 400, "IllegalSubnetPoolPrefixBounds"},
			{"default-below-min", body{"name": "p", "prefixes": []string{"10.0.0.0/8"}, "min_prefixlen": 16, "default_prefixlen": 12},
				false, 400, "IllegalSubnetPoolPrefixBounds"},
			{"default-above-max", body{"name": "p", "prefixes": []string{"10.0.0.0/8"}, "max_prefixlen": 24, "default_prefixlen": 26},
				false, 400, "IllegalSubnetPoolPrefixBounds"},
			{"negative-min", body{"name": "p", "prefixes": []string{"10.0.0.0/8"}, "min_prefixlen": -1}, false, 400, "HTTPBadRequest"},
			{"shared-member", body{"name": "p", "prefixes": []string{"10.0.0.0/8"}, "shared": true}, false, 403, "PolicyNotAuthorized"},
			{"default-member", body{"name": "p", "prefixes": []string{"10.0.0.0/8"}, "is_default": true}, false, 403, "PolicyNotAuthorized"},
			{"missing-scope", body{"name": "p", "prefixes": []string{"10.0.0.0/8"}, "address_scope_id": "6e0b1bb6-5f1a-4a3c-8d1c-2f6e0e8a9b10"},
				true, 404, "AddressScopeNotFound"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := e.Client("p1", tc.admin)
				wantFault(t, subnetpools.Create(bg, c, tc.b).Err, tc.status, tc.typ)
			})
		}
		if ids := listIDs(t, subnetpools.List(e.Admin(), nil), "subnetpools"); len(ids) != 0 {
			t.Errorf("refused creates left pools %v", ids)
		}
	})
}

func TestSubnetPoolAllocation(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		sp := mkPool(t, c, body{"name": "pool", "prefixes": []string{"10.10.0.0/16"},
			"min_prefixlen": 20, "default_prefixlen": 24, "max_prefixlen": 28})

		t.Run("prefixlen", func(t *testing.T) {
			var cidrs []string
			for _, plen := range []int{26, 24, 28, 20, 26} {
				s, err := poolSubnet(c, sp.ID, plen)
				if err != nil {
					t.Fatalf("/%d: %v", plen, err)
				}
				p := netip.MustParsePrefix(s.CIDR)
				if p.Bits() != plen || s.SubnetPoolID == nil || *s.SubnetPoolID != sp.ID {
					t.Errorf("/%d: subnet %s from pool %v", plen, s.CIDR, s.SubnetPoolID)
				}
				if s.GatewayIP == nil || *s.GatewayIP != p.Addr().Next().String() {
					t.Errorf("%s: gateway %v, want the first host", s.CIDR, s.GatewayIP)
				}
				cidrs = append(cidrs, s.CIDR)
			}
			disjoint(t, cidrs, "10.10.0.0/16")
		})
		t.Run("default-prefixlen", func(t *testing.T) {
			s, err := poolSubnet(c, sp.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			if netip.MustParsePrefix(s.CIDR).Bits() != 24 {
				t.Errorf("cidr %s, want the pool's default /24", s.CIDR)
			}
		})
		t.Run("below-min", func(t *testing.T) {
			_, err := poolSubnet(c, sp.ID, 16)
			wantFault(t, err, 400, "MinPrefixSubnetAllocationError")
		})
		t.Run("above-max", func(t *testing.T) {
			_, err := poolSubnet(c, sp.ID, 30)
			wantFault(t, err, 400, "MaxPrefixSubnetAllocationError")
		})
		t.Run("explicit-cidr", func(t *testing.T) {
			n := mkNet(t, c, body{"name": "explicit"})
			s := mkSubnet(t, c, body{"network_id": n.ID, "ip_version": 4, "cidr": "10.10.200.0/24", "subnetpool_id": sp.ID})
			if s.CIDR != "10.10.200.0/24" || s.SubnetPoolID == nil || *s.SubnetPoolID != sp.ID {
				t.Errorf("subnet %s from %v, want 10.10.200.0/24 from the pool", s.CIDR, s.SubnetPoolID)
			}
			// Taken now: neither it nor a cidr outside the pool can be had.
			for _, cidr := range []string{"10.10.200.128/25", "172.16.0.0/24"} {
				n := mkNet(t, c, body{"name": "again"})
				err := subnets.Create(bg, c, body{"network_id": n.ID, "ip_version": 4, "cidr": cidr, "subnetpool_id": sp.ID}).Err
				wantFault(t, err, 500, "SubnetAllocationError")
			}
		})
		t.Run("cidr-and-prefixlen", func(t *testing.T) {
			n := mkNet(t, c, body{"name": "both"})
			err := subnets.Create(bg, c, body{"network_id": n.ID, "ip_version": 4, "cidr": "10.10.201.0/24",
				"prefixlen": 24, "subnetpool_id": sp.ID}).Err
			wantFault(t, err, 400, "BadRequest")
		})
		t.Run("wrong-version", func(t *testing.T) {
			n := mkNet(t, c, body{"name": "v6"})
			err := subnets.Create(bg, c, body{"network_id": n.ID, "ip_version": 6, "subnetpool_id": sp.ID}).Err
			wantFault(t, err, 400, "BadRequest")
		})
		t.Run("missing-pool", func(t *testing.T) {
			_, err := poolSubnet(c, "6e0b1bb6-5f1a-4a3c-8d1c-2f6e0e8a9b10", 24)
			wantFault(t, err, 404, "SubnetPoolNotFound")
		})
		t.Run("no-cidr-no-pool", func(t *testing.T) {
			n := mkNet(t, c, body{"name": "neither"})
			wantFault(t, subnets.Create(bg, c, body{"network_id": n.ID, "ip_version": 4}).Err, 400, "BadRequest")
		})
		t.Run("other-projects-pool", func(t *testing.T) {
			_, err := poolSubnet(e.Client("p2", false), sp.ID, 24)
			wantFault(t, err, 404, "SubnetPoolNotFound")
		})
	})
}

func TestSubnetPoolExhausted(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		sp := mkPool(t, c, body{"name": "small", "prefixes": []string{"10.20.0.0/24"}, "default_prefixlen": 26})
		var cidrs []string
		var firstID string
		for range 4 {
			s, err := poolSubnet(c, sp.ID, 26)
			if err != nil {
				t.Fatal(err)
			}
			cidrs = append(cidrs, s.CIDR)
			if firstID == "" {
				firstID = s.ID
			}
		}
		disjoint(t, cidrs, "10.20.0.0/24")
		_, err := poolSubnet(c, sp.ID, 26)
		wantFault(t, err, 500, "SubnetAllocationError")
		_, err = poolSubnet(c, sp.ID, 28)
		wantFault(t, err, 500, "SubnetAllocationError")

		// Deleting a subnet gives its prefix back.
		freed := must[subnet](t, subnets.Get(bg, c, firstID), "subnet")
		if err := subnets.Delete(bg, c, firstID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		again, err := poolSubnet(c, sp.ID, 26)
		if err != nil || again.CIDR != freed.CIDR {
			t.Fatalf("after delete got %s (%v), want the freed %s", again.CIDR, err, freed.CIDR)
		}

		// Growing the pool makes room again.
		got, err := subnetpools.AddPrefixes(bg, c, sp.ID, subnetpools.PrefixesOpsOpts{Prefixes: []string{"10.20.1.0/24"}}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, []string{"10.20.0.0/23"}) {
			t.Errorf("prefixes %v, want [10.20.0.0/23]", got)
		}
		s, err := poolSubnet(c, sp.ID, 26)
		if err != nil {
			t.Fatal(err)
		}
		disjoint(t, append(cidrs, s.CIDR), "10.20.0.0/23")
	})
}

func TestSubnetPoolQuota(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		// 512 addresses per project: two /24s, or one /24 and two /25s.
		sp := mkPool(t, c, body{"name": "q", "prefixes": []string{"10.50.0.0/16"}, "default_quota": 512, "default_prefixlen": 24})
		if sp.DefaultQuota == nil || *sp.DefaultQuota != 512 {
			t.Errorf("default_quota %v, want 512", sp.DefaultQuota)
		}
		for range 2 {
			if _, err := poolSubnet(c, sp.ID, 24); err != nil {
				t.Fatal(err)
			}
		}
		_, err := poolSubnet(c, sp.ID, 30)
		wantFault(t, err, 409, "SubnetPoolQuotaExceeded")
	})
}

func TestSubnetPoolDefault(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		admin, c := e.Admin(), e.Client("p1", false)
		useDefault := func(cl *gophercloud.ServiceClient, version int) (subnet, error) {
			n, err := networks.Create(bg, cl, networks.CreateOpts{Name: "d"}).Extract()
			if err != nil {
				return subnet{}, err
			}
			var s subnet
			err = subnets.Create(bg, cl, body{"network_id": n.ID, "ip_version": version, "use_default_subnetpool": true}).
				ExtractIntoStructPtr(&s, "subnet")
			return s, err
		}
		_, err := useDefault(c, 4)
		wantFault(t, err, 400, "BadRequest")

		def := mkPool(t, admin, body{"name": "default-v4", "prefixes": []string{"10.60.0.0/16"},
			"default_prefixlen": 26, "is_default": true, "shared": true})
		if !def.IsDefault || !def.Shared {
			t.Errorf("pool is_default %v shared %v, want both", def.IsDefault, def.Shared)
		}
		var cidrs []string
		for range 3 {
			s, err := useDefault(c, 4)
			if err != nil {
				t.Fatal(err)
			}
			if s.SubnetPoolID == nil || *s.SubnetPoolID != def.ID {
				t.Errorf("subnet from %v, want the default pool %s", s.SubnetPoolID, def.ID)
			}
			cidrs = append(cidrs, s.CIDR)
		}
		disjoint(t, cidrs, "10.60.0.0/16")
		_, err = useDefault(c, 6)
		wantFault(t, err, 400, "BadRequest")

		// One default per IP version.
		wantFault(t, subnetpools.Create(bg, admin, body{"name": "second", "prefixes": []string{"10.61.0.0/16"}, "is_default": true}).Err,
			400, "InvalidInput")
		other := mkPool(t, admin, body{"name": "second", "prefixes": []string{"10.61.0.0/16"}})
		wantFault(t, subnetpools.Update(bg, admin, other.ID, poolPatch{body{"is_default": true}}).Err, 400, "InvalidInput")
		v6 := mkPool(t, admin, body{"name": "default-v6", "prefixes": []string{"2001:db8::/48"}, "is_default": true, "shared": true})
		s, err := useDefault(c, 6)
		if err != nil {
			t.Fatal(err)
		}
		if s.SubnetPoolID == nil || *s.SubnetPoolID != v6.ID || netip.MustParsePrefix(s.CIDR).Bits() != 64 {
			t.Errorf("v6 subnet %s from %v, want a /64 from %s", s.CIDR, s.SubnetPoolID, v6.ID)
		}
		// Only an admin may make a pool the default.
		mine := mkPool(t, c, body{"name": "mine", "prefixes": []string{"10.62.0.0/16"}})
		wantFault(t, subnetpools.Update(bg, c, mine.ID, poolPatch{body{"is_default": true}}).Err, 403, "PolicyNotAuthorized")
		// Handing the role over works once the old default lets go.
		must[subnetPool](t, subnetpools.Update(bg, admin, def.ID, poolPatch{body{"is_default": false}}), "subnetpool")
		if got := must[subnetPool](t, subnetpools.Update(bg, admin, other.ID, poolPatch{body{"is_default": true}}), "subnetpool"); !got.IsDefault {
			t.Errorf("pool %s is_default false after update", other.ID)
		}
	})
}

func TestSubnetPoolPrefixActions(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		sp := mkPool(t, c, body{"name": "ops", "prefixes": []string{"10.30.0.0/16"}, "default_prefixlen": 24})
		put := func(t *testing.T, action, payload string) (int, []string, string) {
			t.Helper()
			status, b := e.Do(t, http.MethodPut, "/v2.0/subnetpools/"+sp.ID+"/"+action, "p1", false, payload)
			var out struct {
				Prefixes []string `json:"prefixes"`
			}
			json.Unmarshal([]byte(b), &out)
			return status, out.Prefixes, b
		}
		for _, tc := range []struct {
			name, action, payload string
			want                  []string
		}{
			{"add-adjacent", "add_prefixes", `{"prefixes": ["10.31.0.0/16"]}`, []string{"10.30.0.0/15"}},
			{"add-inside", "add_prefixes", `{"prefixes": ["10.30.5.0/24"]}`, []string{"10.30.0.0/15"}},
			{"add-apart", "add_prefixes", `{"prefixes": ["172.16.0.0/24", "10.40.0.0/24"]}`,
				[]string{"10.30.0.0/15", "10.40.0.0/24", "172.16.0.0/24"}},
			{"remove-half", "remove_prefixes", `{"prefixes": ["10.31.0.0/16"]}`,
				[]string{"10.30.0.0/16", "10.40.0.0/24", "172.16.0.0/24"}},
			{"remove-unknown", "remove_prefixes", `{"prefixes": ["192.168.0.0/24"]}`,
				[]string{"10.30.0.0/16", "10.40.0.0/24", "172.16.0.0/24"}},
			{"remove-middle", "remove_prefixes", `{"prefixes": ["10.30.128.0/17", "172.16.0.0/24"]}`,
				[]string{"10.30.0.0/17", "10.40.0.0/24"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, got, b := put(t, tc.action, tc.payload)
				if status != 200 || !slices.Equal(got, tc.want) {
					t.Fatalf("%d %s, want 200 %v", status, b, tc.want)
				}
				if sp := must[subnetPool](t, subnetpools.Get(bg, c, sp.ID), "subnetpool"); !slices.Equal(sp.Prefixes, tc.want) {
					t.Errorf("pool shows %v, want %v", sp.Prefixes, tc.want)
				}
			})
		}
		for _, tc := range []struct {
			name, action, payload string
		}{
			{"add-v6", "add_prefixes", `{"prefixes": ["2001:db8::/64"]}`},
			{"add-none", "add_prefixes", `{"prefixes": []}`},
			{"add-bad", "add_prefixes", `{"prefixes": ["10.0.0.0/40"]}`},
			{"add-no-key", "add_prefixes", `{}`},
			{"remove-not-json", "remove_prefixes", `nope`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if status, _, b := put(t, tc.action, tc.payload); status != 400 {
					t.Errorf("%d %s, want 400", status, b)
				}
			})
		}
		t.Run("remove-in-use", func(t *testing.T) {
			s, err := poolSubnet(c, sp.ID, 24)
			if err != nil {
				t.Fatal(err)
			}
			status, _, b := put(t, "remove_prefixes", `{"prefixes": ["`+s.CIDR+`"]}`)
			rawFault(t, status, b, 400, "IllegalSubnetPoolPrefixUpdate")
		})
		t.Run("other-project", func(t *testing.T) {
			status, b := e.Do(t, http.MethodPut, "/v2.0/subnetpools/"+sp.ID+"/add_prefixes", "p2", false, `{"prefixes": ["10.99.0.0/24"]}`)
			rawFault(t, status, b, 404, "SubnetPoolNotFound")
		})
	})
}

func TestSubnetPoolDeleteInUse(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		sp := mkPool(t, c, body{"name": "busy", "prefixes": []string{"10.70.0.0/16"}, "default_prefixlen": 24})
		s, err := poolSubnet(c, sp.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		wantFault(t, subnetpools.Delete(bg, c, sp.ID).ExtractErr(), 400, "SubnetPoolDeleteError")
		if err := subnets.Delete(bg, c, s.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if err := subnetpools.Delete(bg, c, sp.ID).ExtractErr(); err != nil {
			t.Fatalf("delete after the subnet went: %v", err)
		}
	})
}

func TestSubnetPoolAddressScope(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		sc, err := addressscopes.Create(bg, c, addressscopes.CreateOpts{Name: "scope", IPVersion: 4}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		sp := mkPool(t, c, body{"name": "scoped", "prefixes": []string{"10.80.0.0/16"}, "default_prefixlen": 24, "address_scope_id": sc.ID})
		if sp.AddressScopeID == nil || *sp.AddressScopeID != sc.ID {
			t.Errorf("address_scope_id %v, want %s", sp.AddressScopeID, sc.ID)
		}
		plain := mkNet(t, c, body{"name": "plain"})
		if plain.IPv4AddressScope != nil || plain.IPv6AddressScope != nil {
			t.Errorf("network without subnets shows scopes %v %v", plain.IPv4AddressScope, plain.IPv6AddressScope)
		}
		s, err := poolSubnet(c, sp.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		n := must[network](t, networks.Get(bg, c, s.NetworkID), "network")
		if n.IPv4AddressScope == nil || *n.IPv4AddressScope != sc.ID || n.IPv6AddressScope != nil {
			t.Errorf("network scopes v4 %v v6 %v, want v4 %s", n.IPv4AddressScope, n.IPv6AddressScope, sc.ID)
		}

		t.Run("overlap-in-scope", func(t *testing.T) {
			wantFault(t, subnetpools.Create(bg, c, body{"name": "o", "prefixes": []string{"10.80.128.0/17"}, "address_scope_id": sc.ID}).Err,
				409, "AddressScopePrefixConflict")
			other := mkPool(t, c, body{"name": "o", "prefixes": []string{"10.80.128.0/17"}})
			wantFault(t, subnetpools.Update(bg, c, other.ID, poolPatch{body{"address_scope_id": sc.ID}}).Err, 409, "AddressScopePrefixConflict")
		})
		t.Run("wrong-version", func(t *testing.T) {
			wantFault(t, subnetpools.Create(bg, c, body{"name": "v6", "prefixes": []string{"2001:db8::/48"}, "address_scope_id": sc.ID}).Err,
				400, "IllegalSubnetPoolIpVersionAssociationToAddressScope")
		})
		t.Run("other-projects-scope", func(t *testing.T) {
			wantFault(t, subnetpools.Create(bg, e.Client("p2", false), body{"name": "x", "prefixes": []string{"10.81.0.0/16"}, "address_scope_id": sc.ID}).Err,
				404, "AddressScopeNotFound")
		})
		t.Run("unscope", func(t *testing.T) {
			up := must[subnetPool](t, subnetpools.Update(bg, c, sp.ID, poolPatch{body{"address_scope_id": nil}}), "subnetpool")
			if up.AddressScopeID != nil {
				t.Errorf("address_scope_id %v after clearing", *up.AddressScopeID)
			}
			n := must[network](t, networks.Get(bg, c, s.NetworkID), "network")
			if n.IPv4AddressScope != nil {
				t.Errorf("network still in scope %s", *n.IPv4AddressScope)
			}
			// Deleting the scope works once no pool is in it.
			if err := addressscopes.Delete(bg, c, sc.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
		})
	})
}

// Concurrent subnet creates from one pool each get their own prefix.
func TestSubnetPoolConcurrentAllocation(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		sp := mkPool(t, c, body{"name": "race", "prefixes": []string{"10.90.0.0/16"}, "default_prefixlen": 24})
		var nets []string
		for range 20 {
			nets = append(nets, mkNet(t, c, body{"name": "race"}).ID)
		}
		var mu sync.Mutex
		var cidrs []string
		faults := map[string]int{}
		var wg sync.WaitGroup
		for _, id := range nets {
			wg.Go(func() {
				var s subnet
				err := subnets.Create(bg, c, subnets.CreateOpts{
					NetworkID: id, IPVersion: gophercloud.IPv4, SubnetPoolID: sp.ID, Prefixlen: 26,
				}).ExtractIntoStructPtr(&s, "subnet")
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					faults[faultKey(err)]++
					return
				}
				cidrs = append(cidrs, s.CIDR)
			})
		}
		wg.Wait()
		if len(cidrs) != 20 || len(faults) != 0 {
			t.Fatalf("%d subnets made, failures %v; want 20 and none", len(cidrs), faults)
		}
		disjoint(t, cidrs, "10.90.0.0/16")
		all, err := subnets.List(c, subnets.ListOpts{SubnetPoolID: sp.ID}).AllPages(bg)
		if err != nil {
			t.Fatal(err)
		}
		listed, _ := subnets.ExtractSubnets(all)
		if len(listed) != 20 {
			t.Errorf("list shows %d subnets from the pool, want 20", len(listed))
		}
	})
}

// A network's subnets of one family come from one pool, or from pools of
// one address scope.
func TestSubnetPoolNetworkAffinity(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		sc, err := addressscopes.Create(bg, c, addressscopes.CreateOpts{Name: "s", IPVersion: 4}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		a := mkPool(t, c, body{"name": "a", "prefixes": []string{"10.1.0.0/16"}, "default_prefixlen": 24, "address_scope_id": sc.ID})
		b := mkPool(t, c, body{"name": "b", "prefixes": []string{"10.2.0.0/16"}, "default_prefixlen": 24, "address_scope_id": sc.ID})
		plain := mkPool(t, c, body{"name": "plain", "prefixes": []string{"10.3.0.0/16"}, "default_prefixlen": 24})
		other := mkPool(t, c, body{"name": "other", "prefixes": []string{"10.4.0.0/16"}, "default_prefixlen": 24})
		add := func(netID string, b body) error {
			b["network_id"] = netID
			if _, ok := b["ip_version"]; !ok {
				b["ip_version"] = 4
			}
			return subnets.Create(bg, c, b).Err
		}

		scoped := mkNet(t, c, body{"name": "scoped"})
		unscoped := mkNet(t, c, body{"name": "unscoped"})
		for _, step := range []struct {
			name   string
			net    string
			b      body
			status int
			typ    string
		}{
			{"scoped-first", scoped.ID, body{"subnetpool_id": a.ID}, 0, ""},
			{"same-scope-other-pool", scoped.ID, body{"subnetpool_id": b.ID}, 0, ""},
			{"unscoped-pool", scoped.ID, body{"subnetpool_id": plain.ID}, 400, "NetworkAddressScopeAffinityError"},
			{"no-pool", scoped.ID, body{"cidr": "192.168.1.0/24"}, 400, "NetworkSubnetPoolAffinityError"},
			{"v6-no-pool", scoped.ID, body{"ip_version": 6, "cidr": "2001:db8::/64"}, 0, ""},
			{"plain-first", unscoped.ID, body{"subnetpool_id": plain.ID}, 0, ""},
			{"plain-again", unscoped.ID, body{"subnetpool_id": plain.ID}, 0, ""},
			{"other-pool", unscoped.ID, body{"subnetpool_id": other.ID}, 400, "NetworkSubnetPoolAffinityError"},
			{"scoped-pool", unscoped.ID, body{"subnetpool_id": a.ID}, 400, "NetworkSubnetPoolAffinityError"},
			{"unpooled", unscoped.ID, body{"cidr": "192.168.2.0/24"}, 400, "NetworkSubnetPoolAffinityError"},
		} {
			t.Run(step.name, func(t *testing.T) {
				err := add(step.net, step.b)
				if step.status == 0 {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				wantFault(t, err, step.status, step.typ)
			})
		}
		n := must[network](t, networks.Get(bg, c, scoped.ID), "network")
		if n.IPv4AddressScope == nil || *n.IPv4AddressScope != sc.ID || n.IPv6AddressScope != nil {
			t.Errorf("scopes v4 %v v6 %v, want v4 %s only", n.IPv4AddressScope, n.IPv6AddressScope, sc.ID)
		}
	})
}

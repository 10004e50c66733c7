package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/networkipavailabilities"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"muon/internal/server/servertest"
)

// availOf shows one network's availability as "used/total" for the
// network and each subnet by cidr.
func availOf(t *testing.T, c *gophercloud.ServiceClient, netID string) (string, map[string]string) {
	t.Helper()
	a, err := networkipavailabilities.Get(bg, c, netID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	subs := map[string]string{}
	for _, s := range a.SubnetIPAvailabilities {
		subs[s.CIDR] = s.UsedIPs + "/" + s.TotalIPs
	}
	return a.UsedIPs + "/" + a.TotalIPs, subs
}

func listAvail(t *testing.T, c *gophercloud.ServiceClient, opts networkipavailabilities.ListOpts) []networkipavailabilities.NetworkIPAvailability {
	t.Helper()
	all, err := networkipavailabilities.List(c, opts).AllPages(bg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := networkipavailabilities.ExtractNetworkIPAvailabilities(all)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestIPAvailability(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		admin, c := e.Admin(), e.Client("p1", false)
		n := mkNet(t, c, body{"name": "counted"})
		if net, subs := availOf(t, admin, n.ID); net != "0/0" || len(subs) != 0 {
			t.Errorf("no subnets: %s %v, want 0/0 and none", net, subs)
		}
		// .2-.254 by default: 253 addresses; a pool of 10; the v6 /120
		// has 255 (the gateway is the subnet-router address ::, and v6
		// has no broadcast address).
		v4 := mkSubnet(t, c, body{"network_id": n.ID, "ip_version": 4, "cidr": "10.7.0.0/24", "name": "v4"})
		pooled := mkSubnet(t, c, body{"network_id": n.ID, "ip_version": 4, "cidr": "10.8.0.0/24",
			"allocation_pools": []map[string]string{{"start": "10.8.0.10", "end": "10.8.0.19"}}})
		v6 := mkSubnet(t, c, body{"network_id": n.ID, "ip_version": 6, "cidr": "2001:db8::/120"})
		a, err := networkipavailabilities.Get(bg, admin, n.ID).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if a.NetworkID != n.ID || a.NetworkName != "counted" || a.ProjectID != "p1" || a.TenantID != "p1" {
			t.Errorf("availability %+v", a)
		}
		for _, s := range a.SubnetIPAvailabilities {
			if s.SubnetID == v4.ID && (s.SubnetName != "v4" || s.IPVersion != 4) {
				t.Errorf("subnet entry %+v", s)
			}
		}
		total := map[string]string{v4.CIDR: "253", pooled.CIDR: "10", v6.CIDR: "255"}
		// check compares the availability with the addresses the
		// network's ports hold.
		check := func(t *testing.T, wantUsed int) {
			t.Helper()
			all, err := ports.List(admin, ports.ListOpts{NetworkID: n.ID}).AllPages(bg)
			if err != nil {
				t.Fatal(err)
			}
			held := map[string]int{}
			l, _ := ports.ExtractPorts(all)
			n4 := 0
			for _, p := range l {
				for _, ip := range p.FixedIPs {
					held[ip.SubnetID]++
					n4++
				}
			}
			if n4 != wantUsed {
				t.Fatalf("ports hold %d addresses, want %d", n4, wantUsed)
			}
			gotNet, gotSubs := availOf(t, admin, n.ID)
			if want := fmt.Sprintf("%d/518", wantUsed); gotNet != want {
				t.Errorf("network %s, want %s", gotNet, want)
			}
			for _, s := range []subnet{v4, pooled, v6} {
				if want := fmt.Sprintf("%d/%s", held[s.ID], total[s.CIDR]); gotSubs[s.CIDR] != want {
					t.Errorf("subnet %s: %s, want %s", s.CIDR, gotSubs[s.CIDR], want)
				}
			}
		}
		check(t, 0)

		// This port takes two v4 addresses; the others one v4 and one v6.
		fixed := mkPort(t, c, body{"network_id": n.ID, "fixed_ips": []map[string]string{{"ip_address": "10.8.0.15"}, {"ip_address": "10.7.0.99"}}})
		check(t, 2)
		var made []string
		for range 3 {
			made = append(made, mkPort(t, c, body{"network_id": n.ID}).ID)
		}
		check(t, 8)

		for _, id := range []string{made[0], fixed.ID} {
			if err := ports.Delete(bg, c, id).ExtractErr(); err != nil {
				t.Fatal(err)
			}
		}
		check(t, 4)
	})
}

func TestIPAvailabilityList(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		admin := e.Admin()
		dual := mkNet(t, e.Client("p1", false), body{"name": "dual"})
		mkSubnet(t, e.Client("p1", false), body{"network_id": dual.ID, "ip_version": 4, "cidr": "10.9.0.0/28"})
		mkSubnet(t, e.Client("p1", false), body{"network_id": dual.ID, "ip_version": 6, "cidr": "2001:db8:1::/64"})
		v4only := mkNet(t, e.Client("p2", false), body{"name": "v4only"})
		mkSubnet(t, e.Client("p2", false), body{"network_id": v4only.ID, "ip_version": 4, "cidr": "10.10.0.0/29"})
		empty := mkNet(t, admin, body{"name": "empty"})

		ids := func(l []networkipavailabilities.NetworkIPAvailability) []string {
			out := []string{}
			for _, a := range l {
				out = append(out, a.NetworkID)
			}
			slices.Sort(out)
			return out
		}
		sorted := func(s ...string) []string { slices.Sort(s); return s }
		for _, tc := range []struct {
			name string
			opts networkipavailabilities.ListOpts
			want []string
		}{
			{"all", networkipavailabilities.ListOpts{}, sorted(dual.ID, v4only.ID, empty.ID)},
			{"v4", networkipavailabilities.ListOpts{IPVersion: "4"}, sorted(dual.ID, v4only.ID)},
			{"v6", networkipavailabilities.ListOpts{IPVersion: "6"}, []string{dual.ID}},
			{"by-network", networkipavailabilities.ListOpts{NetworkID: v4only.ID}, []string{v4only.ID}},
			{"by-name", networkipavailabilities.ListOpts{NetworkName: "dual"}, []string{dual.ID}},
			{"by-project", networkipavailabilities.ListOpts{ProjectID: "p2"}, []string{v4only.ID}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := ids(listAvail(t, admin, tc.opts)); !slices.Equal(got, tc.want) {
					t.Errorf("networks %v, want %v", got, tc.want)
				}
			})
		}
		t.Run("v6-counts-v6-only", func(t *testing.T) {
			l := listAvail(t, admin, networkipavailabilities.ListOpts{IPVersion: "6"})
			if len(l) != 1 || len(l[0].SubnetIPAvailabilities) != 1 || l[0].SubnetIPAvailabilities[0].IPVersion != 6 {
				t.Fatalf("v6 list %+v, want dual's v6 subnet alone", l)
			}
			// A /64 less the gateway (the subnet-router address):
			// beyond float64 precision.
			if l[0].TotalIPs != "18446744073709551615" {
				t.Errorf("total_ips %s, want 2^64-1", l[0].TotalIPs)
			}
		})
	})
}

func TestIPAvailabilityAdminOnly(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		n, _ := netWithSubnet(t, c, "10.11.0.0/24")
		if l := listAvail(t, c, networkipavailabilities.ListOpts{}); len(l) != 0 {
			t.Errorf("member lists %d availabilities, want none", len(l))
		}
		wantFault(t, networkipavailabilities.Get(bg, c, n.ID).Err, 404, "HTTPNotFound")
		wantFault(t, networkipavailabilities.Get(bg, e.Admin(), "6e0b1bb6-5f1a-4a3c-8d1c-2f6e0e8a9b10").Err, 404, "NetworkNotFound")
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
			path := "/v2.0/network-ip-availabilities"
			if m != http.MethodPost {
				path += "/" + n.ID
			}
			if status, b := e.Do(t, m, path, "admin", true, `{"network_ip_availability": {}}`); status != 405 && status != 404 {
				t.Errorf("%s: %d %s, want 405", m, status, b)
			}
		}
	})
}

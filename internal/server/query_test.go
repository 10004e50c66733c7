package server_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"muon/internal/server/servertest"
)

// listRaw lists a collection with a raw query in one request.
func listRaw(t *testing.T, e *servertest.Env, project, collection, query string) (items []map[string]any, links []map[string]string) {
	t.Helper()
	status, b := e.Do(t, "GET", "/v2.0/"+collection+"?"+query, project, project == "admin", "")
	if status != 200 {
		t.Fatalf("GET %s?%s: %d %s", collection, query, status, b)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(b), &m); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(m[collection], &items)
	json.Unmarshal(m[collection+"_links"], &links)
	return items, links
}

func names(items []map[string]any) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i], _ = it["name"].(string)
	}
	return out
}

func TestListFilters(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		mkNet(t, c, body{"name": "red", "admin_state_up": false, "description": "warm"})
		mkNet(t, c, body{"name": "green", "mtu": 1400})
		mkNet(t, c, body{"name": "blue", "description": "cold"})
		n, s := netWithSubnet(t, c, "10.80.0.0/24")
		p1 := mkPort(t, c, body{"network_id": n.ID, "name": "a", "device_owner": "compute:nova", "fixed_ips": []any{map[string]any{"ip_address": "10.80.0.11"}}})
		p2 := mkPort(t, c, body{"network_id": n.ID, "name": "b", "device_owner": "compute:nova", "fixed_ips": []any{map[string]any{"ip_address": "10.80.0.22"}}})
		mkPort(t, c, body{"network_id": n.ID, "name": "c", "device_owner": "network:dhcp", "mac_address": "fa:16:3e:0a:0b:0c", "fixed_ips": []any{map[string]any{"ip_address": "10.80.0.33"}}})

		tests := []struct {
			name, collection, query string
			want                    []string // names, any order
		}{
			{"one-name", "networks", "name=red", []string{"red"}},
			{"any-of", "networks", "name=red&name=blue", []string{"red", "blue"}},
			{"and", "networks", "name=red&name=blue&description=cold", []string{"blue"}},
			{"bool", "networks", "admin_state_up=false", []string{"red"}},
			{"bool-words", "networks", "admin_state_up=False&name=red&name=green", []string{"red"}},
			{"int", "networks", "mtu=1400", []string{"green"}},
			{"empty-string", "networks", "description=&name=green&name=red", []string{"green"}},
			{"no-match", "networks", "name=purple", []string{}},
			{"by-id", "networks", "id=" + n.ID, []string{n.Name}},
			{"project", "networks", "tenant_id=p1&name=blue", []string{"blue"}},
			{"subnet-cidr", "subnets", "cidr=10.80.0.0/24", []string{s.Name}},
			{"subnet-version", "subnets", "ip_version=6", []string{}},
			{"port-owner", "ports", "device_owner=compute:nova", []string{"a", "b"}},
			{"port-mac", "ports", "mac_address=fa:16:3e:0a:0b:0c", []string{"c"}},
			{"port-network", "ports", "network_id=" + n.ID + "&name=a", []string{"a"}},
			{"fixed-ip", "ports", "fixed_ips=ip_address%3D10.80.0.11", []string{"a"}},
			{"fixed-ips-any-of", "ports", "fixed_ips=ip_address%3D10.80.0.11&fixed_ips=ip_address%3D10.80.0.22", []string{"a", "b"}},
			{"fixed-ip-and-subnet", "ports", "fixed_ips=ip_address%3D10.80.0.22&fixed_ips=subnet_id%3D" + s.ID, []string{"b"}},
			{"fixed-ip-substr", "ports", "fixed_ips=ip_address_substr%3D0.22", []string{"b"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				items, _ := listRaw(t, e, "p1", tc.collection, tc.query)
				got := names(items)
				sort.Strings(got)
				want := slices.Clone(tc.want)
				sort.Strings(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s?%s = %v, want %v", tc.collection, tc.query, got, want)
				}
			})
		}
		t.Run("gophercloud-opts", func(t *testing.T) {
			ids := listIDs(t, ports.List(c, ports.ListOpts{FixedIPs: []ports.FixedIPOpts{{IPAddress: "10.80.0.22"}}}), "ports")
			if !slices.Equal(ids, []string{p2.ID}) {
				t.Errorf("ports with 10.80.0.22: %v, want [%s]", ids, p2.ID)
			}
			ids = listIDs(t, ports.List(c, ports.ListOpts{DeviceOwner: "compute:nova", Name: "a"}), "ports")
			if !slices.Equal(ids, []string{p1.ID}) {
				t.Errorf("ports named a: %v", ids)
			}
		})
		t.Run("bad", func(t *testing.T) {
			for _, tc := range []struct{ collection, query string }{
				{"networks", "no_such_attr=1"},
				{"networks", "admin_state_up=maybe"},
				{"networks", "sort_key=name"},
				{"networks", "sort_key=name&sort_dir=up"},
				{"networks", "sort_key=no_such_attr&sort_dir=asc"},
				{"networks", "limit=-1"},
				{"networks", "limit=x"},
				{"subnets", "allocation_pools=x"},
			} {
				status, b := e.Do(t, "GET", "/v2.0/"+tc.collection+"?"+tc.query, "p1", false, "")
				if status != 400 {
					t.Errorf("%s?%s: %d %s, want 400", tc.collection, tc.query, status, b)
				}
			}
		})
	})
}

func TestListFieldsAndSort(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		for _, n := range []struct {
			name string
			up   bool
		}{{"b", true}, {"a", false}, {"d", false}, {"c", true}} {
			mkNet(t, c, body{"name": n.name, "admin_state_up": n.up})
		}
		t.Run("fields", func(t *testing.T) {
			items, _ := listRaw(t, e, "p1", "networks", "fields=id&fields=name")
			for _, it := range items {
				if len(it) != 2 || it["id"] == nil || it["name"] == nil {
					t.Fatalf("fields=id&fields=name gave %v", it)
				}
			}
			items, _ = listRaw(t, e, "p1", "networks", "fields=name")
			for _, it := range items {
				if len(it) != 1 {
					t.Fatalf("fields=name gave %v", it)
				}
			}
		})
		t.Run("show-fields", func(t *testing.T) {
			all, _ := listRaw(t, e, "p1", "networks", "name=a")
			m := getJSON(t, func() (int, string) {
				return e.Do(t, "GET", "/v2.0/networks/"+all[0]["id"].(string)+"?fields=name&fields=mtu", "p1", false, "")
			}, 200)["network"].(map[string]any)
			if len(m) != 2 || m["name"] != "a" || m["mtu"] != float64(1450) {
				t.Errorf("show with fields: %v", m)
			}
		})
		tests := []struct{ name, query, want string }{
			{"name-asc", "sort_key=name&sort_dir=asc", "a b c d"},
			{"name-desc", "sort_key=name&sort_dir=desc", "d c b a"},
			{"two-keys", "sort_key=admin_state_up&sort_dir=asc&sort_key=name&sort_dir=desc", "d a c b"},
			{"two-keys-mixed", "sort_key=admin_state_up&sort_dir=desc&sort_key=name&sort_dir=asc", "b c a d"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				items, _ := listRaw(t, e, "p1", "networks", tc.query)
				if got := strings.Join(names(items), " "); got != tc.want {
					t.Errorf("%s: %s, want %s", tc.query, got, tc.want)
				}
			})
		}
	})
}

func TestPagination(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		// Names repeat so that id has to break ties.
		var all []string
		for i := range 7 {
			mkNet(t, c, body{"name": fmt.Sprintf("n%d", i%3)})
		}
		items, _ := listRaw(t, e, "p1", "networks", "sort_key=name&sort_dir=asc&sort_key=id&sort_dir=asc")
		for _, it := range items {
			all = append(all, it["id"].(string))
		}
		byID := slices.Clone(all)
		sort.Strings(byID)

		for _, tc := range []struct {
			name  string
			query string
			want  []string
		}{
			{"by-name-2", "sort_key=name&sort_dir=asc&sort_key=id&sort_dir=asc&limit=2", all},
			{"by-name-3", "sort_key=name&sort_dir=asc&sort_key=id&sort_dir=asc&limit=3", all},
			{"by-name-7", "sort_key=name&sort_dir=asc&sort_key=id&sort_dir=asc&limit=7", all},
			{"by-name-desc", "sort_key=name&sort_dir=desc&sort_key=id&sort_dir=desc&limit=2", reversed(all)},
			{"default-order", "limit=2", byID},
			{"big-limit", "limit=100", byID},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := listIDs(t, networks.List(c, query(tc.query)), "networks")
				if !slices.Equal(got, tc.want) {
					t.Errorf("pages gave %v\nwant        %v", got, tc.want)
				}
			})
		}

		t.Run("links", func(t *testing.T) {
			base := "sort_key=name&sort_dir=asc&sort_key=id&sort_dir=asc&limit=3"
			page, links := listRaw(t, e, "p1", "networks", base)
			if ids := idsOf(page); !slices.Equal(ids, all[:3]) {
				t.Fatalf("first page %v", ids)
			}
			next, prev := linkMap(t, links)
			if next.Get("marker") != all[2] || next.Get("limit") != "3" || next.Get("page_reverse") != "" || len(next["sort_key"]) != 2 {
				t.Errorf("next link query %v", next)
			}
			if prev == nil || prev.Get("marker") != all[0] || !strings.EqualFold(prev.Get("page_reverse"), "true") {
				t.Errorf("previous link query %v", prev)
			}
			// The last page is short: no next link.
			page, links = listRaw(t, e, "p1", "networks", base+"&marker="+all[5])
			if ids := idsOf(page); !slices.Equal(ids, all[6:]) {
				t.Errorf("last page %v, want %v", ids, all[6:])
			}
			if next, prev := linkMap(t, links); next != nil || prev == nil {
				t.Errorf("last page links %v, want previous only", links)
			}
			// page_reverse reads the page before the marker, in order.
			page, links = listRaw(t, e, "p1", "networks", base+"&marker="+all[5]+"&page_reverse=True")
			if ids := idsOf(page); !slices.Equal(ids, all[2:5]) {
				t.Errorf("reverse page %v, want %v", ids, all[2:5])
			}
			if next, prev := linkMap(t, links); next == nil || prev == nil || next.Get("marker") != all[4] || prev.Get("marker") != all[2] {
				t.Errorf("reverse page links %v", links)
			}
			page, links = listRaw(t, e, "p1", "networks", base+"&marker="+all[1]+"&page_reverse=True")
			if ids := idsOf(page); !slices.Equal(ids, all[:1]) {
				t.Errorf("short reverse page %v, want %v", ids, all[:1])
			}
			if next, prev := linkMap(t, links); next == nil || prev != nil {
				t.Errorf("short reverse page links %v, want next only", links)
			}
		})
		t.Run("marker-unknown", func(t *testing.T) {
			status, b := e.Do(t, "GET", "/v2.0/networks?limit=2&marker=5d5e0ac4-0000-4000-8000-000000000000", "p1", false, "")
			if status != 404 || faultType([]byte(b)) != "NetworkNotFound" {
				t.Errorf("unknown marker: %d %s, want 404 NetworkNotFound", status, b)
			}
		})
		t.Run("ports-and-subnets", func(t *testing.T) {
			n, _ := netWithSubnet(t, c, "10.90.0.0/24")
			var want []string
			for range 5 {
				want = append(want, mkPort(t, c, body{"network_id": n.ID}).ID)
			}
			sort.Strings(want)
			if got := listIDs(t, ports.List(c, ports.ListOpts{NetworkID: n.ID, Limit: 2, SortKey: "id", SortDir: "asc"}), "ports"); !slices.Equal(got, want) {
				t.Errorf("ports pages %v, want %v", got, want)
			}
			for i := range 4 {
				mkSubnet(t, c, body{"network_id": n.ID, "ip_version": 4, "cidr": fmt.Sprintf("10.91.%d.0/24", i), "name": fmt.Sprintf("s%d", 3-i)})
			}
			got := listIDs(t, subnets.List(c, subnets.ListOpts{NetworkID: n.ID, Limit: 1, SortKey: "name", SortDir: "desc"}), "subnets")
			if len(got) != 5 || len(uniq(got)) != 5 {
				t.Errorf("subnet pages %v, want 5 distinct", got)
			}
		})
	})
}

func idsOf(items []map[string]any) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it["id"].(string)
	}
	return out
}

func reversed(s []string) []string {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

func uniq(s []string) []string {
	r := slices.Clone(s)
	slices.Sort(r)
	return slices.Compact(r)
}

func linkMap(t *testing.T, links []map[string]string) (next, prev url.Values) {
	t.Helper()
	for _, l := range links {
		u, err := url.Parse(l["href"])
		if err != nil || !strings.HasSuffix(u.Path, "/v2.0/networks") || u.Scheme != "http" {
			t.Fatalf("link %v", l)
		}
		switch l["rel"] {
		case "next":
			next = u.Query()
		case "previous":
			prev = u.Query()
		default:
			t.Fatalf("link rel %q", l["rel"])
		}
	}
	return next, prev
}

func TestBulkCreate(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		count := func(collection string) int {
			items, _ := listRaw(t, e, "p1", collection, "")
			return len(items)
		}
		t.Run("networks", func(t *testing.T) {
			status, b := e.Do(t, "POST", "/v2.0/networks", "p1", false,
				`{"networks": [{"name": "bulk-1"}, {"name": "bulk-2", "admin_state_up": false}, {"name": "bulk-3"}]}`)
			if status != 201 {
				t.Fatalf("bulk: %d %s", status, b)
			}
			var out struct{ Networks []network }
			json.Unmarshal([]byte(b), &out)
			if len(out.Networks) != 3 || out.Networks[0].Name != "bulk-1" || out.Networks[1].AdminStateUp || out.Networks[2].Name != "bulk-3" {
				t.Errorf("bulk answer %+v", out.Networks)
			}
			before := count("networks")
			status, b = e.Do(t, "POST", "/v2.0/networks", "p1", false,
				`{"networks": [{"name": "ok-1"}, {"name": "bad", "mtu": 9000}, {"name": "ok-3"}]}`)
			if status != 400 || faultType([]byte(b)) != "InvalidInput" {
				t.Errorf("bulk with a bad item: %d %s", status, b)
			}
			status, _ = e.Do(t, "POST", "/v2.0/networks", "p1", false, `{"networks": [{"name": "ok-1"}, {"name": "bad", "bogus": 1}]}`)
			if status != 400 {
				t.Errorf("bulk with an unknown attribute: %d", status)
			}
			if after := count("networks"); after != before {
				t.Errorf("refused bulks left %d networks behind", after-before)
			}
		})
		t.Run("ports", func(t *testing.T) {
			n, _ := netWithSubnet(t, c, "10.95.0.0/24")
			status, b := e.Do(t, "POST", "/v2.0/ports", "p1", false, fmt.Sprintf(
				`{"ports": [{"network_id": %q, "name": "p1"}, {"network_id": %q, "name": "p2", "tags": ["x"]}]}`, n.ID, n.ID))
			if status != 201 {
				t.Fatalf("bulk ports: %d %s", status, b)
			}
			var out struct{ Ports []port }
			json.Unmarshal([]byte(b), &out)
			if len(out.Ports) != 2 || out.Ports[0].FixedIPs[0].IPAddress == out.Ports[1].FixedIPs[0].IPAddress || !slices.Equal(out.Ports[1].Tags, []string{"x"}) {
				t.Errorf("bulk ports %+v", out.Ports)
			}
			before := count("ports")
			status, b = e.Do(t, "POST", "/v2.0/ports", "p1", false, fmt.Sprintf(
				`{"ports": [{"network_id": %[1]q, "fixed_ips": [{"ip_address": "10.95.0.100"}]}, {"network_id": %[1]q, "fixed_ips": [{"ip_address": "10.95.0.100"}]}]}`, n.ID))
			if status != 409 || faultType([]byte(b)) != "IpAddressAlreadyAllocated" {
				t.Errorf("bulk with a duplicate address: %d %s", status, b)
			}
			if after := count("ports"); after != before {
				t.Errorf("refused bulk left %d ports", after-before)
			}
			// The address of the refused bulk is free.
			mkPort(t, c, body{"network_id": n.ID, "fixed_ips": []any{map[string]any{"ip_address": "10.95.0.100"}}})
		})
		t.Run("subnets", func(t *testing.T) {
			n := mkNet(t, c, body{})
			status, b := e.Do(t, "POST", "/v2.0/subnets", "p1", false, fmt.Sprintf(
				`{"subnets": [{"network_id": %[1]q, "ip_version": 4, "cidr": "10.96.0.0/24"}, {"network_id": %[1]q, "ip_version": 4, "cidr": "10.96.0.0/25"}]}`, n.ID))
			if status != 400 {
				t.Errorf("bulk with overlapping subnets: %d %s", status, b)
			}
			if got := must[network](t, networks.Get(bg, c, n.ID), "network"); len(got.Subnets) != 0 {
				t.Errorf("refused bulk left subnets %v", got.Subnets)
			}
		})
		t.Run("empty", func(t *testing.T) {
			if status, _ := e.Do(t, "POST", "/v2.0/networks", "p1", false, `{"networks": []}`); status != 400 {
				t.Errorf("empty bulk: %d", status)
			}
		})
	})
}

func TestIfMatch(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		n, s := netWithSubnet(t, c, "10.97.0.0/24")
		p := mkPort(t, c, body{"network_id": n.ID})
		for _, tc := range []struct{ collection, member, id string }{
			{"networks", "network", n.ID}, {"subnets", "subnet", s.ID}, {"ports", "port", p.ID},
		} {
			t.Run(tc.member, func(t *testing.T) {
				path := "/v2.0/" + tc.collection + "/" + tc.id
				rev := int(getJSON(t, func() (int, string) { return e.Do(t, "GET", path, "p1", false, "") }, 200)[tc.member].(map[string]any)["revision_number"].(float64))
				upd := fmt.Sprintf(`{%q: {"name": "x"}}`, tc.member)
				status, b := e.Do(t, "PUT", path, "p1", false, upd, "If-Match", fmt.Sprintf("revision_number=%d", rev+5))
				if status != 412 || faultType([]byte(b)) != "RevisionNumberConstraintFailed" {
					t.Errorf("stale If-Match: %d %s, want 412 RevisionNumberConstraintFailed", status, b)
				}
				status, b = e.Do(t, "PUT", path, "p1", false, upd, "If-Match", fmt.Sprintf("revision_number=%d", rev))
				if status != 200 {
					t.Fatalf("matching If-Match: %d %s", status, b)
				}
				var m map[string]map[string]any
				json.Unmarshal([]byte(b), &m)
				newRev := int(m[tc.member]["revision_number"].(float64))
				if newRev <= rev || m[tc.member]["name"] != "x" {
					t.Errorf("after update revision %d -> %d, name %v", rev, newRev, m[tc.member]["name"])
				}
				// The old revision no longer matches.
				if status, _ := e.Do(t, "PUT", path, "p1", false, upd, "If-Match", fmt.Sprintf("revision_number=%d", rev)); status != 412 {
					t.Errorf("old revision after update: %d, want 412", status)
				}
				if status, _ := e.Do(t, "PUT", path, "p1", false, upd, "If-Match", "revision_number=abc"); status != 400 {
					t.Errorf("malformed If-Match: %d, want 400", status)
				}
			})
		}
		t.Run("delete", func(t *testing.T) {
			q := mkPort(t, c, body{"network_id": n.ID})
			path := "/v2.0/ports/" + q.ID
			status, b := e.Do(t, "DELETE", path, "p1", false, "", "If-Match", fmt.Sprintf("revision_number=%d", q.RevisionNumber+1))
			if status != 412 || faultType([]byte(b)) != "RevisionNumberConstraintFailed" {
				t.Errorf("stale delete: %d %s", status, b)
			}
			if status, b := e.Do(t, "DELETE", path, "p1", false, "", "If-Match", fmt.Sprintf("revision_number=%d", q.RevisionNumber)); status != 204 || b != "" {
				t.Errorf("matching delete: %d %q, want 204 and no body", status, b)
			}
		})
		t.Run("gophercloud", func(t *testing.T) {
			cur := must[network](t, networks.Get(bg, c, n.ID), "network")
			_, err := networks.Update(bg, c, n.ID, networks.UpdateOpts{Name: ptr("y"), RevisionNumber: ptr(cur.RevisionNumber + 1)}).Extract()
			wantFault(t, err, 412, "RevisionNumberConstraintFailed")
			if _, err := networks.Update(bg, c, n.ID, networks.UpdateOpts{Name: ptr("y"), RevisionNumber: ptr(cur.RevisionNumber)}).Extract(); err != nil {
				t.Errorf("matching revision refused: %v", err)
			}
		})
		t.Run("subnet-bumps-network", func(t *testing.T) {
			before := must[network](t, networks.Get(bg, c, n.ID), "network").RevisionNumber
			mkSubnet(t, c, body{"network_id": n.ID, "ip_version": 6, "cidr": "2001:db8:97::/64"})
			if after := must[network](t, networks.Get(bg, c, n.ID), "network").RevisionNumber; after <= before {
				t.Errorf("network revision %d -> %d after adding a subnet", before, after)
			}
		})
	})
}

func TestTags(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		n := mkNet(t, c, body{"name": "tagged"})

		t.Run("api", func(t *testing.T) {
			tags, err := attributestags.ReplaceAll(bg, c, "networks", n.ID, attributestags.ReplaceAllOpts{Tags: []string{"a", "b"}}).Extract()
			if err != nil || !slices.Equal(tags, []string{"a", "b"}) {
				t.Fatalf("replace: %v %v", tags, err)
			}
			if err := attributestags.Add(bg, c, "networks", n.ID, "c").ExtractErr(); err != nil {
				t.Fatal(err)
			}
			// Adding an existing tag is fine.
			if err := attributestags.Add(bg, c, "networks", n.ID, "c").ExtractErr(); err != nil {
				t.Errorf("re-adding a tag: %v", err)
			}
			if ok, err := attributestags.Confirm(bg, c, "networks", n.ID, "b").Extract(); !ok || err != nil {
				t.Errorf("confirm b: %v %v", ok, err)
			}
			if ok, _ := attributestags.Confirm(bg, c, "networks", n.ID, "zz").Extract(); ok {
				t.Error("confirm of a missing tag said yes")
			}
			if err := attributestags.Delete(bg, c, "networks", n.ID, "a").ExtractErr(); err != nil {
				t.Fatal(err)
			}
			wantFault(t, attributestags.Delete(bg, c, "networks", n.ID, "a").ExtractErr(), 404, "TagNotFound")
			tags, err = attributestags.List(bg, c, "networks", n.ID).Extract()
			if err != nil || !sameSet(tags, []string{"b", "c"}) {
				t.Errorf("list: %v %v", tags, err)
			}
			if got := must[network](t, networks.Get(bg, c, n.ID), "network"); !sameSet(got.Tags, []string{"b", "c"}) || got.RevisionNumber <= n.RevisionNumber {
				t.Errorf("network shows tags %v revision %d (was %d)", got.Tags, got.RevisionNumber, n.RevisionNumber)
			}
			if err := attributestags.DeleteAll(bg, c, "networks", n.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if tags, _ := attributestags.List(bg, c, "networks", n.ID).Extract(); len(tags) != 0 {
				t.Errorf("after delete all: %v", tags)
			}
			_, err = attributestags.List(bg, c, "networks", "5d5e0ac4-0000-4000-8000-000000000000").Extract()
			if st, _ := faultOf(err); st != 404 {
				t.Errorf("tags of a missing network: %v", err)
			}
			_, err = attributestags.List(bg, e.Client("p2", false), "networks", n.ID).Extract()
			if st, _ := faultOf(err); st != 404 {
				t.Errorf("tags of another project's network: %v", err)
			}
		})
		t.Run("subnets-and-ports", func(t *testing.T) {
			_, s := netWithSubnet(t, c, "10.98.0.0/24")
			p := mkPort(t, c, body{"network_id": s.NetworkID, "tags": []string{"from-create"}})
			if !slices.Equal(p.Tags, []string{"from-create"}) {
				t.Errorf("port tags on create %v", p.Tags)
			}
			for _, r := range []struct{ kind, id string }{{"subnets", s.ID}, {"ports", p.ID}} {
				if err := attributestags.Add(bg, c, r.kind, r.id, "t1").ExtractErr(); err != nil {
					t.Errorf("%s tag: %v", r.kind, err)
				}
				if ok, _ := attributestags.Confirm(bg, c, r.kind, r.id, "t1").Extract(); !ok {
					t.Errorf("%s tag not confirmed", r.kind)
				}
			}
		})
		t.Run("filters", func(t *testing.T) {
			for name, tags := range map[string][]string{"ab": {"a", "b"}, "a": {"a"}, "bc": {"b", "c"}, "none": nil} {
				m := mkNet(t, c, body{"name": "f-" + name})
				if tags != nil {
					if _, err := attributestags.ReplaceAll(bg, c, "networks", m.ID, attributestags.ReplaceAllOpts{Tags: tags}).Extract(); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, tc := range []struct{ query, want string }{
				{"tags=a", "f-a f-ab"},
				{"tags=a,b", "f-ab"},
				{"tags=a&tags=b", "f-ab"},
				{"tags-any=a,c", "f-a f-ab f-bc"},
				{"not-tags=a,b", "f-a f-bc f-none"},
				{"not-tags-any=a,c", "f-none"},
				{"tags=b&not-tags=c", "f-ab"},
				{"tags-any=zz", ""},
			} {
				t.Run(tc.query, func(t *testing.T) {
					items, _ := listRaw(t, e, "p1", "networks", tc.query+"&name=f-ab&name=f-a&name=f-bc&name=f-none")
					got := names(items)
					sort.Strings(got)
					if strings.Join(got, " ") != tc.want {
						t.Errorf("%s: %v, want %s", tc.query, got, tc.want)
					}
				})
			}
			ids := listIDs(t, networks.List(c, networks.ListOpts{TagsAny: "c"}), "networks")
			if len(ids) != 1 {
				t.Errorf("gophercloud tags-any=c: %v", ids)
			}
		})
	})
}

func sameSet(a, b []string) bool {
	return slices.Equal(uniq(a), uniq(b)) && len(a) == len(b)
}

func TestDiscovery(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		t.Run("versions", func(t *testing.T) {
			m := getJSON(t, func() (int, string) { return e.Do(t, "GET", "/", "", false, "") }, 200)
			vs, _ := m["versions"].([]any)
			if len(vs) != 1 {
				t.Fatalf("versions %v", m)
			}
			v := vs[0].(map[string]any)
			links, _ := v["links"].([]any)
			if v["id"] != "v2.0" || v["status"] != "CURRENT" || len(links) != 1 ||
				links[0].(map[string]any)["href"] != e.URL+"/v2.0/" || links[0].(map[string]any)["rel"] != "self" {
				t.Errorf("version %v", v)
			}
		})
		t.Run("v2", func(t *testing.T) {
			for _, path := range []string{"/v2.0", "/v2.0/"} {
				m := getJSON(t, func() (int, string) { return e.Do(t, "GET", path, "p1", false, "") }, 200)
				got := map[string]string{}
				for _, r := range m["resources"].([]any) {
					r := r.(map[string]any)
					link := r["links"].([]any)[0].(map[string]any)
					got[r["name"].(string)] = r["collection"].(string)
					if link["href"] != e.URL+"/v2.0/"+r["collection"].(string) {
						t.Errorf("%s link %v", r["name"], link)
					}
				}
				for name, coll := range map[string]string{"network": "networks", "subnet": "subnets", "port": "ports", "subnetpool": "subnetpools"} {
					if got[name] != coll {
						t.Errorf("GET %s: resource %s -> %q, want %s", path, name, got[name], coll)
					}
				}
			}
		})
		t.Run("extensions", func(t *testing.T) {
			m := getJSON(t, func() (int, string) { return e.Do(t, "GET", "/v2.0/extensions", "p1", false, "") }, 200)
			have := map[string]bool{}
			for _, x := range m["extensions"].([]any) {
				x := x.(map[string]any)
				if x["name"] == "" || x["updated"] == "" || x["links"] == nil {
					t.Errorf("extension %v", x)
				}
				have[x["alias"].(string)] = true
			}
			for _, a := range []string{"provider", "multi-provider", "external-net", "net-mtu", "net-mtu-writable", "port-security",
				"binding", "allowed-address-pairs", "extra_dhcp_opt", "dns-integration", "standard-attr-tag", "revision-if-match",
				"pagination", "sorting", "subnet-service-types", "network_availability_zone"} {
				if !have[a] {
					t.Errorf("extension %s missing", a)
				}
			}
			x := getJSON(t, func() (int, string) { return e.Do(t, "GET", "/v2.0/extensions/provider", "p1", false, "") }, 200)
			if x["extension"].(map[string]any)["name"] != "Provider Network" {
				t.Errorf("extension provider: %v", x)
			}
			status, b := e.Do(t, "GET", "/v2.0/extensions/no-such", "p1", false, "")
			if status != 404 {
				t.Errorf("unknown extension: %d %s", status, b)
			}
		})
		t.Run("unknown-collection", func(t *testing.T) {
			if status, _ := e.Do(t, "GET", "/v2.0/widgets", "p1", false, ""); status != 404 {
				t.Errorf("unknown collection: %d", status)
			}
		})
		t.Run("json-suffix", func(t *testing.T) {
			if status, _ := e.Do(t, "GET", "/v2.0/networks.json", "p1", false, ""); status != 200 {
				t.Errorf("networks.json: %d", status)
			}
		})
	})
}

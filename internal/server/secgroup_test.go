package server_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsecurity"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/addressgroups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"muon/internal/server/servertest"
)

// sgBody is a raw security group, rule or address group body.
type sgBody map[string]any

func (b sgBody) ToSecGroupCreateMap() (map[string]any, error) {
	return map[string]any{"security_group": map[string]any(b)}, nil
}

// sgUpd is a raw group update (gophercloud wants a struct for updates).
type sgUpd struct{ B sgBody }

func (u sgUpd) ToSecGroupUpdateMap() (map[string]any, error) {
	return map[string]any{"security_group": map[string]any(u.B)}, nil
}
func (b sgBody) ToSecGroupRuleCreateMap() (map[string]any, error) {
	return map[string]any{"security_group_rule": map[string]any(b)}, nil
}

type sgRule struct {
	ID                   string  `json:"id"`
	SecurityGroupID      string  `json:"security_group_id"`
	Direction            string  `json:"direction"`
	Ethertype            string  `json:"ethertype"`
	Protocol             *string `json:"protocol"`
	PortRangeMin         *int    `json:"port_range_min"`
	PortRangeMax         *int    `json:"port_range_max"`
	RemoteIPPrefix       *string `json:"remote_ip_prefix"`
	NormalizedCIDR       *string `json:"normalized_cidr"`
	RemoteGroupID        *string `json:"remote_group_id"`
	RemoteAddressGroupID *string `json:"remote_address_group_id"`
	ProjectID            string  `json:"project_id"`
	BelongsToDefault     bool    `json:"belongs_to_default_sg"`
}

type secGroup struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Description    string   `json:"description"`
	ProjectID      string   `json:"project_id"`
	TenantID       string   `json:"tenant_id"`
	Stateful       bool     `json:"stateful"`
	Shared         bool     `json:"shared"`
	Rules          []sgRule `json:"security_group_rules"`
	Tags           []string `json:"tags"`
	RevisionNumber int      `json:"revision_number"`
}

type portSG struct {
	ID                  string   `json:"id"`
	SecurityGroups      []string `json:"security_groups"`
	PortSecurityEnabled bool     `json:"port_security_enabled"`
}

func mkGroup(t *testing.T, c *gophercloud.ServiceClient, b sgBody) secGroup {
	t.Helper()
	return must[secGroup](t, groups.Create(bg, c, b), "security_group")
}

func mkRule(t *testing.T, c *gophercloud.ServiceClient, b sgBody) sgRule {
	t.Helper()
	return must[sgRule](t, rules.Create(bg, c, b), "security_group_rule")
}

// listGroups lists a project's groups.
func listGroups(t *testing.T, c *gophercloud.ServiceClient) []secGroup {
	t.Helper()
	all, err := groups.List(c, groups.ListOpts{}).AllPages(bg)
	if err != nil {
		t.Fatal(err)
	}
	var out []secGroup
	if err := all.(groups.SecGroupPage).ExtractIntoSlicePtr(&out, "security_groups"); err != nil {
		t.Fatal(err)
	}
	return out
}

func defaultGroup(t *testing.T, c *gophercloud.ServiceClient) secGroup {
	t.Helper()
	var def []secGroup
	for _, g := range listGroups(t, c) {
		if g.Name == "default" {
			def = append(def, g)
		}
	}
	if len(def) != 1 {
		t.Fatalf("%d default groups, want 1", len(def))
	}
	return def[0]
}

func ruleKey(r sgRule) string {
	s := r.Direction + " " + r.Ethertype
	if r.RemoteGroupID != nil {
		s += " group"
		if *r.RemoteGroupID != r.SecurityGroupID {
			s += "-other"
		}
	}
	if r.Protocol != nil || r.RemoteIPPrefix != nil || r.PortRangeMin != nil {
		s += " more"
	}
	return s
}

func ruleKeys(rs []sgRule) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = ruleKey(r)
	}
	slices.Sort(out)
	return out
}

func TestSecurityGroups(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c, admin := e.Client("sg1", false), e.Admin()

		t.Run("default-group", func(t *testing.T) {
			def := defaultGroup(t, c)
			if def.ProjectID != "sg1" || def.TenantID != "sg1" || def.Description != "Default security group" || !def.Stateful || def.Shared {
				t.Errorf("default group %+v", def)
			}
			want := []string{"egress IPv4", "egress IPv6", "ingress IPv4 group", "ingress IPv6 group"}
			if got := ruleKeys(def.Rules); !slices.Equal(got, want) {
				t.Errorf("default rules %v, want %v", got, want)
			}
			for _, r := range def.Rules {
				if !r.BelongsToDefault || r.ProjectID != "sg1" {
					t.Errorf("default rule %+v", r)
				}
			}
			// Listing again makes no second one.
			if again := defaultGroup(t, c); again.ID != def.ID {
				t.Errorf("default group changed: %s then %s", def.ID, again.ID)
			}
			// Rules of the project list too.
			all, err := rules.List(c, rules.ListOpts{SecGroupID: def.ID}).AllPages(bg)
			if err != nil {
				t.Fatal(err)
			}
			rs, _ := rules.ExtractRules(all)
			if len(rs) != 4 {
				t.Errorf("%d rules listed, want 4", len(rs))
			}
		})

		t.Run("crud", func(t *testing.T) {
			g := mkGroup(t, c, sgBody{"name": "web", "description": "www"})
			if g.Name != "web" || g.ProjectID != "sg1" || !g.Stateful || g.Tags == nil {
				t.Errorf("created %+v", g)
			}
			if got := ruleKeys(g.Rules); !slices.Equal(got, []string{"egress IPv4", "egress IPv6"}) {
				t.Errorf("new group's rules %v, want the two egress rules", got)
			}
			u := must[secGroup](t, groups.Update(bg, c, g.ID, sgUpd{sgBody{"name": "web2", "stateful": false}}), "security_group")
			if u.Name != "web2" || u.Stateful || u.RevisionNumber <= g.RevisionNumber {
				t.Errorf("updated %+v", u)
			}
			r := mkRule(t, c, sgBody{"security_group_id": g.ID, "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22})
			if r.Ethertype != "IPv4" || *r.Protocol != "tcp" || *r.PortRangeMin != 22 || r.RemoteIPPrefix != nil || r.BelongsToDefault {
				t.Errorf("rule %+v", r)
			}
			got := must[secGroup](t, groups.Get(bg, c, g.ID), "security_group")
			if len(got.Rules) != 3 || got.RevisionNumber <= u.RevisionNumber {
				t.Errorf("group after a rule: %d rules, revision %d", len(got.Rules), got.RevisionNumber)
			}
			if err := rules.Delete(bg, c, r.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			_, err := rules.Get(bg, c, r.ID).Extract()
			wantFault(t, err, 404, "SecurityGroupRuleNotFound")
			// Another project sees neither.
			_, err = groups.Get(bg, e.Client("sg2", false), g.ID).Extract()
			wantFault(t, err, 404, "SecurityGroupNotFound")
			_, err = rules.Create(bg, e.Client("sg2", false), sgBody{"security_group_id": g.ID, "direction": "ingress"}).Extract()
			wantFault(t, err, 404, "SecurityGroupNotFound")
			if err := groups.Delete(bg, c, g.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			_, err = groups.Get(bg, c, g.ID).Extract()
			wantFault(t, err, 404, "SecurityGroupNotFound")
			// Its rules went with it.
			for _, r := range got.Rules {
				_, err = rules.Get(bg, admin, r.ID).Extract()
				wantFault(t, err, 404, "SecurityGroupRuleNotFound")
			}
		})

		t.Run("default-rules", func(t *testing.T) {
			def := defaultGroup(t, c)
			_, err := groups.Create(bg, c, sgBody{"name": "Default"}).Extract()
			wantFault(t, err, 409, "SecurityGroupDefaultAlreadyExists")
			_, err = groups.Update(bg, c, def.ID, sgUpd{sgBody{"name": "other"}}).Extract()
			wantFault(t, err, 409, "SecurityGroupCannotUpdateDefault")
			g := mkGroup(t, c, sgBody{"name": "x"})
			_, err = groups.Update(bg, c, g.ID, sgUpd{sgBody{"name": "default"}}).Extract()
			wantFault(t, err, 409, "SecurityGroupDefaultAlreadyExists")
			err = groups.Delete(bg, c, def.ID).ExtractErr()
			wantFault(t, err, 409, "SecurityGroupCannotRemoveDefault")
			// The description may change.
			must[secGroup](t, groups.Update(bg, c, def.ID, sgUpd{sgBody{"description": "mine"}}), "security_group")
		})

		t.Run("admin-deletes-default", func(t *testing.T) {
			p := e.Client("sg-admin-del", false)
			def := defaultGroup(t, p)
			if err := groups.Delete(bg, admin, def.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			// The next use makes a new one.
			if again := defaultGroup(t, p); again.ID == def.ID {
				t.Error("default group not made again")
			}
		})

		t.Run("remote-group-delete-cascades", func(t *testing.T) {
			a := mkGroup(t, c, sgBody{"name": "a"})
			b := mkGroup(t, c, sgBody{"name": "b"})
			r := mkRule(t, c, sgBody{"security_group_id": a.ID, "direction": "ingress", "remote_group_id": b.ID})
			if err := groups.Delete(bg, c, b.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			_, err := rules.Get(bg, c, r.ID).Extract()
			wantFault(t, err, 404, "SecurityGroupRuleNotFound")
		})

		t.Run("tags", func(t *testing.T) {
			g := mkGroup(t, c, sgBody{"name": "tagged"})
			status, b := e.Do(t, "PUT", "/v2.0/security-groups/"+g.ID+"/tags/red", "sg1", false, "")
			if status != 201 {
				t.Fatalf("tag: %d %s", status, b)
			}
			if got := must[secGroup](t, groups.Get(bg, c, g.ID), "security_group"); !slices.Equal(got.Tags, []string{"red"}) {
				t.Errorf("tags %v", got.Tags)
			}
		})

		t.Run("admin-for-other-project", func(t *testing.T) {
			g := mkGroup(t, admin, sgBody{"name": "theirs", "project_id": "sg-other"})
			if g.ProjectID != "sg-other" {
				t.Errorf("project %s", g.ProjectID)
			}
			_, err := groups.Create(bg, c, sgBody{"name": "theirs", "project_id": "sg-other"}).Extract()
			wantFault(t, err, 403, "PolicyNotAuthorized")
		})
	})
}

func TestSecurityGroupRuleValidation(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("sgv", false)
		g := mkGroup(t, c, sgBody{"name": "v"})
		other := mkGroup(t, c, sgBody{"name": "other"})
		ag := must[addressgroups.AddressGroup](t, addressgroups.Create(bg, c, addressgroups.CreateOpts{Name: "ag", Addresses: []string{"10.1.0.0/16"}}), "address_group")
		theirs := mkGroup(t, e.Client("sgv-2", false), sgBody{"name": "theirs"})
		missing := "2b2c7a3e-0000-4000-8000-000000000000"
		tests := []struct {
			name   string
			b      sgBody // security_group_id and direction are filled in
			status int
			fault  string
			check  func(t *testing.T, r sgRule)
		}{
			{"tcp-port", sgBody{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}, 201, "", nil},
			{"tcp-range", sgBody{"protocol": "TCP", "port_range_min": 1000, "port_range_max": 2000}, 201, "", func(t *testing.T, r sgRule) {
				if *r.Protocol != "tcp" {
					t.Errorf("protocol %s, want tcp", *r.Protocol)
				}
			}},
			{"udp-number", sgBody{"protocol": "17", "port_range_min": 53, "port_range_max": 53}, 201, "", nil},
			{"protocol-int", sgBody{"protocol": 132, "port_range_min": 9, "port_range_max": 9}, 201, "", func(t *testing.T, r sgRule) {
				if *r.Protocol != "132" {
					t.Errorf("protocol %s, want \"132\"", *r.Protocol)
				}
			}},
			{"any-protocol", sgBody{"protocol": "any", "remote_ip_prefix": "192.168.7.0/24"}, 201, "", func(t *testing.T, r sgRule) {
				if r.Protocol != nil {
					t.Errorf("protocol %v, want null", *r.Protocol)
				}
			}},
			{"full-range-is-none", sgBody{"protocol": "udp", "port_range_min": 1, "port_range_max": 65535}, 201, "", func(t *testing.T, r sgRule) {
				if r.PortRangeMin != nil || r.PortRangeMax != nil {
					t.Errorf("ports %v %v, want none", r.PortRangeMin, r.PortRangeMax)
				}
			}},
			{"icmp-type-code", sgBody{"protocol": "icmp", "port_range_min": 8, "port_range_max": 0}, 201, "", nil},
			{"icmp-type-only", sgBody{"protocol": "icmp", "port_range_min": 3}, 201, "", nil},
			{"icmpv6-legacy", sgBody{"protocol": "icmpv6", "ethertype": "ipv6"}, 201, "", func(t *testing.T, r sgRule) {
				if *r.Protocol != "ipv6-icmp" || r.Ethertype != "IPv6" {
					t.Errorf("protocol %s ethertype %s, want ipv6-icmp IPv6", *r.Protocol, r.Ethertype)
				}
			}},
			{"prefix-host", sgBody{"remote_ip_prefix": "10.9.8.7"}, 201, "", func(t *testing.T, r sgRule) {
				if *r.RemoteIPPrefix != "10.9.8.7/32" || *r.NormalizedCIDR != "10.9.8.7/32" {
					t.Errorf("prefix %s normalized %s", *r.RemoteIPPrefix, *r.NormalizedCIDR)
				}
			}},
			{"prefix-host-bits", sgBody{"remote_ip_prefix": "10.9.1.7/24", "protocol": "gre"}, 201, "", func(t *testing.T, r sgRule) {
				if *r.RemoteIPPrefix != "10.9.1.7/24" || *r.NormalizedCIDR != "10.9.1.0/24" {
					t.Errorf("prefix %s normalized %s", *r.RemoteIPPrefix, *r.NormalizedCIDR)
				}
			}},
			{"prefix-v6", sgBody{"ethertype": "IPv6", "remote_ip_prefix": "2001:DB8::/32"}, 201, "", func(t *testing.T, r sgRule) {
				if *r.RemoteIPPrefix != "2001:db8::/32" {
					t.Errorf("prefix %s", *r.RemoteIPPrefix)
				}
			}},
			{"remote-group", sgBody{"remote_group_id": other.ID, "protocol": "tcp", "port_range_min": 80, "port_range_max": 80}, 201, "", nil},
			{"remote-address-group", sgBody{"remote_address_group_id": ag.ID, "protocol": "tcp", "port_range_min": 443, "port_range_max": 443}, 201, "", nil},
			{"egress", sgBody{"direction": "egress", "protocol": "udp", "port_range_min": 123, "port_range_max": 123}, 201, "", nil},

			{"direction-missing", sgBody{"direction": nil}, 400, "HTTPBadRequest", nil},
			{"direction-bad", sgBody{"direction": "sideways"}, 400, "HTTPBadRequest", nil},
			{"ethertype-bad", sgBody{"ethertype": "IPv5"}, 400, "SecurityGroupRuleInvalidEtherType", nil},
			{"protocol-bad", sgBody{"protocol": "tcpx"}, 400, "SecurityGroupRuleInvalidProtocol", nil},
			{"protocol-256", sgBody{"protocol": "256"}, 400, "SecurityGroupRuleInvalidProtocol", nil},
			{"port-bad", sgBody{"protocol": "tcp", "port_range_min": 70000, "port_range_max": 70000}, 400, "SecurityGroupInvalidPortValue", nil},
			{"port-text", sgBody{"protocol": "tcp", "port_range_min": "ssh", "port_range_max": 22}, 400, "SecurityGroupInvalidPortValue", nil},
			{"port-zero", sgBody{"protocol": "tcp", "port_range_min": 0, "port_range_max": 10}, 400, "SecurityGroupInvalidPortValue", nil},
			{"ports-without-protocol", sgBody{"port_range_min": 22, "port_range_max": 22}, 400, "SecurityGroupProtocolRequiredWithPorts", nil},
			{"range-reversed", sgBody{"protocol": "tcp", "port_range_min": 30, "port_range_max": 20}, 400, "SecurityGroupInvalidPortRange", nil},
			{"range-half", sgBody{"protocol": "udp", "port_range_min": 30}, 400, "SecurityGroupInvalidPortRange", nil},
			{"icmp-type-big", sgBody{"protocol": "icmp", "port_range_min": 256}, 400, "SecurityGroupInvalidIcmpValue", nil},
			{"icmp-code-big", sgBody{"protocol": "icmp", "port_range_min": 8, "port_range_max": 300}, 400, "SecurityGroupInvalidIcmpValue", nil},
			{"icmp-code-alone", sgBody{"protocol": "icmp", "port_range_max": 0}, 400, "SecurityGroupMissingIcmpType", nil},
			{"ports-on-gre", sgBody{"protocol": "gre", "port_range_min": 1, "port_range_max": 2}, 400, "SecurityGroupInvalidProtocolForPort", nil},
			{"prefix-bad", sgBody{"remote_ip_prefix": "10.0.0.0/33"}, 400, "InvalidCIDR", nil},
			{"prefix-ethertype", sgBody{"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}, 400, "SecurityGroupRuleParameterConflict", nil},
			{"prefix-ethertype-v4", sgBody{"remote_ip_prefix": "2001:db8::/64"}, 400, "SecurityGroupRuleParameterConflict", nil},
			{"ipv6-protocol-on-ipv4", sgBody{"protocol": "ipv6-icmp"}, 400, "SecurityGroupEthertypeConflictWithProtocol", nil},
			{"two-remotes", sgBody{"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": other.ID}, 400, "SecurityGroupMultipleRemoteEntites", nil},
			{"remote-and-address-group", sgBody{"remote_address_group_id": ag.ID, "remote_group_id": other.ID}, 400, "SecurityGroupMultipleRemoteEntites", nil},
			{"group-missing", sgBody{"security_group_id": missing}, 404, "SecurityGroupNotFound", nil},
			{"remote-group-missing", sgBody{"remote_group_id": missing}, 404, "SecurityGroupNotFound", nil},
			{"remote-group-of-other-project", sgBody{"remote_group_id": theirs.ID}, 404, "SecurityGroupNotFound", nil},
			{"address-group-missing", sgBody{"remote_address_group_id": missing}, 404, "AddressGroupNotFound", nil},
			{"unknown-attribute", sgBody{"colour": "red"}, 400, "HTTPBadRequest", nil},
			{"duplicate", sgBody{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}, 409, "SecurityGroupRuleExists", nil},
			{"duplicate-by-number", sgBody{"protocol": "6", "port_range_min": 22, "port_range_max": 22}, 409, "SecurityGroupRuleExists", nil},
			{"duplicate-any-prefix", sgBody{"direction": "egress", "remote_ip_prefix": "0.0.0.0/0"}, 409, "SecurityGroupRuleExists", nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				b := sgBody{"security_group_id": g.ID, "direction": "ingress"}
				for k, v := range tc.b {
					if v == nil && k == "direction" {
						delete(b, k)
						continue
					}
					b[k] = v
				}
				before := must[secGroup](t, groups.Get(bg, c, g.ID), "security_group")
				r := rules.Create(bg, c, b)
				if tc.status != 201 {
					wantFault(t, r.Err, tc.status, tc.fault)
					after := must[secGroup](t, groups.Get(bg, c, g.ID), "security_group")
					if len(after.Rules) != len(before.Rules) || after.RevisionNumber != before.RevisionNumber {
						t.Errorf("a refused rule changed the group: %d rules (was %d)", len(after.Rules), len(before.Rules))
					}
					return
				}
				rule := must[sgRule](t, r, "security_group_rule")
				if tc.check != nil {
					tc.check(t, rule)
				}
			})
		}

		t.Run("bulk", func(t *testing.T) {
			one := map[string]any{"security_group_id": g.ID, "direction": "ingress", "protocol": "tcp", "port_range_min": 8080, "port_range_max": 8080}
			status, body := e.Do(t, "POST", "/v2.0/security-group-rules", "sgv", false,
				mustJSON(t, map[string]any{"security_group_rules": []any{one, one}}))
			if status != 409 || faultType([]byte(body)) != "DuplicateSecurityGroupRuleInPost" {
				t.Errorf("duplicate in bulk: %d %s", status, body)
			}
			two := map[string]any{"security_group_id": other.ID, "direction": "ingress"}
			status, body = e.Do(t, "POST", "/v2.0/security-group-rules", "sgv", false,
				mustJSON(t, map[string]any{"security_group_rules": []any{one, two}}))
			if status != 400 || faultType([]byte(body)) != "SecurityGroupNotSingleGroupRules" {
				t.Errorf("two groups in bulk: %d %s", status, body)
			}
		})
	})
}

func TestSecurityGroupPorts(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c, admin := e.Client("sgp", false), e.Admin()
		n, _ := netWithSubnet(t, c, "10.70.0.0/24")

		t.Run("default-group-on-port", func(t *testing.T) {
			p := must[portSG](t, ports.Create(bg, c, body{"network_id": n.ID}), "port")
			def := defaultGroup(t, c)
			if !slices.Equal(p.SecurityGroups, []string{def.ID}) {
				t.Errorf("security_groups %v, want [%s]", p.SecurityGroups, def.ID)
			}
			err := groups.Delete(bg, admin, def.ID).ExtractErr()
			wantFault(t, err, 409, "SecurityGroupInUse")
		})
		t.Run("network-owned-port", func(t *testing.T) {
			p := must[portSG](t, ports.Create(bg, c, body{"network_id": n.ID, "device_owner": "network:dhcp"}), "port")
			if len(p.SecurityGroups) != 0 {
				t.Errorf("network:dhcp port has groups %v", p.SecurityGroups)
			}
		})
		t.Run("explicit", func(t *testing.T) {
			a := mkGroup(t, c, sgBody{"name": "a"})
			b := mkGroup(t, c, sgBody{"name": "b"})
			p := must[portSG](t, ports.Create(bg, c, body{"network_id": n.ID, "security_groups": []string{a.ID, b.ID}}), "port")
			if !slices.Equal(p.SecurityGroups, []string{a.ID, b.ID}) {
				t.Errorf("security_groups %v", p.SecurityGroups)
			}
			err := groups.Delete(bg, c, a.ID).ExtractErr()
			wantFault(t, err, 409, "SecurityGroupInUse")
			_, err = groups.Update(bg, c, a.ID, sgUpd{sgBody{"stateful": false}}).Extract()
			wantFault(t, err, 409, "SecurityGroupInUse")
			u := must[portSG](t, ports.Update(bg, c, p.ID, ports.UpdateOpts{SecurityGroups: &[]string{b.ID}}), "port")
			if !slices.Equal(u.SecurityGroups, []string{b.ID}) {
				t.Errorf("after update %v", u.SecurityGroups)
			}
			if err := groups.Delete(bg, c, a.ID).ExtractErr(); err != nil {
				t.Errorf("group no port uses: %v", err)
			}
			if err := ports.Delete(bg, c, p.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if err := groups.Delete(bg, c, b.ID).ExtractErr(); err != nil {
				t.Errorf("group of a deleted port: %v", err)
			}
			none := must[portSG](t, ports.Create(bg, c, body{"network_id": n.ID, "security_groups": []string{}}), "port")
			if len(none.SecurityGroups) != 0 {
				t.Errorf("explicit [] gave %v", none.SecurityGroups)
			}
		})
		t.Run("bad-groups", func(t *testing.T) {
			theirs := mkGroup(t, e.Client("sgp-2", false), sgBody{"name": "theirs"})
			_, err := ports.Create(bg, c, body{"network_id": n.ID, "security_groups": []string{theirs.ID}}).Extract()
			wantFault(t, err, 404, "SecurityGroupNotFound")
			_, err = ports.Create(bg, c, body{"network_id": n.ID, "security_groups": []string{"2b2c7a3e-0000-4000-8000-000000000000"}}).Extract()
			wantFault(t, err, 404, "SecurityGroupNotFound")
			_, err = ports.Create(bg, c, body{"network_id": n.ID, "security_groups": []string{"not-a-uuid"}}).Extract()
			wantFault(t, err, 400, "HTTPBadRequest")
			sl := mkGroup(t, c, sgBody{"name": "stateless", "stateful": false})
			_, err = ports.Create(bg, c, body{"network_id": n.ID, "security_groups": []string{sl.ID, defaultGroup(t, c).ID}}).Extract()
			wantFault(t, err, 409, "SecurityGroupConflict")
		})
		t.Run("port-security", func(t *testing.T) {
			g := mkGroup(t, c, sgBody{"name": "ps"})
			_, err := ports.Create(bg, c, portsecurity.PortCreateOptsExt{
				CreateOptsBuilder:   ports.CreateOpts{NetworkID: n.ID, SecurityGroups: &[]string{g.ID}},
				PortSecurityEnabled: ptr(false),
			}).Extract()
			wantFault(t, err, 400, "PortSecurityAndIPRequiredForSecurityGroups")
			open := must[portSG](t, ports.Create(bg, c, portsecurity.PortCreateOptsExt{
				CreateOptsBuilder: ports.CreateOpts{NetworkID: n.ID}, PortSecurityEnabled: ptr(false),
			}), "port")
			if len(open.SecurityGroups) != 0 {
				t.Errorf("port without port security has %v", open.SecurityGroups)
			}
			_, err = ports.Update(bg, c, open.ID, ports.UpdateOpts{SecurityGroups: &[]string{g.ID}}).Extract()
			wantFault(t, err, 400, "PortSecurityAndIPRequiredForSecurityGroups")
			u := must[portSG](t, ports.Update(bg, c, open.ID, portsecurity.PortUpdateOptsExt{
				UpdateOptsBuilder: ports.UpdateOpts{SecurityGroups: &[]string{g.ID}}, PortSecurityEnabled: ptr(true),
			}), "port")
			if !u.PortSecurityEnabled || !slices.Equal(u.SecurityGroups, []string{g.ID}) {
				t.Errorf("enabled with a group: %+v", u)
			}
			_, err = ports.Update(bg, c, open.ID, portsecurity.PortUpdateOptsExt{UpdateOptsBuilder: ports.UpdateOpts{}, PortSecurityEnabled: ptr(false)}).Extract()
			wantFault(t, err, 409, "PortSecurityPortHasSecurityGroup")
			off := must[portSG](t, ports.Update(bg, c, open.ID, portsecurity.PortUpdateOptsExt{
				UpdateOptsBuilder: ports.UpdateOpts{SecurityGroups: &[]string{}}, PortSecurityEnabled: ptr(false),
			}), "port")
			if off.PortSecurityEnabled || len(off.SecurityGroups) != 0 {
				t.Errorf("disabled: %+v", off)
			}
		})
	})
}

func TestAddressGroups(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("ag1", false)
		ag := must[addressgroups.AddressGroup](t, addressgroups.Create(bg, c, addressgroups.CreateOpts{
			Name: "office", Addresses: []string{"10.0.0.5/24", "192.168.1.1", "10.0.0.0/24"}}), "address_group")
		if !slices.Equal(ag.Addresses, []string{"10.0.0.0/24", "192.168.1.1/32"}) {
			t.Errorf("addresses %v", ag.Addresses)
		}
		add := func(id string, addrs ...string) addressgroups.AddAddressesResult {
			return addressgroups.AddAddresses(bg, c, id, addressgroups.UpdateAddressesOpts{Addresses: addrs})
		}
		got := must[addressgroups.AddressGroup](t, add(ag.ID, "2001:db8::/64"), "address_group")
		if !slices.Contains(got.Addresses, "2001:db8::/64") || len(got.Addresses) != 3 {
			t.Errorf("after add %v", got.Addresses)
		}
		wantFault(t, add(ag.ID, "10.0.0.0/24").Err, 400, "AddressesAlreadyExist")
		got = must[addressgroups.AddressGroup](t, addressgroups.RemoveAddresses(bg, c, ag.ID, addressgroups.UpdateAddressesOpts{Addresses: []string{"192.168.1.1/32"}}), "address_group")
		if len(got.Addresses) != 2 {
			t.Errorf("after remove %v", got.Addresses)
		}
		_, err := addressgroups.RemoveAddresses(bg, c, ag.ID, addressgroups.UpdateAddressesOpts{Addresses: []string{"172.16.0.0/12"}}).Extract()
		wantFault(t, err, 404, "AddressesNotFound")
		_, err = addressgroups.Create(bg, c, addressgroups.CreateOpts{Name: "bad", Addresses: []string{"nope"}}).Extract()
		wantFault(t, err, 400, "HTTPBadRequest")
		_, err = addressgroups.Get(bg, e.Client("ag2", false), ag.ID).Extract()
		wantFault(t, err, 404, "AddressGroupNotFound")

		g := mkGroup(t, c, sgBody{"name": "uses-ag"})
		r := mkRule(t, c, sgBody{"security_group_id": g.ID, "direction": "ingress", "remote_address_group_id": ag.ID})
		wantFault(t, addressgroups.Delete(bg, c, ag.ID).ExtractErr(), 409, "AddressGroupInUse")
		if err := rules.Delete(bg, c, r.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if err := addressgroups.Delete(bg, c, ag.ID).ExtractErr(); err != nil {
			t.Fatalf("delete unused: %v", err)
		}
	})
}

func TestSecurityGroupQuotas(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c, admin := e.Client("sgq", false), e.Admin()
		sgs, sgrs := 3, 10
		if _, err := quotas.Update(bg, admin, "sgq", quotas.UpdateOpts{SecurityGroup: &sgs, SecurityGroupRule: &sgrs}).Extract(); err != nil {
			t.Fatal(err)
		}
		// default (1 group, 4 rules) + 2 groups of 2 rules each: 3 and 8.
		a := mkGroup(t, c, sgBody{"name": "a"})
		mkGroup(t, c, sgBody{"name": "b"})
		_, err := groups.Create(bg, c, sgBody{"name": "c"}).Extract()
		wantFault(t, err, 409, "OverQuota")
		mkRule(t, c, sgBody{"security_group_id": a.ID, "direction": "ingress", "protocol": "tcp", "port_range_min": 1, "port_range_max": 2})
		mkRule(t, c, sgBody{"security_group_id": a.ID, "direction": "ingress", "protocol": "tcp", "port_range_min": 3, "port_range_max": 4})
		_, err = rules.Create(bg, c, sgBody{"security_group_id": a.ID, "direction": "ingress", "protocol": "tcp", "port_range_min": 5, "port_range_max": 6}).Extract()
		wantFault(t, err, 409, "OverQuota")
		d, err := quotas.GetDetail(bg, admin, "sgq").Extract()
		if err != nil {
			t.Fatal(err)
		}
		if d.SecurityGroup.Used != 3 || d.SecurityGroupRule.Used != 10 {
			t.Errorf("usage %d groups, %d rules; want 3, 10", d.SecurityGroup.Used, d.SecurityGroupRule.Used)
		}
	})
}

// Parallel first uses of a project (lists, creates, ports) make exactly
// one default group.
func TestDefaultSecurityGroupConcurrency(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		for round := range 2 {
			project := fmt.Sprintf("sgc-%d", round)
			c := e.Client(project, false)
			pn, _ := netWithSubnet(t, c, fmt.Sprintf("10.80.%d.0/24", round))
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			for i := range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var err error
					switch i % 3 {
					case 0:
						_, err = groups.List(c, groups.ListOpts{}).AllPages(bg)
					case 1:
						_, err = groups.Create(bg, c, sgBody{"name": fmt.Sprintf("g%d", i)}).Extract()
					default:
						_, err = ports.Create(bg, c, body{"network_id": pn.ID}).Extract()
					}
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil && faultKey(err) != "Conflict OverQuota" {
					t.Errorf("first use: %v", err)
				}
			}
			def := defaultGroup(t, c)
			if len(def.Rules) != 4 {
				t.Errorf("default group has %d rules", len(def.Rules))
			}
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

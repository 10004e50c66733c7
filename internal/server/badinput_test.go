package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"muon/internal/server/servertest"
)

// badFixture is what the bad-input cases refer to: a network owned by
// project "p1" with one IPv4 subnet and one port, as placeholders
// {net}, {sub} and {port}.
type badFixture struct {
	net, sub, port string
}

// badSetup creates the fixture as p1 (the network owner, who may set MACs
// and fixed IPs).
func badSetup(t *testing.T, e *servertest.Env) badFixture {
	t.Helper()
	var f badFixture
	f.net = badCreate(t, e, "networks", `{"network": {"name": "bad-net"}}`)
	f.sub = badCreate(t, e, "subnets", `{"subnet": {"network_id": "`+f.net+`", "ip_version": 4, "cidr": "10.0.0.0/24",
		"allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.200"}]}}`)
	f.port = badCreate(t, e, "ports", `{"port": {"network_id": "`+f.net+`", "mac_address": "fa:16:3e:00:00:01",
		"fixed_ips": [{"subnet_id": "`+f.sub+`", "ip_address": "10.0.0.20"}]}}`)
	return f
}

func badCreate(t *testing.T, e *servertest.Env, coll, body string) string {
	t.Helper()
	status, b := e.Do(t, "POST", "/v2.0/"+coll, "p1", false, body)
	if status != http.StatusCreated {
		t.Fatalf("create %s: %d %s", coll, status, b)
	}
	var m map[string]map[string]any
	if err := json.Unmarshal([]byte(b), &m); err != nil {
		t.Fatalf("create %s: %v: %s", coll, err, b)
	}
	for _, d := range m {
		return d["id"].(string)
	}
	t.Fatalf("create %s: empty answer %s", coll, b)
	return ""
}

// badSnapshot is every network, subnet and port as an admin sees them,
// revision numbers and timestamps included.
func badSnapshot(t testing.TB, e *servertest.Env) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, coll := range []string{"networks", "subnets", "ports"} {
		status, b := e.Do(t, "GET", "/v2.0/"+coll+"?sort_key=id&sort_dir=asc", "admin", true, "")
		if status != http.StatusOK {
			t.Fatalf("list %s: %d %s", coll, status, b)
		}
		var m map[string][]any
		if err := json.Unmarshal([]byte(b), &m); err != nil {
			t.Fatalf("list %s: %v", coll, err)
		}
		c, _ := json.Marshal(m[coll]) // canonical key order
		out[coll] = string(c)
	}
	return out
}

// neutronError decodes a fault body, or says why it is not one.
func neutronError(b string) (typ, msg string, ok bool) {
	var f map[string]map[string]any
	if json.Unmarshal([]byte(b), &f) != nil || len(f) != 1 {
		return "", "", false
	}
	ne, found := f["NeutronError"]
	if !found || len(ne) != 3 {
		return "", "", false
	}
	typ, ok1 := ne["type"].(string)
	msg, ok2 := ne["message"].(string)
	detail, ok3 := ne["detail"].(string)
	return typ, msg, ok1 && ok2 && ok3 && detail == "" && typ != "" && msg != ""
}

func TestBadInput(t *testing.T) {
	big := `{"network": {"name": "x", "description": "` + strings.Repeat("a", 114688) + `"}}`
	bigBulk := `{"networks": [` + strings.Repeat(`{"network": {"name": "xxxxxxxxxxxxxxxxxxxx"}},`, 114688/40) + `{"network": {}}]}`
	cases := []struct {
		name         string
		method, path string
		body         string
		admin        bool
		headers      []string
		status       int
		typ          string
		msg          string // substring of the message, if set
	}{
		// body shape
		{name: "malformed-json", method: "POST", path: "/v2.0/networks", body: `{"network": {"name": "x"`, status: 400, typ: "HTTPBadRequest"},
		{name: "not-json", method: "POST", path: "/v2.0/networks", body: `name=x`, status: 400, typ: "HTTPBadRequest"},
		{name: "trailing-garbage", method: "POST", path: "/v2.0/networks", body: `{"network": {}} {}`, status: 400, typ: "HTTPBadRequest"},
		{name: "empty-body", method: "POST", path: "/v2.0/networks", body: ``, status: 400, typ: "HTTPBadRequest"},
		{name: "json-list", method: "POST", path: "/v2.0/networks", body: `[{"network": {}}]`, status: 400, typ: "HTTPBadRequest"},
		{name: "json-null", method: "POST", path: "/v2.0/networks", body: `null`, status: 400, typ: "HTTPBadRequest"},
		{name: "empty-object", method: "POST", path: "/v2.0/networks", body: `{}`, status: 400, typ: "HTTPBadRequest", msg: "Unable to find 'network' in request body"},
		{name: "wrong-top-key", method: "POST", path: "/v2.0/networks", body: `{"port": {"name": "x"}}`, status: 400, typ: "HTTPBadRequest", msg: "Unable to find 'network' in request body"},
		{name: "member-not-object", method: "POST", path: "/v2.0/networks", body: `{"network": "x"}`, status: 400, typ: "HTTPBadRequest"},
		{name: "member-null", method: "POST", path: "/v2.0/networks", body: `{"network": null}`, status: 400, typ: "HTTPBadRequest"},
		{name: "member-list", method: "POST", path: "/v2.0/networks", body: `{"network": [{}]}`, status: 400, typ: "HTTPBadRequest"},
		{name: "bulk-empty", method: "POST", path: "/v2.0/networks", body: `{"networks": []}`, status: 400, typ: "HTTPBadRequest", msg: "Resources required"},
		{name: "bulk-not-list", method: "POST", path: "/v2.0/networks", body: `{"networks": {"network": {}}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "put-wrong-top-key", method: "PUT", path: "/v2.0/networks/{net}", body: `{"networks": {"name": "y"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "put-bulk", method: "PUT", path: "/v2.0/networks/{net}", body: `{"networks": [{"network": {"name": "y"}}]}`, status: 400, typ: "HTTPBadRequest"},
		{name: "put-malformed", method: "PUT", path: "/v2.0/ports/{port}", body: `{"port": {`, status: 400, typ: "HTTPBadRequest"},

		// wrong types
		{name: "string-for-bool", method: "POST", path: "/v2.0/networks", body: `{"network": {"admin_state_up": "maybe"}}`, status: 400, typ: "InvalidInput", msg: "'maybe' cannot be converted to boolean"},
		{name: "int-for-bool", method: "POST", path: "/v2.0/networks", body: `{"network": {"shared": 2}}`, status: 400, typ: "InvalidInput"},
		{name: "string-for-int", method: "POST", path: "/v2.0/networks", body: `{"network": {"mtu": "big"}}`, status: 400, typ: "InvalidInput", msg: "'big' is not an integer"},
		{name: "float-for-int", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4.5, "cidr": "10.1.0.0/24"}}`, status: 400, typ: "InvalidInput"},
		{name: "negative-mtu", method: "POST", path: "/v2.0/networks", body: `{"network": {"mtu": -1}}`, status: 400, typ: "HTTPBadRequest", msg: "should be non-negative"},
		{name: "list-for-string", method: "POST", path: "/v2.0/networks", body: `{"network": {"name": ["a"]}}`, status: 400, typ: "HTTPBadRequest", msg: "Invalid input for name"},
		{name: "int-for-string", method: "PUT", path: "/v2.0/networks/{net}", body: `{"network": {"name": 5}}`, status: 400, typ: "HTTPBadRequest", msg: "Invalid input for name"},
		{name: "long-name", method: "PUT", path: "/v2.0/networks/{net}", body: `{"network": {"name": "` + strings.Repeat("n", 256) + `"}}`, status: 400, typ: "HTTPBadRequest", msg: "exceeds maximum length of 255"},
		{name: "object-for-list", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.1.0.0/24", "dns_nameservers": {"a": 1}}}`, status: 400, typ: "HTTPBadRequest", msg: "Invalid input for dns_nameservers"},
		{name: "string-for-pools", method: "PUT", path: "/v2.0/subnets/{sub}", body: `{"subnet": {"allocation_pools": "10.0.0.2-10.0.0.9"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "string-for-fixed-ips", method: "PUT", path: "/v2.0/ports/{port}", body: `{"port": {"fixed_ips": "10.0.0.30"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "null-for-name", method: "PUT", path: "/v2.0/networks/{net}", body: `{"network": {"name": null}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "bad-uuid-network-id", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "not-a-uuid"}}`, status: 400, typ: "HTTPBadRequest", msg: "is not a valid UUID"},
		{name: "bad-vnic-type", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "binding:vnic_type": "fancy"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "bad-ip-version", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 5, "cidr": "10.1.0.0/24"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "bad-project-id", method: "POST", path: "/v2.0/networks", body: `{"network": {"project_id": ""}}`, status: 400},
		{name: "project-tenant-mismatch", method: "POST", path: "/v2.0/networks", body: `{"network": {"project_id": "p1", "tenant_id": "p2"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "missing-required", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"ip_version": 4, "cidr": "10.1.0.0/24"}}`, status: 400, typ: "HTTPBadRequest", msg: "Required attribute 'network_id' not specified"},

		// unknown and read-only attributes
		{name: "unknown-attr", method: "POST", path: "/v2.0/networks", body: `{"network": {"name": "x", "colour": "red"}}`, status: 400, typ: "HTTPBadRequest", msg: "Unrecognized attribute(s) 'colour'"},
		{name: "unknown-attr-put", method: "PUT", path: "/v2.0/ports/{port}", body: `{"port": {"colour": "red"}}`, status: 400, typ: "HTTPBadRequest", msg: "Unrecognized attribute(s)"},
		{name: "post-id", method: "POST", path: "/v2.0/networks", body: `{"network": {"id": "6ee6e4a1-3e4e-4a39-a4d1-97d3b3b8a7a4"}}`, status: 400, typ: "HTTPBadRequest", msg: "Attribute 'id' not allowed in POST"},
		{name: "post-status", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "status": "ACTIVE"}}`, status: 400, typ: "HTTPBadRequest", msg: "Attribute 'status' not allowed in POST"},
		{name: "post-created-at", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.1.0.0/24", "created_at": "2024-01-01T00:00:00Z"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "post-revision", method: "POST", path: "/v2.0/networks", body: `{"network": {"revision_number": 7}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "post-subnets", method: "POST", path: "/v2.0/networks", body: `{"network": {"subnets": []}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "post-vif-type", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "binding:vif_type": "ovs"}}`, admin: true, status: 400, typ: "HTTPBadRequest"},
		{name: "put-id", method: "PUT", path: "/v2.0/networks/{net}", body: `{"network": {"id": "{net}"}}`, status: 400, typ: "HTTPBadRequest", msg: "Cannot update read-only attribute id"},
		{name: "put-status", method: "PUT", path: "/v2.0/networks/{net}", body: `{"network": {"status": "DOWN"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "put-updated-at", method: "PUT", path: "/v2.0/ports/{port}", body: `{"port": {"updated_at": "2024-01-01T00:00:00Z"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "put-network-id", method: "PUT", path: "/v2.0/ports/{port}", body: `{"port": {"network_id": "{net}"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "put-cidr", method: "PUT", path: "/v2.0/subnets/{sub}", body: `{"subnet": {"cidr": "10.0.0.0/16"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "put-ip-version", method: "PUT", path: "/v2.0/subnets/{sub}", body: `{"subnet": {"ip_version": 6}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "put-project", method: "PUT", path: "/v2.0/networks/{net}", body: `{"network": {"project_id": "p2"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "put-az-hints", method: "PUT", path: "/v2.0/networks/{net}", body: `{"network": {"availability_zone_hints": []}}`, status: 400, typ: "HTTPBadRequest"},

		// admin-only attributes
		{name: "nonadmin-provider", method: "POST", path: "/v2.0/networks", body: `{"network": {"provider:network_type": "vxlan"}}`, status: 403, typ: "PolicyNotAuthorized"},
		{name: "nonadmin-segments", method: "POST", path: "/v2.0/networks", body: `{"network": {"segments": [{"provider:network_type": "vxlan"}]}}`, status: 403, typ: "PolicyNotAuthorized"},
		{name: "nonadmin-shared", method: "POST", path: "/v2.0/networks", body: `{"network": {"shared": true}}`, status: 403, typ: "PolicyNotAuthorized"},
		{name: "nonadmin-external", method: "POST", path: "/v2.0/networks", body: `{"network": {"router:external": true}}`, status: 403, typ: "PolicyNotAuthorized"},
		{name: "nonadmin-share-update", method: "PUT", path: "/v2.0/networks/{net}", body: `{"network": {"shared": true}}`, status: 403, typ: "PolicyNotAuthorized"},
		{name: "nonadmin-host-id", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "binding:host_id": "h1"}}`, status: 403, typ: "PolicyNotAuthorized"},
		{name: "nonadmin-profile-put", method: "PUT", path: "/v2.0/ports/{port}", body: `{"port": {"binding:profile": {}}}`, status: 403, typ: "PolicyNotAuthorized"},
		{name: "nonadmin-other-project", method: "POST", path: "/v2.0/networks", body: `{"network": {"project_id": "p2"}}`, status: 403},

		// CIDRs and IPs
		{name: "cidr-garbage", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "banana"}}`, status: 400, typ: "HTTPBadRequest", msg: "Invalid input for cidr"},
		{name: "cidr-no-prefix", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.1.0.0"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "cidr-prefix-33", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.1.0.0/33"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "cidr-int", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": 10}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "cidr-wrong-version", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 6, "cidr": "10.1.0.0/24"}}`, status: 400, typ: "InvalidInput", msg: "does not match the ip_version"},
		{name: "cidr-v6-as-v4", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "2001:db8::/64"}}`, status: 400, typ: "InvalidInput"},
		{name: "cidr-overlap", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.0.0.128/25"}}`, status: 400, typ: "InvalidInput", msg: "overlaps with another subnet"},
		{name: "cidr-overlap-wider", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.0.0.0/16"}}`, status: 400, typ: "InvalidInput"},
		{name: "gateway-garbage", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.1.0.0/24", "gateway_ip": "10.1.0.300"}}`, status: 400, typ: "HTTPBadRequest", msg: "Invalid input for gateway_ip"},
		{name: "gateway-leading-zero", method: "PUT", path: "/v2.0/subnets/{sub}", body: `{"subnet": {"gateway_ip": "10.0.0.01"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "gateway-network-addr", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.1.0.0/24", "gateway_ip": "10.1.0.0"}}`, status: 400, typ: "InvalidInput", msg: "Gateway is not valid on subnet"},
		{name: "gateway-wrong-version", method: "PUT", path: "/v2.0/subnets/{sub}", body: `{"subnet": {"gateway_ip": "2001:db8::1"}}`, status: 400, typ: "InvalidInput"},
		{name: "gateway-broadcast", method: "PUT", path: "/v2.0/subnets/{sub}", body: `{"subnet": {"gateway_ip": "10.0.0.255"}}`, status: 400, typ: "InvalidInput"},
		{name: "gateway-in-pool", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.1.0.0/24", "gateway_ip": "10.1.0.50", "allocation_pools": [{"start": "10.1.0.10", "end": "10.1.0.100"}]}}`, status: 409, typ: "GatewayConflictWithAllocationPools"},
		{name: "gateway-into-pool", method: "PUT", path: "/v2.0/subnets/{sub}", body: `{"subnet": {"gateway_ip": "10.0.0.50"}}`, status: 409, typ: "GatewayConflictWithAllocationPools"},
		{name: "nameserver-garbage", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.1.0.0/24", "dns_nameservers": ["8.8.8"]}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "nameserver-duplicate", method: "PUT", path: "/v2.0/subnets/{sub}", body: `{"subnet": {"dns_nameservers": ["8.8.8.8", "8.8.8.8"]}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "nameserver-not-string", method: "PUT", path: "/v2.0/subnets/{sub}", body: `{"subnet": {"dns_nameservers": [8]}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "host-route-bad", method: "PUT", path: "/v2.0/subnets/{sub}", body: `{"subnet": {"host_routes": [{"destination": "x", "nexthop": "10.0.0.1"}]}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "host-route-keys", method: "PUT", path: "/v2.0/subnets/{sub}", body: `{"subnet": {"host_routes": [{"to": "0.0.0.0/0"}]}}`, status: 400, typ: "HTTPBadRequest"},

		// allocation pools
		{name: "pool-outside", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.10", "end": "10.1.1.10"}]}}`, status: 400, typ: "OutOfBoundsAllocationPool"},
		{name: "pool-overlap", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.10", "end": "10.1.0.20"}, {"start": "10.1.0.15", "end": "10.1.0.30"}]}}`, status: 409, typ: "OverlappingAllocationPools"},
		{name: "pool-reversed", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.20", "end": "10.1.0.10"}]}}`, status: 400, typ: "InvalidAllocationPool"},
		{name: "pool-garbage", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.1.0.0/24", "allocation_pools": [{"start": "x", "end": "10.1.0.10"}]}}`, status: 400},
		{name: "pool-wrong-version", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.1.0.0/24", "allocation_pools": [{"start": "2001:db8::1", "end": "2001:db8::9"}]}}`, status: 400},
		{name: "pool-missing-end", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.10"}]}}`, status: 400},
		{name: "pool-not-object", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.1.0.0/24", "allocation_pools": ["10.1.0.10"]}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "pool-update-outside", method: "PUT", path: "/v2.0/subnets/{sub}", body: `{"subnet": {"allocation_pools": [{"start": "10.0.0.10", "end": "10.0.1.10"}]}}`, status: 400, typ: "OutOfBoundsAllocationPool"},
		{name: "pool-update-gateway", method: "PUT", path: "/v2.0/subnets/{sub}", body: `{"subnet": {"allocation_pools": [{"start": "10.0.0.1", "end": "10.0.0.100"}]}}`, status: 409, typ: "GatewayConflictWithAllocationPools"},

		// ports
		{name: "mac-garbage", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "mac_address": "zz:16:3e:00:00:01"}}`, status: 400, typ: "HTTPBadRequest", msg: "Invalid input for mac_address"},
		{name: "mac-short", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "mac_address": "fa:16:3e:00:01"}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "mac-int", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "mac_address": 12}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "mac-update-garbage", method: "PUT", path: "/v2.0/ports/{port}", body: `{"port": {"mac_address": "nope"}}`, admin: true, status: 400, typ: "HTTPBadRequest"},
		{name: "mac-duplicate", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "mac_address": "fa:16:3e:00:00:01"}}`, status: 409, typ: "MacAddressInUse"},
		{name: "mac-duplicate-case", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "mac_address": "FA:16:3E:00:00:01"}}`, status: 409, typ: "MacAddressInUse"},
		{name: "fixed-ip-garbage", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "fixed_ips": [{"ip_address": "10.0.0.999"}]}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "fixed-ip-not-object", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "fixed_ips": ["10.0.0.30"]}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "fixed-ip-empty-entry", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "fixed_ips": [{}]}}`, status: 400},
		{name: "fixed-ip-bad-subnet", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "fixed_ips": [{"subnet_id": "nope"}]}}`, status: 400},
		{name: "fixed-ip-outside", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "fixed_ips": [{"ip_address": "192.168.1.1"}]}}`, status: 400, typ: "InvalidIpForNetwork"},
		{name: "fixed-ip-wrong-subnet", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "fixed_ips": [{"subnet_id": "{sub}", "ip_address": "192.168.1.1"}]}}`, status: 400, typ: "InvalidIpForSubnet"},
		{name: "fixed-ip-taken", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "{net}", "fixed_ips": [{"ip_address": "10.0.0.20"}]}}`, status: 409, typ: "IpAddressAlreadyAllocated"},
		{name: "fixed-ip-taken-update", method: "PUT", path: "/v2.0/ports/{port}", body: `{"port": {"fixed_ips": [{"ip_address": "10.0.0.20"}, {"ip_address": "10.0.0.20"}]}}`, status: 400},
		{name: "port-no-network", method: "POST", path: "/v2.0/ports", body: `{"port": {"network_id": "6ee6e4a1-3e4e-4a39-a4d1-97d3b3b8a7a4"}}`, status: 404, typ: "NetworkNotFound"},
		{name: "subnet-no-network", method: "POST", path: "/v2.0/subnets", body: `{"subnet": {"network_id": "6ee6e4a1-3e4e-4a39-a4d1-97d3b3b8a7a4", "ip_version": 4, "cidr": "10.1.0.0/24"}}`, status: 404, typ: "NetworkNotFound"},
		{name: "address-pair-bad", method: "PUT", path: "/v2.0/ports/{port}", body: `{"port": {"allowed_address_pairs": [{"ip_address": "nope"}]}}`, status: 400},
		{name: "dhcp-opt-bad", method: "PUT", path: "/v2.0/ports/{port}", body: `{"port": {"extra_dhcp_opts": [{"opt_value": "x"}]}}`, status: 400},

		// bulk: one bad item, nothing made
		{name: "bulk-bare-bad-value", method: "POST", path: "/v2.0/networks", body: `{"networks": [{"name": "ok1"}, {"name": "ok2", "mtu": "x"}]}`, status: 400, typ: "InvalidInput"},
		{name: "bulk-one-bad-value", method: "POST", path: "/v2.0/networks", body: `{"networks": [{"network": {"name": "ok1"}}, {"network": {"admin_state_up": "x"}}]}`, status: 400, typ: "InvalidInput"},
		{name: "bulk-one-bad-key", method: "POST", path: "/v2.0/networks", body: `{"networks": [{"network": {"name": "ok1"}}, {"network": {"colour": "red"}}]}`, status: 400, typ: "HTTPBadRequest"},
		{name: "bulk-one-bad-item", method: "POST", path: "/v2.0/networks", body: `{"networks": [{"network": {"name": "ok1"}}, 7]}`, status: 400, typ: "HTTPBadRequest"},
		{name: "bulk-subnet-overlap", method: "POST", path: "/v2.0/subnets", body: `{"subnets": [{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.5.0.0/24"}}, {"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.5.0.0/25"}}]}`, status: 400, typ: "InvalidInput"},
		{name: "bulk-subnet-no-network", method: "POST", path: "/v2.0/subnets", body: `{"subnets": [{"subnet": {"network_id": "{net}", "ip_version": 4, "cidr": "10.5.0.0/24"}}, {"subnet": {"network_id": "6ee6e4a1-3e4e-4a39-a4d1-97d3b3b8a7a4", "ip_version": 4, "cidr": "10.6.0.0/24"}}]}`, status: 404, typ: "NetworkNotFound"},
		{name: "bulk-port-same-mac", method: "POST", path: "/v2.0/ports", body: `{"ports": [{"port": {"network_id": "{net}", "mac_address": "fa:16:3e:00:00:09"}}, {"port": {"network_id": "{net}", "mac_address": "fa:16:3e:00:00:09"}}]}`, status: 409, typ: "MacAddressInUse"},
		{name: "bulk-port-same-ip", method: "POST", path: "/v2.0/ports", body: `{"ports": [{"port": {"network_id": "{net}", "fixed_ips": [{"ip_address": "10.0.0.40"}]}}, {"port": {"network_id": "{net}", "fixed_ips": [{"ip_address": "10.0.0.40"}]}}]}`, status: 409, typ: "IpAddressAlreadyAllocated"},
		{name: "bulk-port-taken-ip", method: "POST", path: "/v2.0/ports", body: `{"ports": [{"port": {"network_id": "{net}"}}, {"port": {"network_id": "{net}", "fixed_ips": [{"ip_address": "10.0.0.20"}]}}]}`, status: 409, typ: "IpAddressAlreadyAllocated"},

		// sizes
		{name: "oversized", method: "POST", path: "/v2.0/networks", body: big, status: 413},
		{name: "oversized-bulk", method: "POST", path: "/v2.0/networks", body: bigBulk, status: 413},
		{name: "oversized-put", method: "PUT", path: "/v2.0/networks/{net}", body: big, status: 413},

		// query parameters
		{name: "query-unknown-filter", method: "GET", path: "/v2.0/networks?colour=red", status: 400, typ: "HTTPBadRequest"},
		{name: "query-nofilter-attr", method: "GET", path: "/v2.0/subnets?allocation_pools=x", status: 400, typ: "HTTPBadRequest"},
		{name: "query-sort-dir-alone", method: "GET", path: "/v2.0/networks?sort_dir=asc", status: 400, typ: "HTTPBadRequest"},
		{name: "query-sort-key-count", method: "GET", path: "/v2.0/networks?sort_key=name&sort_key=id&sort_dir=asc", status: 400, typ: "HTTPBadRequest"},
		{name: "query-sort-dir-bad", method: "GET", path: "/v2.0/networks?sort_key=name&sort_dir=up", status: 400, typ: "HTTPBadRequest"},
		{name: "query-sort-key-bad", method: "GET", path: "/v2.0/networks?sort_key=colour&sort_dir=asc", status: 400, typ: "HTTPBadRequest"},
		{name: "query-limit-word", method: "GET", path: "/v2.0/networks?limit=ten", status: 400, typ: "BadRequest"},
		{name: "query-limit-negative", method: "GET", path: "/v2.0/ports?limit=-1", status: 400, typ: "BadRequest"},
		{name: "query-limit-huge", method: "GET", path: "/v2.0/ports?limit=99999999999999999999", status: 400, typ: "BadRequest"},
		{name: "query-bool-filter", method: "GET", path: "/v2.0/networks?admin_state_up=maybe", status: 400, typ: "InvalidInput"},
		{name: "query-int-filter", method: "GET", path: "/v2.0/subnets?ip_version=four", status: 400, typ: "InvalidInput"},
		{name: "query-page-reverse", method: "GET", path: "/v2.0/networks?page_reverse=sideways", status: 400},
		{name: "query-marker-unknown", method: "GET", path: "/v2.0/networks?limit=1&marker=6ee6e4a1-3e4e-4a39-a4d1-97d3b3b8a7a4", status: 404, typ: "NetworkNotFound"},
		{name: "query-tags-on-segments", method: "GET", path: "/v2.0/segments?tags=a", admin: true, status: 400, typ: "HTTPBadRequest"},

		// If-Match
		{name: "if-match-word", method: "PUT", path: "/v2.0/networks/{net}", body: `{"network": {"name": "y"}}`, headers: []string{"If-Match", "revision_number=abc"}, status: 400, typ: "BadRequest"},
		{name: "if-match-negative", method: "PUT", path: "/v2.0/networks/{net}", body: `{"network": {"name": "y"}}`, headers: []string{"If-Match", "revision_number=-1"}, status: 400, typ: "BadRequest"},
		{name: "if-match-two", method: "PUT", path: "/v2.0/networks/{net}", body: `{"network": {"name": "y"}}`, headers: []string{"If-Match", "revision_number=1, revision_number=2"}, status: 400, typ: "BadRequest"},
		{name: "if-match-quoted-stale", method: "PUT", path: "/v2.0/networks/{net}", body: `{"network": {"name": "y"}}`, headers: []string{"If-Match", `"revision_number=999"`}, status: 412, typ: "RevisionNumberConstraintFailed"},
		{name: "if-match-stale", method: "PUT", path: "/v2.0/networks/{net}", body: `{"network": {"name": "y"}}`, headers: []string{"If-Match", "revision_number=999"}, status: 412, typ: "RevisionNumberConstraintFailed"},
		{name: "if-match-delete-stale", method: "DELETE", path: "/v2.0/ports/{port}", headers: []string{"If-Match", "revision_number=999"}, status: 412, typ: "RevisionNumberConstraintFailed"},
		{name: "if-match-delete-word", method: "DELETE", path: "/v2.0/ports/{port}", headers: []string{"If-Match", "revision_number=x"}, status: 400, typ: "BadRequest"},

		// other methods
		{name: "delete-with-body", method: "DELETE", path: "/v2.0/ports/{port}", body: `{"port": {}}`, status: 400, typ: "HTTPBadRequest"},
		{name: "unknown-collection", method: "POST", path: "/v2.0/widgets", body: `{"widget": {}}`, status: 404},
		{name: "delete-collection", method: "DELETE", path: "/v2.0/networks", status: 405},
	}
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		f := badSetup(t, e)
		fill := func(s string) string {
			return strings.NewReplacer("{net}", f.net, "{sub}", f.sub, "{port}", f.port).Replace(s)
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := badSnapshot(t, e)
				status, b := e.Do(t, c.method, fill(c.path), "p1", c.admin, fill(c.body), c.headers...)
				typ, msg, ok := neutronError(b)
				if status != c.status || c.typ != "" && typ != c.typ {
					t.Errorf("got %d %s, want %d %s: %.300s", status, typ, c.status, c.typ, b)
				}
				if !ok && c.status != http.StatusMethodNotAllowed {
					t.Errorf("body is not a NeutronError: %.300s", b)
				}
				if c.msg != "" && !strings.Contains(msg, c.msg) {
					t.Errorf("message %q does not contain %q", msg, c.msg)
				}
				after := badSnapshot(t, e)
				for _, coll := range []string{"networks", "subnets", "ports"} {
					if before[coll] != after[coll] {
						t.Errorf("%s changed:\nbefore %.600s\nafter  %.600s", coll, before[coll], after[coll])
					}
				}
			})
		}
	})
}

// TestCIDRHostBits: Neutron's validate_subnet accepts an IPv4 cidr with
// host bits set and the subnet is stored with them cleared.
func TestCIDRHostBits(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		f := badSetup(t, e)
		status, b := e.Do(t, "POST", "/v2.0/subnets", "p1", false, `{"subnet": {"network_id": "`+f.net+`", "ip_version": 4, "cidr": "10.1.0.5/24"}}`)
		if status != 201 || !strings.Contains(b, `"cidr":"10.1.0.0/24"`) {
			t.Fatalf("got %d %s", status, b)
		}
	})
}

// TestBadInputRevision checks the network's revision survives refused
// subnet and port writes, which would bump it when they succeed.
func TestBadInputRevision(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		f := badSetup(t, e)
		rev := func() float64 {
			status, b := e.Do(t, "GET", "/v2.0/networks/"+f.net, "p1", false, "")
			if status != 200 {
				t.Fatalf("show: %d %s", status, b)
			}
			var m map[string]map[string]any
			json.Unmarshal([]byte(b), &m)
			return m["network"]["revision_number"].(float64)
		}
		r0 := rev()
		for _, b := range []string{
			`{"subnet": {"network_id": "` + f.net + `", "ip_version": 4, "cidr": "10.0.0.0/25"}}`,
			`{"subnet": {"network_id": "` + f.net + `", "ip_version": 4, "cidr": "10.1.0.0/24", "gateway_ip": "10.1.0.5", "allocation_pools": [{"start": "10.1.0.2", "end": "10.1.0.9"}]}}`,
			`{"subnets": [{"subnet": {"network_id": "` + f.net + `", "ip_version": 4, "cidr": "10.7.0.0/24"}}, {"subnet": {"network_id": "` + f.net + `", "ip_version": 4, "cidr": "10.7.0.0/24"}}]}`,
		} {
			if status, _ := e.Do(t, "POST", "/v2.0/subnets", "p1", false, b); status < 400 {
				t.Fatalf("accepted %s", b)
			}
		}
		if status, _ := e.Do(t, "PUT", "/v2.0/subnets/"+f.sub, "p1", false, `{"subnet": {"gateway_ip": "10.0.0.255"}}`); status < 400 {
			t.Fatal("accepted the broadcast address as gateway")
		}
		if status, _ := e.Do(t, "DELETE", "/v2.0/subnets/"+f.sub, "p1", false, ""); status != 409 {
			t.Fatalf("deleted a subnet in use: %d", status)
		}
		if r := rev(); r != r0 {
			t.Errorf("network revision went from %v to %v", r0, r)
		}
	})
}

// FuzzCreateBody posts arbitrary bodies to the create calls: no 5xx,
// every refusal is a NeutronError, and a refusal changes nothing.
func FuzzCreateBody(f *testing.F) {
	e := servertest.Start(f, "sqlite", nil)
	net := ""
	{
		status, b := e.Do(f, "POST", "/v2.0/networks", "p1", false, `{"network": {"name": "fz"}}`)
		if status != 201 {
			f.Fatalf("seed network: %d %s", status, b)
		}
		var m map[string]map[string]any
		json.Unmarshal([]byte(b), &m)
		net = m["network"]["id"].(string)
		status, b = e.Do(f, "POST", "/v2.0/subnets", "p1", false, `{"subnet": {"network_id": "`+net+`", "ip_version": 4, "cidr": "10.0.0.0/24"}}`)
		if status != 201 {
			f.Fatalf("seed subnet: %d %s", status, b)
		}
	}
	colls := []string{"networks", "subnets", "ports"}
	seeds := []struct {
		coll uint8
		body string
	}{
		{0, `{"network": {"name": "a"}}`},
		{0, `{"networks": [{"network": {"name": "a"}}, {"name": "b", "mtu": 1400}]}`},
		{0, `{"network": {"admin_state_up": "maybe"}}`},
		{0, `{"network": {"mtu": -1, "shared": "yes"}}`},
		{0, `{"network": {"provider:network_type": "vlan"}}`},
		{0, `{"network": {"segments": [{"provider:network_type": "vxlan"}, 5]}}`},
		{0, `{"network": {"availability_zone_hints": [1]}}`},
		{0, `{"network": {"project_id": "p1", "tenant_id": "p1", "tags": ["x"]}}`},
		{0, `{"network": `},
		{0, `[]`},
		{1, `{"subnet": {"network_id": "NET", "ip_version": 4, "cidr": "10.1.0.0/24"}}`},
		{1, `{"subnet": {"network_id": "NET", "ip_version": 6, "cidr": "2001:db8::/64", "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}}`},
		{1, `{"subnet": {"network_id": "NET", "ip_version": 4, "cidr": "10.2.0.0/24", "allocation_pools": [{"start": "10.2.0.20", "end": "10.2.0.10"}]}}`},
		{1, `{"subnet": {"network_id": "NET", "ip_version": 4, "cidr": "10.3.0.0/24", "gateway_ip": "10.3.0.5", "allocation_pools": [{"start": "10.3.0.2", "end": "10.3.0.9"}], "host_routes": [{"destination": "0.0.0.0/0", "nexthop": "10.3.0.1"}], "dns_nameservers": ["1.1.1.1"]}}`},
		{1, `{"subnet": {"network_id": "NET", "ip_version": 4, "cidr": "10.0.0.0/8"}}`},
		{1, `{"subnet": {"network_id": "NET", "ip_version": 4, "prefixlen": 24}}`},
		{1, `{"subnet": {"network_id": "NET", "ip_version": 4, "cidr": "10.4.0.0/31", "enable_dhcp": false, "gateway_ip": null}}`},
		{1, `{"subnets": [{"network_id": "NET", "ip_version": 4, "cidr": "10.5.0.0/24"}, {"network_id": "NET", "ip_version": 4, "cidr": "10.5.0.0/24"}]}`},
		{2, `{"port": {"network_id": "NET"}}`},
		{2, `{"port": {"network_id": "NET", "mac_address": "fa:16:3e:00:00:01", "fixed_ips": [{"ip_address": "10.0.0.7"}]}}`},
		{2, `{"port": {"network_id": "NET", "fixed_ips": [{"subnet_id": "x"}, {}]}}`},
		{2, `{"port": {"network_id": "NET", "allowed_address_pairs": [{"ip_address": "10.0.0.0/24", "mac_address": "x"}], "extra_dhcp_opts": [{"opt_name": "a", "opt_value": "b", "ip_version": 7}]}}`},
		{2, `{"port": {"network_id": "NET", "device_owner": "network:dhcp", "binding:vnic_type": "direct", "port_security_enabled": false, "security_groups": []}}`},
		{2, `{"ports": [{"port": {"network_id": "NET"}}, {"port": {"network_id": "NET", "fixed_ips": [{"ip_address": "10.0.0.300"}]}}]}`},
	}
	for _, s := range seeds {
		f.Add(s.coll, false, s.body)
		f.Add(s.coll, true, s.body)
	}
	var snap map[string]string // the state before the next call; nil: unknown
	f.Fuzz(func(t *testing.T, coll uint8, admin bool, body string) {
		c := colls[int(coll)%len(colls)]
		body = strings.ReplaceAll(body, "NET", net)
		if snap == nil {
			snap = badSnapshot(t, e)
		}
		status, b := e.Do(t, "POST", "/v2.0/"+c, "p1", admin, body)
		if status >= 500 {
			t.Fatalf("POST %s %q: %d %s", c, body, status, b)
		}
		if status < 300 {
			// Delete what was made, so the state stays small.
			snap = nil
			var m map[string]any
			if err := json.Unmarshal([]byte(b), &m); err != nil {
				t.Fatalf("POST %s %q: %d with a body that is not JSON: %s", c, body, status, b)
			}
			var made []any
			for _, v := range m {
				if l, ok := v.([]any); ok {
					made = append(made, l...)
				} else {
					made = append(made, v)
				}
			}
			for _, x := range made {
				d, _ := x.(map[string]any)
				id, _ := d["id"].(string)
				if st, b := e.Do(t, "DELETE", "/v2.0/"+c+"/"+id, "admin", true, ""); st != http.StatusNoContent {
					t.Fatalf("cleanup: DELETE %s %s: %d %s", c, id, st, b)
				}
			}
			return
		}
		if _, _, ok := neutronError(b); !ok {
			t.Fatalf("POST %s %q: %d with a body that is not a NeutronError: %s", c, body, status, b)
		}
		after := badSnapshot(t, e)
		for _, k := range colls {
			if snap[k] != after[k] {
				t.Fatalf("POST %s %q refused with %d, yet %s changed:\nbefore %.500s\nafter  %.500s", c, body, status, k, snap[k], after[k])
			}
		}
		snap = after
	})
}

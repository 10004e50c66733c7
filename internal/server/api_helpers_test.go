package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// body is a raw request body for attributes gophercloud's option structs
// do not carry (provider:*, nulls, bad values). It serves as create and
// update options for networks, subnets and ports.
type body map[string]any

func (b body) ToNetworkCreateMap() (map[string]any, error) {
	return map[string]any{"network": map[string]any(b)}, nil
}
func (b body) ToNetworkUpdateMap() (map[string]any, error) {
	return map[string]any{"network": map[string]any(b)}, nil
}
func (b body) ToSubnetCreateMap() (map[string]any, error) {
	return map[string]any{"subnet": map[string]any(b)}, nil
}
func (b body) ToSubnetUpdateMap() (map[string]any, error) {
	return map[string]any{"subnet": map[string]any(b)}, nil
}
func (b body) ToPortCreateMap() (map[string]any, error) {
	return map[string]any{"port": map[string]any(b)}, nil
}
func (b body) ToPortUpdateMap() (map[string]any, error) {
	return map[string]any{"port": map[string]any(b)}, nil
}

// upd is a raw update body (gophercloud wants a struct for updates).
type upd struct{ B body }

func (u upd) ToNetworkUpdateMap() (map[string]any, error) {
	return map[string]any{"network": map[string]any(u.B)}, nil
}
func (u upd) ToSubnetUpdateMap() (map[string]any, error) {
	return map[string]any{"subnet": map[string]any(u.B)}, nil
}
func (u upd) ToPortUpdateMap() (map[string]any, error) {
	return map[string]any{"port": map[string]any(u.B)}, nil
}

// rawOf is a result's member document as a map.
func rawOf(t *testing.T, r gophercloud.Result, label string) map[string]any {
	t.Helper()
	var m map[string]map[string]any
	if err := r.ExtractInto(&m); err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	return m[label]
}

// query is a raw list query string ("name=a&name=b").
type query string

func (q query) ToNetworkListQuery() (string, error) { return "?" + string(q), nil }
func (q query) ToSubnetListQuery() (string, error)  { return "?" + string(q), nil }
func (q query) ToPortListQuery() (string, error)    { return "?" + string(q), nil }

// network, subnet and port are the API's documents with every attribute
// the tests look at.
type network struct {
	ID                    string           `json:"id"`
	Name                  string           `json:"name"`
	Status                string           `json:"status"`
	ProjectID             string           `json:"project_id"`
	TenantID              string           `json:"tenant_id"`
	AdminStateUp          bool             `json:"admin_state_up"`
	Shared                bool             `json:"shared"`
	External              bool             `json:"router:external"`
	MTU                   int              `json:"mtu"`
	PortSecurityEnabled   bool             `json:"port_security_enabled"`
	AvailabilityZoneHints []string         `json:"availability_zone_hints"`
	NetworkType           *string          `json:"provider:network_type"`
	PhysicalNetwork       *string          `json:"provider:physical_network"`
	SegmentationID        *int             `json:"provider:segmentation_id"`
	Segments              []map[string]any `json:"segments"`
	Subnets               []string         `json:"subnets"`
	Tags                  []string         `json:"tags"`
	RevisionNumber        int              `json:"revision_number"`
	L2Adjacency           bool             `json:"l2_adjacency"`
	AvailabilityZones     []string         `json:"availability_zones"`
	DNSDomain             string           `json:"dns_domain"`
	Description           string           `json:"description"`
	CreatedAt             string           `json:"created_at"`
	UpdatedAt             string           `json:"updated_at"`
	IPv4AddressScope      *string          `json:"ipv4_address_scope"`
	IPv6AddressScope      *string          `json:"ipv6_address_scope"`
	IsDefault             bool             `json:"is_default"`
}

type subnet struct {
	ID              string                   `json:"id"`
	Name            string                   `json:"name"`
	NetworkID       string                   `json:"network_id"`
	IPVersion       int                      `json:"ip_version"`
	CIDR            string                   `json:"cidr"`
	GatewayIP       *string                  `json:"gateway_ip"`
	AllocationPools []subnets.AllocationPool `json:"allocation_pools"`
	DNSNameservers  []string                 `json:"dns_nameservers"`
	HostRoutes      []subnets.HostRoute      `json:"host_routes"`
	EnableDHCP      bool                     `json:"enable_dhcp"`
	IPv6RAMode      *string                  `json:"ipv6_ra_mode"`
	IPv6AddressMode *string                  `json:"ipv6_address_mode"`
	ServiceTypes    []string                 `json:"service_types"`
	SubnetPoolID    *string                  `json:"subnetpool_id"`
	Tags            []string                 `json:"tags"`
	RevisionNumber  int                      `json:"revision_number"`
	ProjectID       string                   `json:"project_id"`
}

type fixedIP struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

type port struct {
	ID                  string              `json:"id"`
	Name                string              `json:"name"`
	NetworkID           string              `json:"network_id"`
	ProjectID           string              `json:"project_id"`
	MACAddress          string              `json:"mac_address"`
	FixedIPs            []fixedIP           `json:"fixed_ips"`
	DeviceID            string              `json:"device_id"`
	DeviceOwner         string              `json:"device_owner"`
	Status              string              `json:"status"`
	AdminStateUp        bool                `json:"admin_state_up"`
	AllowedAddressPairs []map[string]string `json:"allowed_address_pairs"`
	ExtraDHCPOpts       []map[string]any    `json:"extra_dhcp_opts"`
	PortSecurityEnabled bool                `json:"port_security_enabled"`
	DNSName             string              `json:"dns_name"`
	DNSAssignment       []map[string]string `json:"dns_assignment"`
	HostID              string              `json:"binding:host_id"`
	VNICType            string              `json:"binding:vnic_type"`
	VIFType             string              `json:"binding:vif_type"`
	Tags                []string            `json:"tags"`
	RevisionNumber      int                 `json:"revision_number"`
}

type extractor interface {
	ExtractIntoStructPtr(v any, label string) error
}

func must[T any](t *testing.T, r extractor, label string) T {
	t.Helper()
	var v T
	if err := r.ExtractIntoStructPtr(&v, label); err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	return v
}

var bg = context.Background()

func mkNet(t *testing.T, c *gophercloud.ServiceClient, b body) network {
	t.Helper()
	return must[network](t, networks.Create(bg, c, b), "network")
}

func mkSubnet(t *testing.T, c *gophercloud.ServiceClient, b body) subnet {
	t.Helper()
	return must[subnet](t, subnets.Create(bg, c, b), "subnet")
}

func mkPort(t *testing.T, c *gophercloud.ServiceClient, b body) port {
	t.Helper()
	return must[port](t, ports.Create(bg, c, b), "port")
}

// netWithSubnet makes a network with one IPv4 subnet of cidr.
// netWithSubnet makes a network with an IPv4 subnet. On a /24 the
// allocation pool is the upper half (.128-.254), so the addresses tests ask
// for by hand (below .128) never collide with automatic ones, which are
// picked at random.
func netWithSubnet(t *testing.T, c *gophercloud.ServiceClient, cidr string) (network, subnet) {
	t.Helper()
	n := mkNet(t, c, body{"name": "n-" + cidr})
	b := body{"network_id": n.ID, "ip_version": 4, "cidr": cidr}
	if p, err := netip.ParsePrefix(cidr); err == nil && p.Addr().Is4() && p.Bits() == 24 {
		base := p.Masked().Addr().As4()
		start, end := base, base
		start[3], end[3] = 128, 254
		b["allocation_pools"] = []any{map[string]any{"start": netip.AddrFrom4(start).String(), "end": netip.AddrFrom4(end).String()}}
	}
	s := mkSubnet(t, c, b)
	return n, s
}

// fault returns a failed call's status and NeutronError type.
func faultOf(err error) (int, string) {
	var e gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &e) {
		return e.Actual, faultType(e.Body)
	}
	if err == nil {
		return 0, ""
	}
	return -1, err.Error()
}

// wantFault checks that err is a fault with that status and type.
func wantFault(t *testing.T, err error, status int, typ string) {
	t.Helper()
	gs, gt := faultOf(err)
	if gs != status || gt != typ {
		t.Fatalf("got %d %s, want %d %s (err: %v)", gs, gt, status, typ, err)
	}
}

// listIDs lists a collection through gophercloud's pager (following next
// links) and returns the ids in order.
func listIDs(t *testing.T, p pagination.Pager, collection string) []string {
	t.Helper()
	all, err := p.AllPages(bg)
	if err != nil {
		t.Fatalf("list %s: %v", collection, err)
	}
	var items []struct {
		ID string `json:"id"`
	}
	if err := all.(interface {
		ExtractIntoSlicePtr(any, string) error
	}).ExtractIntoSlicePtr(&items, collection); err != nil {
		t.Fatalf("list %s: %v", collection, err)
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	return ids
}

// getJSON does a raw GET and decodes the body.
func getJSON(t *testing.T, do func() (int, string), want int) map[string]any {
	t.Helper()
	status, b := do()
	if status != want {
		t.Fatalf("status %d, want %d: %s", status, want, b)
	}
	var m map[string]any
	if b != "" {
		if err := json.Unmarshal([]byte(b), &m); err != nil {
			t.Fatalf("body %q: %v", b, err)
		}
	}
	return m
}

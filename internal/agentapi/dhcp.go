package agentapi

// DHCPSection is the DHCP agent's section: the networks the scheduler
// gave the host's DHCP agent, each with the host's DHCP port, its subnets
// and the ports (clients) on it.
const DHCPSection = "dhcp"

// DHCP is section "dhcp". In a delta, Networks and Ports replace those
// with the same ids (a network without its ports: they come apart) and
// Removed* name what is gone; a removal may name what the agent does not
// have, and it ignores it.
type DHCP struct {
	Networks        []DHCPNetwork `json:"networks"`
	Ports           []DHCPPort    `json:"ports"`
	RemovedPorts    []string      `json:"removed_ports,omitempty"`
	RemovedNetworks []string      `json:"removed_networks,omitempty"`
}

// DHCPNetwork is one network the host serves.
type DHCPNetwork struct {
	ID        string `json:"id"`
	ProjectID string `json:"project_id"`
	MTU       int    `json:"mtu"`
	// DNSDomain is the domain of the network's names, with a trailing
	// dot ("openstacklocal.").
	DNSDomain string `json:"dns_domain"`
	// Port is the host's DHCP port on the network (device_owner
	// network:dhcp): its addresses are the server's. Port.Device is the
	// host side of the pair wired into the network's bridge; the other
	// side is "ns-" + the same suffix, in namespace NamespaceName(ID).
	Port    DHCPPort     `json:"port"`
	Subnets []DHCPSubnet `json:"subnets"`
}

// DHCPSubnet is one of a network's subnets, with what DHCP and RA tell
// about it.
type DHCPSubnet struct {
	ID              string      `json:"id"`
	IPVersion       int         `json:"ip_version"`
	CIDR            string      `json:"cidr"`
	GatewayIP       string      `json:"gateway_ip,omitempty"`
	EnableDHCP      bool        `json:"enable_dhcp"`
	DNSNameservers  []string    `json:"dns_nameservers,omitempty"`
	HostRoutes      []HostRoute `json:"host_routes,omitempty"`
	IPv6RAMode      string      `json:"ipv6_ra_mode,omitempty"`
	IPv6AddressMode string      `json:"ipv6_address_mode,omitempty"`
	// Routed is set when a router has an interface on the subnet: its
	// instances reach the metadata service through the router, not
	// through the DHCP port (no host route for it is given).
	Routed bool `json:"routed,omitempty"`
}

// HostRoute is a route DHCP gives (option 121).
type HostRoute struct {
	Destination string `json:"destination"`
	NextHop     string `json:"nexthop"`
}

// DHCPPort is a port of a served network, as DHCP, DNS and metadata
// answer for it.
type DHCPPort struct {
	ID        string    `json:"id"`
	NetworkID string    `json:"network_id"`
	ProjectID string    `json:"project_id,omitempty"`
	MAC       string    `json:"mac_address"`
	FixedIPs  []FixedIP `json:"fixed_ips"`
	// Hostname is the name DHCP gives and DNS answers: dns_name, else
	// "host-" + the first address with dashes (dns_assignment's).
	Hostname string `json:"hostname"`
	// DeviceID is the instance id metadata tells; DeviceOwner tells
	// instances ("compute:...") from the network's own ports.
	DeviceID      string         `json:"device_id,omitempty"`
	DeviceOwner   string         `json:"device_owner,omitempty"`
	AdminStateUp  bool           `json:"admin_state_up"`
	ExtraDHCPOpts []ExtraDHCPOpt `json:"extra_dhcp_opts,omitempty"`
	// Device is the host-side device name (TapName), set on the
	// network's own DHCP port.
	Device string `json:"device,omitempty"`
}

// FixedIP is one of a port's addresses.
type FixedIP struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

// ExtraDHCPOpt is one of a port's extra_dhcp_opts: Name is an option's
// number or one of dnsmasq's names ("tftp-server", "bootfile-name", ...),
// IPVersion 4 or 6.
type ExtraDHCPOpt struct {
	Name      string `json:"opt_name"`
	Value     string `json:"opt_value"`
	IPVersion int    `json:"ip_version"`
}

// DHCPStatus reports the ports whose leases the host serves (ready) since
// the last report: with the port wired, that is what makes it ACTIVE.
type DHCPStatus struct {
	Ready []string `json:"ready,omitempty"`
}

// NamespaceName is the namespace of a network's DHCP service, as
// Neutron's DHCP agent names it.
func NamespaceName(networkID string) string { return "qdhcp-" + networkID }

// NSDeviceName is the namespace side of a DHCP port's pair.
func NSDeviceName(portID string) string { return "ns-" + prefix(portID, 11) }

package agentapi

// L3Section is the L3 agent's section: the routers the scheduler gave
// the host's L3 agent, with their floating IPs and port forwardings.
const L3Section = "l3"

// L3 is section "l3". Floating IPs and port forwardings come apart from
// their routers so that one changing sends only itself. In a delta,
// Routers, FloatingIPs and PortForwardings replace those with the same
// ids (a router without its floating IPs and port forwardings) and
// Removed* name what is gone; a removal may name what the agent does not
// have, and it ignores it. A removed router takes its floating IPs and
// port forwardings with it.
type L3 struct {
	Routers                []Router         `json:"routers"`
	FloatingIPs            []FloatingIP     `json:"floating_ips"`
	PortForwardings        []PortForwarding `json:"port_forwardings"`
	RemovedRouters         []string         `json:"removed_routers,omitempty"`
	RemovedFloatingIPs     []string         `json:"removed_floating_ips,omitempty"`
	RemovedPortForwardings []string         `json:"removed_port_forwardings,omitempty"`
}

// Router is one router the host's L3 agent hosts (legacy mode: all of
// it, in namespace RouterNamespace(ID)).
type Router struct {
	ID           string `json:"id"`
	AdminStateUp bool   `json:"admin_state_up"`
	// EnableSNAT is external_gateway_info's enable_snat: instances
	// without a floating IP reach the external network as the gateway's
	// address.
	EnableSNAT bool `json:"enable_snat"`
	// Gateway is the router's port on the external network (a "qg-"
	// device), nil when it has none.
	Gateway *RouterPort `json:"gateway,omitempty"`
	// Interfaces are its ports on tenant networks ("qr-" devices).
	Interfaces []RouterPort `json:"interfaces"`
	// Routes are the router's extra routes.
	Routes []Route `json:"routes,omitempty"`
	// ConntrackHelpers give connections of a protocol to a port through
	// the router to the kernel's helper of that name (ftp, tftp, ...).
	ConntrackHelpers []ConntrackHelper `json:"conntrack_helpers,omitempty"`
}

// ConntrackHelper is one of a router's conntrack helpers.
type ConntrackHelper struct {
	Protocol string `json:"protocol"`
	Port     int    `json:"port"`
	Helper   string `json:"helper"`
}

// RouterPort is one of a router's ports. Its host side ("tap" + the
// id's first 11 characters) is wired into the network's bridge by the
// l2 driver; the router's side is in the router's namespace.
type RouterPort struct {
	ID        string       `json:"id"`
	NetworkID string       `json:"network_id"`
	MAC       string       `json:"mac_address"`
	MTU       int          `json:"mtu"`
	Addrs     []RouterAddr `json:"addresses"`
}

// RouterAddr is one of a router port's addresses with its subnet.
type RouterAddr struct {
	IP        string `json:"ip_address"`
	PrefixLen int    `json:"prefixlen"`
	SubnetID  string `json:"subnet_id"`
	// Gateway is the subnet's gateway_ip: on the external network, the
	// router's default route.
	Gateway string `json:"gateway_ip,omitempty"`
	// IPv6RAMode is the subnet's ipv6_ra_mode: on an interface the
	// router advertises the prefix (slaac, dhcpv6-stateful,
	// dhcpv6-stateless).
	IPv6RAMode string `json:"ipv6_ra_mode,omitempty"`
}

// Route is one extra route.
type Route struct {
	Destination string `json:"destination"`
	Nexthop     string `json:"nexthop"`
}

// FloatingIP is an associated floating IP of a hosted router: traffic
// to FloatingIP goes to FixedIP and FixedIP's leaves as FloatingIP.
type FloatingIP struct {
	ID         string `json:"id"`
	RouterID   string `json:"router_id"`
	FloatingIP string `json:"floating_ip_address"`
	FixedIP    string `json:"fixed_ip_address"`
}

// PortForwarding is a port forwarding of a floating IP on a hosted
// router: Protocol traffic to FloatingIP on the external ports goes to
// InternalIP on the internal ones (the same size of range, or one port).
type PortForwarding struct {
	ID           string `json:"id"`
	RouterID     string `json:"router_id"`
	FloatingIP   string `json:"floating_ip_address"`
	Protocol     string `json:"protocol"` // tcp, udp, sctp
	ExternalPort int    `json:"external_port"`
	// ExternalPortEnd is the range's last port, ExternalPort for one.
	ExternalPortEnd int    `json:"external_port_end"`
	InternalIP      string `json:"internal_ip_address"`
	InternalPort    int    `json:"internal_port"`
	InternalPortEnd int    `json:"internal_port_end"`
}

// L3Status reports the floating IPs the host programmed since the last
// report.
type L3Status struct {
	Active []string `json:"active,omitempty"`
}

// RouterNamespace is a router's namespace, as Neutron's L3 agent names
// it.
func RouterNamespace(routerID string) string { return "qrouter-" + routerID }

// Router devices, as Neutron's L3 agent names them: an interface's
// ("qr-") and the gateway's ("qg-").
func InterfaceName(portID string) string { return "qr-" + prefix(portID, 11) }
func GatewayName(portID string) string   { return "qg-" + prefix(portID, 11) }

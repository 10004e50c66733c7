package agentapi

// L2Section is the Linux bridge agent's section: the ports bound to the
// host and their networks.
const L2Section = "l2"

// L2 is section "l2". In a delta, Networks and Ports replace those with
// the same ids and Removed* name what is gone (removals may name what the
// agent does not have: it ignores them).
type L2 struct {
	Networks        []Network `json:"networks"`
	Ports           []Port    `json:"ports"`
	RemovedPorts    []string  `json:"removed_ports,omitempty"`
	RemovedNetworks []string  `json:"removed_networks,omitempty"`
}

// L2Status reports ports' devices wired (up) or not (down) on the host.
type L2Status struct {
	Up   []string `json:"up,omitempty"`
	Down []string `json:"down,omitempty"`
}

// Network is a network with ports on this host, as the data plane needs it.
type Network struct {
	ID              string `json:"id"`
	NetworkType     string `json:"network_type"` // vxlan, flat, vlan, local
	PhysicalNetwork string `json:"physical_network,omitempty"`
	SegmentationID  int64  `json:"segmentation_id,omitempty"`
	MTU             int    `json:"mtu"`
	// Remotes are the other hosts' tunnel endpoints with ports on this
	// network and the addresses behind them (l2population): the agent
	// programs FDB and neighbour entries from them.
	Remotes []Remote `json:"remotes,omitempty"`
}

// Remote is one other host's tunnel endpoint on a network.
type Remote struct {
	TunnelIP string     `json:"tunnel_ip"`
	Entries  []FDBEntry `json:"entries"`
}

// FDBEntry is one port's MAC and addresses behind a remote endpoint.
type FDBEntry struct {
	MAC string   `json:"mac"`
	IPs []string `json:"ips"`
}

// Port is a port bound to this host.
type Port struct {
	ID           string   `json:"id"`
	NetworkID    string   `json:"network_id"`
	MAC          string   `json:"mac_address"`
	IPs          []string `json:"ips"`
	AdminStateUp bool     `json:"admin_state_up"`
	// Device is the host-side interface: "tap" + the id's first 11
	// characters, as Neutron's Linux bridge agent names it.
	Device string `json:"device"`
}

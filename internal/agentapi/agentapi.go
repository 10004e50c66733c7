// Package agentapi is the contract between the server and its host agents:
// the JSON messages of the agent channel, over plain HTTP on the
// Networking API's port (no message broker), admin credentials.
//
//	POST /muon/v1/agents/heartbeat            Heartbeat -> HeartbeatReply
//	GET  /muon/v1/hosts/{host}/state          -> State (the full desired state)
//	GET  /muon/v1/hosts/{host}/state?since=R&wait=S
//	                                          -> State with Delta set: only what
//	                                             changed after revision R (held up
//	                                             to S seconds while nothing does);
//	                                             Resync set when the server cannot
//	                                             give a delta from R (too old, or R
//	                                             from the future): read it in full
//	POST /muon/v1/hosts/{host}/status         Status -> 204 (port status ACTIVE/DOWN)
//
// Revisions are the store's change feed numbers: a State at revision R
// reflects every change up to R.
package agentapi

// Heartbeat registers an agent and keeps it alive; agents send one at
// start and every ReportInterval seconds.
type Heartbeat struct {
	Host             string `json:"host"`
	AgentType        string `json:"agent_type"` // "Linux bridge agent"
	Binary           string `json:"binary"`     // "muon-linuxbridge-agent"
	Topic            string `json:"topic"`      // "N/A"
	AvailabilityZone string `json:"availability_zone,omitempty"`
	StartedAt        string `json:"started_at"` // RFC 3339
	// Configurations is shown as the agent's configurations: it holds
	// "tunneling_ip", "tunnel_types" (["vxlan"]), "bridge_mappings" and
	// "interface_mappings" (physnet -> device), "devices" (a count), and
	// "kernel" capabilities ({"vxlan": true, "vlan": false, ...}).
	Configurations map[string]any `json:"configurations"`
}

// HeartbeatReply tells the agent its id and whether it is enabled.
type HeartbeatReply struct {
	ID             string `json:"id"`
	AdminStateUp   bool   `json:"admin_state_up"`
	ReportInterval int    `json:"report_interval"` // seconds
}

// State is what one host should have, at a revision.
type State struct {
	Host     string `json:"host"`
	Revision int64  `json:"revision"`
	// Delta marks a reply that holds only what changed after the
	// requested revision; Removed* name what is gone.
	Delta           bool     `json:"delta,omitempty"`
	RemovedPorts    []string `json:"removed_ports,omitempty"`
	RemovedNetworks []string `json:"removed_networks,omitempty"`
	// Resync tells the agent to read the full state again.
	Resync   bool      `json:"resync,omitempty"`
	Networks []Network `json:"networks"`
	Ports    []Port    `json:"ports"`
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

// Status reports ports' devices wired (up) or not (down) on the host.
type Status struct {
	Up   []string `json:"up,omitempty"`
	Down []string `json:"down,omitempty"`
}

// Device names, as Neutron's Linux bridge agent has them.
func TapName(portID string) string       { return "tap" + prefix(portID, 11) }
func BridgeName(networkID string) string { return "brq" + prefix(networkID, 11) }

func prefix(s string, n int) string {
	if len(s) < n {
		return s
	}
	return s[:n]
}

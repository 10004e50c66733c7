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
//	POST /muon/v1/hosts/{host}/status         Status -> 204 (observed state, by
//	                                             section: port status ACTIVE/DOWN)
//
// Revisions are the store's change feed numbers: a State at revision R
// reflects every change up to R. The envelope (State, Status) is the
// channel's; what is inside a section is its feature's, and the types of
// each section live in a file of their own here (l2.go).
package agentapi

import "encoding/json"

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
	// Deployment names the cloud (its database), the same from every
	// server of it: with the host it makes the mark of the agent's
	// kernel devices, so two clouds' agents on one machine never take
	// each other's.
	Deployment string `json:"deployment,omitempty"`
}

// State is what one host should have, at a revision: one section per
// feature that builds the host's data plane ("l2", then "dhcp", "l3",
// ...), each the feature's own JSON. A full state holds every section,
// whole; a delta only the sections with changes, each holding what
// changed as the feature defines it.
type State struct {
	Host     string `json:"host"`
	Revision int64  `json:"revision"`
	// Delta marks a reply that holds only what changed after the
	// requested revision.
	Delta bool `json:"delta,omitempty"`
	// Resync tells the agent to read the full state again.
	Resync   bool                       `json:"resync,omitempty"`
	Sections map[string]json.RawMessage `json:"sections"`
}

// Status is observed state an agent reports, by section: for "l2", which
// ports' devices are wired (L2Status).
type Status struct {
	Sections map[string]json.RawMessage `json:"sections"`
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

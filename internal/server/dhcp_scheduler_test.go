package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"muon/internal/server/servertest"
)

// TestDHCPAgentScheduler: networks are scheduled to DHCP agents and taken
// off them by hand (dhcp_agent_scheduler), admin only, with Neutron's
// conflicts.
func TestDHCPAgentScheduler(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		do := func(method, path, body string, admin bool) (int, string) {
			return e.Do(t, method, path, "admin", admin, body)
		}
		code, out := do("POST", "/muon/v1/agents/heartbeat",
			`{"host": "net-1", "agent_type": "DHCP agent", "binary": "muon-dhcp-agent", "topic": "dhcp_agent", "started_at": "2026-11-23T00:00:00Z", "configurations": {}}`, true)
		var hb struct {
			ID string `json:"id"`
		}
		if code != 200 || json.Unmarshal([]byte(out), &hb) != nil {
			t.Fatalf("heartbeat: %d %s", code, out)
		}
		n := mkNet(t, e.Admin(), body{"name": "served"})
		hosting := func() string {
			_, out := do("GET", "/v2.0/agents/"+hb.ID+"/dhcp-networks", "", true)
			return out
		}
		if out := hosting(); strings.Contains(out, n.ID) {
			t.Fatalf("a new network is hosted before it was scheduled: %s", out)
		}
		if code, out := do("POST", "/v2.0/agents/"+hb.ID+"/dhcp-networks", `{"network_id": "`+n.ID+`"}`, true); code != 201 {
			t.Fatalf("schedule: %d %s", code, out)
		}
		if out := hosting(); !strings.Contains(out, n.ID) {
			t.Errorf("after scheduling, the agent's networks: %s", out)
		}
		if _, out := do("GET", "/v2.0/networks/"+n.ID+"/dhcp-agents", "", true); !strings.Contains(out, hb.ID) {
			t.Errorf("the network's DHCP agents: %s", out)
		}
		for _, tc := range []struct {
			name, method, path, body string
			admin                    bool
			status                   int
			typ                      string
		}{
			{"twice", "POST", "/v2.0/agents/" + hb.ID + "/dhcp-networks", `{"network_id": "` + n.ID + `"}`, true, 409, "NetworkHostedByDHCPAgent"},
			{"member", "GET", "/v2.0/agents/" + hb.ID + "/dhcp-networks", "", false, 403, "PolicyNotAuthorized"},
			{"no-network", "POST", "/v2.0/agents/" + hb.ID + "/dhcp-networks", `{"network_id": "00000000-0000-0000-0000-000000000001"}`, true, 404, "NetworkNotFound"},
			{"no-agent", "GET", "/v2.0/agents/00000000-0000-0000-0000-000000000002/dhcp-networks", "", true, 404, "AgentNotFound"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, out := do(tc.method, tc.path, tc.body, tc.admin)
				if code != tc.status || faultType([]byte(out)) != tc.typ {
					t.Errorf("%d %s, want %d %s", code, out, tc.status, tc.typ)
				}
			})
		}
		if code, out := do("DELETE", "/v2.0/agents/"+hb.ID+"/dhcp-networks/"+n.ID, "", true); code != 204 {
			t.Fatalf("unschedule: %d %s", code, out)
		}
		if out := hosting(); strings.Contains(out, n.ID) {
			t.Errorf("after unscheduling, the agent's networks: %s", out)
		}
		if code, out := do("DELETE", "/v2.0/agents/"+hb.ID+"/dhcp-networks/"+n.ID, "", true); code != 409 || faultType([]byte(out)) != "NetworkNotHostedByDhcpAgent" {
			t.Errorf("unscheduling twice: %d %s", code, out)
		}
	})
}

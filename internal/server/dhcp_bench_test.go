package server_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"muon/internal/agentapi"
	"muon/internal/server"
	"muon/internal/server/servertest"
)

// BenchmarkHostStateDHCP measures the full state of a host that serves
// DHCP for 1,000 networks with 10 ports each (and wires their DHCP
// ports): what an agent restart reads first (SQLite).
func BenchmarkHostStateDHCP(b *testing.B) {
	e := servertest.Start(b, "sqlite", func(c *server.Config) {
		c.Quotas = map[string]int64{"port": -1, "network": -1, "subnet": -1}
	})
	post := func(path string, v any) map[string]any {
		body, _ := json.Marshal(v)
		code, out := e.Do(b, "POST", path, "admin", true, string(body))
		var r map[string]any
		if code/100 != 2 || json.Unmarshal([]byte(out), &r) != nil {
			b.Fatalf("%s: %d %s", path, code, out)
		}
		return r
	}
	beat := func() {
		for _, hb := range []agentapi.Heartbeat{
			{Host: "net-1", AgentType: "Linux bridge agent", Configurations: map[string]any{"tunneling_ip": "192.0.2.10", "tunnel_types": []any{"vxlan"}, "kernel": map[string]any{"vxlan": true}}},
			{Host: "net-1", AgentType: "DHCP agent"},
		} {
			post("/muon/v1/agents/heartbeat", hb)
		}
	}
	beat()
	began := time.Now()
	for i := range 1000 {
		n := post("/v2.0/networks", map[string]any{"network": map[string]any{"name": fmt.Sprint("n", i)}})["network"].(map[string]any)
		s := post("/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n["id"], "ip_version": 4,
			"cidr": fmt.Sprintf("172.%d.%d.0/24", 16+i>>8, i&255)}})["subnet"].(map[string]any)
		items := make([]any, 10)
		for k := range items {
			items[k] = map[string]any{"network_id": n["id"], "fixed_ips": []any{map[string]any{"subnet_id": s["id"]}}}
		}
		post("/v2.0/ports", map[string]any{"ports": items})
		if i%100 == 0 {
			beat()
		}
	}
	beat()
	b.Logf("1,000 networks, 10,000 ports: %s", time.Since(began).Round(time.Millisecond))
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		code, out := e.Do(b, "GET", "/muon/v1/hosts/net-1/state", "admin", true, "")
		var st agentapi.State
		var d agentapi.DHCP
		if code != 200 || json.Unmarshal([]byte(out), &st) != nil || json.Unmarshal(st.Sections[agentapi.DHCPSection], &d) != nil {
			b.Fatalf("state: %d", code)
		}
		if len(d.Networks) != 1000 || len(d.Ports) != 11000 {
			b.Fatalf("%d networks, %d ports", len(d.Networks), len(d.Ports))
		}
		b.ReportMetric(float64(time.Since(t0))/1e6, "full-state-ms")
	}
}

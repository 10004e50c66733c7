package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"muon/internal/agentapi"
	"muon/internal/server"
	"muon/internal/server/servertest"
)

// BenchmarkBindToHostState measures, for 1, 100 and 1,000 ports on one
// host, the time from the PUT that sets a port's binding:host_id to the
// host's long poll returning the port, and reports p50/p99 (SQLite).
func BenchmarkBindToHostState(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("ports-%d", n), func(b *testing.B) {
			e := servertest.Start(b, "sqlite", func(c *server.Config) {
				c.Quotas = map[string]int64{"port": -1, "network": -1}
			})
			var lat []time.Duration
			for range b.N {
				lat = append(lat, bindLatencies(b, e, n)...)
			}
			slices.Sort(lat)
			p50, p99 := lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
			b.ReportMetric(float64(p50)/float64(time.Millisecond), "p50-ms")
			b.ReportMetric(float64(p99)/float64(time.Millisecond), "p99-ms")
			b.Logf("bind -> host state, %d ports: p50 %s p99 %s", n, p50, p99)
		})
	}
}

// bindLatencies binds n fresh ports to a fresh host one by one while a
// watcher long-polls the host's state, and returns each port's time from
// its binding request to the watcher seeing it.
func bindLatencies(b *testing.B, e *servertest.Env, n int) []time.Duration {
	b.Helper()
	host := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	get := func(ctx context.Context, method, path, body string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, e.URL+path, strings.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Project-Id", "admin")
		req.Header.Set("X-Roles", "admin")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		return resp.StatusCode, out, err
	}
	do := func(method, path, body string) (int, []byte) {
		code, out, err := get(ctx, method, path, body)
		if err != nil {
			b.Fatal(err)
		}
		return code, out
	}
	hb, _ := json.Marshal(agentapi.Heartbeat{Host: host, AgentType: "Linux bridge agent", Configurations: lbConf("192.0.2.1", false)})
	if code, out := do("POST", "/muon/v1/agents/heartbeat", string(hb)); code != 200 {
		b.Fatalf("heartbeat: %d %s", code, out)
	}
	code, out := do("POST", "/v2.0/networks", `{"network": {"name": "bench"}}`)
	var net struct{ Network struct{ ID string } }
	if code != 201 || json.Unmarshal(out, &net) != nil {
		b.Fatalf("network: %d %s", code, out)
	}
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`{"network_id": %q}`, net.Network.ID)
	}
	code, out = do("POST", "/v2.0/ports", `{"ports": [`+strings.Join(items, ",")+`]}`)
	var made struct{ Ports []struct{ ID string } }
	if code != 201 || json.Unmarshal(out, &made) != nil || len(made.Ports) != n {
		b.Fatalf("ports: %d %.200s", code, out)
	}
	var st agentapi.State
	code, out = do("GET", "/muon/v1/hosts/"+host+"/state", "")
	if code != 200 || json.Unmarshal(out, &st) != nil {
		b.Fatalf("state: %d %s", code, out)
	}
	seen := make(chan string, n)
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() {
		defer close(done)
		rev := st.Revision
		for ctx.Err() == nil {
			code, out, err := get(ctx, "GET", fmt.Sprintf("/muon/v1/hosts/%s/state?since=%d&wait=10", host, rev), "")
			var d agentapi.State
			var sec agentapi.L2
			if err != nil || code != 200 || json.Unmarshal(out, &d) != nil {
				close(seen)
				return
			}
			if raw, ok := d.Sections[agentapi.L2Section]; ok && json.Unmarshal(raw, &sec) != nil {
				close(seen)
				return
			}
			rev = d.Revision
			for _, p := range sec.Ports {
				seen <- p.ID
			}
		}
	}()
	lat := make([]time.Duration, 0, n)
	for _, p := range made.Ports {
		began := time.Now()
		if code, out := do("PUT", "/v2.0/ports/"+p.ID, fmt.Sprintf(`{"port": {"binding:host_id": %q}}`, host)); code != 200 {
			b.Fatalf("bind: %d %s", code, out)
		}
		found := false
		for id := range seen {
			if id == p.ID {
				found = true
				break
			}
		}
		if !found {
			b.Fatal("the host's long poll failed")
		}
		lat = append(lat, time.Since(began))
	}
	return lat
}

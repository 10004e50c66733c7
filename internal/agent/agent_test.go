package agent_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "muon/internal/agent"
	_ "muon/internal/agent/l2"
	"muon/internal/agentapi"
	"muon/internal/kernel"
)

// l2 is a state (or delta, with the revision) holding an l2 section.
func l2(host string, rev int64, delta bool, sec agentapi.L2) agentapi.State {
	b, err := json.Marshal(sec)
	if err != nil {
		panic(err)
	}
	return agentapi.State{Host: host, Revision: rev, Delta: delta, Sections: map[string]json.RawMessage{agentapi.L2Section: b}}
}

// fakeServer answers the agent channel from a script: the full state, and
// for each long poll the next scripted answer (or an empty delta when the
// wait runs out).
type fakeServer struct {
	t      *testing.T
	mu     sync.Mutex
	full   agentapi.State
	polls  chan func(w http.ResponseWriter, since int64)
	since  []int64 // what the agent asked from
	fulls  int
	beats  int
	up     map[string]bool
	status chan agentapi.L2Status
}

func newFakeServer(t *testing.T) (*fakeServer, *httptest.Server) {
	f := &fakeServer{t: t, polls: make(chan func(http.ResponseWriter, int64), 16), up: map[string]bool{}, status: make(chan agentapi.L2Status, 64)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /muon/v1/agents/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Roles") != "admin" {
			w.WriteHeader(403)
			return
		}
		var hb agentapi.Heartbeat
		if err := json.NewDecoder(r.Body).Decode(&hb); err != nil || hb.Host != "h1" || hb.AgentType != "Linux bridge agent" {
			t.Errorf("heartbeat %+v %v", hb, err)
		}
		f.mu.Lock()
		f.beats++
		f.mu.Unlock()
		json.NewEncoder(w).Encode(agentapi.HeartbeatReply{ID: "a1", AdminStateUp: true, ReportInterval: 1, Deployment: "c0ffee00"})
	})
	mux.HandleFunc("GET /muon/v1/hosts/h1/state", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("since")
		if q == "" {
			f.mu.Lock()
			f.fulls++
			st := f.full
			f.mu.Unlock()
			json.NewEncoder(w).Encode(st)
			return
		}
		since, _ := strconv.ParseInt(q, 10, 64)
		f.mu.Lock()
		f.since = append(f.since, since)
		f.mu.Unlock()
		select {
		case fn := <-f.polls:
			fn(w, since)
		case <-time.After(300 * time.Millisecond):
			json.NewEncoder(w).Encode(agentapi.State{Host: "h1", Revision: since, Delta: true})
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("POST /muon/v1/hosts/h1/status", func(w http.ResponseWriter, r *http.Request) {
		var st agentapi.Status
		json.NewDecoder(r.Body).Decode(&st)
		var s agentapi.L2Status
		if err := json.Unmarshal(st.Sections[agentapi.L2Section], &s); err != nil || len(st.Sections) != 1 {
			t.Errorf("status %s: %v", st.Sections, err)
		}
		f.mu.Lock()
		for _, id := range s.Up {
			f.up[id] = true
		}
		for _, id := range s.Down {
			f.up[id] = false
		}
		f.mu.Unlock()
		f.status <- s
		w.WriteHeader(204)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeServer) delta(d agentapi.State) {
	f.polls <- func(w http.ResponseWriter, _ int64) { json.NewEncoder(w).Encode(d) }
}

func (f *fakeServer) raw(body string) {
	f.polls <- func(w http.ResponseWriter, _ int64) { io.WriteString(w, body) }
}

// cut writes half an answer and drops the connection.
func (f *fakeServer) cut() {
	f.polls <- func(w http.ResponseWriter, _ int64) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(200)
		io.WriteString(w, `{"host":"h1","revision":9,"delta":true,"sections":{"l2":{"ports":[{"id":`)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestAgentFollowsTheChannel(t *testing.T) {
	const (
		netA = "aaaaaaaa-0000-4000-8000-000000000001"
		p1   = "11111111-1111-4111-8111-111111111111"
		p2   = "22222222-2222-4222-8222-222222222222"
	)
	f, srv := newFakeServer(t)
	nA := agentapi.Network{ID: netA, NetworkType: "vxlan", SegmentationID: 1001, MTU: 1450,
		Remotes: []agentapi.Remote{{TunnelIP: "192.168.100.2", Entries: []agentapi.FDBEntry{{MAC: "fa:16:3e:00:00:21", IPs: []string{"10.0.0.21"}}}}}}
	port := func(id string, up bool) agentapi.Port {
		return agentapi.Port{ID: id, NetworkID: netA, MAC: "fa:16:3e:00:00:01", AdminStateUp: up, Device: agentapi.TapName(id)}
	}
	f.full = l2("h1", 5, false, agentapi.L2{Networks: []agentapi.Network{nA}, Ports: []agentapi.Port{port(p1, true)}})
	k := kernel.NewFake("h1")
	k.AddLink(kernel.Link{Name: agentapi.TapName(p1), Kind: "veth", Up: true})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := New(Config{Settings: Settings{Host: "h1", TunnelIP: "192.168.100.1"}, Wait: time.Second, Backoff: 20 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond, Poll: 50 * time.Millisecond}, NewClient(srv.URL, ""), k, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("agent did not stop")
		}
	})
	isUp := func(id string) func() bool {
		return func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.up[id] }
	}
	isDown := func(id string) func() bool {
		return func() bool { f.mu.Lock(); defer f.mu.Unlock(); v, ok := f.up[id]; return ok && !v }
	}
	dump := func() string { s, _ := kernel.Dump(context.Background(), k, nil); return s }
	eventually(t, "p1 up", isUp(p1))
	eventually(t, "a heartbeat", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.beats > 0 })
	if d := dump(); !strings.Contains(d, "fdb vxlan-1001 fa:16:3e:00:00:21 dst 192.168.100.2") {
		t.Fatalf("l2population not programmed:\n%s", d)
	}
	// The devices it made carry its mark: this cloud's agent on h1.
	links, _ := k.Links(context.Background())
	for _, l := range links {
		if (l.Kind == "bridge" || l.Kind == "vxlan") && l.Alias != kernel.Mark("h1@c0ffee00") {
			t.Errorf("%s marked %q, want %q", l.Name, l.Alias, kernel.Mark("h1@c0ffee00"))
		}
	}

	// A new port arrives as a delta; its tap comes later.
	f.delta(l2("h1", 7, true, agentapi.L2{Ports: []agentapi.Port{port(p2, true)}}))
	eventually(t, "p2 down (no tap yet)", isDown(p2))
	k.AddLink(kernel.Link{Name: agentapi.TapName(p2), Kind: "veth"})
	eventually(t, "p2 up once its tap appears", isUp(p2))

	// A delta with only a network (another host joined it): its remotes
	// are programmed.
	nA3 := nA
	nA3.Remotes = append(slices.Clone(nA.Remotes), agentapi.Remote{TunnelIP: "192.168.100.3", Entries: []agentapi.FDBEntry{{MAC: "fa:16:3e:00:00:31"}}})
	f.delta(l2("h1", 7, true, agentapi.L2{Networks: []agentapi.Network{nA3}}))
	eventually(t, "a network-only delta programmed", func() bool {
		return strings.Contains(dump(), "fdb vxlan-1001 fa:16:3e:00:00:31 dst 192.168.100.3")
	})

	// Garbage, a cut connection, a revision going back: refused, and the
	// agent resumes from revision 7.
	f.raw("this is not json")
	f.cut()
	f.delta(l2("h1", 3, true, agentapi.L2{RemovedPorts: []string{p1, p2}}))
	f.delta(l2("h2", 8, true, agentapi.L2{RemovedPorts: []string{p1, p2}}))
	f.delta(l2("h1", 8, true, agentapi.L2{Ports: []agentapi.Port{port(p1, false)}}))
	eventually(t, "p1 down: admin state down", isDown(p1))
	f.mu.Lock()
	since := slices.Clone(f.since)
	f.mu.Unlock()
	n7 := 0
	for _, s := range since {
		if s == 7 {
			n7++
		}
		if s > 8 || s < 5 {
			t.Errorf("asked since %d: %v", s, since)
		}
	}
	if n7 < 5 {
		t.Errorf("the agent should have resumed from 7 after each bad answer; asked %v", since)
	}
	if d := dump(); !strings.Contains(d, "link tap11111111-11 veth mtu 1450 down\n") {
		t.Errorf("p1 not cut:\n%s", d)
	}

	// Resync: a full read, which drops p2 and the remote.
	f.mu.Lock()
	f.full = l2("h1", 20, false, agentapi.L2{Networks: []agentapi.Network{{ID: netA, NetworkType: "vxlan", SegmentationID: 1001, MTU: 1450}},
		Ports: []agentapi.Port{port(p1, true)}})
	f.mu.Unlock()
	f.delta(agentapi.State{Resync: true})
	eventually(t, "p1 up again after the resync", isUp(p1))
	eventually(t, "a full read", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.fulls >= 2 })
	eventually(t, "polls from 20", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.since[len(f.since)-1] == 20 })
	want := `link brqaaaaaaaa-00 bridge mtu 1450 up
link tap11111111-11 veth mtu 1450 up master brqaaaaaaaa-00
link tap22222222-22 veth mtu 1450 up
link vxlan-1001 vxlan mtu 1450 id 1001 local 192.168.100.1 dstport 4789 nolearning up master brqaaaaaaaa-00
`
	eventually(t, "converged after resync", func() bool { return dump() == want })

	// The port and network go: the bridge and VXLAN device go with them.
	f.delta(l2("h1", 21, true, agentapi.L2{RemovedPorts: []string{p1}, RemovedNetworks: []string{netA}}))
	eventually(t, "devices removed", func() bool {
		return dump() == "link tap11111111-11 veth mtu 1450 down\nlink tap22222222-22 veth mtu 1450 up\n" ||
			dump() == "link tap11111111-11 veth mtu 1450 up\nlink tap22222222-22 veth mtu 1450 up\n"
	})

	// A section its driver cannot take (a port without an id): the agent
	// reads the full state again rather than trust it; a section no
	// driver here builds is ignored.
	f.mu.Lock()
	fulls := f.fulls
	f.mu.Unlock()
	f.raw(`{"host":"h1","revision":22,"delta":true,"sections":{"future":{"x":1}}}`)
	f.raw(`{"host":"h1","revision":23,"delta":true,"sections":{"l2":{"ports":[{"id":""}]}}}`)
	eventually(t, "a full read after a bad section", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.fulls > fulls })
	f.mu.Lock()
	if f.fulls != fulls+1 {
		t.Errorf("%d full reads after one bad section", f.fulls-fulls)
	}
	f.mu.Unlock()
}

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"muon/internal/server/servertest"
)

// TestSoak: 32 clients create and delete networks, subnets and ports
// against a real server process, which is killed with -9 once in the
// middle and started again on the same data. Afterwards: everything the
// server acknowledged (201) and did not acknowledge deleting is there; no
// address or MAC is held twice; nothing points at what is gone; each
// project's quota usage is what it holds. On SQLite and, when it is set up,
// PostgreSQL.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: -short")
	}
	bin := filepath.Join(t.TempDir(), "muon")
	if out, err := exec.Command("go", "build", "-o", bin, "muon/cmd/muon").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	t.Run("sqlite", func(t *testing.T) { soak(t, bin, filepath.Join(t.TempDir(), "muon.db")) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv("MUON_TEST_POSTGRES") == "" {
			if os.Getenv("MUON_E2E") == "1" {
				t.Fatal("MUON_E2E=1 needs MUON_TEST_POSTGRES (scripts/test sets it up)")
			}
			t.Skip("needs PostgreSQL")
		}
		soak(t, bin, servertest.FreshPostgres(t))
	})
}

// soakServer is the server process the soak kills and restarts.
type soakServer struct {
	t        *testing.T
	bin, cfg string
	url      string
	log      bytes.Buffer
	mu       sync.Mutex
	cmd      *exec.Cmd
}

func (s *soakServer) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, "server", "--config", s.cfg)
	cmd.Stdout, cmd.Stderr = &s.log, &s.log
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(s.url + "/v2.0/networks?limit=1"); err == nil {
			resp.Body.Close()
			return
		}
	}
	s.t.Fatalf("the server did not come up:\n%s", s.log.String())
}

func (s *soakServer) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

func soak(t *testing.T, bin, database string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := filepath.Join(t.TempDir(), "muon.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("host = \"127.0.0.1\"\nport = %d\nauth = \"noauth\"\ndatabase = %q\nsqlite_synchronous = \"FULL\"\n"+
		"[quotas]\nnetwork = -1\nsubnet = -1\nport = -1\n", port, database)), 0o600)
	s := &soakServer{t: t, bin: bin, cfg: cfg, url: "http://127.0.0.1:" + strconv.Itoa(port)}
	s.start()
	t.Cleanup(s.kill)

	hc := &http.Client{Timeout: 10 * time.Second}
	do := func(project, method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Project-Id", project)
		req.Header.Set("X-Roles", "member")
		if project == "admin" {
			req.Header.Set("X-Roles", "admin")
		}
		resp, err := hc.Do(req)
		if err != nil {
			time.Sleep(20 * time.Millisecond) // the server is down: do not spin
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	idOf := func(m map[string]any, key string) string {
		r, _ := m[key].(map[string]any)
		id, _ := r["id"].(string)
		return id
	}

	// What the server acknowledged: kind/id -> true while it must exist.
	var mu sync.Mutex
	kept := map[string]bool{}
	unsure := map[string]bool{} // a delete whose answer was lost
	ack := func(key string, exists bool) {
		mu.Lock()
		kept[key] = exists
		mu.Unlock()
	}
	var errs, fivexx int
	count := func(code int) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case code == 0:
			errs++
		case code >= 500:
			fivexx++
		}
	}

	ctx, stop := context.WithTimeout(context.Background(), 14*time.Second)
	defer stop()
	var wg sync.WaitGroup
	for c := range 32 {
		wg.Go(func() {
			project := fmt.Sprintf("soak%d", c%8)
			rnd := rand.New(rand.NewPCG(uint64(c), 7))
			for i := 0; ctx.Err() == nil; i++ {
				code, m := do(project, "POST", "/v2.0/networks", `{"network": {"name": "soak"}}`)
				count(code)
				if code != 201 {
					continue
				}
				net := idOf(m, "network")
				ack("network/"+net, true)
				code, m = do(project, "POST", "/v2.0/subnets", fmt.Sprintf(`{"subnet": {"network_id": %q, "ip_version": 4, "cidr": "10.%d.%d.0/24"}}`, net, c, i%250))
				count(code)
				sub := ""
				if code == 201 {
					sub = idOf(m, "subnet")
					ack("subnet/"+sub, true)
				}
				var ports []string
				for range 3 + rnd.IntN(3) {
					code, m = do(project, "POST", "/v2.0/ports", fmt.Sprintf(`{"port": {"network_id": %q}}`, net))
					count(code)
					if code == 201 {
						p := idOf(m, "port")
						ports = append(ports, p)
						ack("port/"+p, true)
					}
				}
				if rnd.IntN(3) > 0 {
					continue // keep this network and its ports
				}
				// Delete its ports, then it (its subnet goes with it).
				gone := true
				for _, p := range ports {
					code, _ := do(project, "DELETE", "/v2.0/ports/"+p, "")
					count(code)
					switch code {
					case 204:
						ack("port/"+p, false)
					default:
						gone = false
						mu.Lock()
						unsure["port/"+p] = true
						mu.Unlock()
					}
				}
				if !gone {
					continue
				}
				code, _ = do(project, "DELETE", "/v2.0/networks/"+net, "")
				count(code)
				mu.Lock()
				if code == 204 {
					kept["network/"+net] = false
					if sub != "" {
						kept["subnet/"+sub] = false // it went with its network
					}
				} else {
					unsure["network/"+net] = true
					unsure["subnet/"+sub] = true
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(6 * time.Second)
	s.kill()
	t.Logf("killed the server with -9 after 6 s")
	time.Sleep(300 * time.Millisecond)
	s.start()
	wg.Wait()
	t.Logf("%d acknowledged records, %d requests without an answer (the kill), %d 5xx", len(kept), errs, fivexx)
	if fivexx > 0 {
		t.Errorf("%d answers were 5xx:\n%s", fivexx, tail(s.log.String(), 3000))
	}

	// Read everything back as the admin.
	list := func(kind string) []map[string]any {
		t.Helper()
		code, m := do("admin", "GET", "/v2.0/"+kind, "")
		if code != 200 {
			t.Fatalf("list %s: %d", kind, code)
		}
		l, _ := m[kind].([]any)
		out := make([]map[string]any, 0, len(l))
		for _, x := range l {
			out = append(out, x.(map[string]any))
		}
		return out
	}
	nets, subs, ports := list("networks"), list("subnets"), list("ports")
	have := map[string]bool{}
	netOf := map[string]string{} // subnet -> network
	for _, n := range nets {
		have["network/"+n["id"].(string)] = true
	}
	for _, sb := range subs {
		have["subnet/"+sb["id"].(string)] = true
		netOf[sb["id"].(string)] = sb["network_id"].(string)
		if !have["network/"+sb["network_id"].(string)] {
			t.Errorf("subnet %s on a network that is gone", sb["id"])
		}
	}
	ips, macs := map[string]string{}, map[string]string{}
	for _, p := range ports {
		id, nid := p["id"].(string), p["network_id"].(string)
		have["port/"+id] = true
		if !have["network/"+nid] {
			t.Errorf("port %s on a network that is gone", id)
		}
		key := nid + "/" + p["mac_address"].(string)
		if o, dup := macs[key]; dup {
			t.Errorf("MAC %s held by ports %s and %s", key, o, id)
		}
		macs[key] = id
		for _, x := range p["fixed_ips"].([]any) {
			f := x.(map[string]any)
			sid := f["subnet_id"].(string)
			if netOf[sid] != nid {
				t.Errorf("port %s holds an address on subnet %s, which is gone or not its network's", id, sid)
			}
			k := sid + "/" + f["ip_address"].(string)
			if o, dup := ips[k]; dup {
				t.Errorf("address %s held by ports %s and %s", k, o, id)
			}
			ips[k] = id
		}
	}
	mu.Lock()
	for k, must := range kept {
		if must && !have[k] && !unsure[k] {
			t.Errorf("%s was acknowledged (201) and is gone", k)
		}
		if !must && have[k] {
			t.Errorf("%s was deleted (204) and is there", k)
		}
	}
	mu.Unlock()
	// Quota usage is what each project holds.
	for p := range 8 {
		project := fmt.Sprintf("soak%d", p)
		code, m := do("admin", "GET", "/v2.0/quotas/"+project+"/details", "")
		if code != 200 {
			t.Fatalf("quota details: %d", code)
		}
		q, _ := m["quota"].(map[string]any)
		for kind, items := range map[string][]map[string]any{"network": nets, "subnet": subs, "port": ports} {
			n := 0
			for _, it := range items {
				if it["project_id"] == project {
					n++
				}
			}
			d, _ := q[kind].(map[string]any)
			if used, _ := d["used"].(float64); int(used) != n {
				t.Errorf("%s: quota says %d %ss used, it holds %d", project, int(used), kind, n)
			}
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

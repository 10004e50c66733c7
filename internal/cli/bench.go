package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"muon/internal/server"
)

// bench creates ports through the HTTP API and reports throughput and
// latency. Without --url it runs its own server on a fresh database.
func bench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	url := fs.String("url", "", "API endpoint (default: start a server on a fresh database)")
	db := fs.String("database", "", "with no --url: PostgreSQL DSN or SQLite path (default: a temporary SQLite file)")
	sync := fs.String("sqlite-synchronous", "FULL", "with no --url and SQLite: FULL or NORMAL")
	n := fs.Int("n", 2000, "ports to create")
	c := fs.Int("c", 16, "concurrent clients")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" {
		dsn := *db
		if dsn == "" {
			dir, err := os.MkdirTemp("", "muon-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			dsn = filepath.Join(dir, "muon.db")
		}
		cfg := server.DefaultConfig("")
		cfg.Database, cfg.SQLiteSynchronous, cfg.Auth = dsn, *sync, "noauth"
		st, err := server.OpenStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer st.Close()
		h, err := server.New(cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: h.API}
		go srv.Serve(ln)
		defer srv.Close()
		*url = "http://" + ln.Addr().String()
		fmt.Fprintf(stdout, "server: in-process, database %s\n", dsn)
	}
	r, err := BenchPorts(ctx, *url, *n, *c)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, r)
	return nil
}

// BenchResult is one run of BenchPorts.
type BenchResult struct {
	N, Clients, Failed int
	Elapsed            time.Duration
	P50, P99, Max      time.Duration
}

func (r BenchResult) String() string {
	return fmt.Sprintf("ports: %d created, %d failed, %d clients, %.2fs: %.0f ports/s, p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		r.N-r.Failed, r.Failed, r.Clients, r.Elapsed.Seconds(), float64(r.N-r.Failed)/r.Elapsed.Seconds(),
		ms(r.P50), ms(r.P99), ms(r.Max))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchPorts makes a network with a subnet large enough for n ports, then
// creates n ports on it from c concurrent HTTP clients.
func BenchPorts(ctx context.Context, url string, n, c int) (BenchResult, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}}
	post := func(path string, body any) (map[string]any, error) {
		b, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, "POST", url+path, bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Project-Id", "bench")
		req.Header.Set("X-Roles", "member")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusCreated {
			return nil, fmt.Errorf("POST %s: %d %v", path, resp.StatusCode, out)
		}
		return out, nil
	}
	// The bench project may hold as many ports as it makes.
	b, _ := json.Marshal(map[string]any{"quota": map[string]any{"port": -1, "network": -1, "subnet": -1}})
	req, err := http.NewRequestWithContext(ctx, "PUT", url+"/v2.0/quotas/bench", bytes.NewReader(b))
	if err != nil {
		return BenchResult{}, err
	}
	req.Header.Set("X-Roles", "admin")
	req.Header.Set("X-Project-Id", "admin")
	resp, err := client.Do(req)
	if err != nil {
		return BenchResult{}, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return BenchResult{}, fmt.Errorf("lifting the bench project's quotas: %s", resp.Status)
	}
	net, err := post("/v2.0/networks", map[string]any{"network": map[string]any{"name": "bench"}})
	if err != nil {
		return BenchResult{}, err
	}
	netID := net["network"].(map[string]any)["id"].(string)
	if _, err := post("/v2.0/subnets", map[string]any{"subnet": map[string]any{
		"network_id": netID, "ip_version": 4, "cidr": "10.128.0.0/12"}}); err != nil {
		return BenchResult{}, err
	}
	var next atomic.Int64
	var failed atomic.Int64
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t := time.Now()
				_, err := post("/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "name": fmt.Sprintf("p%d", i)}})
				lat[i] = time.Since(t)
				if err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return BenchResult{N: n, Clients: c, Failed: int(failed.Load()), Elapsed: el, P50: pct(0.50), P99: pct(0.99), Max: lat[len(lat)-1]}, nil
}

package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"muon/internal/cli"
	"muon/internal/server"
	"muon/internal/server/servertest"
)

// BenchmarkPortCreate creates b.N ports over HTTP from 16 clients and
// reports ports/s and latency percentiles, on SQLite with synchronous=FULL
// (the default of muon up). `muon bench` runs the same against any server.
func BenchmarkPortCreate(b *testing.B) {
	e := servertest.Start(b, "sqlite", func(c *server.Config) { c.SQLiteSynchronous = "FULL" })
	b.ResetTimer()
	r, err := cli.BenchPorts(context.Background(), e.URL, max(b.N, 16), 16)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if r.Failed > 0 {
		b.Fatalf("%d of %d creates failed", r.Failed, r.N)
	}
	b.ReportMetric(float64(r.N)/r.Elapsed.Seconds(), "ports/s")
	b.ReportMetric(float64(r.P50)/float64(time.Millisecond), "p50-ms")
	b.ReportMetric(float64(r.P99)/float64(time.Millisecond), "p99-ms")
}

// BenchmarkListPorts lists 20,000 ports as the admin, one request per
// op, and reports bytes allocated per list (-benchmem) and the time.
func BenchmarkListPorts(b *testing.B) {
	e := servertest.Start(b, "sqlite", func(c *server.Config) { c.Quotas = map[string]int64{"port": -1} })
	code, out := e.Do(b, "POST", "/v2.0/networks", "admin", true, `{"network": {"name": "many"}}`)
	if code != 201 {
		b.Fatalf("network: %d %s", code, out)
	}
	net := out[strings.Index(out, `"id":"`)+6:]
	net = net[:strings.Index(net, `"`)]
	item := fmt.Sprintf(`{"network_id": %q}`, net)
	for range 40 {
		items := strings.Repeat(item+",", 499) + item
		if code, out := e.Do(b, "POST", "/v2.0/ports", "admin", true, `{"ports": [`+items+`]}`); code != 201 {
			b.Fatalf("ports: %d %.300s", code, out)
		}
	}
	b.ReportAllocs()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	peak := base.HeapAlloc
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
		}
	}()
	b.ResetTimer()
	for range b.N {
		code, out := e.Do(b, "GET", "/v2.0/ports", "admin", true, "")
		if code != 200 || strings.Count(out, `"mac_address"`) != 20000 {
			b.Fatalf("list: %d, %d ports", code, strings.Count(out, `"mac_address"`))
		}
	}
	b.StopTimer()
	close(done)
	<-sampled
	// The heap at its highest during the lists, above what it was before:
	// what one list of 20,000 ports holds at once (the client's copy of
	// the body, about 20 MB, included).
	b.ReportMetric(float64(peak-base.HeapAlloc)/(1<<20), "peak-heap-MB")

	// Every page of 1,000, following the next links: 21 requests.
	began := time.Now()
	path, pages := "/v2.0/ports?limit=1000", 0
	for path != "" {
		code, out := e.Do(b, "GET", path, "admin", true, "")
		if code != 200 {
			b.Fatalf("page: %d", code)
		}
		pages++
		var page struct {
			Links []struct{ Rel, Href string } `json:"ports_links"`
		}
		json.Unmarshal([]byte(out), &page)
		path = ""
		for _, l := range page.Links {
			if l.Rel == "next" {
				path = l.Href[strings.Index(l.Href, "/v2.0/"):]
			}
		}
		if pages > 40 {
			b.Fatal("no end to the pages")
		}
	}
	b.ReportMetric(time.Since(began).Seconds(), "all-pages-s")
	b.ReportMetric(float64(pages), "pages")
}

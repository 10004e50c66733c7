package server_test

import (
	"context"
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

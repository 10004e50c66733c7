package service

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"muon/internal/agentapi"
)

// bigTable is 10,000 ports over 1,000 networks, each network like netA.
func bigTable(b *testing.B, cfg Config) (*Table, [][]byte, []string) {
	b.Helper()
	tb := NewTable(cfg, nil)
	var reqs [][]byte
	var nets []string
	for n := range 1000 {
		nw := network()
		nw.ID = fmt.Sprintf("net-%04d", n)
		tb.SetNetwork(nw)
		for p := range 10 {
			mac := fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", n>>8, n&0xff, p)
			tb.SetPort(agentapi.DHCPPort{
				ID: fmt.Sprintf("port-%04d-%d", n, p), NetworkID: nw.ID, MAC: mac, Hostname: fmt.Sprintf("host-%d", p),
				AdminStateUp: true, DeviceID: fmt.Sprintf("inst-%04d-%d", n, p),
				FixedIPs: []agentapi.FixedIP{{SubnetID: sub4, IPAddress: fmt.Sprintf("10.0.0.%d", 10+p)}},
			})
			d, err := dhcpv4.NewDiscovery(mustMAC(b, mac))
			if err != nil {
				b.Fatal(err)
			}
			reqs = append(reqs, d.ToBytes())
			nets = append(nets, nw.ID)
		}
	}
	return tb, reqs, nets
}

// BenchmarkDHCPv4Discover is one DISCOVER -> OFFER on a table of 10,000
// ports over 1,000 networks, the rate limiter included (at a rate that
// never drops).
func BenchmarkDHCPv4Discover(b *testing.B) {
	tb, reqs, nets := bigTable(b, Config{RatePerMAC: 1e9, Burst: 1e9})
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		k := i % len(reqs)
		if _, _, ok := tb.DHCPv4(nets[k], reqs[k]); !ok {
			b.Fatal("no offer")
		}
		i++
	}
}

// BenchmarkDHCPv4DiscoverParallel is the same from every core.
func BenchmarkDHCPv4DiscoverParallel(b *testing.B) {
	tb, reqs, nets := bigTable(b, Config{RatePerMAC: 1e9, Burst: 1e9})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := (i * 7919) % len(reqs)
			if _, _, ok := tb.DHCPv4(nets[k], reqs[k]); !ok {
				b.Error("no offer")
				return
			}
			i++
		}
	})
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkMetadata is the self-answering handler on the big table, for
// meta_data.json and an EC2 key, from all cores; it reports the 99th
// percentile of a request's time.
func BenchmarkMetadata(b *testing.B) {
	tb, _, nets := bigTable(b, Config{})
	for _, path := range []string{"/openstack/latest/meta_data.json", "/latest/meta-data/instance-id"} {
		b.Run(path, func(b *testing.B) {
			handlers := map[string]http.Handler{}
			var reqs []*http.Request
			for k, n := range nets {
				if handlers[n] == nil {
					handlers[n] = tb.Metadata(n)
				}
				r, err := http.NewRequest(http.MethodGet, "http://169.254.169.254"+path, nil)
				if err != nil {
					b.Fatal(err)
				}
				r.RemoteAddr = fmt.Sprintf("10.0.0.%d:40000", 10+k%10)
				reqs = append(reqs, r)
			}
			var mu sync.Mutex
			var lat []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				w := &discardWriter{h: http.Header{}}
				i := 0
				for pb.Next() {
					k := (i * 7919) % len(nets)
					clear(w.h)
					w.code = 0
					start := time.Now()
					handlers[nets[k]].ServeHTTP(w, reqs[k])
					mine = append(mine, time.Since(start))
					if w.code != 0 && w.code != http.StatusOK {
						b.Errorf("status %d", w.code)
						return
					}
					i++
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			if len(lat) > 0 {
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
			}
		})
	}
}

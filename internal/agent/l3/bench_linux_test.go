package l3

import (
	"context"
	"fmt"
	"maps"
	"os"
	"strconv"
	"testing"
	"time"

	"muon/internal/kernel/netns"
)

// BenchmarkFloatingIPs programs floating IPs on one router for real (a
// namespace of the benchmark's, no server): 10,000 at once into an
// empty router (addresses on the gateway, map elements, gratuitous ARP),
// one more among them, one taken away, and the same 10,000 again by an
// agent just restarted (it reads the kernel back and changes nothing).
//
// Run as root: go test -run X -bench FloatingIPs -benchtime 1x ./internal/agent/l3/
func BenchmarkFloatingIPs(b *testing.B) {
	l := newNSLab(b)
	ctx := context.Background()
	host := l.addNS("h")
	mark := func() string { return "muon:bench" }
	base := Spec{RouterID: "bench",
		Ports: []Pair{
			{Tap: "tapgw", Dev: "qg-gw", MAC: "fa:16:3e:00:00:01", MTU: 1500, Addrs: []string{"100.64.0.2/10"}},
			{Tap: "tapif", Dev: "qr-if", MAC: "fa:16:3e:00:00:02", MTU: 1500, Addrs: []string{"10.0.0.1/16"}},
		},
		Gateway: "qg-gw", GatewayIP: "100.64.0.2", NextHops: []string{"100.64.0.1"}, SNAT: true}
	n := benchN()
	fips := map[string]string{}
	for i := range n {
		fips[fmt.Sprintf("100.64.%d.%d", 1+i/250, 1+i%250)] = fmt.Sprintf("10.0.%d.%d", i/250, 2+i%250)
	}
	ensure := func(k Kernel, s Spec) time.Duration {
		b.Helper()
		began := time.Now()
		if err := netns.DoNamed(host, func() error { return k.Ensure(ctx, s) }); err != nil {
			b.Fatalf("ensure with %d floating IPs: %v", len(s.FloatingIPs), err)
		}
		return time.Since(began)
	}
	var all, one, gone, again []time.Duration
	for i := range b.N {
		k := NewKernel(fmt.Sprintf("%s-%d-", l.prefix, i), mark)
		ensure(k, base)
		s := base
		s.FloatingIPs = fips
		all = append(all, ensure(k, s))
		more := maps.Clone(fips)
		more["100.64.200.1"] = "10.0.200.1"
		s.FloatingIPs = more
		one = append(one, ensure(k, s))
		s.FloatingIPs = fips
		gone = append(gone, ensure(k, s))
		again = append(again, ensure(NewKernel(fmt.Sprintf("%s-%d-", l.prefix, i), mark), s))
		netns.DoNamed(host, func() error { return k.Remove(ctx, "bench") })
	}
	report := func(what, unit string, d []time.Duration) {
		var sum time.Duration
		for _, x := range d {
			sum += x
		}
		avg := sum / time.Duration(len(d))
		b.ReportMetric(float64(avg)/float64(time.Millisecond), unit)
		b.Logf("%s: %s", what, avg.Round(100*time.Microsecond))
	}
	report("10,000 floating IPs onto an empty router", "all-ms", all)
	report("one more floating IP among 10,000", "one-ms", one)
	report("one floating IP away of 10,001", "gone-ms", gone)
	report("10,000 floating IPs again by a restarted agent (read back, nothing to change)", "again-ms", again)
	b.ReportMetric(0, "ns/op")
}

func benchN() int {
	if v, err := strconv.Atoi(os.Getenv("FIPS")); err == nil {
		return v
	}
	return 10000
}

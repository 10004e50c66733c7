package l2

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"

	"muon/internal/agentapi"
	"muon/internal/kernel"
)

const (
	netA = "aaaaaaaa-0000-4000-8000-000000000001"
	netB = "bbbbbbbb-0000-4000-8000-000000000002"
	netF = "ffffffff-0000-4000-8000-000000000003"
	netV = "dddddddd-0000-4000-8000-000000000004"
	p1   = "11111111-1111-4111-8111-111111111111"
	p2   = "22222222-2222-4222-8222-222222222222"
	p3   = "33333333-3333-4333-8333-333333333333"
)

func vxnet(id string, vni int64, remotes ...agentapi.Remote) agentapi.Network {
	return agentapi.Network{ID: id, NetworkType: "vxlan", SegmentationID: vni, MTU: 1450, Remotes: remotes}
}

func port(id, net string, up bool) agentapi.Port {
	return agentapi.Port{ID: id, NetworkID: net, MAC: "fa:16:3e:00:00:" + id[:2], IPs: []string{"10.0.0." + id[:1]}, AdminStateUp: up, Device: agentapi.TapName(id)}
}

var (
	h2 = agentapi.Remote{TunnelIP: "192.168.100.2", Entries: []agentapi.FDBEntry{{MAC: "FA:16:3E:00:00:21", IPs: []string{"10.0.0.21"}}}}
	h3 = agentapi.Remote{TunnelIP: "192.168.100.3", Entries: []agentapi.FDBEntry{
		{MAC: "fa:16:3e:00:00:31", IPs: []string{"10.0.0.31", "fd00::31"}}, {MAC: "fa:16:3e:00:00:32", IPs: []string{"10.0.0.32/24"}}}}
	self = agentapi.Remote{TunnelIP: "192.168.100.1", Entries: []agentapi.FDBEntry{{MAC: "fa:16:3e:00:00:11"}}}
)

func tap(id string) kernel.Link {
	return kernel.Link{Name: agentapi.TapName(id), Kind: "veth", Up: true}
}

func withMaster(l kernel.Link, master string) kernel.Link {
	l.Master = master
	return l
}

func TestSync(t *testing.T) {
	for _, tc := range []struct {
		name    string
		arp     bool
		links   []kernel.Link // there before the agent
		steps   []agentapi.L2
		want    string
		status  agentapi.L2Status
		wantErr string
	}{{
		name:  "vxlan-remotes",
		links: []kernel.Link{tap(p1)},
		steps: []agentapi.L2{{Networks: []agentapi.Network{vxnet(netA, 1001, h2, h3, self)},
			Ports: []agentapi.Port{port(p1, netA, true), port(p2, netA, true)}}},
		want: `link brqaaaaaaaa-00 bridge mtu 1450 up
link tap11111111-11 veth mtu 1450 up master brqaaaaaaaa-00
link vxlan-1001 vxlan mtu 1450 id 1001 local 192.168.100.1 dstport 4789 nolearning up master brqaaaaaaaa-00
fdb vxlan-1001 00:00:00:00:00:00 dst 192.168.100.2
fdb vxlan-1001 00:00:00:00:00:00 dst 192.168.100.3
fdb vxlan-1001 fa:16:3e:00:00:21 dst 192.168.100.2
fdb vxlan-1001 fa:16:3e:00:00:31 dst 192.168.100.3
fdb vxlan-1001 fa:16:3e:00:00:32 dst 192.168.100.3
`,
		status: agentapi.L2Status{Up: []string{p1}, Down: []string{p2}},
	}, {
		name:  "arp-responder",
		arp:   true,
		links: []kernel.Link{tap(p1)},
		steps: []agentapi.L2{{Networks: []agentapi.Network{vxnet(netA, 1001, h2, h3)}, Ports: []agentapi.Port{port(p1, netA, true)}}},
		want: `link brqaaaaaaaa-00 bridge mtu 1450 up
link tap11111111-11 veth mtu 1450 up master brqaaaaaaaa-00
link vxlan-1001 vxlan mtu 1450 id 1001 local 192.168.100.1 dstport 4789 nolearning proxy up master brqaaaaaaaa-00
fdb vxlan-1001 00:00:00:00:00:00 dst 192.168.100.2
fdb vxlan-1001 00:00:00:00:00:00 dst 192.168.100.3
fdb vxlan-1001 fa:16:3e:00:00:21 dst 192.168.100.2
fdb vxlan-1001 fa:16:3e:00:00:31 dst 192.168.100.3
fdb vxlan-1001 fa:16:3e:00:00:32 dst 192.168.100.3
neigh vxlan-1001 10.0.0.21 lladdr fa:16:3e:00:00:21
neigh vxlan-1001 10.0.0.31 lladdr fa:16:3e:00:00:31
neigh vxlan-1001 10.0.0.32 lladdr fa:16:3e:00:00:32
neigh vxlan-1001 fd00::31 lladdr fa:16:3e:00:00:31
`,
		status: agentapi.L2Status{Up: []string{p1}},
	}, {
		name:  "remotes-shrink",
		arp:   true,
		links: []kernel.Link{tap(p1)},
		steps: []agentapi.L2{
			{Networks: []agentapi.Network{vxnet(netA, 1001, h2, h3)}, Ports: []agentapi.Port{port(p1, netA, true)}},
			{Networks: []agentapi.Network{vxnet(netA, 1001, h3)}, Ports: []agentapi.Port{port(p1, netA, true)}},
		},
		want: `link brqaaaaaaaa-00 bridge mtu 1450 up
link tap11111111-11 veth mtu 1450 up master brqaaaaaaaa-00
link vxlan-1001 vxlan mtu 1450 id 1001 local 192.168.100.1 dstport 4789 nolearning proxy up master brqaaaaaaaa-00
fdb vxlan-1001 00:00:00:00:00:00 dst 192.168.100.3
fdb vxlan-1001 fa:16:3e:00:00:31 dst 192.168.100.3
fdb vxlan-1001 fa:16:3e:00:00:32 dst 192.168.100.3
neigh vxlan-1001 10.0.0.31 lladdr fa:16:3e:00:00:31
neigh vxlan-1001 10.0.0.32 lladdr fa:16:3e:00:00:32
neigh vxlan-1001 fd00::31 lladdr fa:16:3e:00:00:31
`,
		status: agentapi.L2Status{Up: []string{p1}},
	}, {
		name:  "admin-down-cuts",
		links: []kernel.Link{tap(p1), tap(p2)},
		steps: []agentapi.L2{
			{Networks: []agentapi.Network{vxnet(netA, 1001)}, Ports: []agentapi.Port{port(p1, netA, true), port(p2, netA, true)}},
			{Networks: []agentapi.Network{vxnet(netA, 1001)}, Ports: []agentapi.Port{port(p1, netA, false), port(p2, netA, true)}},
		},
		want: `link brqaaaaaaaa-00 bridge mtu 1450 up
link tap11111111-11 veth mtu 1450 down
link tap22222222-22 veth mtu 1450 up master brqaaaaaaaa-00
link vxlan-1001 vxlan mtu 1450 id 1001 local 192.168.100.1 dstport 4789 nolearning up master brqaaaaaaaa-00
`,
		status: agentapi.L2Status{Up: []string{p2}, Down: []string{p1}},
	}, {
		name:  "two-networks-then-one",
		links: []kernel.Link{tap(p1), tap(p2)},
		steps: []agentapi.L2{
			{Networks: []agentapi.Network{vxnet(netA, 1001), vxnet(netB, 1002, h2)}, Ports: []agentapi.Port{port(p1, netA, true), port(p2, netB, true)}},
			{Networks: []agentapi.Network{vxnet(netA, 1001), vxnet(netB, 1002, h2)}, Ports: []agentapi.Port{port(p1, netA, true)}},
		},
		want: `link brqaaaaaaaa-00 bridge mtu 1450 up
link tap11111111-11 veth mtu 1450 up master brqaaaaaaaa-00
link tap22222222-22 veth mtu 1450 up
link vxlan-1001 vxlan mtu 1450 id 1001 local 192.168.100.1 dstport 4789 nolearning up master brqaaaaaaaa-00
`,
		status: agentapi.L2Status{Up: []string{p1}},
	}, {
		name: "stale-ours-only",
		links: []kernel.Link{
			tap(p1),
			{Name: "brqold0000-00", Kind: "bridge", Up: true, Alias: kernel.Mark("h1")},
			{Name: "vxlan-9", Kind: "vxlan", Up: true, Alias: kernel.Mark("h1"), VXLAN: &kernel.VXLAN{VNI: 9, Local: "192.168.100.1", Port: 4789}},
			{Name: "tapforeign-xx", Kind: "veth", Up: true, Master: "brqold0000-00"},
			{Name: "tapstray0000", Kind: "veth", Up: true, Master: "brqaaaaaaaa-00"},
			{Name: "br0", Kind: "bridge", Up: true},
			{Name: "vx0", Kind: "vxlan", Up: true, VXLAN: &kernel.VXLAN{VNI: 5, Local: "10.1.1.1", Port: 4789}},
			{Name: "eth0", Kind: "device", Up: true, Master: "br0"},
		},
		steps: []agentapi.L2{{Networks: []agentapi.Network{vxnet(netA, 1001)}, Ports: []agentapi.Port{port(p1, netA, true)}}},
		want: `link br0 bridge mtu 1500 up
link brqaaaaaaaa-00 bridge mtu 1450 up
link eth0 device mtu 1500 up master br0
link tap11111111-11 veth mtu 1450 up master brqaaaaaaaa-00
link tapforeign-xx veth mtu 1500 up
link tapstray0000 veth mtu 1500 up
link vx0 vxlan mtu 1500 id 5 local 10.1.1.1 dstport 4789 nolearning up
link vxlan-1001 vxlan mtu 1450 id 1001 local 192.168.100.1 dstport 4789 nolearning up master brqaaaaaaaa-00
`,
		status: agentapi.L2Status{Up: []string{p1}},
	}, {
		// Another agent's devices on this machine (host h2) and a bridge
		// someone made by hand, brq-named or not, survive our Sync, and
		// so does what is attached to them.
		name: "others-untouched",
		links: []kernel.Link{
			tap(p1), withMaster(tap(p2), "brq-foreign"), withMaster(tap(p3), "brqbbbbbbbb-00"),
			{Name: "brq-foreign", Kind: "bridge", Up: true},
			{Name: "brqbbbbbbbb-00", Kind: "bridge", MTU: 1450, Up: true, Alias: kernel.Mark("h2")},
			{Name: "vxlan-1002", Kind: "vxlan", MTU: 1450, Up: true, Alias: kernel.Mark("h2"), Master: "brqbbbbbbbb-00",
				VXLAN: &kernel.VXLAN{VNI: 1002, Local: "192.168.100.1", Port: 4789}},
			{Name: "vxlan-7", Kind: "vxlan", Up: true, Alias: "someone-else", VXLAN: &kernel.VXLAN{VNI: 7, Local: "10.9.9.9", Port: 4789}},
		},
		steps: []agentapi.L2{
			{Networks: []agentapi.Network{vxnet(netA, 1001)}, Ports: []agentapi.Port{port(p1, netA, true)}},
			{},
		},
		want: `link brq-foreign bridge mtu 1500 up
link brqbbbbbbbb-00 bridge mtu 1450 up
link tap11111111-11 veth mtu 1450 up
link tap22222222-22 veth mtu 1500 up master brq-foreign
link tap33333333-33 veth mtu 1500 up master brqbbbbbbbb-00
link vxlan-1002 vxlan mtu 1450 id 1002 local 192.168.100.1 dstport 4789 nolearning up master brqbbbbbbbb-00
link vxlan-7 vxlan mtu 1500 id 7 local 10.9.9.9 dstport 4789 nolearning up
`,
	}, {
		// Our bridge's name is held by a device that is not ours: we say
		// so, leave it alone, and the port stays down.
		name:  "name-held-by-another",
		links: []kernel.Link{tap(p1), {Name: "brqaaaaaaaa-00", Kind: "bridge", Up: true, Alias: kernel.Mark("h2")}},
		steps: []agentapi.L2{{Networks: []agentapi.Network{vxnet(netA, 1001)}, Ports: []agentapi.Port{port(p1, netA, true)}}},
		want: `link brqaaaaaaaa-00 bridge mtu 1500 up
link tap11111111-11 veth mtu 1500 down
`,
		status:  agentapi.L2Status{Down: []string{p1}},
		wantErr: "exists and is not ours",
	}, {
		// A device marked by an agent from before marks named their owner
		// is adopted by the agent that wants it, and then is its own.
		name:  "legacy-mark-adopted",
		links: []kernel.Link{tap(p1), {Name: "brqaaaaaaaa-00", Kind: "bridge", Up: true, Alias: kernel.Alias}},
		steps: []agentapi.L2{
			{Networks: []agentapi.Network{vxnet(netA, 1001)}, Ports: []agentapi.Port{port(p1, netA, true)}},
			{},
		},
		want: `link tap11111111-11 veth mtu 1450 up
`,
	}, {
		name:  "flat-uplink",
		links: []kernel.Link{tap(p1), {Name: "eth1", Kind: "device"}},
		steps: []agentapi.L2{{Networks: []agentapi.Network{{ID: netF, NetworkType: "flat", PhysicalNetwork: "physnet1", MTU: 1500}},
			Ports: []agentapi.Port{port(p1, netF, true)}}},
		want: `link brqffffffff-00 bridge mtu 1500 up
link eth1 device mtu 1500 up master brqffffffff-00
link tap11111111-11 veth mtu 1500 up master brqffffffff-00
`,
		status: agentapi.L2Status{Up: []string{p1}},
	}, {
		name:  "flat-unmapped",
		links: []kernel.Link{tap(p1)},
		steps: []agentapi.L2{{Networks: []agentapi.Network{{ID: netF, NetworkType: "flat", PhysicalNetwork: "physnet9", MTU: 1500}},
			Ports: []agentapi.Port{port(p1, netF, true)}}},
		want: `link brqffffffff-00 bridge mtu 1500 up
link tap11111111-11 veth mtu 1500 down
`,
		status:  agentapi.L2Status{Down: []string{p1}},
		wantErr: `physical network "physnet9" has no interface mapping on host h1`,
	}, {
		name:  "vlan-without-8021q",
		links: []kernel.Link{tap(p1), tap(p2), {Name: "eth1", Kind: "device"}},
		steps: []agentapi.L2{{Networks: []agentapi.Network{{ID: netV, NetworkType: "vlan", PhysicalNetwork: "physnet1", SegmentationID: 100, MTU: 1500}, vxnet(netA, 1001)},
			Ports: []agentapi.Port{port(p1, netV, true), port(p2, netA, true)}}},
		want: `link brqaaaaaaaa-00 bridge mtu 1450 up
link eth1 device mtu 1500 down
link tap11111111-11 veth mtu 1500 down
link tap22222222-22 veth mtu 1450 up master brqaaaaaaaa-00
link vxlan-1001 vxlan mtu 1450 id 1001 local 192.168.100.1 dstport 4789 nolearning up master brqaaaaaaaa-00
`,
		status:  agentapi.L2Status{Up: []string{p2}, Down: []string{p1}},
		wantErr: "this kernel has no 802.1Q support: vlan networks cannot be wired on host h1",
	}, {
		name:  "geneve-refused",
		links: []kernel.Link{tap(p1)},
		steps: []agentapi.L2{{Networks: []agentapi.Network{{ID: netB, NetworkType: "geneve", SegmentationID: 7, MTU: 1442}},
			Ports: []agentapi.Port{port(p1, netB, true)}}},
		want:    "link tap11111111-11 veth mtu 1500 down\n",
		status:  agentapi.L2Status{Down: []string{p1}},
		wantErr: "this kernel has no Geneve support: geneve networks cannot be wired on host h1",
	}, {
		name:  "everything-gone",
		links: []kernel.Link{tap(p1), tap(p2)},
		steps: []agentapi.L2{
			{Networks: []agentapi.Network{vxnet(netA, 1001, h2)}, Ports: []agentapi.Port{port(p1, netA, true), port(p2, netA, true)}},
			{},
		},
		want: `link tap11111111-11 veth mtu 1450 up
link tap22222222-22 veth mtu 1450 up
`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			k := kernel.NewFake("h1")
			for _, l := range tc.links {
				k.AddLink(l)
			}
			a := New(Config{Host: "h1", TunnelIP: "192.168.100.1", ARPResponder: tc.arp,
				InterfaceMappings: map[string]string{"physnet1": "eth1"}}, k, slog.New(slog.NewTextHandler(io.Discard, nil)))
			var err error
			for _, st := range tc.steps {
				err = a.Sync(ctx, st)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			got, derr := kernel.Dump(ctx, k, nil)
			if derr != nil {
				t.Fatal(derr)
			}
			if got != tc.want {
				t.Errorf("kernel:\n%s\nwant:\n%s", got, tc.want)
			}
			if st := a.Status(); !reflect.DeepEqual(st, tc.status) {
				t.Errorf("status %+v, want %+v", st, tc.status)
			}
			// Expected is the kernel as the Sync left it, without listing it.
			if links, _ := k.Links(ctx); err == nil && brief(a.Expected()) != brief(links) {
				t.Errorf("expected links:\n%s\nkernel:\n%s", brief(a.Expected()), brief(links))
			}
			// Converged: the same state again changes nothing.
			calls := k.Calls
			a.Sync(ctx, tc.steps[len(tc.steps)-1])
			if k.Calls != calls {
				again, _ := kernel.Dump(ctx, k, nil)
				t.Errorf("a second Sync made %d changes:\n%s", k.Calls-calls, again)
			}
		})
	}
}

// brief lists links by what the agent watches (name, up, master, MTU).
func brief(links []kernel.Link) string {
	var out []string
	for _, l := range links {
		out = append(out, fmt.Sprintf("%s up=%v master=%s mtu=%d", l.Name, l.Up, l.Master, l.MTU))
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

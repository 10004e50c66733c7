package secgroup

import (
	"context"
	"path/filepath"
	"testing"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/resource"
	"muon/internal/store"
	"muon/internal/store/sqlite"
)

// FuzzRule sends rule bodies through the attribute map, the checks and
// the plugin: nothing panics, every refusal is a fault, and a refused
// rule leaves the store as it was.
func FuzzRule(f *testing.F) {
	for _, s := range []string{
		`{"security_group_rule": {"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22}}`,
		`{"security_group_rule": {"direction": "egress", "ethertype": "ipv6", "protocol": "icmpv6", "port_range_min": 128}}`,
		`{"security_group_rule": {"direction": "ingress", "remote_ip_prefix": "10.0.0.5/24", "protocol": "1"}}`,
		`{"security_group_rule": {"direction": "ingress", "protocol": "icmp", "port_range_max": 300}}`,
		`{"security_group_rule": {"direction": "ingress", "protocol": "any", "remote_ip_prefix": "::/0", "ethertype": "IPv6"}}`,
		`{"security_group_rule": {"direction": "ingress", "protocol": 6, "port_range_min": "1", "port_range_max": 65535}}`,
		`{"security_group_rule": {"direction": "ingress", "protocol": "gre", "port_range_min": 0}}`,
		`{"security_group_rules": [{"direction": "ingress"}, {"direction": "ingress"}]}`,
		`{"security_group_rule": {"direction": "x", "ethertype": null}}`,
	} {
		f.Add(s)
	}
	ctx := auth.NewContext(context.Background(), &auth.Credentials{ProjectID: "fuzz", Roles: []string{"member"}})
	st, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "muon.db"), sqlite.Options{Synchronous: "OFF"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	p := New(st)
	made, err := Groups{p}.Create(ctx, []resource.Doc{{"name": "g", "description": "", "stateful": true}})
	if err != nil {
		f.Fatal(err)
	}
	gid := resource.Str(made[0]["id"])
	res := RuleResource().Init()
	count := func(t *testing.T) (n int) {
		err := st.View(ctx, func(tx store.Tx) error {
			var err error
			n, err = tx.Count(ctx, store.Filter{Kind: kindRule})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	f.Fuzz(func(t *testing.T, body string) {
		docs, _, err := res.DecodeBody([]byte(body), true)
		if err != nil {
			return
		}
		for _, d := range docs {
			d["security_group_id"] = gid
			if err := res.PrepareCreate(d, false); err != nil {
				if _, ok := fault.As(err); !ok {
					t.Fatalf("prepare: not a fault: %v", err)
				}
				return
			}
		}
		before := count(t)
		out, err := Rules{p}.Create(ctx, docs)
		if err != nil {
			if _, ok := fault.As(err); !ok {
				t.Fatalf("create: not a fault: %v", err)
			}
			if after := count(t); after != before {
				t.Fatalf("refused rule changed the store: %d rules, was %d", after, before)
			}
			return
		}
		if after := count(t); after != before+len(out) {
			t.Fatalf("%d rules made, store grew by %d", len(out), after-before)
		}
		// A made rule passes its own checks again, unchanged.
		for _, d := range out {
			c := resource.Clone(d)
			if err := checkRule(c); err != nil || fingerprint(c) != fingerprint(d) {
				t.Fatalf("made rule %v fails its checks again: %v", d, err)
			}
		}
		// Clean up so the next input is not a duplicate of this one.
		for _, d := range out {
			if err := (Rules{p}).Delete(ctx, resource.Str(d["id"]), -1); err != nil {
				t.Fatal(err)
			}
		}
	})
}

package l2

import (
	"encoding/json"
	"slices"
	"testing"

	"muon/internal/agentapi"
)

func TestMerge(t *testing.T) {
	view := agentapi.L2{
		Networks: []agentapi.Network{{ID: "n1", MTU: 1450}, {ID: "n2"}},
		Ports:    []agentapi.Port{{ID: "p1", NetworkID: "n1"}, {ID: "p2", NetworkID: "n2"}, {ID: "p3", NetworkID: "n1"}}}
	ch := merge(&view, agentapi.L2{RemovedNetworks: []string{"n2"}, RemovedPorts: []string{"p3"},
		Networks: []agentapi.Network{{ID: "n1", MTU: 1400}}, Ports: []agentapi.Port{{ID: "p4", NetworkID: "n1"}}})
	if len(view.Networks) != 1 || view.Networks[0].MTU != 1400 {
		t.Errorf("networks %+v", view.Networks)
	}
	var ids []string
	for _, p := range view.Ports {
		ids = append(ids, p.ID)
	}
	if !slices.Equal(ids, []string{"p1", "p4"}) || !ch["p4"] || len(ch) != 1 {
		t.Errorf("ports %v changed %v", ids, ch)
	}
}

// FuzzDecode: whatever the channel brings, a section that decodes holds
// no member without an id, and merging it never panics.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"networks":[{"id":"n"}],"ports":[{"id":"p","network_id":"n"}]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"ports":[{"id":""}]}`))
	f.Add([]byte(`{"removed_ports":["p"],"networks":[{"id":"n","remotes":[{"tunnel_ip":"x"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decode(json.RawMessage(b))
		if err != nil {
			return
		}
		view := agentapi.L2{}
		merge(&view, v)
		for _, p := range view.Ports {
			if p.ID == "" || p.NetworkID == "" {
				t.Fatal("a port without id passed")
			}
		}
	})
}

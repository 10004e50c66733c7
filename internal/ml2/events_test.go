package ml2_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/ml2"
	_ "muon/internal/ml2/types"
	"muon/internal/resource"
	"muon/internal/store"
	"muon/internal/store/sqlite"
)

func newPlugin(t *testing.T) (*ml2.Plugin, context.Context) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "muon.db"), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p, err := ml2.New(ml2.DefaultConfig(), st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return p, auth.NewContext(ctx, &auth.Credentials{ProjectID: "p1", Roles: []string{"admin"}})
}

func create(t *testing.T, ctx context.Context, res *resource.Resource, b interface {
	Create(context.Context, []resource.Doc) ([]resource.Doc, error)
}, d resource.Doc) resource.Doc {
	t.Helper()
	res.Init()
	if err := res.PrepareCreate(d, true); err != nil {
		t.Fatal(err)
	}
	out, err := b.Create(ctx, []resource.Doc{d})
	if err != nil {
		t.Fatalf("create %s: %v", res.Name, err)
	}
	return out[0]
}

// TestEventsEverySubscriberRuns: two features on one event both run, in
// order; a veto rolls the change back and is the caller's answer.
func TestEventsEverySubscriberRuns(t *testing.T) {
	p, ctx := newPlugin(t)
	var ran []string
	veto := true
	p.Events().PortDelete.Subscribe(func(ctx context.Context, tx store.Tx, e ml2.PortEvent) error {
		ran = append(ran, "first:"+resource.Str(e.Port["name"]))
		return nil
	})
	p.Events().PortDelete.Subscribe(func(ctx context.Context, tx store.Tx, e ml2.PortEvent) error {
		ran = append(ran, "second")
		if veto {
			return fault.Conflict("InUse", "port %s is held", e.Port["id"])
		}
		return nil
	})
	created := 0
	p.Events().PortCreate.Subscribe(func(ctx context.Context, tx store.Tx, e ml2.PortEvent) error {
		created++
		e.Port["description"] = "set by a subscriber"
		if e.Network == nil {
			t.Error("PortCreate without the network")
		}
		return nil
	})
	net := create(t, ctx, ml2.NetworkResource(), ml2.Networks{Plugin: p}, resource.Doc{"name": "n"})
	port := create(t, ctx, ml2.PortResource(), ml2.Ports{Plugin: p}, resource.Doc{"name": "a", "network_id": net["id"]})
	if created != 1 || port["description"] != "set by a subscriber" {
		t.Errorf("PortCreate ran %d times, description %q", created, port["description"])
	}
	id := resource.Str(port["id"])

	err := ml2.Ports{Plugin: p}.Delete(ctx, id, -1)
	if f, ok := fault.As(err); !ok || f.Type != "InUse" {
		t.Fatalf("delete with a veto = %v, want the subscriber's InUse", err)
	}
	if !slices.Equal(ran, []string{"first:a", "second"}) {
		t.Errorf("subscribers ran %v, want both in order", ran)
	}
	got, err := ml2.Ports{Plugin: p}.Get(ctx, id)
	if err != nil || got["description"] != "set by a subscriber" {
		t.Fatalf("after a vetoed delete the port is %v, %v; want it kept", got, err)
	}

	veto, ran = false, nil
	if err := (ml2.Ports{Plugin: p}).Delete(ctx, id, -1); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if len(ran) != 2 {
		t.Errorf("subscribers ran %v, want both", ran)
	}
	if _, err := (ml2.Ports{Plugin: p}).Get(ctx, id); err == nil {
		t.Error("port still there after delete")
	}
}

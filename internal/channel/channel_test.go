package channel_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"muon/internal/agentapi"
	"muon/internal/channel"
	"muon/internal/fault"
	"muon/internal/feature"
	"muon/internal/store"
	"muon/internal/store/sqlite"
)

// kindSection is a section that is every record of one kind, by id.
type kindSection struct {
	name, kind string
	observed   []string
}

func (s *kindSection) Name() string { return s.name }

func (s *kindSection) Full(ctx context.Context, tx store.Tx, host string) (any, error) {
	recs, err := tx.List(ctx, store.Filter{Kind: s.kind})
	ids := []string{}
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	return ids, err
}

func (s *kindSection) Delta(ctx context.Context, tx store.Tx, host string, changes []store.Change) (any, bool, error) {
	var ids []string
	for _, c := range changes {
		if c.Kind == s.kind {
			ids = append(ids, c.Op+":"+c.ID)
		}
	}
	return ids, len(ids) > 0, nil
}

type observingSection struct{ kindSection }

func (s *observingSection) Observe(ctx context.Context, host string, report json.RawMessage) error {
	s.observed = append(s.observed, host+" "+string(report))
	return nil
}

func TestChannel(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "muon.db"), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := channel.New(st, []feature.Section{&kindSection{name: "a"}, &kindSection{name: "a"}}); err == nil {
		t.Error("two sections named a: no error")
	}
	apples := &observingSection{kindSection{name: "apples", kind: "apple"}}
	pears := &kindSection{name: "pears", kind: "pear"}
	ch, err := channel.New(st, []feature.Section{pears, apples})
	if err != nil {
		t.Fatal(err)
	}
	add := func(kind, id string) {
		t.Helper()
		if err := st.Update(ctx, func(tx store.Tx) error {
			return tx.Insert(ctx, &store.Record{Kind: kind, ID: id, Doc: []byte("{}")})
		}); err != nil {
			t.Fatal(err)
		}
	}
	add("apple", "a1")
	full, err := ch.State(ctx, "h1", 0, false, 0)
	if err != nil || full.Delta || string(full.Sections["apples"]) != `["a1"]` || string(full.Sections["pears"]) != `[]` {
		t.Fatalf("full: %+v %v", full, err)
	}

	// Only the section with changes is in a delta.
	add("pear", "p1")
	d, err := ch.State(ctx, "h1", full.Revision, true, time.Second)
	if err != nil || !d.Delta || len(d.Sections) != 1 || string(d.Sections["pears"]) != `["create:p1"]` || d.Revision <= full.Revision {
		t.Fatalf("delta: %+v %v", d, err)
	}

	// A change no section cares about holds the poll, then answers empty.
	add("plum", "x")
	began := time.Now()
	d2, err := ch.State(ctx, "h1", d.Revision, true, 300*time.Millisecond)
	if err != nil || len(d2.Sections) != 0 || time.Since(began) < 250*time.Millisecond || d2.Revision <= d.Revision {
		t.Fatalf("unrelated change: %+v after %s, %v", d2, time.Since(began), err)
	}

	// From the future: resync.
	if r, _ := ch.State(ctx, "h1", d2.Revision+10, true, 0); !r.Resync {
		t.Errorf("a revision from the future: %+v", r)
	}

	// Status goes to the section that observes; one that does not, or an
	// unknown one, is a 400 and nothing is observed.
	for _, bad := range []string{"pears", "figs"} {
		err := ch.Report(ctx, "h1", agentapi.Status{Sections: map[string]json.RawMessage{"apples": json.RawMessage(`1`), bad: json.RawMessage(`2`)}})
		if f, ok := fault.As(err); !ok || f.Status != 400 || !strings.Contains(f.Message, bad) {
			t.Errorf("status for %s: %v", bad, err)
		}
	}
	if len(apples.observed) != 0 {
		t.Fatalf("a refused report was observed: %v", apples.observed)
	}
	if err := ch.Report(ctx, "h1", agentapi.Status{Sections: map[string]json.RawMessage{"apples": json.RawMessage(`{"ok":true}`)}}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(apples.observed, ";") != `h1 {"ok":true}` {
		t.Errorf("observed %v", apples.observed)
	}
}

package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"

	"muon/internal/server/servertest"
)

type feedPage struct {
	Changes []struct {
		Seq  int64  `json:"seq"`
		Kind string `json:"kind"`
		ID   string `json:"id"`
		Op   string `json:"op"`
	} `json:"changes"`
	Last int64 `json:"last"`
}

func readFeed(t *testing.T, e *servertest.Env, query string) feedPage {
	t.Helper()
	code, body := e.Do(t, "GET", "/muon/v1/changes?"+query, "admin", true, "")
	var p feedPage
	if code != 200 || json.Unmarshal([]byte(body), &p) != nil {
		t.Fatalf("feed: %d %s", code, body)
	}
	return p
}

// TestChangeFeed: every change lands in the feed once, in commit order,
// and a watcher waiting on the feed wakes when one comes.
func TestChangeFeed(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		ctx := context.Background()
		c := e.Client("p1", false)
		start := readFeed(t, e, "").Last
		n, err := networks.Create(ctx, c, networks.CreateOpts{Name: "watched"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		name := "renamed"
		if _, err := networks.Update(ctx, c, n.ID, networks.UpdateOpts{Name: &name}).Extract(); err != nil {
			t.Fatal(err)
		}
		if err := networks.Delete(ctx, c, n.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		p := readFeed(t, e, fmt.Sprintf("since=%d", start))
		var ops []string
		for i, ch := range p.Changes {
			if i > 0 && ch.Seq != p.Changes[i-1].Seq+1 {
				t.Errorf("feed numbers jump from %d to %d", p.Changes[i-1].Seq, ch.Seq)
			}
			if ch.ID == n.ID {
				ops = append(ops, ch.Op)
			}
		}
		if fmt.Sprint(ops) != "[create update delete]" {
			t.Errorf("the network's changes: %v, want [create update delete]", ops)
		}

		t.Run("long-poll-wakes", func(t *testing.T) {
			last := readFeed(t, e, "").Last
			got := make(chan feedPage, 1)
			began := time.Now()
			go func() { got <- readFeed(t, e, fmt.Sprintf("since=%d&wait=20", last)) }()
			time.Sleep(100 * time.Millisecond)
			m, err := networks.Create(ctx, c, networks.CreateOpts{Name: "wake"}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			p := <-got
			if took := time.Since(began); took > 5*time.Second {
				t.Errorf("the watcher woke after %s", took)
			}
			if len(p.Changes) == 0 || p.Changes[0].ID != m.ID || p.Changes[0].Op != "create" {
				t.Errorf("the watcher got %+v, want the new network's create", p.Changes)
			}
		})
		t.Run("admin-only", func(t *testing.T) {
			if code, _ := e.Do(t, "GET", "/muon/v1/changes", "p1", false, ""); code != 403 {
				t.Errorf("a member reading the feed: %d, want 403", code)
			}
		})
	})
}

package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"

	"muon/internal/server/servertest"
)

func quotaStatus(err error) int {
	var e gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &e) {
		return e.Actual
	}
	return 0
}

func TestQuotas(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		ctx := context.Background()
		admin, member := e.Admin(), e.Client("q1", false)

		t.Run("defaults", func(t *testing.T) {
			q, err := quotas.Get(ctx, member, "q1").Extract()
			if err != nil {
				t.Fatal(err)
			}
			if q.Network != 100 || q.Subnet != 100 || q.Port != 500 || q.SubnetPool != -1 {
				t.Errorf("default quotas %+v, want Neutron's network 100, subnet 100, port 500, subnetpool -1", q)
			}
		})
		t.Run("member-cannot-set", func(t *testing.T) {
			net := 5
			_, err := quotas.Update(ctx, member, "q1", quotas.UpdateOpts{Network: &net}).Extract()
			if code := quotaStatus(err); code != http.StatusForbidden {
				t.Errorf("member updating quotas: %v, want 403", err)
			}
		})
		t.Run("other-project-cannot-read", func(t *testing.T) {
			_, err := quotas.Get(ctx, e.Client("q2", false), "q1").Extract()
			if code := quotaStatus(err); code != http.StatusForbidden {
				t.Errorf("reading another project's quotas: %v, want 403", err)
			}
		})
		t.Run("parallel-creates-at-the-limit", func(t *testing.T) {
			limit := 10
			q, err := quotas.Update(ctx, admin, "q1", quotas.UpdateOpts{Network: &limit}).Extract()
			if err != nil || q.Network != 10 {
				t.Fatalf("set quota: %+v %v", q, err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			made, over := 0, 0
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := networks.Create(ctx, member, networks.CreateOpts{Name: fmt.Sprintf("n%d", i)}).Extract()
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						made++
					case faultKey(err) == "Conflict OverQuota":
						over++
					default:
						t.Errorf("create: %v", err)
					}
				}()
			}
			wg.Wait()
			if made != 10 || over != 40 {
				t.Errorf("%d made, %d refused OverQuota; want 10 and 40", made, over)
			}
			code, body := e.Do(t, "GET", "/v2.0/quotas/q1/details", "q1", false, "")
			var d struct {
				Quota map[string]struct{ Used, Limit, Reserved int } `json:"quota"`
			}
			if code != 200 || json.Unmarshal([]byte(body), &d) != nil {
				t.Fatalf("details: %d %s", code, body)
			}
			if n := d.Quota["network"]; n.Used != 10 || n.Limit != 10 {
				t.Errorf("details network %+v, want used 10 limit 10", n)
			}
		})
		t.Run("list-and-reset", func(t *testing.T) {
			code, body := e.Do(t, "GET", "/v2.0/quotas", "admin", true, "")
			var l struct {
				Quotas []struct {
					ProjectID string `json:"project_id"`
					Network   int    `json:"network"`
				} `json:"quotas"`
			}
			if code != 200 || json.Unmarshal([]byte(body), &l) != nil || len(l.Quotas) != 1 || l.Quotas[0].ProjectID != "q1" {
				t.Errorf("quota list: %d %s, want q1's alone", code, body)
			}
			if err := quotas.Delete(ctx, admin, "q1").ExtractErr(); err != nil {
				t.Fatal(err)
			}
			q, err := quotas.Get(ctx, member, "q1").Extract()
			if err != nil || q.Network != 100 {
				t.Errorf("after reset %+v %v, want network 100", q, err)
			}
		})
	})
}

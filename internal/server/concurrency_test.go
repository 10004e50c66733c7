package server_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"muon/internal/server/servertest"
)

// A /24 whose one pool holds exactly 250 addresses.
func poolOf250(t *testing.T, c *gophercloud.ServiceClient) string {
	t.Helper()
	ctx := context.Background()
	n, err := networks.Create(ctx, c, networks.CreateOpts{Name: "busy"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	_, err = subnets.Create(ctx, c, subnets.CreateOpts{
		NetworkID: n.ID, IPVersion: gophercloud.IPv4, CIDR: "10.9.0.0/24",
		AllocationPools: []subnets.AllocationPool{{Start: "10.9.0.2", End: "10.9.0.251"}},
	}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	return n.ID
}

// createConcurrently creates n ports at once and returns the ports made
// and the failures' status codes and fault types.
func createConcurrently(t *testing.T, c *gophercloud.ServiceClient, netID string, n int) ([]ports.Port, map[string]int) {
	var mu sync.Mutex
	var made []ports.Port
	faults := map[string]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := ports.Create(context.Background(), c, ports.CreateOpts{NetworkID: netID}).Extract()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				faults[faultKey(err)]++
				return
			}
			made = append(made, *p)
		}()
	}
	wg.Wait()
	return made, faults
}

func faultKey(err error) string {
	var e gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &e) {
		return http.StatusText(e.Actual) + " " + faultType(e.Body)
	}
	return err.Error()
}

func assertUnique(t *testing.T, made []ports.Port) {
	t.Helper()
	ips, macs := map[string]string{}, map[string]string{}
	for _, p := range made {
		if len(p.FixedIPs) != 1 {
			t.Fatalf("port %s has fixed_ips %v, want one", p.ID, p.FixedIPs)
		}
		ip := p.FixedIPs[0].IPAddress
		if other, dup := ips[ip]; dup {
			t.Errorf("ports %s and %s both hold %s", other, p.ID, ip)
		}
		ips[ip] = p.ID
		if other, dup := macs[p.MACAddress]; dup {
			t.Errorf("ports %s and %s both hold MAC %s", other, p.ID, p.MACAddress)
		}
		macs[p.MACAddress] = p.ID
	}
}

func TestConcurrentPortCreates(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		t.Run("200-of-250", func(t *testing.T) {
			c := e.Client("p1", false)
			netID := poolOf250(t, c)
			made, faults := createConcurrently(t, c, netID, 200)
			if len(made) != 200 || len(faults) != 0 {
				t.Fatalf("%d ports made, failures %v; want 200 and none", len(made), faults)
			}
			assertUnique(t, made)
		})
		t.Run("300-of-250", func(t *testing.T) {
			c := e.Client("p2", false)
			netID := poolOf250(t, c)
			made, faults := createConcurrently(t, c, netID, 300)
			if len(made) != 250 {
				t.Errorf("%d ports made, want the 250 free addresses", len(made))
			}
			if want := "Conflict IpAddressGenerationFailure"; faults[want] != 50 || len(faults) != 1 {
				t.Errorf("failures %v, want 50 x %s", faults, want)
			}
			assertUnique(t, made)
			// What the API lists is what was made: nothing half-written.
			all, err := ports.List(c, ports.ListOpts{NetworkID: netID}).AllPages(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			listed, _ := ports.ExtractPorts(all)
			if len(listed) != len(made) {
				t.Errorf("list shows %d ports, %d were made", len(listed), len(made))
			}
		})
	})
}

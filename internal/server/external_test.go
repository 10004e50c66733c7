package server_test

import (
	"context"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"muon/internal/server/servertest"
)

// TestExternalNetworkSubnetsHidden: an external network is visible to every
// project, its subnets only when it is also shared (tempest's
// test_external_network_visibility).
func TestExternalNetworkSubnetsHidden(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		ctx := context.Background()
		admin, other := e.Admin(), e.Client("p2", false)
		yes := true
		n, err := networks.Create(ctx, admin, external.CreateOptsExt{
			CreateOptsBuilder: networks.CreateOpts{Name: "public"}, External: &yes}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		s, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: n.ID, IPVersion: gophercloud.IPv4, CIDR: "172.24.4.0/24"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := networks.Get(ctx, other, n.ID).Extract(); err != nil {
			t.Errorf("another project reading the external network: %v", err)
		}
		pages, err := subnets.List(other, subnets.ListOpts{NetworkID: n.ID}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if l, _ := subnets.ExtractSubnets(pages); len(l) != 0 {
			t.Errorf("another project lists the external network's subnets: %v", l)
		}
		if _, err := subnets.Get(ctx, other, s.ID).Extract(); faultKey(err) != "Not Found SubnetNotFound" {
			t.Errorf("another project reading the external subnet: %v, want 404", err)
		}
		// Shared too: now the subnets show.
		if _, err := networks.Update(ctx, admin, n.ID, networks.UpdateOpts{Shared: &yes}).Extract(); err != nil {
			t.Fatal(err)
		}
		if _, err := subnets.Get(ctx, other, s.ID).Extract(); err != nil {
			t.Errorf("the subnet of a shared external network: %v", err)
		}
	})
}

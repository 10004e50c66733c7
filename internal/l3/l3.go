// Package l3 is Muon's L3 service plugin, after Neutron's l3_db,
// extraroute_db, l3_gwmode_db and the port forwarding plugin: routers with
// their gateways, interfaces and routes, floating IPs and their port
// forwardings. Its records live in the core plugin's store and its ports
// are made by the core plugin (ml2), inside the same transaction as the
// rest of a request's work.
package l3

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"

	"muon/internal/agents"
	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/ml2"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/store"
)

// Device owners of the ports the L3 plugin makes.
const (
	ownerInterface = "network:router_interface"
	ownerGateway   = "network:router_gateway"
	ownerFIP       = "network:floatingip"
)

// Plugin is the L3 service plugin.
type Plugin struct {
	core *ml2.Plugin
	// maxRoutes is Neutron's max_routes.
	maxRoutes int
	// agents are the L3 agents routers are scheduled on (nil: none).
	agents *agents.Plugin
	cfg    Config
	log    *slog.Logger
}

// New builds the L3 plugin over the core plugin and subscribes to its
// port and network deletions.
func New(core *ml2.Plugin) *Plugin {
	p := &Plugin{core: core, maxRoutes: 30, cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler)}
	ev := core.Events()
	ev.PortDelete.Subscribe(func(ctx context.Context, tx store.Tx, e ml2.PortEvent) error { return p.portDeleted(ctx, tx, e.Port) })
	ev.NetworkDelete.Subscribe(func(ctx context.Context, tx store.Tx, e ml2.NetworkEvent) error {
		return p.networkDeleted(ctx, tx, e.Network)
	})
	ev.PortCreate.Subscribe(func(ctx context.Context, tx store.Tx, e ml2.PortEvent) error { return routerDevice(ctx, tx, e.Port) })
	ev.PortUpdate.Subscribe(func(ctx context.Context, tx store.Tx, e ml2.PortEvent) error {
		if err := routerDevice(ctx, tx, e.Port); err != nil {
			return err
		}
		return p.portRebound(ctx, tx, e)
	})
	ev.RBACPolicyDelete.Subscribe(p.externalPolicyChange)
	ev.RBACPolicyUpdate.Subscribe(p.externalPolicyChange)
	return p
}

// routerDevice refuses a router interface port whose device_id is another
// project's router, unless an admin makes it (Neutron's
// DeviceIDNotOwnedByTenant).
func routerDevice(ctx context.Context, tx store.Tx, port resource.Doc) error {
	if resource.Str(port["device_owner"]) != ownerInterface || auth.FromContext(ctx).Admin() {
		return nil
	}
	dev := resource.Str(port["device_id"])
	if dev == "" {
		return nil
	}
	r, err := tx.Get(ctx, "router", dev)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.ProjectID != resource.Str(port["project_id"]) {
		return fault.Conflict("DeviceIDNotOwnedByTenant", "The following device_id %s is not owned by your tenant or matches another tenants router.", dev)
	}
	return nil
}

// externalPolicyChange refuses to delete or retarget an access_as_external
// policy while a router of a project that would lose the network keeps
// its gateway there (Neutron's RbacPolicyInUse).
func (p *Plugin) externalPolicyChange(ctx context.Context, tx store.Tx, e ml2.RBACEvent) error {
	if resource.Str(e.Policy["action"]) != "access_as_external" {
		return nil
	}
	netID, target := resource.Str(e.Policy["object_id"]), resource.Str(e.Policy["target_tenant"])
	gs, err := tx.RBACGrants(ctx, store.RBACGrant{ObjectID: netID, Action: "access_as_external"})
	if err != nil {
		return err
	}
	keeps := map[string]bool{resource.Str(e.Network["project_id"]): true}
	if e.NewTarget != "" {
		keeps[e.NewTarget] = true
	}
	for _, g := range gs {
		if g.PolicyID == resource.Str(e.Policy["id"]) {
			continue
		}
		if g.Target == "*" {
			return nil // everyone keeps it
		}
		keeps[g.Target] = true
	}
	recs, err := tx.List(ctx, store.Filter{Kind: "router"})
	if err != nil {
		return err
	}
	for i := range recs {
		if keeps[recs[i].ProjectID] || target != "*" && recs[i].ProjectID != target {
			continue
		}
		d, err := record.Decode(&recs[i])
		if err != nil {
			return err
		}
		if gw, _ := d["external_gateway_info"].(map[string]any); gw != nil && resource.Str(gw["network_id"]) == netID {
			return ml2.ErrPolicyInUse(netID, "There are routers attached to this network that depend on this policy for access.")
		}
	}
	return nil
}

func routerNotFound(id string) *fault.Error {
	return fault.NotFound("RouterNotFound", "Router %s could not be found", id)
}

func fipNotFound(id string) *fault.Error {
	return fault.NotFound("FloatingIPNotFound", "Floating IP %s could not be found", id)
}

// badRequest is neutron-lib's BadRequest: "Bad <resource> request: msg".
func badRequest(res, format string, args ...any) *fault.Error {
	f := fault.New(400, "BadRequest", format, args...)
	f.Message = "Bad " + res + " request: " + f.Message + "."
	return f
}

// portDeleted refuses to delete a router's or floating IP's port through
// the port API (L3PortInUse) and drops what refers to a deleted port: its
// floating IP associations and port forwardings.
func (p *Plugin) portDeleted(ctx context.Context, tx store.Tx, port resource.Doc) error {
	id, owner, device := resource.Str(port["id"]), resource.Str(port["device_owner"]), resource.Str(port["device_id"])
	kind := ""
	switch owner {
	case ownerInterface, ownerGateway:
		kind = "router"
	case ownerFIP:
		kind = "floatingip"
	}
	if kind != "" && device != "" {
		if _, err := tx.Get(ctx, kind, device); err == nil {
			return fault.Conflict("L3PortInUse", "Port %s has owner %s and therefore cannot be deleted directly via the port API.", id, owner)
		}
	}
	fips, err := tx.List(ctx, store.Filter{Kind: "floatingip", Parents: []string{id}})
	if err != nil {
		return err
	}
	for i := range fips {
		d, err := record.Decode(&fips[i])
		if err != nil {
			return err
		}
		if err := p.unlink(ctx, tx, d); err != nil {
			return err
		}
		fips[i].ParentID = ""
		if err := p.core.SaveTx(ctx, tx, &fips[i], d); err != nil {
			return err
		}
	}
	pfs, err := tx.List(ctx, store.Filter{Kind: "port_forwarding"})
	if err != nil {
		return err
	}
	for i := range pfs {
		d, err := record.Decode(&pfs[i])
		if err != nil {
			return err
		}
		if resource.Str(d["internal_port_id"]) == id {
			if err := p.deletePF(ctx, tx, &pfs[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// networkDeleted releases the floating IPs of a network being deleted
// that are associated with nothing (Neutron's
// delete_disassociated_floatingips); associated ones keep their ports, so
// the network stays in use.
func (p *Plugin) networkDeleted(ctx context.Context, tx store.Tx, network resource.Doc) error {
	ports, err := tx.List(ctx, store.Filter{Kind: "port", Parents: []string{resource.Str(network["id"])}})
	if err != nil {
		return err
	}
	for i := range ports {
		pd, err := record.Decode(&ports[i])
		if err != nil {
			return err
		}
		if resource.Str(pd["device_owner"]) != ownerFIP || resource.Str(pd["device_id"]) == "" {
			continue
		}
		rec, err := tx.Get(ctx, "floatingip", resource.Str(pd["device_id"]))
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		d, err := record.Decode(rec)
		if err != nil {
			return err
		}
		if d["port_id"] != nil || d["router_id"] != nil {
			continue
		}
		if err := p.deleteFIP(ctx, tx, d); err != nil {
			return err
		}
	}
	return nil
}

// fixedIPs reads a port's fixed_ips.
func fixedIPs(port resource.Doc) []fixedIP {
	l, _ := port["fixed_ips"].([]any)
	out := make([]fixedIP, 0, len(l))
	for _, x := range l {
		m, _ := x.(map[string]any)
		ip, err := netip.ParseAddr(resource.Str(m["ip_address"]))
		if err != nil {
			continue
		}
		out = append(out, fixedIP{SubnetID: resource.Str(m["subnet_id"]), IP: ip})
	}
	return out
}

type fixedIP struct {
	SubnetID string
	IP       netip.Addr
}

func subnetIDs(port resource.Doc) []string {
	var out []string
	for _, f := range fixedIPs(port) {
		if !slices.Contains(out, f.SubnetID) {
			out = append(out, f.SubnetID)
		}
	}
	return out
}

// subnetCIDR reads a subnet's prefix, whoever owns it.
func subnetCIDR(ctx context.Context, tx store.Tx, id string) (netip.Prefix, resource.Doc, error) {
	_, d, err := record.Get(ctx, tx, "subnet", id, false, fault.NotFound("SubnetNotFound", "Subnet %s could not be found.", id))
	if err != nil {
		return netip.Prefix{}, nil, err
	}
	pfx, err := netip.ParsePrefix(resource.Str(d["cidr"]))
	return pfx, d, err
}

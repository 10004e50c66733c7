package ml2

import (
	"context"
	"sync"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/resource"
	"muon/internal/stdattr"
	"muon/internal/store"
)

// The surface the L3 plugin (internal/l3) works through: its routers and
// floating IPs live in ml2's store and make their ports with ml2's own
// machinery, inside one transaction with the rest of a request's work.

// Update runs fn in one read-write store transaction.
func (p *Plugin) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	return p.st.Update(ctx, fn)
}

// View runs fn in a read-only store transaction.
func (p *Plugin) View(ctx context.Context, fn func(tx store.Tx) error) error {
	return p.st.View(ctx, fn)
}

// Stamp fills a new document's standard attributes (id, project,
// timestamps, revision, tags).
func (p *Plugin) Stamp(ctx context.Context, d resource.Doc, tags bool) error {
	return stdattr.Stamp(ctx, d, p.now(), tags)
}

// Touch bumps a changed document's revision and update time.
func (p *Plugin) Touch(d resource.Doc) { stdattr.Touch(d, p.now()) }

// CheckQuota refuses one more resource of a quota name for a project.
func (p *Plugin) CheckQuota(ctx context.Context, tx store.Tx, name, project string) error {
	return p.checkQuota(ctx, tx, name, project)
}

// Visible reads a record the caller may see, or answers nf.
func Visible(ctx context.Context, tx store.Tx, kind, id string, lock bool, nf *fault.Error) (*store.Record, resource.Doc, error) {
	return getVisible(ctx, tx, kind, id, lock, nf)
}

// OwnerOnly refuses changes by callers who may see but not own a record.
func OwnerOnly(ctx context.Context, r *store.Record, action string) error {
	return ownerOnly(ctx, r, action)
}

// PortTx reads a port the caller may see (PortNotFound otherwise).
func (p *Plugin) PortTx(ctx context.Context, tx store.Tx, id string, lock bool) (*store.Record, resource.Doc, error) {
	return getVisible(ctx, tx, "port", id, lock, portNotFound(id))
}

// SubnetTx reads a subnet the caller may see (SubnetNotFound otherwise).
func (p *Plugin) SubnetTx(ctx context.Context, tx store.Tx, id string) (*store.Record, resource.Doc, error) {
	return getVisible(ctx, tx, "subnet", id, false, subnetNotFound(id))
}

// NetworkTx reads a network the caller may see (NetworkNotFound
// otherwise); router:external is true for an access_as_external grant.
func (p *Plugin) NetworkTx(ctx context.Context, tx store.Tx, id string) (*store.Record, resource.Doc, error) {
	return getVisible(ctx, tx, "network", id, false, networkNotFound(id))
}

var portRes = sync.OnceValue(func() *resource.Resource { return PortResource().Init() })

// CreatePortTx makes a port on behalf of the service (a router's
// interface or gateway, a floating IP's address) for project, "" for
// ports no project owns: the caller's rights on the network are not
// asked, defaults are those of the API and no quota counts a port of no
// project.
func (p *Plugin) CreatePortTx(ctx context.Context, tx store.Tx, d resource.Doc, project string) (resource.Doc, error) {
	return p.createServicePort(ctx, tx, d, project, false)
}

// CreateNetworkPortTx makes one of a network's own service ports (its
// DHCP port) for the network's project: as CreatePortTx, but no quota
// refuses it, as Neutron's agents create theirs past the API's quota
// check (it counts among the project's ports all the same), and its
// addresses are the lowest free of the pools (where operators look for
// the DHCP server, out of the way of addresses picked by hand higher up).
func (p *Plugin) CreateNetworkPortTx(ctx context.Context, tx store.Tx, d resource.Doc, project string) (resource.Doc, error) {
	return p.createServicePort(ctx, tx, d, project, true)
}

type (
	noQuotaKey struct{}
	lowestKey  struct{}
)

func (p *Plugin) createServicePort(ctx context.Context, tx store.Tx, d resource.Doc, project string, network bool) (resource.Doc, error) {
	d = resource.Clone(d)
	if _, ok := d["security_groups"]; !ok {
		d["security_groups"] = []any{}
	}
	if err := portRes().PrepareCreate(d, true); err != nil {
		return nil, err
	}
	delete(d, "project_id")
	sys := auth.NewContext(ctx, &auth.Credentials{ProjectID: project, Roles: []string{"admin"}})
	if network {
		sys = context.WithValue(context.WithValue(sys, noQuotaKey{}, true), lowestKey{}, true)
	}
	if err := p.createPort(sys, tx, d); err != nil {
		return nil, err
	}
	return d, nil
}

// DeletePortTx removes a service port; its addresses and MAC go with it.
func (p *Plugin) DeletePortTx(ctx context.Context, tx store.Tx, id string) error {
	return tx.Delete(ctx, "port", id)
}

// SaveTx writes a changed document back, its revision bumped.
func (p *Plugin) SaveTx(ctx context.Context, tx store.Tx, rec *store.Record, d resource.Doc) error {
	stdattr.Touch(d, p.now())
	b, err := encode(d)
	if err != nil {
		return err
	}
	rec.Doc = b
	return tx.Update(ctx, rec)
}

// SavePortTx writes a port changed by a service back: what the core
// derives from its addresses (dns_assignment) follows them, its revision
// is bumped.
func (p *Plugin) SavePortTx(ctx context.Context, tx store.Tx, rec *store.Record, d resource.Doc) error {
	p.setDNSAssignment(d)
	return p.SaveTx(ctx, tx, rec, d)
}

// LockOwned reads and locks a record for its owner's update or delete,
// with If-Match (see lockOwned).
func LockOwned(ctx context.Context, tx store.Tx, kind, id, action string, ifRev int64, nf *fault.Error) (*store.Record, resource.Doc, error) {
	return lockOwned(ctx, tx, kind, id, action, ifRev, nf)
}

package secgroup

import (
	"context"
	"errors"
	"slices"
	"strings"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/ml2"
	"muon/internal/resource"
	"muon/internal/store"
)

// Ports gives the core plugin's ports their security groups, on its port
// create and update events.
type Ports struct{ *Plugin }

// subscribe hooks the groups of ports into the core's port events.
func (p Ports) subscribe(ev *ml2.Events) {
	ev.PortCreate.Subscribe(func(ctx context.Context, tx store.Tx, e ml2.PortEvent) error { return p.created(ctx, tx, e.Port) })
	ev.PortUpdate.Subscribe(func(ctx context.Context, tx store.Tx, e ml2.PortEvent) error {
		return p.updated(ctx, tx, e.Patch, e.Old, e.Port)
	})
}

// trustedPort tells whether a port is the network's own (device_owner
// network:*), which neutron gives no security groups.
func trustedPort(d resource.Doc) bool {
	return strings.HasPrefix(resource.Str(d["device_owner"]), "network:")
}

func errPortSecurityRequired() error {
	return fault.New(400, "PortSecurityAndIPRequiredForSecurityGroups", "Port security must be enabled and port must have an IP address in order to use security groups.")
}

// created settles a new port's groups, after neutron: none for the
// network's own ports, none allowed without port security, the project's
// default group when none are given.
func (p Ports) created(ctx context.Context, tx store.Tx, d resource.Doc) error {
	v, given := d["security_groups"]
	ids := resource.Uniq(resource.Strings(v))
	switch {
	case trustedPort(d):
		ids = nil
	case d["port_security_enabled"] == false:
		if len(ids) > 0 {
			return errPortSecurityRequired()
		}
	case !given:
		def, err := p.ensureDefault(ctx, tx, resource.Str(d["project_id"]))
		if err != nil {
			return err
		}
		if def != "" {
			ids = []string{def}
		}
	}
	if err := p.Bind(ctx, tx, resource.Str(d["id"]), resource.Str(d["project_id"]), ids); err != nil {
		return err
	}
	d["security_groups"] = resource.List(ids)
	return nil
}

// updated applies a port update's groups: without port security a port
// takes none and must shed the ones it has
// (PortSecurityPortHasSecurityGroup).
func (p Ports) updated(ctx context.Context, tx store.Tx, patch, old, merged resource.Doc) error {
	v, inPatch := patch["security_groups"]
	ids := resource.Uniq(resource.Strings(v))
	if merged["port_security_enabled"] == false && !trustedPort(merged) {
		if len(ids) > 0 {
			return errPortSecurityRequired()
		}
		if !inPatch && len(resource.Strings(old["security_groups"])) > 0 {
			return fault.Conflict("PortSecurityPortHasSecurityGroup", "Port has security group associated. Cannot disable port security or IP address until security group is removed.")
		}
	}
	if !inPatch {
		return nil
	}
	if trustedPort(merged) {
		ids = nil
	}
	if err := p.Bind(ctx, tx, resource.Str(old["id"]), resource.Str(old["project_id"]), ids); err != nil {
		return err
	}
	merged["security_groups"] = resource.List(ids)
	return nil
}

// Bind makes ids a port's security groups: each must exist and belong to
// the port's project (any, for admins), and stateful and stateless groups
// do not mix. The references keep the groups while the port uses them.
func (p Ports) Bind(ctx context.Context, tx store.Tx, portID, project string, ids []string) error {
	admin := auth.FromContext(ctx).Admin()
	var missing []string
	stateful := map[bool]bool{}
	for _, id := range ids {
		rec, err := tx.Get(ctx, kindGroup, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && !admin && rec.ProjectID != project {
			missing = append(missing, id)
			continue
		}
		if err != nil {
			return err
		}
		d, err := decode(rec)
		if err != nil {
			return err
		}
		stateful[d["stateful"] != false] = true
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return groupNotFound(strings.Join(missing, ", "))
	}
	if len(stateful) > 1 {
		return fault.Conflict("SecurityGroupConflict", "Error Cannot apply both stateful and stateless security groups on the same port at the same time while attempting the operation.")
	}
	if err := tx.DropRefs(ctx, refPortGroup, portID); err != nil {
		return err
	}
	for _, id := range ids {
		if err := tx.AddRef(ctx, refPortGroup, portID, id); err != nil {
			return err
		}
	}
	return nil
}

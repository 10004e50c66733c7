package ml2

import (
	"context"
	"slices"
	"strings"

	"muon/internal/fault"
	"muon/internal/resource"
	"muon/internal/store"
)

// SecurityGroups is what ports need of the security group plugin.
type SecurityGroups interface {
	// Default returns a project's default group, made if it has none; ""
	// when the caller may not make one for that project.
	Default(ctx context.Context, tx store.Tx, project string) (string, error)
	// Bind makes ids a port's groups, checking that each exists and
	// belongs to the port's project (404 SecurityGroupNotFound).
	Bind(ctx context.Context, tx store.Tx, portID, project string, ids []string) error
}

// UseSecurityGroups gives ports security groups; without, security_groups
// is only stored.
func (p *Plugin) UseSecurityGroups(sg SecurityGroups) { p.sg = sg }

// trustedPort tells whether a port is the network's own (device_owner
// network:*), which neutron gives no security groups.
func trustedPort(d resource.Doc) bool {
	return strings.HasPrefix(resource.Str(d["device_owner"]), "network:")
}

func errPortSecurityRequired() error {
	return fault.New(400, "PortSecurityAndIPRequiredForSecurityGroups", "Port security must be enabled and port must have an IP address in order to use security groups.")
}

// createSecurityGroups settles a new port's groups, after neutron: none for
// the network's own ports, none allowed without port security, the
// project's default group when none are given.
func (p *Plugin) createSecurityGroups(ctx context.Context, tx store.Tx, d resource.Doc) error {
	v, given := d["security_groups"]
	ids := uniq(resource.Strings(v))
	if p.sg == nil {
		d["security_groups"] = resource.List(ids)
		return nil
	}
	switch {
	case trustedPort(d):
		ids = nil
	case d["port_security_enabled"] == false:
		if len(ids) > 0 {
			return errPortSecurityRequired()
		}
	case !given:
		def, err := p.sg.Default(ctx, tx, resource.Str(d["project_id"]))
		if err != nil {
			return err
		}
		if def != "" {
			ids = []string{def}
		}
	}
	if err := p.sg.Bind(ctx, tx, resource.Str(d["id"]), resource.Str(d["project_id"]), ids); err != nil {
		return err
	}
	d["security_groups"] = resource.List(ids)
	return nil
}

// updateSecurityGroups applies a port update's groups: without port
// security a port takes none and must shed the ones it has
// (PortSecurityPortHasSecurityGroup).
func (p *Plugin) updateSecurityGroups(ctx context.Context, tx store.Tx, patch, old, merged resource.Doc) error {
	v, inPatch := patch["security_groups"]
	ids := uniq(resource.Strings(v))
	if p.sg == nil {
		if inPatch {
			merged["security_groups"] = resource.List(ids)
		}
		return nil
	}
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
	if err := p.sg.Bind(ctx, tx, resource.Str(old["id"]), resource.Str(old["project_id"]), ids); err != nil {
		return err
	}
	merged["security_groups"] = resource.List(ids)
	return nil
}

func uniq(l []string) []string {
	out := make([]string, 0, len(l))
	for _, s := range l {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

package secgroup

import (
	"context"
	"errors"
	"slices"
	"strings"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/store"
)

// Ports is what the core plugin's ports use of security groups (it
// implements ml2.SecurityGroups).
type Ports struct{ *Plugin }

// Default returns a project's default group, made if it has none; "" when
// the caller may not make one for that project.
func (p Ports) Default(ctx context.Context, tx store.Tx, project string) (string, error) {
	return p.ensureDefault(ctx, tx, project)
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

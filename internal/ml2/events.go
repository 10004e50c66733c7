package ml2

import (
	"context"

	"muon/internal/resource"
	"muon/internal/store"
)

// Hooks are one lifecycle event's subscribers. They run in the order they
// subscribed, inside the transaction that makes the change, and the first
// error vetoes it: the transaction rolls back and the error (a fault) is
// the request's answer. Features subscribe while a server is built, before
// it serves.
type Hooks[T any] struct {
	fns []func(ctx context.Context, tx store.Tx, ev T) error
}

// Subscribe adds fn to the event's subscribers.
func (h *Hooks[T]) Subscribe(fn func(ctx context.Context, tx store.Tx, ev T) error) {
	h.fns = append(h.fns, fn)
}

func (h *Hooks[T]) run(ctx context.Context, tx store.Tx, ev T) error {
	for _, fn := range h.fns {
		if err := fn(ctx, tx, ev); err != nil {
			return err
		}
	}
	return nil
}

// PortEvent is a port being created, updated or deleted.
type PortEvent struct {
	// Port is the port as it will be saved (a create or update subscriber
	// may set the attributes it owns on it), or the port being deleted.
	Port resource.Doc
	// Old is the port before an update, Patch what the update asked
	// for; both nil on create and delete.
	Old, Patch resource.Doc
	// Network is the port's network on create (nil otherwise).
	Network resource.Doc
}

// NetworkEvent is a network being created, updated or deleted.
type NetworkEvent struct {
	// Network is the network as saved on create and update, before its
	// subnets and segments go on delete.
	Network resource.Doc
	// Patch is what an update asked for.
	Patch resource.Doc
}

// SubnetEvent is a subnet being created, updated or deleted.
type SubnetEvent struct {
	// Subnet is the subnet as saved on create and update, the subnet
	// going on delete (its addresses still held).
	Subnet resource.Doc
	// Patch is what an update asked for.
	Patch resource.Doc
}

// RBACEvent is an RBAC policy on a network being deleted or given
// another target: a feature whose records depend on the access it grants
// (a router's gateway on an external network) vetoes it while they do.
type RBACEvent struct {
	Policy resource.Doc
	// Network is the policy's network, locked for the transaction.
	Network resource.Doc
	// NewTarget is an update's new target_tenant; "" on delete.
	NewTarget string
}

// Events are the core's typed lifecycle events.
type Events struct {
	PortCreate, PortUpdate, PortDelete          Hooks[PortEvent]
	NetworkCreate, NetworkUpdate, NetworkDelete Hooks[NetworkEvent]
	SubnetCreate, SubnetUpdate, SubnetDelete    Hooks[SubnetEvent]
	RBACPolicyUpdate, RBACPolicyDelete          Hooks[RBACEvent]
}

// Events are the core's lifecycle events, for features to subscribe to.
func (p *Plugin) Events() *Events { return &p.events }

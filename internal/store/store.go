// Package store keeps Muon's state in a SQL database. Resources are stored
// as JSON documents with the columns that scoping and lookups need; the
// invariants (unique IP per subnet, unique MAC per network, a segmentation
// ID handed out once) are tables whose keys the database enforces inside the
// same transaction as the resource change.
package store

import (
	"context"
	"errors"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrUnavailable wraps a failure of the database itself (down, its disk
// full, read-only): the request may succeed later, and the API answers 503.
var ErrUnavailable = errors.New("store: the database is unavailable")

// ErrConflict is returned when a write breaks a uniqueness constraint.
var ErrConflict = errors.New("store: conflict")

// Record is one stored resource.
type Record struct {
	Kind      string // "network"
	ID        string
	ProjectID string
	ParentID  string // the owning resource (a port's network), or ""
	Shared    bool   // visible to every project
	Doc       []byte // the resource as JSON
}

// Filter selects records of one kind. Empty fields do not filter.
type Filter struct {
	Kind     string
	IDs      []string
	Parents  []string
	Projects []string
	// OrShared widens Projects to shared records too.
	OrShared bool
	// GrantedTo widens Projects to the records an RBAC grant shares with
	// this project: a grant's object or, with GrantedParent, the records
	// whose parent it is (a network's subnets).
	GrantedTo     string
	GrantedParent bool
	// ParentOwner widens Projects to the records whose parent, of kind
	// ParentKind, belongs to this project (ports on a project's network).
	ParentOwner, ParentKind string
	// After keeps records whose id sorts after it; Limit, when above
	// zero, bounds how many List returns (in id order): a list read a
	// page at a time.
	After string
	Limit int
}

// RBACGrant is what one RBAC policy grants: an action on an object to a
// target project ("*" for every project). In a filter, empty fields do
// not filter.
type RBACGrant struct {
	PolicyID   string
	ObjectType string
	ObjectID   string
	Target     string
	Action     string
}

// IPAllocation is one address held by a port on a subnet.
type IPAllocation struct {
	SubnetID  string
	NetworkID string
	IP        string
	PortID    string
}

// SegmentAllocation is one segmentation ID held by a network segment.
type SegmentAllocation struct {
	NetworkType     string
	PhysicalNetwork string
	SegmentationID  int64
	SegmentID       string
	NetworkID       string
}

// Grant is one role held by an actor (a user) on a target (a project, a
// domain or the system). In a filter, empty fields do not filter.
type Grant struct {
	ActorID  string
	TargetID string
	RoleID   string
}

// Tx is a transaction: every change a request makes happens in one.
type Tx interface {
	Get(ctx context.Context, kind, id string) (*Record, error)
	// Lock reads a record and, where the database needs it, locks it for
	// the rest of the transaction, serialising writers that depend on it.
	Lock(ctx context.Context, kind, id string) (*Record, error)
	// LockShared reads a record and holds it against Lock (not against
	// other LockShared) for the rest of the transaction: creates that
	// depend on a record's sharing take it, the change of that sharing
	// takes Lock, and the two never interleave.
	LockShared(ctx context.Context, kind, id string) (*Record, error)
	List(ctx context.Context, f Filter) ([]Record, error)
	Count(ctx context.Context, f Filter) (int, error)
	Insert(ctx context.Context, r *Record) error
	// Ensure inserts r unless a record with its id exists.
	Ensure(ctx context.Context, r *Record) error
	Update(ctx context.Context, r *Record) error
	// Observe writes r back with only observed state changed (a port's
	// status as its host's agent reports it): its change is op "status",
	// which the agents' desired state does not follow.
	Observe(ctx context.Context, r *Record) error
	Delete(ctx context.Context, kind, id string) error

	// ClaimIP records an address; false means it is already held.
	ClaimIP(ctx context.Context, a IPAllocation) (bool, error)
	ReleaseIP(ctx context.Context, subnetID, ip string) error
	// IPs lists the allocations on the given subnets (all if none given
	// is not allowed: name at least one).
	IPs(ctx context.Context, subnetIDs ...string) ([]IPAllocation, error)
	PortIPs(ctx context.Context, portID string) ([]IPAllocation, error)

	// ClaimMAC records a MAC address on a network; false means taken.
	ClaimMAC(ctx context.Context, networkID, mac, portID string) (bool, error)
	ReleaseMAC(ctx context.Context, networkID, mac string) error

	// ClaimSegment records a segmentation ID; false means taken.
	ClaimSegment(ctx context.Context, a SegmentAllocation) (bool, error)
	ReleaseSegment(ctx context.Context, segmentID string) error
	// SegmentIDs lists the IDs held for a type and physical network.
	SegmentIDs(ctx context.Context, networkType, physnet string) ([]int64, error)

	// ClaimName records a name, unique among names of a kind in a scope
	// (users in a domain), for the record id; false means taken.
	ClaimName(ctx context.Context, kind, scope, name, id string) (bool, error)
	ReleaseName(ctx context.Context, kind, scope, name string) error
	// NameID returns the id holding a name, or ErrNotFound.
	NameID(ctx context.Context, kind, scope, name string) (string, error)

	// AddGrant records a role assignment; false means it is already held.
	AddGrant(ctx context.Context, g Grant) (bool, error)
	// RemoveGrant deletes a role assignment, or returns ErrNotFound.
	RemoveGrant(ctx context.Context, g Grant) error
	// Grants lists the role assignments matching f.
	Grants(ctx context.Context, f Grant) ([]Grant, error)

	// AddRBACGrant records a policy's grant; false means an equal grant
	// (object, target, action) is held by another policy.
	AddRBACGrant(ctx context.Context, g RBACGrant) (bool, error)
	// RetargetRBACGrant moves a policy's grant to another target; false
	// means an equal grant is held by another policy.
	RetargetRBACGrant(ctx context.Context, policyID, target string) (bool, error)
	// RBACGrants lists the grants matching f.
	RBACGrants(ctx context.Context, f RBACGrant) ([]RBACGrant, error)

	// AddRef records that record from refers to record to in a relation
	// kind ("port_security_group"); while it is held, to cannot be
	// deleted, and it goes with from. Adding a held reference is a no-op.
	AddRef(ctx context.Context, kind, from, to string) error
	// DropRefs deletes from's references of a kind.
	DropRefs(ctx context.Context, kind, from string) error
	// RefsTo lists the records referring to to in a kind, sorted.
	RefsTo(ctx context.Context, kind, to string) ([]string, error)
}

// Store runs transactions.
type Store interface {
	// Update runs fn in a read-write transaction, committing if it returns
	// nil. fn may run more than once when the database asks for a retry.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	Close() error
}

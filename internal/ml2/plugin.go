// Package ml2 is Muon's core plugin, after Neutron's ML2: networks with
// their segments (type drivers), subnets with IPAM, subnet pools and address
// scopes, and ports. Every operation runs inside one store transaction; the
// store's keys guard addresses, MACs and segmentation IDs.
package ml2

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/stdattr"
	"muon/internal/store"
)

// Config is the core plugin's configuration.
type Config struct {
	Types TypeConfig
	// TypeDrivers names the type drivers to load (default: all compiled).
	TypeDrivers []string
	// TenantNetworkTypes is the order in which tenant networks get a type.
	TenantNetworkTypes []string
	// BaseMAC is Neutron's base_mac: zero octets are randomised.
	BaseMAC string
	// DNSDomain is the domain of ports' dns_assignment fqdn.
	DNSDomain string
	// MaxDNSNameservers and MaxSubnetHostRoutes bound subnet lists.
	MaxDNSNameservers   int
	MaxSubnetHostRoutes int
	// MaxFixedIPsPerPort bounds a port's fixed_ips.
	MaxFixedIPsPerPort int
	// AllowOverlappingIPs lets subnets of different networks overlap.
	AllowOverlappingIPs bool
}

// DefaultConfig is what `muon up` runs with.
func DefaultConfig() Config {
	return Config{
		Types: TypeConfig{
			GlobalPhysnetMTU: 1500,
			FlatNetworks:     []string{"*"},
			VLANRanges:       map[string][]Range{"physnet1": {{1000, 2999}}},
			VNIRanges:        []Range{{1, 65535}},
			GeneveRanges:     []Range{{1, 65535}},
			GeneveMaxHeader:  30,
		},
		TenantNetworkTypes:  []string{"vxlan"},
		BaseMAC:             "fa:16:3e:00:00:00",
		DNSDomain:           "openstacklocal.",
		MaxDNSNameservers:   5,
		MaxSubnetHostRoutes: 20,
		MaxFixedIPsPerPort:  5,
		AllowOverlappingIPs: true,
	}
}

// Plugin is the core plugin.
type Plugin struct {
	st    store.Store
	log   *slog.Logger
	cfg   Config
	now   func() time.Time
	rand  io.Reader
	types map[string]TypeDriver
	quota QuotaChecker
	// events are the lifecycle events features subscribe to.
	events Events
	// binder binds ports to hosts (internal/agents).
	binder Binder
}

// QuotaChecker refuses creates that would take a project past its quota.
type QuotaChecker interface {
	Check(ctx context.Context, tx store.Tx, name, project string, n int) error
}

// UseQuotas makes creates check quotas (none are checked without).
func (p *Plugin) UseQuotas(q QuotaChecker) { p.quota = q }

func (p *Plugin) checkQuota(ctx context.Context, tx store.Tx, name, project string) error {
	// Service ports (router gateways, floating IPs) belong to no project.
	if p.quota == nil || project == "" || ctx.Value(noQuotaKey{}) != nil {
		return nil
	}
	return p.quota.Check(ctx, tx, name, project, 1)
}

// New builds the core plugin and its type drivers.
func New(cfg Config, st store.Store, log *slog.Logger) (*Plugin, error) {
	p := &Plugin{st: st, log: log, cfg: cfg, now: time.Now, rand: rand.Reader, types: map[string]TypeDriver{}}
	names := cfg.TypeDrivers
	if len(names) == 0 {
		names = TypeNames()
	}
	for _, n := range names {
		f, ok := typeRegistry[n]
		if !ok {
			return nil, fmt.Errorf("ml2: unknown type driver %q (have %v)", n, TypeNames())
		}
		d, err := f(cfg.Types)
		if err != nil {
			return nil, fmt.Errorf("ml2: type driver %s: %w", n, err)
		}
		p.types[n] = d
	}
	for _, t := range cfg.TenantNetworkTypes {
		if _, ok := p.types[t]; !ok {
			return nil, fmt.Errorf("ml2: tenant network type %q has no type driver", t)
		}
	}
	return p, nil
}

func encode(d resource.Doc) ([]byte, error) { return json.Marshal(d) }

// scope is the store filter of what the caller may see of a kind.
func scope(ctx context.Context, kind string, sharable bool) store.Filter {
	cred := auth.FromContext(ctx)
	f := record.Owned(ctx, kind)
	switch {
	case cred.Admin():
	case kind == "port" && cred.AdvSvc():
		// Neutron's advsvc reads every project's ports.
		f.Projects = nil
	case kind == "port":
		// A network's owner sees the ports on it (Neutron's port query
		// hook); get_port decides what of them it may read.
		f.ParentOwner, f.ParentKind = cred.ProjectID, "network"
	default:
		f.OrShared = sharable
		if sharable && (kind == "network" || kind == "subnet") {
			f.GrantedTo = cred.ProjectID
			f.GrantedParent = kind == "subnet"
		}
	}
	return f
}

// visible tells whether the caller may see a record.
func visible(ctx context.Context, r *store.Record) bool {
	cred := auth.FromContext(ctx)
	return cred.Admin() || r.ProjectID == cred.ProjectID || r.Shared
}

// notFound maps store.ErrNotFound to the resource's fault.
func notFound(err error, f *fault.Error) error {
	if errors.Is(err, store.ErrNotFound) {
		return f
	}
	return err
}

// getVisible reads a record the caller may see, or answers nf.
func getVisible(ctx context.Context, tx store.Tx, kind, id string, lock bool, nf *fault.Error) (*store.Record, resource.Doc, error) {
	get := tx.Get
	if lock {
		get = tx.Lock
	}
	r, err := get(ctx, kind, id)
	if err != nil {
		return nil, nil, notFound(err, nf)
	}
	if !visible(ctx, r) {
		ok, err := granted(ctx, tx, r)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return nil, nil, nf
		}
	}
	d, err := record.Decode(r)
	return r, d, err
}

// granted tells whether an RBAC grant shares a network (or a subnet's
// network) with the caller's project, or, for a port, whether the caller
// is an advsvc or owns the port's network.
func granted(ctx context.Context, tx store.Tx, r *store.Record) (bool, error) {
	obj := r.ID
	switch r.Kind {
	case "network":
	case "port":
		cred := auth.FromContext(ctx)
		if cred.AdvSvc() {
			return true, nil
		}
		n, err := tx.Get(ctx, "network", r.ParentID)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil && n.ProjectID == cred.ProjectID, err
	case "subnet":
		obj = r.ParentID
	default:
		return false, nil
	}
	gs, err := tx.RBACGrants(ctx, store.RBACGrant{ObjectID: obj, Target: auth.FromContext(ctx).ProjectID})
	return len(gs) > 0, err
}

// ownerOnly refuses changes by callers who may see but not own a record.
func ownerOnly(ctx context.Context, r *store.Record, action string) error {
	if auth.FromContext(ctx).Owns(r.ProjectID) {
		return nil
	}
	return fault.Forbidden("PolicyNotAuthorized", "(rule:%s_%s) is disallowed by policy", action, r.Kind)
}

// SetTags edits the tags of any tagged resource (standard-attr-tag),
// bumping its revision.
func (p *Plugin) SetTags(ctx context.Context, kind, id string, edit func([]string) ([]string, error)) ([]string, error) {
	var out []string
	err := p.st.Update(ctx, func(tx store.Tx) error {
		r, err := tx.Lock(ctx, kind, id)
		if err != nil {
			return notFound(err, fault.NotFound("NotFound", "%s %s could not be found.", kind, id))
		}
		if err := ownerOnly(ctx, r, "update"); err != nil {
			return err
		}
		d, err := record.Decode(r)
		if err != nil {
			return err
		}
		tags, err := edit(resource.Strings(d["tags"]))
		if err != nil {
			return err
		}
		if slices.Equal(tags, resource.Strings(d["tags"])) {
			out = tags
			return nil
		}
		d["tags"] = resource.List(tags)
		stdattr.Touch(d, p.now())
		if r.Doc, err = encode(d); err != nil {
			return err
		}
		out = tags
		return tx.Update(ctx, r)
	})
	return out, err
}

// lockPort reads and locks a port the caller may see for an update or
// delete, with If-Match. Who may change it is update_port's and
// delete_port's to say (the api asked them, with the port's and its
// network's owners): its owner, its network's owner deleting it, an
// advsvc, or whom an operator's policy names.
func lockPort(ctx context.Context, tx store.Tx, id string, ifRev int64) (*store.Record, resource.Doc, error) {
	rec, d, err := getVisible(ctx, tx, "port", id, true, portNotFound(id))
	if err != nil {
		return nil, nil, err
	}
	if err := stdattr.CheckRevision(d, ifRev); err != nil {
		return nil, nil, err
	}
	return rec, d, nil
}

// lockOwned reads and locks a record the caller may see (nf otherwise)
// for an update or delete: it must own it (or be admin) and, with
// If-Match, name its current revision.
func lockOwned(ctx context.Context, tx store.Tx, kind, id, action string, ifRev int64, nf *fault.Error) (*store.Record, resource.Doc, error) {
	rec, d, err := getVisible(ctx, tx, kind, id, true, nf)
	if err != nil {
		return nil, nil, err
	}
	if err := ownerOnly(ctx, rec, action); err != nil {
		return nil, nil, err
	}
	if err := stdattr.CheckRevision(d, ifRev); err != nil {
		return nil, nil, err
	}
	return rec, d, nil
}

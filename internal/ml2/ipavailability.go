package ml2

import (
	"context"
	"encoding/json"
	"math/big"
	"net/netip"
	"slices"
	"strconv"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/ipam"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/store"
)

// IPAvailabilities serves /v2.0/network-ip-availabilities (read only,
// admin only: others list nothing and get 404). The id is a network's.
type IPAvailabilities struct{ *Plugin }

func notAllowed() error {
	return fault.New(405, "HTTPMethodNotAllowed", "The method is not allowed for this resource.")
}

// Create is not served.
func (IPAvailabilities) Create(context.Context, []resource.Doc) ([]resource.Doc, error) {
	return nil, notAllowed()
}

// Update is not served.
func (IPAvailabilities) Update(context.Context, string, resource.Doc, int64) (resource.Doc, error) {
	return nil, notAllowed()
}

// Delete is not served.
func (IPAvailabilities) Delete(context.Context, string, int64) error { return notAllowed() }

// Get shows one network's IP availability.
func (a IPAvailabilities) Get(ctx context.Context, id string) (resource.Doc, error) {
	var out resource.Doc
	err := a.st.View(ctx, func(tx store.Tx) error {
		rec, err := tx.Get(ctx, "network", id)
		if err != nil {
			return notFound(err, networkNotFound(id))
		}
		if !auth.FromContext(ctx).Admin() {
			return hiddenByPolicy()
		}
		docs, err := availability(ctx, tx, []store.Record{*rec}, nil)
		if err != nil {
			return err
		}
		out = docs[0]
		return nil
	})
	return out, err
}

// List returns every network's IP availability. The ip_version filter
// narrows the subnets counted and drops networks left with none, as
// Neutron's SQL filter on the subnet column does.
func (a IPAvailabilities) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	if !auth.FromContext(ctx).Admin() {
		return []resource.Doc{}, nil
	}
	var versions []int64
	for _, v := range q.Filters["ip_version"] {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			versions = append(versions, n)
		}
	}
	if len(q.Filters["ip_version"]) > 0 && len(versions) == 0 {
		return []resource.Doc{}, nil
	}
	var out []resource.Doc
	err := a.st.View(ctx, func(tx store.Tx) error {
		f := store.Filter{Kind: "network", IDs: q.Filters["network_id"]}
		recs, err := tx.List(ctx, f)
		if err != nil {
			return err
		}
		out, err = availability(ctx, tx, recs, versions)
		return err
	})
	return out, err
}

// availMatchVersion matches the ip_version filter against an availability
// document; for IPAvailabilityResource's ExtraFilters (List has already
// narrowed the subnets, so this only keeps the generic filter consistent).
func availMatchVersion(d resource.Doc, want []string) bool {
	l, _ := d["subnet_ip_availability"].([]any)
	for _, x := range l {
		m, _ := x.(map[string]any)
		if slices.Contains(want, strconv.FormatInt(resource.IntOf(m["ip_version"]), 10)) {
			return true
		}
	}
	return false
}

// availability builds the documents of networks. With versions, only
// subnets of those versions count, and networks without one are left out.
func availability(ctx context.Context, tx store.Tx, nets []store.Record, versions []int64) ([]resource.Doc, error) {
	ids := make([]string, len(nets))
	for i := range nets {
		ids[i] = nets[i].ID
	}
	var subs []resource.Doc
	var err error
	if len(ids) <= 500 {
		subs, err = listDocs(ctx, tx, "subnet", ids...)
	} else {
		subs, err = listDocs(ctx, tx, "subnet")
	}
	if err != nil {
		return nil, err
	}
	if len(versions) > 0 {
		subs = slices.DeleteFunc(subs, func(s resource.Doc) bool { return !slices.Contains(versions, resource.IntOf(s["ip_version"])) })
	}
	slices.SortStableFunc(subs, func(a, b resource.Doc) int {
		if c := compareStr(resource.Str(a["created_at"]), resource.Str(b["created_at"])); c != 0 {
			return c
		}
		return compareStr(resource.Str(a["id"]), resource.Str(b["id"]))
	})
	used := map[string]int64{}
	subIDs := make([]string, len(subs))
	for i, s := range subs {
		subIDs[i] = resource.Str(s["id"])
	}
	for chunk := range slices.Chunk(subIDs, 500) {
		allocs, err := tx.IPs(ctx, chunk...)
		if err != nil {
			return nil, err
		}
		for _, al := range allocs {
			used[al.SubnetID]++
		}
	}
	byNet := map[string][]resource.Doc{}
	for _, s := range subs {
		byNet[resource.Str(s["network_id"])] = append(byNet[resource.Str(s["network_id"])], s)
	}
	out := make([]resource.Doc, 0, len(nets))
	for i := range nets {
		nd, err := record.Decode(&nets[i])
		if err != nil {
			return nil, err
		}
		ns := byNet[nets[i].ID]
		if len(versions) > 0 && len(ns) == 0 {
			continue
		}
		total := new(big.Int)
		var usedIPs int64
		list := make([]any, 0, len(ns))
		for _, s := range ns {
			t := subnetTotalIPs(s)
			u := used[resource.Str(s["id"])]
			total.Add(total, t)
			usedIPs += u
			list = append(list, map[string]any{
				"subnet_id": s["id"], "subnet_name": s["name"], "cidr": s["cidr"],
				"ip_version": resource.IntOf(s["ip_version"]), "total_ips": bigNumber(t), "used_ips": u,
			})
		}
		out = append(out, resource.Doc{
			"network_id": nets[i].ID, "network_name": nd["name"], "project_id": nets[i].ProjectID,
			"total_ips": bigNumber(total), "used_ips": usedIPs, "subnet_ip_availability": list,
		})
	}
	return out, nil
}

// subnetTotalIPs is the size of a subnet's allocation pools, or of its
// cidr when it has none.
func subnetTotalIPs(s resource.Doc) *big.Int {
	l, _ := s["allocation_pools"].([]any)
	var pools []ipam.Range
	for _, x := range l {
		m, _ := x.(map[string]any)
		r, err := ipam.ParsePool(resource.Str(m["start"]), resource.Str(m["end"]))
		if err == nil {
			pools = append(pools, r)
		}
	}
	if len(pools) > 0 {
		return ipam.PoolSize(pools)
	}
	p, err := netip.ParsePrefix(resource.Str(s["cidr"]))
	if err != nil {
		return new(big.Int)
	}
	return ipam.PrefixSize(p)
}

// bigNumber is a count as a JSON number: int64 when it fits.
func bigNumber(n *big.Int) any {
	if n.IsInt64() {
		return n.Int64()
	}
	return json.Number(n.String())
}

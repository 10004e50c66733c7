package secgroup

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"muon/internal/fault"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/stdattr"
	"muon/internal/store"
)

// AddressGroups serves /v2.0/address-groups with its add_addresses and
// remove_addresses actions.
type AddressGroups struct{ *Plugin }

// normalize masks, dedupes and sorts addresses.
func normalize(addrs []string) ([]string, error) {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		p, err := parseAddress(a)
		if err != nil {
			return nil, err
		}
		if s := p.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Create makes address groups.
func (a AddressGroups) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	return record.CreateAll(ctx, a.st, docs, func(ctx context.Context, tx store.Tx, d resource.Doc) error {
		if err := stdattr.Stamp(ctx, d, a.now(), false); err != nil {
			return err
		}
		addrs, err := normalize(resource.Strings(d["addresses"]))
		if err != nil {
			return err
		}
		d["addresses"] = resource.List(addrs)
		rec, err := record.New(kindAddress, d, "", false)
		if err != nil {
			return err
		}
		return tx.Insert(ctx, rec)
	})
}

// Get shows one address group.
func (a AddressGroups) Get(ctx context.Context, id string) (resource.Doc, error) {
	var d resource.Doc
	err := a.st.View(ctx, func(tx store.Tx) error {
		var err error
		_, d, err = get(ctx, tx, kindAddress, id, false, addressGroupNotFound(id))
		return err
	})
	return d, err
}

// List returns the caller's address groups (all, for admins).
func (a AddressGroups) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	var out []resource.Doc
	err := a.st.View(ctx, func(tx store.Tx) error {
		f := record.Owned(ctx, kindAddress)
		f.IDs = q.Filters["id"]
		var err error
		out, err = list(ctx, tx, f)
		return err
	})
	return out, err
}

// Update changes a group's name or description.
func (a AddressGroups) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	return a.change(ctx, id, ifRev, func(d resource.Doc) error {
		for k, v := range patch {
			d[k] = v
		}
		return nil
	})
}

func (a AddressGroups) change(ctx context.Context, id string, ifRev int64, edit func(resource.Doc) error) (resource.Doc, error) {
	var out resource.Doc
	err := a.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := get(ctx, tx, kindAddress, id, true, addressGroupNotFound(id))
		if err != nil {
			return err
		}
		if err := stdattr.CheckRevision(d, ifRev); err != nil {
			return err
		}
		before := resource.Canonical(map[string]any(d))
		if err := edit(d); err != nil {
			return err
		}
		out = d
		if resource.Canonical(map[string]any(d)) == before {
			return nil
		}
		stdattr.Touch(d, a.now())
		return record.Save(ctx, tx, rec, d)
	})
	return out, err
}

// Delete removes an address group no rule names (AddressGroupInUse).
func (a AddressGroups) Delete(ctx context.Context, id string, ifRev int64) error {
	return a.st.Update(ctx, func(tx store.Tx) error {
		_, d, err := get(ctx, tx, kindAddress, id, true, addressGroupNotFound(id))
		if err != nil {
			return err
		}
		if err := stdattr.CheckRevision(d, ifRev); err != nil {
			return err
		}
		rules, err := tx.RefsTo(ctx, refRemoteAddrs, id)
		if err != nil {
			return err
		}
		if len(rules) > 0 {
			return fault.Conflict("AddressGroupInUse", "Address group %s is in use on one or more security group rules.", id)
		}
		return tx.Delete(ctx, kindAddress, id)
	})
}

// addressesBody reads {"addresses": [...]}.
func addressesBody(body []byte) ([]string, error) {
	var in map[string]json.RawMessage
	var addrs []string
	if err := json.Unmarshal(body, &in); err != nil || len(in) != 1 || in["addresses"] == nil ||
		json.Unmarshal(in["addresses"], &addrs) != nil {
		return nil, fault.BadRequest("Invalid input for operation: the body must be {\"addresses\": [...]}.")
	}
	return normalize(addrs)
}

// pyList renders addresses as neutron's messages do: ['10.0.0.0/24'].
func pyList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// AddAddresses adds addresses none of which the group has.
func (a AddressGroups) AddAddresses(ctx context.Context, id string, body []byte) (any, error) {
	addrs, err := addressesBody(body)
	if err != nil {
		return nil, err
	}
	d, err := a.change(ctx, id, -1, func(d resource.Doc) error {
		have := resource.Strings(d["addresses"])
		var dup []string
		for _, x := range addrs {
			if slices.Contains(have, x) {
				dup = append(dup, x)
			}
		}
		if len(dup) > 0 {
			return fault.New(400, "AddressesAlreadyExist", "Addresses %s already exist in the address group %s.", pyList(dup), id)
		}
		have = append(have, addrs...)
		slices.Sort(have)
		d["addresses"] = resource.List(have)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"address_group": d}, nil
}

// RemoveAddresses removes addresses all of which the group has.
func (a AddressGroups) RemoveAddresses(ctx context.Context, id string, body []byte) (any, error) {
	addrs, err := addressesBody(body)
	if err != nil {
		return nil, err
	}
	d, err := a.change(ctx, id, -1, func(d resource.Doc) error {
		have := resource.Strings(d["addresses"])
		var missing []string
		for _, x := range addrs {
			if !slices.Contains(have, x) {
				missing = append(missing, x)
			}
		}
		if len(missing) > 0 {
			return fault.NotFound("AddressesNotFound", "Addresses %s not found in the address group %s.", pyList(missing), id)
		}
		have = slices.DeleteFunc(have, func(x string) bool { return slices.Contains(addrs, x) })
		d["addresses"] = resource.List(have)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"address_group": d}, nil
}

package ml2

import (
	"context"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/stdattr"
	"muon/internal/store"
)

func addressScopeNotFound(id string) *fault.Error {
	return fault.NotFound("AddressScopeNotFound", "Address scope %s could not be found.", id)
}

// addressScopeKeys are an address scope's attributes: Zed gives address
// scopes no standard attributes (no description, tags, timestamps or
// revision_number).
var addressScopeKeys = []string{"id", "name", "project_id", "ip_version", "shared"}

// AddressScopes serves /v2.0/address-scopes.
type AddressScopes struct{ *Plugin }

// Create makes address scopes.
func (a AddressScopes) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	if !auth.FromContext(ctx).Admin() {
		for _, d := range docs {
			if resource.BoolOf(d["shared"]) {
				return nil, policyDenied("create_address_scope", "shared")
			}
		}
	}
	out := make([]resource.Doc, 0, len(docs))
	err := a.st.Update(ctx, func(tx store.Tx) error {
		out = out[:0]
		for _, in := range docs {
			d := resource.Clone(in)
			if err := stdattr.Stamp(ctx, d, a.now(), false); err != nil {
				return err
			}
			d = scopeDoc(d)
			d["shared"] = resource.BoolOf(d["shared"])
			rec, err := record.New("address_scope", d, "", resource.BoolOf(d["shared"]))
			if err != nil {
				return err
			}
			if err := tx.Insert(ctx, rec); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// scopeDoc keeps an address scope's own attributes.
func scopeDoc(d resource.Doc) resource.Doc {
	out := make(resource.Doc, len(addressScopeKeys))
	for _, k := range addressScopeKeys {
		out[k] = d[k]
	}
	if out["name"] == nil {
		out["name"] = ""
	}
	return out
}

// Get shows one address scope.
func (a AddressScopes) Get(ctx context.Context, id string) (resource.Doc, error) {
	return a.get(ctx, "address_scope", id, addressScopeNotFound(id))
}

// List returns the address scopes the caller may see.
func (a AddressScopes) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	f := scope(ctx, "address_scope", true)
	f.IDs = q.Filters["id"]
	return a.list(ctx, f)
}

// Update renames or shares an address scope; a shared scope stays shared.
// Address scopes have no revision_number, so ifRev is not checked.
func (a AddressScopes) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	cred := auth.FromContext(ctx)
	var out resource.Doc
	err := a.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := getVisible(ctx, tx, "address_scope", id, true, addressScopeNotFound(id))
		if err != nil {
			return err
		}
		sh, setShared := patch["shared"]
		if !cred.Admin() && (setShared || !cred.Owns(rec.ProjectID)) {
			if setShared {
				return policyDenied("update_address_scope", "shared")
			}
			return policyDenied("update_address_scope")
		}
		if setShared && resource.BoolOf(d["shared"]) && !resource.BoolOf(sh) {
			return fault.New(400, "AddressScopeUpdateError",
				"Unable to update address scope %s : Shared address scope can't be unshared.", id)
		}
		for _, k := range []string{"name", "shared"} {
			if v, ok := patch[k]; ok {
				d[k] = v
			}
		}
		d = scopeDoc(d)
		nrec, err := record.New("address_scope", d, "", resource.BoolOf(d["shared"]))
		if err != nil {
			return err
		}
		out = d
		return tx.Update(ctx, nrec)
	})
	return out, err
}

// Delete removes an address scope no subnet pool is in.
func (a AddressScopes) Delete(ctx context.Context, id string, ifRev int64) error {
	return a.st.Update(ctx, func(tx store.Tx) error {
		rec, _, err := getVisible(ctx, tx, "address_scope", id, true, addressScopeNotFound(id))
		if err != nil {
			return err
		}
		if !auth.FromContext(ctx).Owns(rec.ProjectID) {
			return policyDenied("delete_address_scope")
		}
		pools, err := listDocs(ctx, tx, "subnetpool")
		if err != nil {
			return err
		}
		for _, sp := range pools {
			if resource.Str(sp["address_scope_id"]) == id {
				return fault.Conflict("AddressScopeInUse",
					"Unable to complete operation on address scope %s. There are one or more subnet pools in use on the address scope.", id)
			}
		}
		return tx.Delete(ctx, "address_scope", id)
	})
}

// Package resource is Muon's declarative resource model, after Neutron's
// attribute maps: a Resource names its attributes, and the generic code here
// decodes request bodies against them (types, defaults, create/update rules,
// admin-only attributes) and answers list queries (filters, fields, sorting,
// pagination) for every resource alike.
package resource

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"muon/internal/fault"
)

// Doc is one resource as the API shows it: attribute name to JSON value
// (string, bool, json.Number or int64, []any, map[string]any, nil).
type Doc = map[string]any

// Attr describes one attribute of a resource.
type Attr struct {
	Name string
	Type Type
	// Default is applied on create when the attribute is absent. A nil
	// Default with Required false leaves the attribute for the plugin.
	Default any
	// HasDefault tells a nil Default (JSON null) from no default.
	HasDefault bool
	Required   bool // on create
	Post       bool // settable on create (allow_post)
	Put        bool // settable on update (allow_put)
	Hidden     bool // never shown (is_visible false)
	AdminOnly  bool // shown to and settable by admins only
	Nullable   bool // JSON null accepted
	// NullIsEmpty turns JSON null into an empty list (neutron-lib's
	// convert_none_to_empty_list).
	NullIsEmpty bool
	// Validate checks a converted value; it returns a fault or nil.
	Validate func(v any) error
	// Match tells whether a value matches one of the filter strings given
	// for this attribute; nil uses the type's own matching.
	Match func(v any, want []string) bool
	// NoFilter marks attributes that cannot be filtered on (dicts, lists
	// of dicts).
	NoFilter bool
	// NoSort marks attributes that cannot be sorted on.
	NoSort bool
}

// Resource is one REST resource: its member and collection names and its
// attributes.
type Resource struct {
	Name       string // "network"
	Collection string // "networks"
	Attrs      []Attr
	// Tags enables /{collection}/{id}/tags and the tag filters.
	Tags bool
	// ExtraFilters are query keys accepted besides attribute names, each
	// with its matcher (e.g. ports' ip_address_substr).
	ExtraFilters map[string]func(d Doc, want []string) bool

	byName map[string]*Attr
}

// Key is the collection's key in JSON bodies: the URL's collection with
// underscores for hyphens ("address-scopes" lists "address_scopes").
func (r *Resource) Key() string { return strings.ReplaceAll(r.Collection, "-", "_") }

// Attr returns the named attribute, or nil.
func (r *Resource) Attr(name string) *Attr {
	if r.byName == nil {
		r.index()
	}
	return r.byName[name]
}

func (r *Resource) index() {
	m := make(map[string]*Attr, len(r.Attrs))
	for i := range r.Attrs {
		m[r.Attrs[i].Name] = &r.Attrs[i]
	}
	r.byName = m
}

// Init prepares the attribute index; call it once before serving.
func (r *Resource) Init() *Resource {
	r.index()
	return r
}

// Standard returns the attributes every Neutron resource with standard
// attributes has: id, name, description, project_id/tenant_id, timestamps,
// revision number and, if tagged, tags.
func Standard(withName, tags bool) []Attr {
	as := []Attr{
		{Name: "id", Type: UUID, Post: false},
		{Name: "project_id", Type: String(255), Post: true, Validate: projectID},
		{Name: "tenant_id", Type: String(255), Post: true, Validate: projectID},
		{Name: "created_at", Type: String(0), NoFilter: false},
		{Name: "updated_at", Type: String(0)},
		{Name: "revision_number", Type: Int},
		{Name: "description", Type: String(255), Post: true, Put: true, Default: "", HasDefault: true},
	}
	if withName {
		as = append(as, Attr{Name: "name", Type: String(255), Post: true, Put: true, Default: "", HasDefault: true})
	}
	if tags {
		as = append(as, Attr{Name: "tags", Type: StringList, NoSort: true, Match: matchNever})
	}
	return as
}

func projectID(v any) error {
	s, _ := v.(string)
	if s == "" {
		return fault.InvalidInput("'%s' is not a valid project_id", s)
	}
	return nil
}

func matchNever(any, []string) bool { return false }

// DecodeBody parses a request body for a create (bulk allowed) or update.
// It returns the member documents and whether the body was a bulk list.
func (r *Resource) DecodeBody(body []byte, allowBulk bool) ([]Doc, bool, error) {
	var top map[string]json.RawMessage
	if err := unmarshal(body, &top); err != nil {
		return nil, false, fault.BadRequest("Failed to parse request. Unable to deserialize the body: %v", err)
	}
	if raw, ok := top[r.Key()]; ok && allowBulk && len(top) == 1 {
		var items []json.RawMessage
		if err := unmarshal(raw, &items); err != nil {
			return nil, false, fault.BadRequest("Invalid input: '%s' must be a list of objects", r.Key())
		}
		if len(items) == 0 {
			return nil, false, fault.BadRequest("Resources required")
		}
		docs := make([]Doc, 0, len(items))
		for _, it := range items {
			var one map[string]json.RawMessage
			if err := unmarshal(it, &one); err != nil {
				return nil, false, fault.BadRequest("Invalid input: each item of '%s' must be an object", r.Key())
			}
			// An item is {"network": {...}} or the bare {...}, as in Neutron.
			m, ok := one[r.Name]
			if !ok {
				m = it
			}
			d, err := decodeMember(m, r.Name)
			if err != nil {
				return nil, false, err
			}
			docs = append(docs, d)
		}
		return docs, true, nil
	}
	raw, ok := top[r.Name]
	if !ok || len(top) != 1 {
		return nil, false, fault.BadRequest("Unable to find '%s' in request body", r.Name)
	}
	d, err := decodeMember(raw, r.Name)
	if err != nil {
		return nil, false, err
	}
	return []Doc{d}, false, nil
}

func decodeMember(raw json.RawMessage, name string) (Doc, error) {
	var d Doc
	if err := unmarshal(raw, &d); err != nil || d == nil {
		return nil, fault.BadRequest("Body contains invalid data: '%s' must be an object", name)
	}
	return d, nil
}

func unmarshal(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

// Caller is what attribute rules need to know of the requester.
type Caller interface {
	Admin() bool
}

// PrepareCreate checks a create body against the attributes: unknown and
// read-only attributes are refused, values converted and validated,
// defaults filled in and required attributes checked.
func (r *Resource) PrepareCreate(d Doc, admin bool) error {
	if err := r.checkKeys(d, admin, true); err != nil {
		return err
	}
	for i := range r.Attrs {
		a := &r.Attrs[i]
		v, ok := d[a.Name]
		if !ok {
			if a.Required {
				return fault.BadRequest("Failed to parse request. Required attribute '%s' not specified", a.Name)
			}
			if a.HasDefault {
				d[a.Name] = cloneValue(a.Default)
			}
			continue
		}
		cv, err := a.convert(v)
		if err != nil {
			return err
		}
		d[a.Name] = cv
	}
	// project_id and tenant_id are one attribute under two names.
	p, hasP := d["project_id"]
	t, hasT := d["tenant_id"]
	if hasP && hasT && p != t {
		return fault.BadRequest("'project_id' and 'tenant_id' do not match")
	}
	if hasT && !hasP {
		d["project_id"] = t
	}
	delete(d, "tenant_id")
	return nil
}

// PrepareUpdate checks an update body: only attributes with allow_put.
func (r *Resource) PrepareUpdate(d Doc, admin bool) error {
	if err := r.checkKeys(d, admin, false); err != nil {
		return err
	}
	for k, v := range d {
		cv, err := r.Attr(k).convert(v)
		if err != nil {
			return err
		}
		d[k] = cv
	}
	return nil
}

func (r *Resource) checkKeys(d Doc, admin, create bool) error {
	var unknown []string
	for k := range d {
		a := r.Attr(k)
		if a == nil || a.Hidden && !a.Post && !a.Put {
			unknown = append(unknown, k)
			continue
		}
		if create && !a.Post {
			return fault.BadRequest("Attribute '%s' not allowed in POST", k)
		}
		if !create && !a.Put {
			return fault.BadRequest("Cannot update read-only attribute %s", k)
		}
		if a.AdminOnly && !admin {
			return fault.Forbidden("PolicyNotAuthorized", "(rule:%s_%s:%s) is disallowed by policy", map[bool]string{true: "create", false: "update"}[create], r.Name, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fault.BadRequest("Unrecognized attribute(s) '%s'", strings.Join(unknown, ", "))
	}
	return nil
}

// convert converts and validates one value. As in Neutron, a failed
// conversion of a boolean or integer (a convert_to function there) is an
// InvalidInput; any other type mismatch fails a validator, an
// HTTPBadRequest naming the attribute.
func (a *Attr) convert(v any) (any, error) {
	if v == nil && a.Nullable {
		return nil, nil
	}
	if v == nil && a.NullIsEmpty {
		v = []any{}
	}
	cv, err := a.Type.Convert(v)
	if err != nil {
		// A type that knows Neutron's fault for a bad value says so.
		if f, ok := fault.As(err); ok {
			return nil, f
		}
		if a.Type == Bool || a.Type == Int {
			return nil, fault.InvalidInput("%s", err.Error())
		}
		return nil, fault.BadRequest("Invalid input for %s. Reason: %s.", a.Name, err.Error())
	}
	if a.Validate != nil {
		if err := a.Validate(cv); err != nil {
			return nil, err
		}
	}
	return cv, nil
}

// View shapes a stored document for a caller: hidden and, for non-admins,
// admin-only attributes are dropped, tenant_id mirrors project_id, and
// fields (when given) selects what is shown.
func (r *Resource) View(d Doc, admin bool, fields []string) Doc {
	out := make(Doc, len(d)+1)
	for k, v := range d {
		if a := r.Attr(k); a != nil && (a.Hidden || a.AdminOnly && !admin) {
			continue
		}
		out[k] = v
	}
	if p, ok := d["project_id"]; ok {
		out["tenant_id"] = p
	}
	if len(fields) == 0 {
		return out
	}
	sel := make(Doc, len(fields))
	for _, f := range fields {
		if v, ok := out[f]; ok {
			sel[f] = v
		}
	}
	return sel
}

func cloneValue(v any) any {
	switch t := v.(type) {
	case []any:
		return slices.Clone(t)
	case []string:
		out := make([]any, len(t))
		for i, s := range t {
			out[i] = s
		}
		return out
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = cloneValue(x)
		}
		return m
	}
	return v
}

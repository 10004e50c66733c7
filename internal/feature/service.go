package feature

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"iter"
	"net/http"

	"muon/internal/fault"
	"muon/internal/resource"
	"muon/internal/store"
)

// Backend is the plugin behind one resource.
type Backend interface {
	// Create makes all the documents or none.
	Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error)
	Get(ctx context.Context, id string) (resource.Doc, error)
	// List returns the documents the caller may see; it may use the
	// query to narrow its reads, the api applies the query in full.
	List(ctx context.Context, q *resource.Query) ([]resource.Doc, error)
	// Update applies a validated patch; ifRev, when not negative, must be
	// the current revision_number.
	Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error)
	Delete(ctx context.Context, id string, ifRev int64) error
}

// Streamer is a Backend that can hand out a list a document at a time,
// in id order, starting after an id (the api uses it for lists sorted by
// id: a whole list, or a page from a marker): records are read a batch
// at a time and decoded as they are asked for, so a long list is never
// held at once and a page reads about a page.
type Streamer interface {
	ListSeq(ctx context.Context, q *resource.Query, after string) iter.Seq2[resource.Doc, error]
}

// SubBackend is the plugin behind a sub-collection: each call names the
// parent member (/v2.0/floatingips/{parent}/port_forwardings).
type SubBackend interface {
	Create(ctx context.Context, parent string, docs []resource.Doc) ([]resource.Doc, error)
	Get(ctx context.Context, parent, id string) (resource.Doc, error)
	List(ctx context.Context, parent string, q *resource.Query) ([]resource.Doc, error)
	Update(ctx context.Context, parent, id string, patch resource.Doc, ifRev int64) (resource.Doc, error)
	Delete(ctx context.Context, parent, id string, ifRev int64) error
}

// Targeter adds to policy targets what the documents alone do not carry:
// for subnets and ports, the parent network's owner and whether the caller
// sees it shared ("network:project_id", "network:tenant_id", "shared").
type Targeter interface {
	Targets(ctx context.Context, docs []resource.Doc) ([]map[string]any, error)
}

// SubTargeter is a Targeter for a sub-collection's documents.
type SubTargeter interface {
	Targets(ctx context.Context, parent string, docs []resource.Doc) ([]map[string]any, error)
}

// Action is a member action such as PUT /subnetpools/{id}/add_prefixes.
type Action func(ctx context.Context, id string, body []byte) (any, error)

// Service is one resource served by the API.
type Service struct {
	Res *resource.Resource
	// Backend serves a top-level collection; Sub a sub-collection of
	// Parent's members.
	Backend Backend
	Sub     SubBackend
	// ReadOnly resources answer list and show only.
	ReadOnly bool
	// NoBulk refuses list bodies on create.
	NoBulk bool
	// NoUpdate resources have no PUT (405), like Neutron's whose
	// attributes are all set on create (metering labels).
	NoUpdate bool
	Actions  map[string]Action
	// Parent makes this a sub-collection of the parent's members:
	// /v2.0/{parent collection}/{parent_id}/{collection}, served by Sub;
	// policy names the actions "<verb>_<parent>_<resource>"
	// (create_floatingip_port_forwarding).
	Parent *resource.Resource
	// PathPrefix puts the collection under a path, as Neutron's extensions
	// with a collection prefix do: "metering/" serves
	// /v2.0/metering/metering-labels.
	PathPrefix string
}

// Route is a request a feature answers that is not a resource's
// collection or member: a scheduler's association
// (GET /v2.0/agents/{id}/dhcp-networks), an agent channel message.
type Route struct {
	// Pattern is a method and a path with {name} wildcards:
	// "POST /v2.0/agents/{id}/dhcp-networks".
	Pattern string
	// Policy is the rule the api authorises the request with before Do
	// (its target the caller's project), as for any resource action: an
	// operator's policy file decides who may.
	Policy string
	// Do answers with a status and a body to encode as JSON (nil for
	// none).
	Do func(ctx context.Context, req Request) (status int, body any, err error)
}

// Request is what a Route sees of a request.
type Request struct {
	// Path gives a wildcard's value.
	Path func(name string) string
	// Query is the query string's values.
	Query map[string][]string
	// Body is the request body, within the server's size limit.
	Body []byte
}

// DecodeJSON reads one JSON object of body into v: garbage, a body cut
// short or anything after the object is a 400.
func DecodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return fault.BadRequest("Malformed request body: %s", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fault.BadRequest("Malformed request body: data after the JSON object")
	}
	return nil
}

// Section is a feature's part of each host's desired state on the agent
// channel (internal/channel), under its name in agentapi.State. The
// channel reads it in one snapshot transaction at a revision of the
// change feed.
type Section interface {
	// Name is the section's key ("l2").
	Name() string
	// Full is the host's whole section.
	Full(ctx context.Context, tx store.Tx, host string) (any, error)
	// Delta is what of changes concerns the host, as the section's delta,
	// or ok false when nothing does. Changes are the feed's after the
	// revision the host's agent has, observed state left out.
	Delta(ctx context.Context, tx store.Tx, host string, changes []store.Change) (delta any, ok bool, err error)
}

// Observer is a Section that takes observed state from the host's agent
// (its part of agentapi.Status), and writes it with store.Tx.Observe so
// that it wakes no host.
type Observer interface {
	Observe(ctx context.Context, host string, report json.RawMessage) error
}

// ListBy answers a GET of the documents fn lists for the path's {id},
// under key ("agents": [...]): a scheduler's listings.
func ListBy(key string, fn func(ctx context.Context, id string) ([]resource.Doc, error)) func(context.Context, Request) (int, any, error) {
	return func(ctx context.Context, r Request) (int, any, error) {
		out, err := fn(ctx, r.Path("id"))
		if err != nil {
			return 0, nil, err
		}
		if out == nil {
			out = []resource.Doc{}
		}
		return http.StatusOK, map[string]any{key: out}, nil
	}
}

// AddBy answers a POST whose body names what to add to the path's {id}
// in field ({"router_id": ...}): 201 with no body once fn did it.
func AddBy(field string, fn func(ctx context.Context, id, what string) error) func(context.Context, Request) (int, any, error) {
	return func(ctx context.Context, r Request) (int, any, error) {
		var in map[string]any
		if err := DecodeJSON(r.Body, &in); err != nil {
			return 0, nil, err
		}
		what, _ := in[field].(string)
		if what == "" {
			return 0, nil, fault.BadRequest("Failed to parse request. Required attribute '%s' not specified", field)
		}
		if err := fn(ctx, r.Path("id"), what); err != nil {
			return 0, nil, err
		}
		return http.StatusCreated, nil, nil
	}
}

// RemoveBy answers a DELETE of the path's {what} from its {id}: 204.
func RemoveBy(fn func(ctx context.Context, id, what string) error) func(context.Context, Request) (int, any, error) {
	return func(ctx context.Context, r Request) (int, any, error) {
		if err := fn(ctx, r.Path("id"), r.Path("what")); err != nil {
			return 0, nil, err
		}
		return http.StatusNoContent, nil, nil
	}
}

package api

import (
	"context"
	"net/http"
	"strings"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/feature"
	"muon/internal/resource"
)

// targets builds the policy targets of documents.
func (s *Server) targets(ctx context.Context, svc *feature.Service, docs []resource.Doc) ([]map[string]any, error) {
	if t, ok := svc.Backend.(feature.Targeter); ok {
		return t.Targets(ctx, docs)
	}
	out := make([]map[string]any, len(docs))
	for i, d := range docs {
		out[i] = target(d, nil)
	}
	return out, nil
}

// target is a document as policy sees it: tenant_id mirrors project_id.
func target(d resource.Doc, extra map[string]any) map[string]any {
	t := make(map[string]any, len(d)+len(extra)+1)
	for k, v := range d {
		t[k] = v
	}
	for k, v := range extra {
		t[k] = v
	}
	if p, ok := t["project_id"]; ok {
		t["tenant_id"] = p
	}
	return t
}

func (s *Server) cred(r *http.Request) *auth.Credentials { return auth.FromContext(r.Context()) }

// readable filters documents, in place, to those get_<resource> allows
// and hides the attributes its attribute rules refuse. The policy targets
// are built a chunk at a time, so a long list never holds a target per
// document at once.
func (s *Server) readable(ctx context.Context, svc *feature.Service, docs []resource.Doc) ([]resource.Doc, error) {
	if s.policy == nil || len(docs) == 0 {
		return docs, nil
	}
	cred := auth.FromContext(ctx)
	action := "get_" + policyName(svc)
	guarded := s.guardedAttrs(svc, action)
	out := docs[:0]
	for start := 0; start < len(docs); start += readChunk {
		chunk := docs[start:min(start+readChunk, len(docs))]
		ts, err := s.targets(ctx, svc, chunk)
		if err != nil {
			return nil, err
		}
		for i, d := range chunk {
			if !s.policy.Enforce(action, ts[i], cred) {
				continue
			}
			for _, a := range guarded {
				if _, ok := d[a]; ok && !s.policy.Attribute(action, a, ts[i], cred) {
					d = withoutKey(d, a)
				}
			}
			out = append(out, d) // never past chunk[i]: in place is safe
		}
	}
	clear(docs[len(out):])
	return out, nil
}

// readChunk is how many documents' policy targets are built at once.
const readChunk = 256

func withoutKey(d resource.Doc, k string) resource.Doc {
	c := make(resource.Doc, len(d))
	for kk, v := range d {
		if kk != k {
			c[kk] = v
		}
	}
	return c
}

// guardedAttrs lists the attributes with an "<action>:<attr>" rule.
func (s *Server) guardedAttrs(svc *feature.Service, action string) []string {
	var out []string
	for _, a := range svc.Res.Attrs {
		if s.policy.Has(action + ":" + a.Name) {
			out = append(out, a.Name)
		}
	}
	return out
}

// setAttrs names the attributes a create body really sets (given, and not
// at their default) and the sub-attributes policy rules name.
func setAttrs(res *resource.Resource, body resource.Doc, create bool) []string {
	var out []string
	for k, v := range body {
		a := res.Attr(k)
		if a == nil {
			continue
		}
		if create && a.HasDefault && equalJSON(v, a.Default) {
			continue
		}
		out = append(out, k)
		// A dict's keys have rules of their own, as a list of dicts' do
		// (create_router:external_gateway_info:enable_snat).
		if m, ok := v.(map[string]any); ok && a.Type == resource.Dict {
			for sub := range m {
				out = append(out, k+":"+sub)
			}
		}
		if l, ok := v.([]any); ok {
			seen := map[string]bool{}
			for _, x := range l {
				if m, ok := x.(map[string]any); ok {
					for sub := range m {
						if !seen[sub] {
							seen[sub] = true
							out = append(out, k+":"+sub)
						}
					}
				}
			}
		}
	}
	return out
}

func equalJSON(a, b any) bool { return resource.Canonical(a) == resource.Canonical(b) }

// authorize checks an action on a target with its attribute rules.
func (s *Server) authorize(ctx context.Context, action string, t map[string]any, attrs []string) error {
	if s.policy == nil {
		return nil
	}
	return s.policy.Authorize(action, t, auth.FromContext(ctx), attrs...)
}

// visibleOne reads one document and applies get policy: 404 when the
// caller may not see it.
func (s *Server) visibleOne(ctx context.Context, svc *feature.Service, id string) (resource.Doc, map[string]any, error) {
	d, err := svc.Backend.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if s.policy == nil {
		return d, target(d, nil), nil
	}
	ts, err := s.targets(ctx, svc, []resource.Doc{d})
	if err != nil {
		return nil, nil, err
	}
	if !s.policy.Enforce("get_"+policyName(svc), ts[0], auth.FromContext(ctx)) {
		return nil, nil, notFoundFor(svc, id)
	}
	return d, ts[0], nil
}

// notFoundFor is the 404 a resource answers for an id.
func notFoundFor(svc *feature.Service, id string) error {
	name := svc.Res.Name
	typ := ""
	for part := range strings.SplitSeq(name, "_") {
		typ += strings.ToUpper(part[:1]) + part[1:]
	}
	return fault.NotFound(typ+"NotFound", "%s %s could not be found.", typ, id)
}

// seesAll tells whether attribute maps' admin-only marks are left to
// policy (always, when there is one) or apply (the caller is no admin).
func (s *Server) seesAll(c *auth.Credentials) bool { return s.policy != nil || c.Admin() }

// showable reads one document the caller may see, attributes hidden.
func (s *Server) showable(ctx context.Context, svc *feature.Service, id string) (resource.Doc, error) {
	d, _, err := s.visibleOne(ctx, svc, id)
	if err != nil {
		return nil, err
	}
	return s.hide(ctx, svc, d)
}

// hide drops the attributes get policy refuses the caller.
func (s *Server) hide(ctx context.Context, svc *feature.Service, d resource.Doc) (resource.Doc, error) {
	out, err := s.readable(ctx, svc, []resource.Doc{d})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, notFoundFor(svc, fmtID(d))
	}
	return out[0], nil
}

func fmtID(d resource.Doc) string {
	id, _ := d["id"].(string)
	return id
}

// authorizeCreate checks create_<resource> on a prepared document; the
// project defaults to the caller's. It returns the policy target, which
// also serves to shape the created document for the caller.
func (s *Server) authorizeCreate(ctx context.Context, svc *feature.Service, d resource.Doc, attrs []string) (map[string]any, error) {
	if s.policy == nil {
		return nil, nil
	}
	t := target(d, nil)
	if p, _ := t["project_id"].(string); p == "" {
		p = auth.FromContext(ctx).ProjectID
		t["project_id"], t["tenant_id"] = p, p
	}
	ts, err := s.targets(ctx, svc, []resource.Doc{t})
	if err != nil {
		return nil, err
	}
	// A parent network the caller cannot see is the plugin's 404 to give,
	// not a policy refusal that would tell it exists.
	if found, ok := ts[0]["network:found"].(bool); ok {
		c := auth.FromContext(ctx)
		shared, _ := ts[0]["shared"].(bool)
		if !found || !(c.Admin() || shared || ts[0]["network:project_id"] == c.ProjectID) {
			return ts[0], nil
		}
	}
	return ts[0], s.authorize(ctx, "create_"+policyName(svc), ts[0], attrs)
}

// createdView shapes a document just created for its creator, with the
// target its create was authorised on: get policy decides what it sees.
func (s *Server) createdView(ctx context.Context, svc *feature.Service, d resource.Doc, t map[string]any) (resource.Doc, bool) {
	if s.policy == nil {
		return d, true
	}
	if t == nil {
		t = target(d, nil)
	} else {
		t = target(d, t)
		for k, v := range d {
			t[k] = v
		}
		t["tenant_id"] = d["project_id"]
	}
	cred := auth.FromContext(ctx)
	action := "get_" + policyName(svc)
	if !s.policy.Enforce(action, t, cred) {
		return nil, false
	}
	for _, a := range s.guardedAttrs(svc, action) {
		if _, ok := d[a]; ok && !s.policy.Attribute(action, a, t, cred) {
			d = withoutKey(d, a)
		}
	}
	return d, true
}

// authorizeChange checks an update, delete or member action on a visible
// resource (404 when the caller may not see it); patch, if any, is merged
// into the target as Neutron does.
func (s *Server) authorizeChange(ctx context.Context, svc *feature.Service, action, id string, patch resource.Doc, attrs []string) error {
	if s.policy == nil {
		return nil
	}
	d, t, err := s.visibleOne(ctx, svc, id)
	if err != nil {
		return err
	}
	if patch != nil {
		merged := make(resource.Doc, len(d)+len(patch))
		for k, v := range d {
			merged[k] = v
		}
		for k, v := range patch {
			merged[k] = v
		}
		ts, err := s.targets(ctx, svc, []resource.Doc{merged})
		if err != nil {
			return err
		}
		t = ts[0]
	}
	if strings.HasSuffix(action, "_") {
		action += policyName(svc)
	}
	return s.authorize(ctx, action, t, attrs)
}

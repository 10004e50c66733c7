package api

import (
	"context"
	"net/http"

	"muon/internal/auth"
	"muon/internal/feature"
	"muon/internal/resource"
)

// serveRoute answers one of a feature's routes.
func (s *Server) serveRoute(w http.ResponseWriter, r *http.Request, rt feature.Route) error {
	if rt.Policy != "" {
		project := auth.FromContext(r.Context()).ProjectID
		if err := s.authorize(r.Context(), rt.Policy, map[string]any{"project_id": project, "tenant_id": project}, nil); err != nil {
			return err
		}
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	status, out, err := rt.Do(r.Context(), feature.Request{Path: r.PathValue, Query: r.URL.Query(), Body: body})
	if err != nil {
		return err
	}
	if out == nil && status == http.StatusNoContent {
		w.WriteHeader(status)
		return nil
	}
	writeJSON(w, status, out)
	return nil
}

// bound is a sub-collection's backend for one parent member.
type bound struct {
	sub    feature.SubBackend
	parent string
}

func (b bound) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	return b.sub.Create(ctx, b.parent, docs)
}

func (b bound) Get(ctx context.Context, id string) (resource.Doc, error) {
	return b.sub.Get(ctx, b.parent, id)
}

func (b bound) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	return b.sub.List(ctx, b.parent, q)
}

func (b bound) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	return b.sub.Update(ctx, b.parent, id, patch, ifRev)
}

func (b bound) Delete(ctx context.Context, id string, ifRev int64) error {
	return b.sub.Delete(ctx, b.parent, id, ifRev)
}

// Targets gives policy the parent's view of the documents, when the
// sub-collection's backend has one.
func (b bound) Targets(ctx context.Context, docs []resource.Doc) ([]map[string]any, error) {
	if t, ok := b.sub.(feature.SubTargeter); ok {
		return t.Targets(ctx, b.parent, docs)
	}
	out := make([]map[string]any, len(docs))
	for i, d := range docs {
		out[i] = target(d, nil)
	}
	return out, nil
}

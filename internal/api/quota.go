package api

import (
	"context"
	"encoding/json"
	"net/http"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/resource"
)

// Quotas is the backend of /v2.0/quotas.
type Quotas interface {
	List(ctx context.Context) ([]map[string]any, error)
	Get(ctx context.Context, project string) (map[string]any, error)
	Default(ctx context.Context, project string) (map[string]any, error)
	Details(ctx context.Context, project string) (map[string]any, error)
	Update(ctx context.Context, project string, limits map[string]int64) (map[string]any, error)
	Delete(ctx context.Context, project string) error
}

func (s *Server) routeQuotas(mux *http.ServeMux, q Quotas) {
	one := func(fn func(context.Context, string) (map[string]any, error)) http.HandlerFunc {
		return s.handle(func(w http.ResponseWriter, r *http.Request) error {
			out, err := fn(r.Context(), quotaProject(r))
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, map[string]any{"quota": out})
			return nil
		})
	}
	mux.HandleFunc("GET /v2.0/quotas", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		out, err := q.List(r.Context())
		if err != nil {
			return err
		}
		if out == nil {
			out = []map[string]any{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"quotas": out})
		return nil
	}))
	mux.HandleFunc("GET /v2.0/quotas/{project}", one(q.Get))
	mux.HandleFunc("GET /v2.0/quotas/{project}/default", one(q.Default))
	mux.HandleFunc("GET /v2.0/quotas/{project}/details", one(q.Details))
	mux.HandleFunc("PUT /v2.0/quotas/{project}", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		body, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		var in map[string]map[string]json.Number
		if err := json.Unmarshal(body, &in); err != nil || in["quota"] == nil || len(in) != 1 {
			return fault.BadRequest("Failed to parse request. Required attribute 'quota' not specified or malformed")
		}
		limits := map[string]int64{}
		for k, v := range in["quota"] {
			n, err := resource.Int.Convert(v)
			if err != nil {
				return fault.InvalidInput("'%s' is not an integer for %s", v, k)
			}
			limits[k] = n.(int64)
		}
		out, err := q.Update(r.Context(), quotaProject(r), limits)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"quota": out})
		return nil
	}))
	mux.HandleFunc("DELETE /v2.0/quotas/{project}", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		if err := q.Delete(r.Context(), quotaProject(r)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
}

// quotaProject reads {project}; "tenant" names the caller's own project,
// as Neutron's /quotas/tenant does.
func quotaProject(r *http.Request) string {
	p := r.PathValue("project")
	if p == "tenant" || p == "project" {
		return auth.FromContext(r.Context()).ProjectID
	}
	return p
}

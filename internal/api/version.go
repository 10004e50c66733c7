package api

import (
	"net/http"

	"muon/internal/fault"
	"muon/internal/feature"
)

func (s *Server) versions(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"versions": []any{map[string]any{
		"id": "v2.0", "status": "CURRENT",
		"links": []any{map[string]string{"rel": "self", "href": selfURL(r) + "v2.0/"}},
	}}})
	return nil
}

func (s *Server) versionV2(w http.ResponseWriter, r *http.Request) error {
	base := selfURL(r)
	if base[len(base)-1] != '/' {
		base += "/"
	}
	var res []any
	for _, svc := range s.services {
		if svc.PathPrefix != "" {
			continue // listed under its prefix in Neutron, not /v2.0
		}
		res = append(res, map[string]any{
			"name": svc.Res.Name, "collection": svc.Res.Collection,
			"links": []any{map[string]string{"rel": "self", "href": base + svc.Res.Collection}},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"resources": res})
	return nil
}

func (s *Server) listExtensions(w http.ResponseWriter, r *http.Request) error {
	exts := s.extensions
	if exts == nil {
		exts = []feature.Extension{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"extensions": exts})
	return nil
}

func (s *Server) showExtension(w http.ResponseWriter, r *http.Request) error {
	alias := r.PathValue("alias")
	for _, e := range s.extensions {
		if e.Alias == alias {
			writeJSON(w, http.StatusOK, map[string]any{"extension": e})
			return nil
		}
	}
	return fault.NotFound("HTTPNotFound", "Extension with alias %s does not exist", alias)
}

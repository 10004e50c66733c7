// Package api serves the OpenStack Networking API v2.0 over HTTP. Handlers
// here are generic: each resource is a resource.Resource (its attribute map)
// plus a Backend (the plugin that keeps its rules). The api layer decodes,
// validates, applies defaults, filters, selects fields, sorts, paginates and
// writes faults; the plugins do the work in store transactions.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"muon/internal/fault"
	"muon/internal/feature"
	"muon/internal/policy"
)

// Tagger changes a resource's tags (standard-attr-tag).
type Tagger interface {
	// SetTags replaces the tags; add and remove edit one tag each when
	// replace is nil.
	SetTags(ctx context.Context, kind, id string, edit func(tags []string) ([]string, error)) ([]string, error)
}

// policyName is the resource's name in policy rule names.
func policyName(svc *feature.Service) string {
	if svc.Parent != nil {
		return svc.Parent.Name + "_" + svc.Res.Name
	}
	return svc.Res.Name
}

// Server is the Networking API.
type Server struct {
	log        *slog.Logger
	services   []*feature.Service
	tags       Tagger
	extensions []feature.Extension
	maxBody    int64
	policy     *policy.Enforcer
	feed       Feed
	mux        *http.ServeMux
	// unavailableLogged is when a 503 for the database was last logged.
	unavailableLogged atomic.Int64
}

// Config assembles a Server.
type Config struct {
	Log      *slog.Logger
	Services []*feature.Service
	// Routes are the features' other requests (schedulers, the agent
	// channel).
	Routes     []feature.Route
	Tags       Tagger
	Extensions []feature.Extension
	// MaxBody limits request bodies (Neutron's max_request_body_size).
	MaxBody int64
	// Auth wraps the API routes (noauth or Keystone token validation).
	Auth func(http.Handler) http.Handler
	// Quotas serves /v2.0/quotas when set.
	Quotas Quotas
	// Policy authorises every action and attribute; without it only the
	// attribute maps' admin-only marks apply.
	Policy *policy.Enforcer
	// Feed serves /muon/v1/changes when set.
	Feed Feed
}

// New builds the API server's handler.
func New(cfg Config) *Server {
	s := &Server{
		log:        cfg.Log,
		services:   cfg.Services,
		tags:       cfg.Tags,
		extensions: cfg.Extensions,
		maxBody:    cfg.MaxBody,
		policy:     cfg.Policy,
		feed:       cfg.Feed,
		mux:        http.NewServeMux(),
	}
	if s.maxBody == 0 {
		s.maxBody = 114688
	}
	api := http.NewServeMux()
	api.HandleFunc("GET /v2.0", s.handle(s.versionV2))
	api.HandleFunc("GET /v2.0/{$}", s.handle(s.versionV2))
	api.HandleFunc("GET /v2.0/extensions", s.handle(s.listExtensions))
	api.HandleFunc("GET /v2.0/extensions/{alias}", s.handle(s.showExtension))
	for _, svc := range cfg.Services {
		svc.Res.Init()
		s.route(api, svc)
	}
	if cfg.Quotas != nil {
		s.routeQuotas(api, cfg.Quotas)
	}
	// service-type: the advanced services' providers; this build has none.
	api.HandleFunc("GET /v2.0/service-providers", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]any{"service_providers": []any{}})
		return nil
	}))
	for _, rt := range cfg.Routes {
		api.HandleFunc(rt.Pattern, s.handle(func(w http.ResponseWriter, r *http.Request) error { return s.serveRoute(w, r, rt) }))
	}
	if cfg.Feed != nil {
		api.HandleFunc("GET /muon/v1/changes", s.handle(s.changes))
	}
	api.HandleFunc("/", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return errNotFoundPath(r)
	}))
	var h http.Handler = api
	if cfg.Auth != nil {
		h = cfg.Auth(h)
	}
	s.mux.HandleFunc("GET /{$}", s.handle(s.versions))
	s.mux.Handle("/", h)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w, status: 200}
	r.URL.Path = strings.TrimSuffix(r.URL.Path, ".json")
	s.mux.ServeHTTP(rw, r)
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.DebugContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path, "status", rw.status, "took", time.Since(start))
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) route(mux *http.ServeMux, svc *feature.Service) {
	base := "/v2.0/" + svc.PathPrefix + svc.Res.Collection
	// on is the service a request sees: a sub-collection's backend bound
	// to the parent the path names.
	on := func(r *http.Request) *feature.Service { return svc }
	if svc.Parent != nil {
		base = "/v2.0/" + svc.Parent.Collection + "/{parent_id}/" + svc.Res.Collection
		on = func(r *http.Request) *feature.Service {
			c := *svc
			c.Backend = bound{sub: svc.Sub, parent: r.PathValue("parent_id")}
			return &c
		}
	}
	handle := func(fn func(http.ResponseWriter, *http.Request, *feature.Service) error) http.HandlerFunc {
		return s.handle(func(w http.ResponseWriter, r *http.Request) error { return fn(w, r, on(r)) })
	}
	mux.HandleFunc("GET "+base, handle(s.list))
	mux.HandleFunc("GET "+base+"/{id}", handle(s.show))
	if !svc.ReadOnly {
		mux.HandleFunc("POST "+base, handle(s.create))
		if !svc.NoUpdate {
			mux.HandleFunc("PUT "+base+"/{id}", handle(s.update))
		}
		mux.HandleFunc("DELETE "+base+"/{id}", handle(s.delete))
	}
	// Other methods on a known path are 405, as in Neutron (not the
	// catch-all 404).
	notAllowed := s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return fault.New(http.StatusMethodNotAllowed, "HTTPMethodNotAllowed", "The method %s is not allowed for this resource.", r.Method)
	})
	mux.HandleFunc(base, notAllowed)
	mux.HandleFunc(base+"/{id}", notAllowed)
	for name, act := range svc.Actions {
		mux.HandleFunc("PUT "+base+"/{id}/"+name, s.handle(func(w http.ResponseWriter, r *http.Request) error { return s.action(w, r, svc, name, act) }))
	}
	if svc.Res.Tags && s.tags != nil {
		t := base + "/{id}/tags"
		mux.HandleFunc("GET "+t, s.handle(func(w http.ResponseWriter, r *http.Request) error { return s.getTags(w, r, svc) }))
		mux.HandleFunc("PUT "+t, s.handle(func(w http.ResponseWriter, r *http.Request) error { return s.replaceTags(w, r, svc) }))
		mux.HandleFunc("DELETE "+t, s.handle(func(w http.ResponseWriter, r *http.Request) error { return s.clearTags(w, r, svc) }))
		mux.HandleFunc("GET "+t+"/{tag}", s.handle(func(w http.ResponseWriter, r *http.Request) error { return s.hasTag(w, r, svc) }))
		mux.HandleFunc("PUT "+t+"/{tag}", s.handle(func(w http.ResponseWriter, r *http.Request) error { return s.addTag(w, r, svc) }))
		mux.HandleFunc("DELETE "+t+"/{tag}", s.handle(func(w http.ResponseWriter, r *http.Request) error { return s.removeTag(w, r, svc) }))
	}
}

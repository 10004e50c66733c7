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
	"time"

	"muon/internal/fault"
	"muon/internal/policy"
	"muon/internal/resource"
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

// Tagger changes a resource's tags (standard-attr-tag).
type Tagger interface {
	// SetTags replaces the tags; add and remove edit one tag each when
	// replace is nil.
	SetTags(ctx context.Context, kind, id string, edit func(tags []string) ([]string, error)) ([]string, error)
}

// Action is a member action such as PUT /subnetpools/{id}/add_prefixes.
type Action func(ctx context.Context, id string, body []byte) (any, error)

// Service is one resource served by the API.
type Service struct {
	Res     *resource.Resource
	Backend Backend
	// ReadOnly resources answer list and show only.
	ReadOnly bool
	// NoBulk refuses list bodies on create.
	NoBulk bool
	// NoUpdate resources have no PUT (405), like Neutron's whose
	// attributes are all set on create (metering labels).
	NoUpdate bool
	Actions  map[string]Action
	// Parent makes this a sub-collection of the parent's members:
	// /v2.0/{parent collection}/{parent_id}/{collection}; ParentID gives
	// the backend the parent's id, and policy names the actions
	// "<verb>_<parent>_<resource>" (create_floatingip_port_forwarding).
	Parent *resource.Resource
	// PathPrefix puts the collection under a path, as Neutron's extensions
	// with a collection prefix do: "metering/" serves
	// /v2.0/metering/metering-labels.
	PathPrefix string
}

type parentKey struct{}

// ParentID is the parent's id of a sub-collection request, or "".
func ParentID(ctx context.Context) string {
	id, _ := ctx.Value(parentKey{}).(string)
	return id
}

// policyName is the resource's name in policy rule names.
func (svc *Service) policyName() string {
	if svc.Parent != nil {
		return svc.Parent.Name + "_" + svc.Res.Name
	}
	return svc.Res.Name
}

// Extension is one entry of GET /v2.0/extensions.
type Extension struct {
	Alias       string `json:"alias"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Updated     string `json:"updated"`
	Links       []any  `json:"links"`
}

// Server is the Networking API.
type Server struct {
	log        *slog.Logger
	services   []*Service
	tags       Tagger
	extensions []Extension
	maxBody    int64
	policy     *policy.Enforcer
	feed       Feed
	hosts      Hosts
	mux        *http.ServeMux
}

// Config assembles a Server.
type Config struct {
	Log        *slog.Logger
	Services   []*Service
	Tags       Tagger
	Extensions []Extension
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
	// DHCP serves the dhcp_agent_scheduler routes when set.
	DHCP DHCPScheduler
	// Hosts serves the agent channel (/muon/v1/agents/heartbeat,
	// /muon/v1/hosts/...) when set.
	Hosts Hosts
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
		hosts:      cfg.Hosts,
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
	if cfg.DHCP != nil {
		s.routeDHCP(api, cfg.DHCP)
	}
	if cfg.Feed != nil {
		api.HandleFunc("GET /muon/v1/changes", s.handle(s.changes))
	}
	if cfg.Hosts != nil {
		s.routeHosts(api)
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

func (s *Server) route(mux *http.ServeMux, svc *Service) {
	base := "/v2.0/" + svc.PathPrefix + svc.Res.Collection
	handle := s.handle
	if svc.Parent != nil {
		base = "/v2.0/" + svc.Parent.Collection + "/{parent_id}/" + svc.Res.Collection
		handle = func(fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
			return s.handle(func(w http.ResponseWriter, r *http.Request) error {
				return fn(w, r.WithContext(context.WithValue(r.Context(), parentKey{}, r.PathValue("parent_id"))))
			})
		}
	}
	mux.HandleFunc("GET "+base, handle(func(w http.ResponseWriter, r *http.Request) error { return s.list(w, r, svc) }))
	mux.HandleFunc("GET "+base+"/{id}", handle(func(w http.ResponseWriter, r *http.Request) error { return s.show(w, r, svc) }))
	if !svc.ReadOnly {
		mux.HandleFunc("POST "+base, handle(func(w http.ResponseWriter, r *http.Request) error { return s.create(w, r, svc) }))
		if !svc.NoUpdate {
			mux.HandleFunc("PUT "+base+"/{id}", handle(func(w http.ResponseWriter, r *http.Request) error { return s.update(w, r, svc) }))
		}
		mux.HandleFunc("DELETE "+base+"/{id}", handle(func(w http.ResponseWriter, r *http.Request) error { return s.delete(w, r, svc) }))
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

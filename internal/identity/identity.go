// Package identity is Muon's built-in identity service: the subset of the
// Keystone v3 API that clients and automation use (version discovery,
// tokens, the service catalog, domains, projects, users, roles and role
// assignments), and the token validators the Networking API authenticates
// with, against this service or an external Keystone.
//
// Tokens are self-contained and signed (HMAC-SHA256) with a key kept in the
// store, so they survive a restart; revocations are records in the store.
// Names unique in a domain and role assignments are tables whose keys the
// database enforces.
package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"muon/internal/store"
)

// Record kinds the identity service keeps.
const (
	kindDomain     = "identity_domain"
	kindProject    = "identity_project"
	kindUser       = "identity_user"
	kindRole       = "identity_role"
	kindSystem     = "identity_system"
	kindKey        = "identity_key"
	kindRevocation = "identity_revocation"

	// systemID is the record that system role assignments target.
	systemID = "identity-system-all"
	// keyID is the record holding the token signing key.
	keyID = "identity-signing-key"
)

// Name kinds in the store's unique names: users and projects per domain,
// domains and roles globally.
const (
	nameDomain  = "identity_domain"
	nameProject = "identity_project"
	nameUser    = "identity_user"
	nameRole    = "identity_role"
)

// pruneEvery is how often a revocation also removes the expired ones.
const pruneEvery = time.Minute

// DefaultTokenTTL is how long a token lives unless configured (Keystone's
// [token] expiration).
const DefaultTokenTTL = time.Hour

// Config is the identity service's configuration.
type Config struct {
	// PublicURL is where clients reach this service, without /v3
	// ("http://127.0.0.1:5000"). Empty: taken from each request's Host.
	PublicURL string
	// NetworkURL is the Networking API's endpoint in the catalog, without
	// /v2.0 ("http://127.0.0.1:9696"), as Neutron registers it.
	NetworkURL string
	// Region of the catalog's endpoints; default "RegionOne".
	Region string
	// TokenTTL is a token's lifetime; default DefaultTokenTTL.
	TokenTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Service is the identity service over a store.
type Service struct {
	cfg  Config
	st   store.Store
	log  *slog.Logger
	keys *keyring
	mux  *http.ServeMux

	// gen counts this service's writes: cached validations from an older
	// generation are not trusted.
	gen   atomic.Uint64
	cache validationCache
	// pruned is when expired revocations were last removed (unix ms).
	pruned atomic.Int64
}

// New builds the service over an open store, creating the signing key if
// Bootstrap has not.
func New(cfg Config, st store.Store, log *slog.Logger) (*Service, error) {
	if cfg.Region == "" {
		cfg.Region = "RegionOne"
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.TokenTTL < 0 {
		return nil, fmt.Errorf("identity: token ttl %s is negative", cfg.TokenTTL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.PublicURL = trimVersion(cfg.PublicURL)
	cfg.NetworkURL = strings.TrimSuffix(strings.TrimSuffix(cfg.NetworkURL, "/"), "/v2.0")
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, st: st, log: log.With("service", "identity")}
	ks, err := ensureKeys(context.Background(), st, cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	s.keys = newKeyring(st, cfg.Now, ks)
	err = st.Update(context.Background(), func(tx store.Tx) error { return ensureSystem(context.Background(), tx) })
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	s.routes()
	return s, nil
}

// Handler serves the Keystone v3 API.
func (s *Service) Handler() http.Handler { return s.mux }

// Validator validates tokens for the Networking API directly, without
// HTTP.
func (s *Service) Validator() Validator { return localValidator{s} }

func trimVersion(u string) string {
	u = strings.TrimSuffix(u, "/")
	return strings.TrimSuffix(u, "/v3")
}

// update runs fn in a write transaction and invalidates cached
// validations.
func (s *Service) update(ctx context.Context, fn func(store.Tx) error) error {
	err := s.st.Update(ctx, fn)
	s.gen.Add(1)
	return err
}

// Stored documents. The API shapes are built from them; the password hash
// never leaves the package.

type domainDoc struct {
	ID          string                     `json:"id"`
	Name        string                     `json:"name"`
	Description string                     `json:"description"`
	Enabled     bool                       `json:"enabled"`
	Tags        []string                   `json:"tags"`
	Extra       map[string]json.RawMessage `json:"extra,omitempty"`
}

type projectDoc struct {
	ID          string                     `json:"id"`
	Name        string                     `json:"name"`
	DomainID    string                     `json:"domain_id"`
	ParentID    string                     `json:"parent_id"`
	Description string                     `json:"description"`
	Enabled     bool                       `json:"enabled"`
	Tags        []string                   `json:"tags"`
	Extra       map[string]json.RawMessage `json:"extra,omitempty"`
}

type userDoc struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	DomainID         string `json:"domain_id"`
	Enabled          bool   `json:"enabled"`
	DefaultProjectID string `json:"default_project_id,omitempty"`
	Description      string `json:"description,omitempty"`
	Email            string `json:"email,omitempty"`
	PasswordHash     string `json:"password_hash,omitempty"`
	// RevokedBefore: tokens issued before it (unix ms) are invalid, as
	// after a password change.
	RevokedBefore int64                      `json:"revoked_before,omitempty"`
	Extra         map[string]json.RawMessage `json:"extra,omitempty"`
}

type roleDoc struct {
	ID          string                     `json:"id"`
	Name        string                     `json:"name"`
	Description string                     `json:"description,omitempty"`
	Extra       map[string]json.RawMessage `json:"extra,omitempty"`
}

type revocationDoc struct {
	ID        string `json:"id"`
	ExpiresAt int64  `json:"expires_at"` // unix ms
}

// get reads and decodes a record; a missing one is store.ErrNotFound.
func get[T any](ctx context.Context, tx store.Tx, kind, id string) (*T, error) {
	if id == "" {
		return nil, store.ErrNotFound
	}
	r, err := tx.Get(ctx, kind, id)
	if err != nil {
		return nil, err
	}
	var v T
	if err := json.Unmarshal(r.Doc, &v); err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, id, err)
	}
	return &v, nil
}

// list reads and decodes records.
func list[T any](ctx context.Context, tx store.Tx, f store.Filter) ([]*T, error) {
	rs, err := tx.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(rs))
	for _, r := range rs {
		var v T
		if err := json.Unmarshal(r.Doc, &v); err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.Kind, r.ID, err)
		}
		out = append(out, &v)
	}
	return out, nil
}

func put(ctx context.Context, tx store.Tx, insert bool, kind, id, parent string, v any) error {
	doc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r := &store.Record{Kind: kind, ID: id, ParentID: parent, Doc: doc}
	if insert {
		return tx.Insert(ctx, r)
	}
	return tx.Update(ctx, r)
}

// validationCache remembers recent validations for the local validator.
type validationCache struct {
	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	v     *validated
	gen   uint64
	until time.Time
}

const (
	cacheTTL = 10 * time.Second
	cacheMax = 10000
)

func (c *validationCache) get(tok string, gen uint64, now time.Time) *validated {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[tok]
	if !ok || e.gen != gen || !now.Before(e.until) {
		return nil
	}
	return e.v
}

func (c *validationCache) put(tok string, v *validated, gen uint64, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= cacheMax {
		c.m = map[string]cached{}
	}
	c.m[tok] = cached{v: v, gen: gen, until: until}
}

// Package server assembles a Networking API server from configuration:
// the store, the core plugin and the HTTP API with its resources.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"muon/internal/api"
	"muon/internal/auth"
	"muon/internal/channel"
	"muon/internal/feature"
	_ "muon/internal/feature/all" // every feature
	"muon/internal/identity"
	"muon/internal/ml2"
	_ "muon/internal/ml2/types" // every type driver
	"muon/internal/policy"
	"muon/internal/quota"
	"muon/internal/statefile"
	"muon/internal/store"
	"muon/internal/store/postgres"
	"muon/internal/store/sqlite"
)

// Config is the server's configuration file (TOML) and flags.
type Config struct {
	Host string `toml:"host"`
	Port int    `toml:"port"`
	// Auth is "noauth" (X-Project-Id/X-Roles headers) or "keystone".
	Auth string `toml:"auth"`
	// Database is a PostgreSQL DSN (postgres://...) or a SQLite file path
	// (optionally sqlite:PATH).
	Database string `toml:"database"`
	// SQLiteSynchronous is SQLite's synchronous pragma, FULL or NORMAL.
	SQLiteSynchronous string `toml:"sqlite_synchronous"`
	MaxRequestBody    int64  `toml:"max_request_body_size"`
	// Quotas overrides Neutron's default per-project limits ([quotas]
	// network = 100, port = 500, ...; -1 is unlimited).
	Quotas map[string]int64 `toml:"quotas"`
	// PolicyFile is an operator's policy.yaml over Neutron's default rules.
	PolicyFile string `toml:"policy_file"`
	// PublicURL is the Networking API's URL in the service catalog
	// (default http://HOST:PORT).
	PublicURL string `toml:"public_url"`
	// IdentityPort serves the built-in identity service (auth keystone
	// without [keystone_authtoken]); IdentityPublicURL is its URL for
	// clients (default http://HOST:IDENTITY_PORT).
	IdentityPort      int    `toml:"identity_port"`
	IdentityPublicURL string `toml:"identity_public_url"`
	// TokenTTL is the built-in identity's token lifetime ("1h").
	TokenTTL string `toml:"token_ttl"`
	// Keystone, when its auth_url is set, is an external Keystone that
	// validates tokens instead of the built-in identity service.
	Keystone KeystoneConfig `toml:"keystone_authtoken"`
	ML2      ML2Config      `toml:"ml2"`
	// HTTP bounds the listeners' clients ([http]).
	HTTP HTTPConfig `toml:"http"`
	// Features holds each compiled-in feature's configuration by feature
	// name (what its feature.Feature.Config made, decoded from the same
	// file: agents' agent_down_time, l3's max_routes, ...).
	Features map[string]any `toml:"-"`
}

// KeystoneConfig is the [keystone_authtoken] section, named as
// keystonemiddleware's options.
type KeystoneConfig struct {
	AuthURL           string `toml:"auth_url"`
	Username          string `toml:"username"`
	Password          string `toml:"password"`
	UserDomainName    string `toml:"user_domain_name"`
	ProjectName       string `toml:"project_name"`
	ProjectDomainName string `toml:"project_domain_name"`
	CacheTime         string `toml:"token_cache_time"` // "60s"
}

// ML2Config is the [ml2] section, named as Neutron's options.
type ML2Config struct {
	TypeDrivers         []string `toml:"type_drivers"`
	TenantNetworkTypes  []string `toml:"tenant_network_types"`
	FlatNetworks        []string `toml:"flat_networks"`
	NetworkVLANRanges   []string `toml:"network_vlan_ranges"` // "physnet1:1000:2999" or "physnet2"
	VNIRanges           string   `toml:"vni_ranges"`
	GeneveVNIRanges     string   `toml:"geneve_vni_ranges"`
	GeneveMaxHeaderSize int      `toml:"geneve_max_header_size"`
	GlobalPhysnetMTU    int      `toml:"global_physnet_mtu"`
	PathMTU             int      `toml:"path_mtu"`
	PhysicalNetworkMTUs []string `toml:"physical_network_mtus"` // "physnet1:9000"
	BaseMAC             string   `toml:"base_mac"`
	DNSDomain           string   `toml:"dns_domain"`
}

// DefaultConfig is a single-host configuration with a SQLite file in dir.
func DefaultConfig(dir string) Config {
	c := Config{
		Host: "127.0.0.1", Port: 9696, Auth: "keystone", IdentityPort: 5000,
		Database: filepath.Join(dir, "muon.db"), SQLiteSynchronous: "FULL",
		Features: map[string]any{},
	}
	for _, f := range feature.All() {
		if f.Config != nil {
			c.Features[f.Name] = f.Config()
		}
	}
	return c
}

// LoadFile reads a TOML configuration over cfg: the server's own keys and
// each feature's. A key none of them knows is an error.
func LoadFile(path string, cfg *Config) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	text := string(raw)
	md, err := toml.Decode(text, cfg)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	unknown := map[string]bool{}
	for _, k := range md.Undecoded() {
		unknown[k.String()] = true
	}
	for _, f := range feature.All() {
		if f.Config == nil {
			continue
		}
		if cfg.Features == nil {
			cfg.Features = map[string]any{}
		}
		fc, ok := cfg.Features[f.Name]
		if !ok {
			fc = f.Config()
			cfg.Features[f.Name] = fc
		}
		fmd, err := toml.Decode(text, fc)
		if err != nil {
			return fmt.Errorf("config %s: %s: %w", path, f.Name, err)
		}
		left := map[string]bool{}
		for _, k := range fmd.Undecoded() {
			left[k.String()] = true
		}
		for k := range unknown {
			if !left[k] {
				delete(unknown, k)
			}
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("config %s: unknown keys %v", path, slices.Sorted(maps.Keys(unknown)))
	}
	return nil
}

func (c ML2Config) plugin() (ml2.Config, error) {
	out := ml2.DefaultConfig()
	if len(c.TypeDrivers) > 0 {
		out.TypeDrivers = c.TypeDrivers
	}
	if len(c.TenantNetworkTypes) > 0 {
		out.TenantNetworkTypes = c.TenantNetworkTypes
	}
	if c.FlatNetworks != nil {
		out.Types.FlatNetworks = c.FlatNetworks
	}
	if c.NetworkVLANRanges != nil {
		out.Types.VLANRanges = map[string][]ml2.Range{}
		for _, s := range c.NetworkVLANRanges {
			phys, rng, _ := strings.Cut(s, ":")
			rs, err := ml2.ParseRanges(rng)
			if err != nil {
				return out, fmt.Errorf("network_vlan_ranges %q: %w", s, err)
			}
			out.Types.VLANRanges[phys] = append(out.Types.VLANRanges[phys], rs...)
		}
	}
	var err error
	if c.VNIRanges != "" {
		if out.Types.VNIRanges, err = ml2.ParseRanges(c.VNIRanges); err != nil {
			return out, fmt.Errorf("vni_ranges: %w", err)
		}
	}
	if c.GeneveVNIRanges != "" {
		if out.Types.GeneveRanges, err = ml2.ParseRanges(c.GeneveVNIRanges); err != nil {
			return out, fmt.Errorf("geneve_vni_ranges: %w", err)
		}
	}
	if c.GeneveMaxHeaderSize > 0 {
		out.Types.GeneveMaxHeader = c.GeneveMaxHeaderSize
	}
	if c.GlobalPhysnetMTU > 0 {
		out.Types.GlobalPhysnetMTU = c.GlobalPhysnetMTU
	}
	out.Types.PathMTU = c.PathMTU
	for _, s := range c.PhysicalNetworkMTUs {
		phys, m, ok := strings.Cut(s, ":")
		var mtu int
		if _, err := fmt.Sscanf(m, "%d", &mtu); !ok || err != nil {
			return out, fmt.Errorf("physical_network_mtus %q: want PHYSNET:MTU", s)
		}
		if out.Types.PhysnetMTUs == nil {
			out.Types.PhysnetMTUs = map[string]int{}
		}
		out.Types.PhysnetMTUs[phys] = mtu
	}
	if c.BaseMAC != "" {
		out.BaseMAC = c.BaseMAC
	}
	if c.DNSDomain != "" {
		out.DNSDomain = c.DNSDomain
	}
	return out, nil
}

// feedOf is the store's change feed, if it keeps one.
func feedOf(st store.Store) api.Feed {
	if f, ok := st.(api.Feed); ok {
		return f
	}
	return nil
}

func loadPolicy(path string, defaults map[string]string) (*policy.Enforcer, error) {
	if path == "" {
		return policy.Compile(defaults, nil)
	}
	return policy.Load(path, defaults)
}

// OpenStore opens the database the configuration names.
func OpenStore(ctx context.Context, cfg Config) (store.Store, error) {
	db := cfg.Database
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		return postgres.Open(ctx, db)
	}
	db = strings.TrimPrefix(db, "sqlite:")
	if dir := filepath.Dir(db); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	// The database holds the token signing keys: it is made 0600 (SQLite
	// gives its WAL and shared-memory files the database's mode), and one
	// that others can read is refused rather than trusted.
	if err := statefile.Create(db); err != nil {
		return nil, err
	}
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		if err := statefile.CheckPrivate(f); err != nil {
			return nil, err
		}
	}
	return sqlite.Open(ctx, db, sqlite.Options{Synchronous: cfg.SQLiteSynchronous})
}

// New builds the API handler over an open store: the core plugin, then
// every compiled-in feature over it.
func New(cfg Config, st store.Store, log *slog.Logger) (*Servers, error) {
	ctx := context.Background()
	pcfg, err := cfg.ML2.plugin()
	if err != nil {
		return nil, err
	}
	p, err := ml2.New(pcfg, st, log)
	if err != nil {
		return nil, err
	}
	features := feature.All()
	quotaNames := quota.Core()
	rules := map[string]string{}
	exts := coreExtensions()
	for _, f := range features {
		quotaNames = append(quotaNames, f.Quotas...)
		maps.Copy(rules, f.Policy)
		exts = append(exts, f.Extensions...)
	}
	quotas, err := quota.New(quotaNames, cfg.Quotas)
	if err != nil {
		return nil, err
	}
	p.UseQuotas(quotas)
	enforcer, err := loadPolicy(cfg.PolicyFile, rules)
	if err != nil {
		return nil, err
	}
	pools := ml2.SubnetPools{Plugin: p}
	services := []*feature.Service{
		{Res: ml2.NetworkResource(), Backend: ml2.Networks{Plugin: p}},
		{Res: ml2.SubnetResource(), Backend: ml2.Subnets{Plugin: p}},
		{Res: ml2.PortResource(), Backend: ml2.Ports{Plugin: p}},
		{Res: ml2.SubnetPoolResource(), Backend: pools, Actions: map[string]feature.Action{
			"add_prefixes": pools.AddPrefixes, "remove_prefixes": pools.RemovePrefixes,
		}},
		{Res: ml2.AddressScopeResource(), Backend: ml2.AddressScopes{Plugin: p}},
		{Res: ml2.SegmentResource(), Backend: ml2.Segments{Plugin: p}},
		{Res: ml2.IPAvailabilityResource(), Backend: ml2.IPAvailabilities{Plugin: p}, ReadOnly: true},
		{Res: ml2.RBACPolicyResource(), Backend: ml2.RBACPolicies{Plugin: p}},
	}
	var (
		routes   []feature.Route
		sections []feature.Section
		runs     []func(context.Context)
		plugins  = map[string]any{}
	)
	for _, f := range features {
		env := feature.Env{Store: st, Log: log.With("feature", f.Name), Core: p, Quotas: quotas,
			Feature: func(name string) any {
				if !slices.Contains(f.Needs, name) {
					panic("feature: " + f.Name + " asks for " + name + " without needing it")
				}
				return plugins[name]
			}}
		if f.Config != nil {
			env.Config = cfg.Features[f.Name]
			if env.Config == nil {
				env.Config = f.Config()
			}
		}
		parts, err := f.Build(ctx, env)
		if err != nil {
			return nil, fmt.Errorf("feature %s: %w", f.Name, err)
		}
		services = append(services, parts.Services...)
		routes = append(routes, parts.Routes...)
		sections = append(sections, parts.Sections...)
		plugins[f.Name] = parts.Plugin
		if parts.Run != nil {
			runs = append(runs, parts.Run)
		}
	}
	cst, ok := st.(channel.Store)
	if !ok {
		return nil, fmt.Errorf("agent channel: the store keeps no change feed")
	}
	ch, err := channel.New(cst, sections)
	if err != nil {
		return nil, err
	}
	routes = append(routes, ch.Routes()...)
	out := &Servers{runs: runs}
	var authn func(http.Handler) http.Handler
	switch cfg.Auth {
	case "noauth":
		authn = auth.NoAuth
	case "", "keystone":
		v, id, err := cfg.identity(st, log)
		if err != nil {
			return nil, err
		}
		out.Identity = id
		authn = identity.Middleware(v, cfg.identityURL())
	default:
		return nil, fmt.Errorf("auth %q: want noauth or keystone", cfg.Auth)
	}
	out.API = api.New(api.Config{
		Log:        log,
		Auth:       authn,
		Services:   services,
		Routes:     routes,
		Tags:       p,
		Quotas:     &quota.Service{Engine: quotas, Store: st},
		Policy:     enforcer,
		Feed:       feedOf(st),
		Extensions: exts,
		MaxBody:    cfg.MaxRequestBody,
	})
	return out, nil
}

// Servers is what one configuration serves: the Networking API and, when
// the identity service is built in, Keystone's v3 API.
type Servers struct {
	API      http.Handler
	Identity *identity.Service // nil with noauth or an external Keystone
	runs     []func(context.Context)
}

// Run does the features' background work until ctx ends.
func (s *Servers) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, r := range s.runs {
		wg.Go(func() { r(ctx) })
	}
	wg.Wait()
}

// identity builds the token validator: an external Keystone's when
// [keystone_authtoken] names one, else the built-in identity service's.
func (c Config) identity(st store.Store, log *slog.Logger) (identity.Validator, *identity.Service, error) {
	if k := c.Keystone; k.AuthURL != "" {
		ttl, err := parseDuration(k.CacheTime, 60*time.Second)
		if err != nil {
			return nil, nil, fmt.Errorf("keystone_authtoken token_cache_time: %w", err)
		}
		v, err := identity.NewRemote(identity.RemoteConfig{
			AuthURL: k.AuthURL, Username: k.Username, Password: k.Password,
			UserDomainName: k.UserDomainName, ProjectName: k.ProjectName,
			ProjectDomainName: k.ProjectDomainName, CacheTTL: ttl,
		})
		return v, nil, err
	}
	ttl, err := c.TokenLifetime()
	if err != nil {
		return nil, nil, err
	}
	svc, err := identity.New(identity.Config{PublicURL: c.identityURL(), NetworkURL: c.networkURL(), TokenTTL: ttl}, st, log)
	if err != nil {
		return nil, nil, err
	}
	return svc.Validator(), svc, nil
}

// TokenLifetime is token_ttl, the built-in identity's default when unset.
func (c Config) TokenLifetime() (time.Duration, error) {
	ttl, err := parseDuration(c.TokenTTL, identity.DefaultTokenTTL)
	if err != nil {
		return 0, fmt.Errorf("token_ttl: %w", err)
	}
	return ttl, nil
}

func parseDuration(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	return time.ParseDuration(s)
}

// reachable is the host clients use: a wildcard listen address means
// loopback for the URLs Muon hands out.
func (c Config) reachable() string {
	switch c.Host {
	case "", "0.0.0.0", "::":
		return "127.0.0.1"
	}
	return c.Host
}

func (c Config) identityURL() string {
	if c.Keystone.AuthURL != "" {
		return strings.TrimSuffix(strings.TrimSuffix(c.Keystone.AuthURL, "/"), "/v3")
	}
	if c.IdentityPublicURL != "" {
		return c.IdentityPublicURL
	}
	return "http://" + net.JoinHostPort(c.reachable(), strconv.Itoa(c.IdentityPort))
}

func (c Config) networkURL() string {
	if c.PublicURL != "" {
		return c.PublicURL
	}
	return "http://" + net.JoinHostPort(c.reachable(), strconv.Itoa(c.Port))
}

// IdentityURL is where the identity service is reached (no /v3).
func (c Config) IdentityURL() string { return c.identityURL() }

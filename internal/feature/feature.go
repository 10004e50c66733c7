// Package feature is how Muon's features plug into the server. A feature
// (security groups, routers, metering, agents, and every later one) is one
// package that registers, in init, what it contributes: the API services
// it serves, the extension aliases it answers for, its default policy
// rules, its quota names and defaults, its configuration, and a Build that
// makes its instances for one server. The server loops over what is
// compiled in (internal/feature/all); nothing in api or server names a
// feature.
//
// The contract types here (Service, Backend, Route) know no HTTP: a
// plugin implements them and the api layer serves them.
package feature

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"muon/internal/ml2"
	"muon/internal/quota"
	"muon/internal/store"
)

// Feature is one feature's registration.
type Feature struct {
	// Name is unique and short ("l3", "secgroup"); it names the feature
	// in logs and configuration.
	Name string
	// Extensions are the aliases of /v2.0/extensions the feature serves.
	Extensions []Extension
	// Policy is the feature's default rules (rule name -> rule text); an
	// operator's policy file overrides them as any other.
	Policy map[string]string
	// Quotas are the per-project limits the feature counts.
	Quotas []quota.Resource
	// Config returns a fresh copy of the feature's configuration with its
	// defaults, a pointer to a struct with toml tags; the configuration
	// file is decoded into it. Nil when the feature has none.
	Config func() any
	// Needs names the features whose Parts.Plugin this one uses
	// (Env.Feature): they are built first.
	Needs []string
	// Build makes the feature's instances for one server.
	Build func(ctx context.Context, env Env) (Parts, error)
}

// Extension is one entry of GET /v2.0/extensions.
type Extension struct {
	Alias       string `json:"alias"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Updated     string `json:"updated"`
	Links       []any  `json:"links"`
}

// Ext is an extension entry with no links.
func Ext(alias, name, desc, updated string) Extension {
	return Extension{Alias: alias, Name: name, Description: desc, Updated: updated, Links: []any{}}
}

// QuotaChecker refuses creates that would take a project past its quota.
type QuotaChecker interface {
	Check(ctx context.Context, tx store.Tx, name, project string, n int) error
}

// Env is what a feature is built over, for one server.
type Env struct {
	Store  store.Store
	Log    *slog.Logger
	Core   *ml2.Plugin
	Quotas QuotaChecker
	// Config is the feature's configuration (what its Config returned,
	// decoded), or nil when it has none.
	Config any
	// Feature is what a feature this one Needs offers (its
	// Parts.Plugin), or nil.
	Feature func(name string) any
}

// Parts is what a built feature serves.
type Parts struct {
	Services []*Service
	Routes   []Route
	// Sections are its parts of hosts' desired state on the agent
	// channel.
	Sections []Section
	// Run, when set, is the feature's background work (a scheduler's
	// periodic look at dead agents): the server runs it until ctx ends.
	// Every server of a cloud runs it, so what it changes it changes in
	// transactions that the database keeps from colliding.
	Run func(ctx context.Context)
	// Plugin is what the feature offers the features that need it.
	Plugin any
}

var (
	mu       sync.Mutex
	registry = map[string]Feature{}
)

// Register adds a feature; call it from init. An empty or duplicate name,
// a missing Build, or an extension alias or quota name another feature
// already registered panics.
func Register(f Feature) {
	mu.Lock()
	defer mu.Unlock()
	if f.Name == "" {
		panic("feature: Register with an empty name")
	}
	if _, dup := registry[f.Name]; dup {
		panic("feature: " + f.Name + " registered twice")
	}
	if f.Build == nil {
		panic("feature: " + f.Name + " has no Build")
	}
	for _, o := range registry {
		for _, e := range f.Extensions {
			if slices.ContainsFunc(o.Extensions, func(x Extension) bool { return x.Alias == e.Alias }) {
				panic(fmt.Sprintf("feature: %s and %s both serve extension %q", o.Name, f.Name, e.Alias))
			}
		}
		for _, q := range f.Quotas {
			if slices.ContainsFunc(o.Quotas, func(x quota.Resource) bool { return x.Name == q.Name }) {
				panic(fmt.Sprintf("feature: %s and %s both count quota %q", o.Name, f.Name, q.Name))
			}
		}
		for name := range f.Policy {
			if _, dup := o.Policy[name]; dup {
				panic(fmt.Sprintf("feature: %s and %s both define policy rule %q", o.Name, f.Name, name))
			}
		}
	}
	for _, e := range f.Extensions {
		if e.Alias == "" {
			panic("feature: " + f.Name + " registers an extension with no alias")
		}
	}
	registry[f.Name] = f
}

// All lists the registered features in build order: by name, each after
// the features it Needs. A need of a feature not registered, or a cycle,
// panics.
func All() []Feature {
	mu.Lock()
	defer mu.Unlock()
	byName := make([]Feature, 0, len(registry))
	for _, f := range registry {
		byName = append(byName, f)
	}
	slices.SortFunc(byName, func(a, b Feature) int { return cmp.Compare(a.Name, b.Name) })
	out := make([]Feature, 0, len(byName))
	state := map[string]int{} // 1 visiting, 2 placed
	var place func(f Feature)
	place = func(f Feature) {
		switch state[f.Name] {
		case 1:
			panic("feature: " + f.Name + " needs itself through its needs")
		case 2:
			return
		}
		state[f.Name] = 1
		for _, n := range f.Needs {
			dep, ok := registry[n]
			if !ok {
				panic("feature: " + f.Name + " needs " + n + ", which is not compiled in")
			}
			place(dep)
		}
		state[f.Name] = 2
		out = append(out, f)
	}
	for _, f := range byName {
		place(f)
	}
	return out
}

package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	"muon/internal/agentapi"
	"muon/internal/kernel"
)

// Settings are a host's data plane settings, as its drivers need them.
type Settings struct {
	Host     string
	TunnelIP string
	// InterfaceMappings maps physical networks to host interfaces.
	InterfaceMappings map[string]string
	ARPResponder      bool
	AvailabilityZone  string
	// NamespacePrefix goes before the names of the namespaces the agent
	// makes (Neutron's "qdhcp-<network>"): for several agents on one
	// machine, as in a lab. Empty in production.
	NamespacePrefix string
	DHCP            DHCPSettings
	// L3AgentMode is the L3 role's agent_mode ("legacy"); empty, the
	// host builds no routers.
	L3AgentMode string
}

// DHCPSettings are the DHCP service's, named after Neutron's options.
type DHCPSettings struct {
	// LeaseTime is dhcp_lease_duration (0: 24 h).
	LeaseTime time.Duration
	// DNSServers are the upstream resolvers names outside the
	// networks' domains go to (dnsmasq_dns_servers), "ip" or "ip:port".
	DNSServers []string
	// MetadataURL is Nova's metadata API (nova_metadata_host and
	// _port): empty, the agent answers metadata from what it knows.
	MetadataURL string
	// MetadataSecret is metadata_proxy_shared_secret.
	MetadataSecret string
}

// Driver builds one section of the host's desired state in the kernel
// (agentapi.State.Sections[name]). The agent calls a driver from one
// goroutine only: it loads and applies what the channel brings, then
// Syncs.
type Driver interface {
	// Load takes the section of a full state; Apply merges a delta of
	// it. Neither touches the kernel.
	Load(section json.RawMessage) error
	Apply(delta json.RawMessage) error
	// Sync makes the kernel match the section as loaded. It is
	// idempotent, touches only what the driver made (its devices carry
	// the kernel's Mark), does all it can and returns every failure
	// joined.
	Sync(ctx context.Context) error
	// Drifted tells, cheaply, whether the kernel moved since the last
	// Sync left it (a device came, went or changed), so that a Sync is
	// due.
	Drifted(ctx context.Context) bool
	// Report is the observed state the server does not know yet (the
	// section's part of agentapi.Status), at most MaxReport entries of
	// it, or nil; done marks it delivered, and the agent asks again
	// until nothing is left. Forget makes the next Report say everything
	// again.
	Report() (report any, done func())
	Forget()
	// Heartbeat is how the driver shows in /v2.0/agents (agent type,
	// binary, configurations); the agent fills in the host and times.
	Heartbeat(ctx context.Context) agentapi.Heartbeat
}

// NewDriver makes a section's driver for one agent, or nil when the
// settings leave the driver's role off on this host.
type NewDriver func(s Settings, k kernel.Kernel, log *slog.Logger) Driver

var (
	driversMu sync.Mutex
	drivers   = map[string]NewDriver{}
)

// RegisterDriver adds the driver of a section; call it from init. An
// empty or duplicate name panics.
func RegisterDriver(section string, f NewDriver) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if section == "" || f == nil {
		panic("agent: RegisterDriver with an empty section or no constructor")
	}
	if _, dup := drivers[section]; dup {
		panic("agent: driver for section " + section + " registered twice")
	}
	drivers[section] = f
}

// Drivers lists the registered sections, sorted.
func Drivers() []string {
	driversMu.Lock()
	defer driversMu.Unlock()
	out := make([]string, 0, len(drivers))
	for s := range drivers {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func driverFor(section string) NewDriver {
	driversMu.Lock()
	defer driversMu.Unlock()
	return drivers[section]
}

package service

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"muon/internal/agentapi"
)

// Defaults of Config's zero fields.
const (
	DefaultLeaseTime  = 24 * time.Hour
	DefaultRatePerMAC = 10
	DefaultBurst      = 20
	// DefaultMaxBuckets bounds the rate limiter's memory: the (network,
	// MAC) pairs it remembers at once.
	DefaultMaxBuckets = 65536
)

// Config tunes a Table. Its zero value is usable.
type Config struct {
	// LeaseTime is the DHCP lease (Neutron's dhcp_lease_duration): 0
	// means DefaultLeaseTime, a negative value an infinite lease.
	LeaseTime time.Duration
	// Upstreams are the DNS forwarders ("ip:port"; a bare ip means port
	// 53). With none, names outside a network's domain are REFUSED.
	// Queries to them leave from the agent's own network namespace.
	Upstreams []string
	// MetadataURL is Nova's metadata API ("http://10.0.0.1:8775"): the
	// metadata handler proxies to it. Empty, the handler answers
	// itself from what the table knows.
	MetadataURL string
	// SharedSecret is metadata_proxy_shared_secret, the key of
	// X-Instance-ID-Signature.
	SharedSecret string
	// RatePerMAC and Burst limit DHCP requests per (network, MAC): 0
	// means DefaultRatePerMAC and DefaultBurst, a negative RatePerMAC
	// no limit.
	RatePerMAC float64
	Burst      int
	// MaxBuckets bounds the rate limiter (0: DefaultMaxBuckets).
	MaxBuckets int
	// Neighbor, when set, tells the MAC behind an IPv6 address of a
	// network (the namespace's neighbour table). DHCPv6 uses it for
	// clients whose DUID carries no MAC of the network and whose
	// link-local address is not EUI-64. It must be cheap and safe for
	// concurrent use.
	Neighbor func(netID string, addr netip.Addr) net.HardwareAddr
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Counters count one protocol's traffic. All are atomic.
type Counters struct {
	// Requests counts what came in, Replies what went out.
	Requests atomic.Uint64
	Replies  atomic.Uint64
	// Dropped counts requests not answered: malformed, from unknown
	// clients, for other servers, or of no interest.
	Dropped atomic.Uint64
	// RateLimited counts DHCP requests dropped over a client's rate.
	RateLimited atomic.Uint64
}

// Stats are a Table's counters, one set per protocol.
type Stats struct {
	DHCPv4   Counters
	DHCPv6   Counters
	RA       Counters
	DNS      Counters
	Metadata Counters
}

// Table is what a host's DHCP service knows of the networks it serves:
// their facts and their ports. One goroutine (the driver's) mutates it
// while any number of serving goroutines read it.
type Table struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	stats     Stats
	limit     *limiter
	upstreams []string
	dnsSlots  chan struct{}

	metadataURL *url.URL
	metadataErr error
	transport   http.RoundTripper

	mu     sync.RWMutex
	nets   map[string]*netState
	ports  map[string]*port
	raWake map[string]chan struct{}
}

// netState is one network: its facts (nil until SetNetwork) and its
// ports, indexed as the protocols look them up.
type netState struct {
	facts  *facts
	ports  map[string]*port
	byMAC  map[[6]byte][]*port
	byIP   map[netip.Addr][]*port
	byName map[string][]*port
}

// facts are a network as SetNetwork gave it, parsed once. They are never
// modified after they are built: readers keep them past the lock.
type facts struct {
	id        string
	projectID string
	mtu       int
	// domain is dns_domain without its trailing dot ("openstacklocal"),
	// zone its canonical form ("openstacklocal."); both empty when the
	// network has no domain.
	domain     string
	zone       string
	serverMAC  net.HardwareAddr
	serverDUID []byte
	serverIPs  []netip.Addr
	subnets    []*subnet
	byID       map[string]*subnet
}

// subnet is one of a network's subnets, parsed.
type subnet struct {
	id       string
	prefix   netip.Prefix
	gateway  netip.Addr
	dhcp     bool
	routed   bool
	raMode   string
	addrMode string
	dns      []netip.Addr
	// server is the DHCP port's address on the subnet, if any.
	server netip.Addr
	// opts4 are the DHCPv4 options every client of the subnet gets.
	opts4 []opt4
}

// port is a client port, parsed. Never modified after it is built.
type port struct {
	api    agentapi.DHCPPort
	mac    [6]byte
	hasMAC bool
	addrs  []fixedAddr
	name   string // lower-case hostname
	extra4 []opt4
	extra6 []opt6
}

type fixedAddr struct {
	subnetID string
	addr     netip.Addr
}

// NewTable returns an empty table. A nil log discards.
func NewTable(cfg Config, log *slog.Logger) *Table {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.LeaseTime == 0 {
		cfg.LeaseTime = DefaultLeaseTime
	}
	if cfg.RatePerMAC == 0 {
		cfg.RatePerMAC = DefaultRatePerMAC
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.MaxBuckets <= 0 {
		cfg.MaxBuckets = DefaultMaxBuckets
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Table{
		cfg:      cfg,
		log:      log,
		now:      cfg.Now,
		limit:    newLimiter(cfg.RatePerMAC, cfg.Burst, cfg.MaxBuckets),
		dnsSlots: make(chan struct{}, maxForwards),
		nets:     map[string]*netState{},
		ports:    map[string]*port{},
		raWake:   map[string]chan struct{}{},
	}
	for _, u := range cfg.Upstreams {
		addr, err := upstreamAddr(u)
		if err != nil {
			log.Warn("dns upstream ignored", "upstream", u, "err", err)
			continue
		}
		t.upstreams = append(t.upstreams, addr)
	}
	if cfg.MetadataURL != "" {
		t.metadataURL, t.metadataErr = parseMetadataURL(cfg.MetadataURL)
		if t.metadataErr != nil {
			log.Error("metadata url unusable: metadata requests will fail", "url", cfg.MetadataURL, "err", t.metadataErr)
		}
		t.transport = newTransport()
	}
	return t
}

// Stats returns the table's live counters.
func (t *Table) Stats() *Stats { return &t.stats }

// SetNetwork adds a network or replaces its facts; its ports stay.
func (t *Table) SetNetwork(n agentapi.DHCPNetwork) {
	f := buildFacts(n, t.log)
	t.mu.Lock()
	defer t.mu.Unlock()
	ns := t.nets[n.ID]
	if ns == nil {
		ns = newNetState()
		t.nets[n.ID] = ns
	}
	ns.facts = f
	t.wakeLocked(n.ID)
}

// RemoveNetwork forgets a network and its ports.
func (t *Table) RemoveNetwork(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ns := t.nets[id]
	if ns == nil {
		return
	}
	for pid := range ns.ports {
		delete(t.ports, pid)
	}
	delete(t.nets, id)
	t.wakeLocked(id)
}

// SetPort adds a port or replaces it (by id), on network p.NetworkID. A
// port of a network not set yet is kept, and served once the network
// comes.
func (t *Table) SetPort(p agentapi.DHCPPort) {
	np := buildPort(p, t.log)
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.ports[p.ID]; old != nil {
		t.unindexLocked(old)
	}
	ns := t.nets[p.NetworkID]
	if ns == nil {
		ns = newNetState()
		t.nets[p.NetworkID] = ns
	}
	t.ports[p.ID] = np
	ns.ports[p.ID] = np
	if np.hasMAC {
		ns.byMAC[np.mac] = append(ns.byMAC[np.mac], np)
	}
	for _, a := range np.addrs {
		ns.byIP[a.addr] = append(ns.byIP[a.addr], np)
	}
	if np.name != "" {
		ns.byName[np.name] = append(ns.byName[np.name], np)
	}
}

// RemovePort forgets a port.
func (t *Table) RemovePort(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.ports[id]; old != nil {
		t.unindexLocked(old)
	}
}

// Reset forgets every network and port (a full reload follows).
func (t *Table) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id := range t.nets {
		t.wakeLocked(id)
	}
	t.nets = map[string]*netState{}
	t.ports = map[string]*port{}
}

// Servable tells whether the port's network is set and the port would be
// answered: it is admin up, has a MAC and an address on a DHCP-enabled
// IPv4 or dhcpv6-stateful subnet, or an address on a SLAAC or
// dhcpv6-stateless subnet (which needs no lease).
func (t *Table) Servable(portID string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	p := t.ports[portID]
	if p == nil || !p.api.AdminStateUp || !p.hasMAC {
		return false
	}
	ns := t.nets[p.api.NetworkID]
	if ns == nil || ns.facts == nil {
		return false
	}
	f := ns.facts
	for _, a := range p.addrs {
		s := f.subnetOf(a)
		if s == nil {
			continue
		}
		if s.prefix.Addr().Is4() {
			if s.dhcp && f.server4(s).IsValid() {
				return true
			}
			continue
		}
		switch s.addrMode {
		case modeStateful:
			if s.dhcp && f.serverDUID != nil {
				return true
			}
		case modeSLAAC, modeStateless:
			return true
		}
	}
	return false
}

// lookupMAC returns the network's facts and the admin-up port with the
// MAC, or nils.
func (t *Table) lookupMAC(netID string, mac [6]byte) (*facts, *port) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ns := t.nets[netID]
	if ns == nil || ns.facts == nil {
		return nil, nil
	}
	for _, p := range ns.byMAC[mac] {
		if p.api.AdminStateUp {
			return ns.facts, p
		}
	}
	return ns.facts, nil
}

// lookupIP returns the network's facts and the port with the address.
func (t *Table) lookupIP(netID string, ip netip.Addr) (*facts, *port) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ns := t.nets[netID]
	if ns == nil || ns.facts == nil {
		return nil, nil
	}
	if ps := ns.byIP[ip]; len(ps) > 0 {
		return ns.facts, ps[0]
	}
	return ns.facts, nil
}

// lookupName returns the network's facts and the ports named host.
func (t *Table) lookupName(netID, host string) (*facts, *port) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ns := t.nets[netID]
	if ns == nil || ns.facts == nil {
		return nil, nil
	}
	if ps := ns.byName[host]; len(ps) > 0 {
		return ns.facts, ps[0]
	}
	return ns.facts, nil
}

// networkFacts returns a network's facts, nil when it is not set.
func (t *Table) networkFacts(netID string) *facts {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if ns := t.nets[netID]; ns != nil {
		return ns.facts
	}
	return nil
}

// wake returns a channel closed at the network's next change.
func (t *Table) wake(netID string) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.raWake[netID]
	if c == nil {
		c = make(chan struct{})
		t.raWake[netID] = c
	}
	return c
}

func (t *Table) wakeLocked(netID string) {
	if c := t.raWake[netID]; c != nil {
		close(c)
		delete(t.raWake, netID)
	}
}

func (t *Table) unindexLocked(p *port) {
	delete(t.ports, p.api.ID)
	ns := t.nets[p.api.NetworkID]
	if ns == nil {
		return
	}
	delete(ns.ports, p.api.ID)
	if p.hasMAC {
		dropFrom(ns.byMAC, p.mac, p)
	}
	for _, a := range p.addrs {
		dropFrom(ns.byIP, a.addr, p)
	}
	if p.name != "" {
		dropFrom(ns.byName, p.name, p)
	}
	if ns.facts == nil && len(ns.ports) == 0 {
		delete(t.nets, p.api.NetworkID)
	}
}

func dropFrom[K comparable](m map[K][]*port, k K, p *port) {
	ps := slices.DeleteFunc(m[k], func(q *port) bool { return q == p })
	if len(ps) == 0 {
		delete(m, k)
		return
	}
	m[k] = ps
}

func newNetState() *netState {
	return &netState{
		ports:  map[string]*port{},
		byMAC:  map[[6]byte][]*port{},
		byIP:   map[netip.Addr][]*port{},
		byName: map[string][]*port{},
	}
}

// IPv6 address and RA modes, as Neutron names them.
const (
	modeSLAAC     = "slaac"
	modeStateless = "dhcpv6-stateless"
	modeStateful  = "dhcpv6-stateful"
)

func buildFacts(n agentapi.DHCPNetwork, log *slog.Logger) *facts {
	f := &facts{
		id:        n.ID,
		projectID: n.ProjectID,
		mtu:       n.MTU,
		byID:      map[string]*subnet{},
	}
	if d := strings.TrimSuffix(n.DNSDomain, "."); d != "" {
		f.domain = d
		f.zone = strings.ToLower(d) + "."
	}
	if mac, ok := parseMAC(n.Port.MAC); ok {
		f.serverMAC = net.HardwareAddr(mac[:])
		f.serverDUID = duidLL(mac)
	}
	for _, ip := range n.Port.FixedIPs {
		if a, err := netip.ParseAddr(ip.IPAddress); err == nil {
			f.serverIPs = append(f.serverIPs, a.Unmap())
		}
	}
	for _, as := range n.Subnets {
		p, err := netip.ParsePrefix(as.CIDR)
		if err != nil {
			log.Debug("subnet with a bad cidr ignored", "network", n.ID, "subnet", as.ID, "cidr", as.CIDR)
			continue
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
		if (as.IPVersion == 4 && !p.Addr().Is4()) || (as.IPVersion == 6 && !p.Addr().Is6()) {
			log.Debug("subnet of the wrong ip version ignored", "network", n.ID, "subnet", as.ID, "cidr", as.CIDR)
			continue
		}
		s := &subnet{
			id:       as.ID,
			prefix:   p,
			dhcp:     as.EnableDHCP,
			routed:   as.Routed,
			raMode:   as.IPv6RAMode,
			addrMode: as.IPv6AddressMode,
		}
		if g, err := netip.ParseAddr(as.GatewayIP); err == nil && g.Unmap().Is4() == p.Addr().Is4() {
			s.gateway = g.Unmap()
		}
		for _, d := range as.DNSNameservers {
			if a, err := netip.ParseAddr(strings.Trim(d, "[]")); err == nil && a.Unmap().Is4() == p.Addr().Is4() {
				s.dns = append(s.dns, a.Unmap())
			}
		}
		for _, ip := range n.Port.FixedIPs {
			a, err := netip.ParseAddr(ip.IPAddress)
			if err != nil {
				continue
			}
			a = a.Unmap()
			if ip.SubnetID == as.ID || (ip.SubnetID == "" && p.Contains(a)) {
				s.server = a
				break
			}
		}
		f.subnets = append(f.subnets, s)
		f.byID[s.id] = s
	}
	for i, as := range n.Subnets {
		s := f.byID[as.ID]
		if s == nil || !s.prefix.Addr().Is4() || !s.dhcp {
			continue
		}
		s.opts4 = baseOptions4(f, s, n.Subnets[i].HostRoutes, log)
	}
	return f
}

// subnetOf returns the subnet of a port's address: by its subnet id, else
// the subnet that contains it.
func (f *facts) subnetOf(a fixedAddr) *subnet {
	if s := f.byID[a.subnetID]; s != nil && s.prefix.Contains(a.addr) {
		return s
	}
	for _, s := range f.subnets {
		if s.prefix.Contains(a.addr) {
			return s
		}
	}
	return nil
}

// server4 is the DHCP port's IPv4 address to name as server for clients
// of s: its address on s, else its first IPv4 address.
func (f *facts) server4(s *subnet) netip.Addr {
	if s.server.Is4() {
		return s.server
	}
	for _, a := range f.serverIPs {
		if a.Is4() {
			return a
		}
	}
	return netip.Addr{}
}

func buildPort(p agentapi.DHCPPort, log *slog.Logger) *port {
	np := &port{api: p, name: strings.ToLower(strings.TrimSuffix(p.Hostname, "."))}
	np.mac, np.hasMAC = parseMAC(p.MAC)
	for _, ip := range p.FixedIPs {
		a, err := netip.ParseAddr(ip.IPAddress)
		if err != nil {
			log.Debug("port address ignored", "port", p.ID, "address", ip.IPAddress)
			continue
		}
		np.addrs = append(np.addrs, fixedAddr{subnetID: ip.SubnetID, addr: a.Unmap()})
	}
	for _, o := range p.ExtraDHCPOpts {
		switch o.IPVersion {
		case 0, 4:
			v, err := parseExtra4(o.Name, o.Value)
			if err != nil {
				log.Debug("extra dhcp option skipped", "port", p.ID, "name", o.Name, "value", o.Value, "err", err)
				continue
			}
			np.extra4 = append(np.extra4, v)
		case 6:
			v, err := parseExtra6(o.Name, o.Value)
			if err != nil {
				log.Debug("extra dhcpv6 option skipped", "port", p.ID, "name", o.Name, "value", o.Value, "err", err)
				continue
			}
			np.extra6 = append(np.extra6, v)
		default:
			log.Debug("extra dhcp option of an unknown ip version skipped", "port", p.ID, "name", o.Name, "ip_version", o.IPVersion)
		}
	}
	return np
}

func parseMAC(s string) ([6]byte, bool) {
	var m [6]byte
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return m, false
	}
	copy(m[:], hw)
	return m, true
}

// duidLL is a DUID-LL (RFC 8415 11.4) of an Ethernet MAC.
func duidLL(mac [6]byte) []byte {
	return append([]byte{0, 3, 0, 1}, mac[:]...)
}

func upstreamAddr(s string) (string, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.String(), nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return "", err
	}
	return netip.AddrPortFrom(a, 53).String(), nil
}

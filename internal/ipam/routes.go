package ipam

import (
	"net/netip"

	"muon/internal/fault"
)

// HostRoute is one entry of a subnet's host_routes.
type HostRoute struct {
	Destination netip.Prefix `json:"destination"`
	NextHop     netip.Addr   `json:"nexthop"`
}

// RawRoute is a host route as the client sent it.
type RawRoute struct {
	Destination string `json:"destination"`
	NextHop     string `json:"nexthop"`
}

func (r RawRoute) repr() string {
	return "{'destination': '" + r.Destination + "', 'nexthop': '" + r.NextHop + "'}"
}

// ValidateHostRoute parses one host route: the destination as
// validate_route_cidr (host bits clear, not loopback) and the next hop as
// validate_ip_address (validator faults, see ForAttr), then, when version is
// 4 or 6, both must be of that ip_version (InvalidInput).
func ValidateHostRoute(dest, nexthop string, version int) (HostRoute, error) {
	d, err := ParseRouteCIDR(dest)
	if err != nil {
		return HostRoute{}, err
	}
	n, err := ParseIP(nexthop)
	if err != nil {
		return HostRoute{}, err
	}
	if version != 0 {
		if err := CheckIPVersion("nexthop", nexthop, n, version); err != nil {
			return HostRoute{}, err
		}
		if err := CheckIPVersion("destination", dest, d.Addr(), version); err != nil {
			return HostRoute{}, err
		}
	}
	return HostRoute{d, n}, nil
}

// ValidateHostRoutes checks a subnet's host_routes as Neutron does: each
// route valid and none given twice (validator faults), then at most
// maxRoutes of them (HostRoutesExhausted, 400; a negative maxRoutes means no
// limit), then each of the subnet's ip_version when version is 4 or 6.
// subnetID names the subnet in the limit message ("" for a new subnet).
func ValidateHostRoutes(routes []RawRoute, version, maxRoutes int, subnetID string) ([]HostRoute, error) {
	out := make([]HostRoute, 0, len(routes))
	seen := newSeen[RawRoute](len(routes))
	for _, r := range routes {
		h, err := ValidateHostRoute(r.Destination, r.NextHop, 0)
		if err != nil {
			return nil, err
		}
		if seen.dup(r) {
			return nil, invalid("Duplicate hostroute '%s'", r.repr())
		}
		out = append(out, h)
	}
	if maxRoutes >= 0 && len(routes) > maxRoutes {
		return nil, fault.New(400, "HostRoutesExhausted",
			"Unable to complete operation for %s. The number of host routes exceeds the limit %d.",
			subjectName(subnetID), maxRoutes)
	}
	if version != 0 {
		for i, h := range out {
			if err := CheckIPVersion("nexthop", routes[i].NextHop, h.NextHop, version); err != nil {
				return nil, err
			}
			if err := CheckIPVersion("destination", routes[i].Destination, h.Destination.Addr(), version); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// seen detects repeats: a linear scan for the short lists Neutron allows, a
// map past that so hostile input stays linear.
type seen[T comparable] struct {
	list []T
	set  map[T]struct{}
}

func newSeen[T comparable](n int) *seen[T] {
	if n > 16 {
		return &seen[T]{set: make(map[T]struct{}, n)}
	}
	return &seen[T]{list: make([]T, 0, n)}
}

// dup records v and reports whether it was recorded before.
func (s *seen[T]) dup(v T) bool {
	if s.set != nil {
		if _, ok := s.set[v]; ok {
			return true
		}
		s.set[v] = struct{}{}
		return false
	}
	for _, p := range s.list {
		if p == v {
			return true
		}
	}
	s.list = append(s.list, v)
	return false
}

// ValidateNameservers checks a subnet's dns_nameservers as Neutron does:
// each an IP address and none twice (validator faults), then at most
// maxServers of them (DNSNameServersExhausted, 400; a negative maxServers
// means no limit), then each of the subnet's ip_version when version is 4
// or 6. subnetID is as for ValidateHostRoutes.
func ValidateNameservers(servers []string, version, maxServers int, subnetID string) ([]netip.Addr, error) {
	out := make([]netip.Addr, 0, len(servers))
	seen := newSeen[string](len(servers))
	for _, s := range servers {
		a, msg := parseIP(s)
		if msg != "" {
			return nil, invalid("'%s' is not a valid nameserver. %s", s, msg)
		}
		if seen.dup(s) {
			return nil, invalid("Duplicate nameserver '%s'", s)
		}
		out = append(out, a)
	}
	if maxServers >= 0 && len(servers) > maxServers {
		return nil, fault.New(400, "DNSNameServersExhausted",
			"Unable to complete operation for %s. The number of DNS nameservers exceeds the limit %d.",
			subjectName(subnetID), maxServers)
	}
	if version != 0 {
		for i, a := range out {
			if err := CheckIPVersion("dns_nameserver", servers[i], a, version); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func subjectName(subnetID string) string {
	if subnetID == "" {
		return "new subnet"
	}
	return subnetID
}

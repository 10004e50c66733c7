package ml2

import (
	"context"
	"crypto/rand"
	"iter"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/ipam"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/stdattr"
	"muon/internal/store"
)

func portNotFound(id string) *fault.Error {
	return fault.NotFound("PortNotFound", "Port %s could not be found.", id)
}

// Ports serves /v2.0/ports.
type Ports struct{ *Plugin }

// Create makes ports, all or none.
func (p Ports) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	return record.CreateAll(ctx, p.st, docs, p.createPort)
}

func (p *Plugin) createPort(ctx context.Context, tx store.Tx, d resource.Doc) error {
	netID := resource.Str(d["network_id"])
	nrec, nd, err := getVisible(ctx, tx, "network", netID, false, networkNotFound(netID))
	if err != nil {
		return err
	}
	cred := auth.FromContext(ctx)
	if !cred.Owns(nrec.ProjectID) {
		// On a network shared with it, the port holds the network until it
		// commits, against the deletion of the sharing (which locks it and
		// then checks for ports that depend on it); then it looks again.
		if _, err := tx.LockShared(ctx, "network", netID); err != nil {
			return notFound(err, networkNotFound(netID))
		}
		if nrec, nd, err = getVisible(ctx, tx, "network", netID, false, networkNotFound(netID)); err != nil {
			return err
		}
	}
	if !cred.Owns(nrec.ProjectID) && strings.HasPrefix(resource.Str(d["device_owner"]), "network:") {
		return fault.Forbidden("PolicyNotAuthorized", "(rule:create_port:device_owner) is disallowed by policy")
	}
	if err := stdattr.Stamp(ctx, d, p.now(), true); err != nil {
		return err
	}
	if err := p.checkQuota(ctx, tx, "port", resource.Str(d["project_id"])); err != nil {
		return err
	}
	id := resource.Str(d["id"])
	d["status"] = "DOWN"
	d["ip_allocation"] = "immediate"
	if _, ok := d["port_security_enabled"]; !ok {
		d["port_security_enabled"] = nd["port_security_enabled"]
	}
	if err := checkAddressPairs(d); err != nil {
		return err
	}
	if err := checkExtraDHCPOpts(d); err != nil {
		return err
	}
	if d["binding:profile"] == nil {
		d["binding:profile"] = map[string]any{}
	}
	rec, err := record.New("port", d, netID, false)
	if err != nil {
		return err
	}
	// The record first: allocations and the binding reference it.
	if err := tx.Insert(ctx, rec); err != nil {
		return err
	}
	if err := p.bind(ctx, tx, d, nd); err != nil {
		return err
	}
	if err := p.claimMAC(ctx, tx, d, netID, id); err != nil {
		return err
	}
	fixed, err := p.allocateFixedIPs(ctx, tx, d, netID, nil)
	if err != nil {
		return err
	}
	d["fixed_ips"] = fixed
	fillPairMACs(d)
	p.setDNSAssignment(d)
	if err := p.events.PortCreate.run(ctx, tx, PortEvent{Port: d, Network: nd}); err != nil {
		return err
	}
	normalizeSecurityGroups(d)
	if rec.Doc, err = encode(d); err != nil {
		return err
	}
	return tx.Update(ctx, rec)
}

func (p *Plugin) claimMAC(ctx context.Context, tx store.Tx, d resource.Doc, netID, portID string) error {
	if v, ok := d["mac_address"]; ok {
		mac, err := ipam.ParseMAC(v.(string))
		if err != nil {
			return ipam.ForAttr("mac_address", err)
		}
		ok, err := tx.ClaimMAC(ctx, netID, mac, portID)
		if err != nil {
			return err
		}
		if !ok {
			return fault.Conflict("MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use.", netID, mac)
		}
		d["mac_address"] = mac
		return nil
	}
	for range 16 {
		mac, err := ipam.GenerateMAC(p.cfg.BaseMAC, p.rand)
		if err != nil {
			return err
		}
		ok, err := tx.ClaimMAC(ctx, netID, mac, portID)
		if err != nil {
			return err
		}
		if ok {
			d["mac_address"] = mac
			return nil
		}
	}
	return fault.New(503, "MacAddressGenerationFailure", "Unable to generate unique mac on network %s.", netID)
}

// fixedIP is one requested entry of fixed_ips.
type fixedIP struct {
	SubnetID string
	IP       netip.Addr
}

func parseFixedIPs(v any) ([]fixedIP, error) {
	l, _ := v.([]any)
	out := make([]fixedIP, 0, len(l))
	for _, x := range l {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fault.BadRequest("Invalid input for fixed_ips. Reason: Invalid data format for fixed IP: '%v'.", x)
		}
		var f fixedIP
		for k, v := range m {
			s, ok := v.(string)
			if !ok {
				return nil, fault.BadRequest("Invalid input for fixed_ips. Reason: '%v' is not a valid %s.", v, k)
			}
			switch k {
			case "subnet_id", "subnet":
				if _, err := resource.UUID.Convert(s); err != nil {
					return nil, fault.BadRequest("Invalid input for fixed_ips. Reason: %s.", err)
				}
				f.SubnetID = s
			case "ip_address":
				a, err := ipam.ParseIP(s)
				if err != nil {
					return nil, ipam.ForAttr("fixed_ips", err)
				}
				if slices.ContainsFunc(out, func(o fixedIP) bool { return o.IP == a }) {
					return nil, fault.BadRequest("Invalid input for fixed_ips. Reason: Duplicate IP address '%s'.", s)
				}
				f.IP = a
			default:
				return nil, fault.BadRequest("Invalid input for fixed_ips. Reason: Unrecognized attribute(s) '%s'.", k)
			}
		}
		if f.SubnetID == "" && !f.IP.IsValid() {
			return nil, fault.BadRequest("Invalid input for fixed_ips. Reason: each entry needs a subnet_id or an ip_address.")
		}
		out = append(out, f)
	}
	return out, nil
}

// allocateFixedIPs claims the addresses a port asks for, or picks them.
// keep lists addresses the port already holds (on update).
func (p *Plugin) allocateFixedIPs(ctx context.Context, tx store.Tx, d resource.Doc, netID string, keep []fixedIP) ([]any, error) {
	subs, _, err := subnetsOf(ctx, tx, netID)
	if err != nil {
		return nil, err
	}
	portID, owner, mac := resource.Str(d["id"]), resource.Str(d["device_owner"]), resource.Str(d["mac_address"])
	byID := make(map[string]*subnet, len(subs))
	for _, s := range subs {
		byID[s.ID] = s
	}
	var out []any
	add := func(s *subnet, ip netip.Addr) {
		out = append(out, map[string]any{"subnet_id": s.ID, "ip_address": ip.String()})
	}
	raw, asked := d["fixed_ips"]
	if !asked || raw == nil {
		// Automatic: one address of the first IPv4 subnet with room, one of
		// the first stateful IPv6 subnet, and every SLAAC subnet's.
		cands := serviceSubnets(subs, owner)
		done := map[int]bool{}
		for _, s := range cands {
			if s.auto() {
				if isRouterOwner(owner) {
					continue
				}
				ip, err := ipam.EUI64(s.CIDR, mac)
				if err != nil {
					return nil, err
				}
				if err := p.claimIP(ctx, tx, s, ip, portID); err != nil {
					return nil, err
				}
				add(s, ip)
				continue
			}
			if done[s.Version] {
				continue
			}
			ip, ok, err := p.pickIP(ctx, tx, s, portID)
			if err != nil {
				return nil, err
			}
			if ok {
				add(s, ip)
				done[s.Version] = true
			}
		}
		for _, s := range cands {
			if !s.auto() && !done[s.Version] {
				return nil, fault.Conflict("IpAddressGenerationFailure", "No more IP addresses available on network %s.", netID)
			}
		}
		return nonNilList(out), nil
	}
	reqs, err := parseFixedIPs(raw)
	if err != nil {
		return nil, err
	}
	if max := p.cfg.MaxFixedIPsPerPort; max > 0 && len(reqs) > max {
		return nil, fault.BadRequest("Exceeded maximum amount of fixed ips per port.")
	}
	// An address asked for by value is not also kept for a subnet-only entry.
	keep = slices.DeleteFunc(slices.Clone(keep), func(k fixedIP) bool {
		return slices.ContainsFunc(reqs, func(r fixedIP) bool { return r.IP == k.IP })
	})
	for _, r := range reqs {
		var s *subnet
		if r.SubnetID != "" {
			if s = byID[r.SubnetID]; s == nil {
				if _, err := tx.Get(ctx, "subnet", r.SubnetID); err != nil {
					return nil, notFound(err, subnetNotFound(r.SubnetID))
				}
				return nil, fault.InvalidInput("Failed to create port on network %s, because fixed_ips included invalid subnet %s", netID, r.SubnetID)
			}
		} else {
			for _, c := range subs {
				if c.CIDR.Contains(r.IP) {
					s = c
					break
				}
			}
			if s == nil {
				return nil, fault.New(400, "InvalidIpForNetwork", "IP address %s is not a valid IP for any of the subnets on the specified network.", r.IP)
			}
		}
		if r.IP.IsValid() {
			if !ipam.CheckSubnetIP(s.CIDR, r.IP, owner == "" || isRouterOwner(owner)) {
				return nil, fault.New(400, "InvalidIpForSubnet", "IP address %s is not a valid IP for the specified subnet.", r.IP)
			}
			if s.auto() && !isRouterOwner(owner) {
				return nil, fault.InvalidInput("IPv6 address %s cannot be directly assigned to a port on subnet %s as the subnet is configured for automatic addresses", r.IP, s.ID)
			}
			if err := p.claimIP(ctx, tx, s, r.IP, portID); err != nil {
				return nil, err
			}
			add(s, r.IP)
			continue
		}
		// A subnet the port already has an address on keeps that address
		// (keep lists addresses released for the update).
		if i := slices.IndexFunc(keep, func(k fixedIP) bool { return k.SubnetID == s.ID }); i >= 0 {
			if err := p.claimIP(ctx, tx, s, keep[i].IP, portID); err != nil {
				return nil, err
			}
			add(s, keep[i].IP)
			keep = slices.Delete(keep, i, i+1)
			continue
		}
		if s.auto() {
			ip, err := ipam.EUI64(s.CIDR, mac)
			if err != nil {
				return nil, err
			}
			if err := p.claimIP(ctx, tx, s, ip, portID); err != nil {
				return nil, err
			}
			add(s, ip)
			continue
		}
		ip, ok, err := p.pickIP(ctx, tx, s, portID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fault.Conflict("IpAddressGenerationFailure", "No more IP addresses available for subnet %s.", s.ID)
		}
		add(s, ip)
	}
	return nonNilList(out), nil
}

// serviceSubnets are the subnets whose service_types admit owner: the
// typed ones matching it if any, else the untyped ones.
func serviceSubnets(subs []*subnet, owner string) []*subnet {
	var typed, plain []*subnet
	for _, s := range subs {
		switch {
		case len(s.ServiceTypes) == 0:
			plain = append(plain, s)
		case owner != "" && slices.Contains(s.ServiceTypes, owner):
			typed = append(typed, s)
		}
	}
	if len(typed) > 0 {
		return typed
	}
	return plain
}

func (p *Plugin) claimIP(ctx context.Context, tx store.Tx, s *subnet, ip netip.Addr, portID string) error {
	ok, err := tx.ClaimIP(ctx, store.IPAllocation{SubnetID: s.ID, NetworkID: s.NetworkID, IP: ip.String(), PortID: portID})
	if err != nil {
		return err
	}
	if !ok {
		return fault.Conflict("IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", ip, s.ID)
	}
	return nil
}

// randomProbes is how many random pool addresses are tried before the
// allocator reads the subnet's allocations; on a sparse subnet the first
// probe nearly always wins, so a create costs one insert.
const randomProbes = 4

// pickIP claims a free address of the subnet's pools: random probes
// first (as Neutron spreads its picks), then the lowest free address.
func (p *Plugin) pickIP(ctx context.Context, tx store.Tx, s *subnet, portID string) (netip.Addr, bool, error) {
	if len(s.Pools) == 0 {
		return netip.Addr{}, false, nil
	}
	// Lock the subnet so concurrent writers on PostgreSQL serialise here.
	if _, err := tx.Lock(ctx, "subnet", s.ID); err != nil {
		return netip.Addr{}, false, err
	}
	total := ipam.PoolSize(s.Pools)
	probes := randomProbes
	if ctx.Value(lowestKey{}) != nil {
		probes = 0 // the lowest free, below
	}
	for range probes {
		ip, err := randomInPools(s.Pools, total)
		if err != nil {
			return netip.Addr{}, false, err
		}
		ok, err := tx.ClaimIP(ctx, store.IPAllocation{SubnetID: s.ID, NetworkID: s.NetworkID, IP: ip.String(), PortID: portID})
		if err != nil {
			return netip.Addr{}, false, err
		}
		if ok {
			return ip, true, nil
		}
	}
	allocs, err := tx.IPs(ctx, s.ID)
	if err != nil {
		return netip.Addr{}, false, err
	}
	used := make([]netip.Addr, 0, len(allocs))
	for _, a := range allocs {
		if ip, err := netip.ParseAddr(a.IP); err == nil {
			used = append(used, ip)
		}
	}
	for {
		ip, ok := ipam.NextFree(s.Pools, used)
		if !ok {
			return netip.Addr{}, false, nil
		}
		claimed, err := tx.ClaimIP(ctx, store.IPAllocation{SubnetID: s.ID, NetworkID: s.NetworkID, IP: ip.String(), PortID: portID})
		if err != nil {
			return netip.Addr{}, false, err
		}
		if claimed {
			return ip, true, nil
		}
		used = append(used, ip)
	}
}

// randomInPools picks a uniformly random address of the pools.
func randomInPools(pools []ipam.Range, total *big.Int) (netip.Addr, error) {
	n, err := rand.Int(rand.Reader, total)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, r := range pools {
		size := r.Size()
		if n.Cmp(size) < 0 {
			return addOffset(r.Start, n), nil
		}
		n.Sub(n, size)
	}
	return pools[len(pools)-1].End, nil
}

func addOffset(a netip.Addr, off *big.Int) netip.Addr {
	b := a.As16()
	v := new(big.Int).SetBytes(b[:])
	v.Add(v, off)
	v.FillBytes(b[:])
	out := netip.AddrFrom16(b)
	if a.Is4() {
		out = out.Unmap()
	}
	return out
}

// setDNSAssignment derives dns_assignment from fixed_ips and dns_name.
func (p *Plugin) setDNSAssignment(d resource.Doc) {
	fixed, _ := d["fixed_ips"].([]any)
	out := make([]any, 0, len(fixed))
	name := resource.Str(d["dns_name"])
	for _, x := range fixed {
		ip := resource.Str(x.(map[string]any)["ip_address"])
		host := name
		if host == "" {
			host = "host-" + strings.NewReplacer(".", "-", ":", "-").Replace(ip)
		}
		out = append(out, map[string]any{"hostname": host, "ip_address": ip, "fqdn": host + "." + p.cfg.DNSDomain})
	}
	d["dns_assignment"] = out
}

// checkAddressPairs validates allowed_address_pairs and fills each pair's
// MAC with the port's.
func checkAddressPairs(d resource.Doc) error {
	v, ok := d["allowed_address_pairs"]
	if !ok || v == nil {
		d["allowed_address_pairs"] = []any{}
		return nil
	}
	l := v.([]any)
	if len(l) > 0 && d["port_security_enabled"] == false {
		return fault.Conflict("AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have allowed address pairs on a port.")
	}
	seen := map[string]bool{}
	for _, x := range l {
		m := x.(map[string]any)
		ip, ok := m["ip_address"].(string)
		if !ok {
			return fault.BadRequest("AllowedAddressPair must contain ip_address")
		}
		if _, err := netip.ParseAddr(ip); err != nil {
			if _, err := netip.ParsePrefix(ip); err != nil {
				return fault.BadRequest("Invalid input for ip_address. Reason: '%s' is not a valid IP address.", ip)
			}
		}
		for k := range m {
			if k != "ip_address" && k != "mac_address" {
				return fault.BadRequest("Unrecognized attribute(s) '%s'", k)
			}
		}
		if mac, ok := m["mac_address"]; ok {
			s, _ := mac.(string)
			c, err := ipam.ParseMAC(s)
			if err != nil {
				return ipam.ForAttr("mac_address", err)
			}
			m["mac_address"] = c
		}
		key := ip + "|" + resource.Str(m["mac_address"])
		if seen[key] {
			return fault.BadRequest("Request contains duplicate address pair: mac_address %v ip_address %s.", m["mac_address"], ip)
		}
		seen[key] = true
	}
	return nil
}

// fillPairMACs gives address pairs without a MAC the port's.
func fillPairMACs(d resource.Doc) {
	l, _ := d["allowed_address_pairs"].([]any)
	for _, x := range l {
		m := x.(map[string]any)
		if _, ok := m["mac_address"]; !ok {
			m["mac_address"] = d["mac_address"]
		}
	}
}

func checkExtraDHCPOpts(d resource.Doc) error {
	l, _ := d["extra_dhcp_opts"].([]any)
	for _, x := range l {
		m := x.(map[string]any)
		if _, ok := m["opt_name"].(string); !ok {
			return fault.BadRequest("Invalid input for extra_dhcp_opts. Reason: opt_name is required.")
		}
		for k := range m {
			if k != "opt_name" && k != "opt_value" && k != "ip_version" {
				return fault.BadRequest("Invalid input for extra_dhcp_opts. Reason: Unrecognized attribute(s) '%s'.", k)
			}
		}
		if v, ok := m["ip_version"]; ok {
			n, err := resource.Int.Convert(v)
			if err != nil || (n.(int64) != 4 && n.(int64) != 6) {
				return fault.BadRequest("Invalid input for extra_dhcp_opts. Reason: ip_version must be 4 or 6.")
			}
			m["ip_version"] = n
		} else {
			m["ip_version"] = int64(4)
		}
	}
	return nil
}

// Get shows one port.
func (p Ports) Get(ctx context.Context, id string) (resource.Doc, error) {
	return p.get(ctx, "port", id, portNotFound(id))
}

// List returns the ports the caller may see.
func (p Ports) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	f := scope(ctx, "port", false)
	f.IDs = q.Filters["id"]
	f.Parents = q.Filters["network_id"]
	return p.list(ctx, f)
}

// ListSeq hands out the ports List would, in id order after after, read
// listBatch at a time (a transaction each) and decoded as they are asked
// for.
func (p Ports) ListSeq(ctx context.Context, q *resource.Query, after string) iter.Seq2[resource.Doc, error] {
	f := scope(ctx, "port", false)
	f.IDs = q.Filters["id"]
	f.Parents = q.Filters["network_id"]
	f.Limit = listBatch
	return func(yield func(resource.Doc, error) bool) {
		f.After = after
		for {
			var recs []store.Record
			err := p.st.View(ctx, func(tx store.Tx) error {
				var err error
				recs, err = tx.List(ctx, f)
				return err
			})
			if err != nil {
				yield(nil, err)
				return
			}
			for i := range recs {
				d, err := record.Decode(&recs[i])
				if !yield(d, err) || err != nil {
					return
				}
			}
			if len(recs) < listBatch {
				return
			}
			f.After = recs[len(recs)-1].ID
		}
	}
}

// listBatch is how many records a streamed list reads at a time.
const listBatch = 500

// Update changes a port.
func (p Ports) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	var out resource.Doc
	err := p.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := lockPort(ctx, tx, id, ifRev)
		if err != nil {
			return err
		}
		out, err = p.updatePort(ctx, tx, rec, d, patch)
		return err
	})
	return out, err
}

// UpdatePortTx changes a network's service port (its DHCP port taking an
// address on a new subnet, the lowest free) on behalf of the service, as
// an admin's update would, inside the caller's transaction.
func (p *Plugin) UpdatePortTx(ctx context.Context, tx store.Tx, id string, patch resource.Doc) (resource.Doc, error) {
	sys := context.WithValue(auth.NewContext(ctx, &auth.Credentials{Roles: []string{"admin"}}), lowestKey{}, true)
	rec, d, err := lockPort(sys, tx, id, -1)
	if err != nil {
		return nil, err
	}
	return p.updatePort(sys, tx, rec, d, patch)
}

// updatePort applies an update to a locked port.
func (p *Plugin) updatePort(ctx context.Context, tx store.Tx, rec *store.Record, d, patch resource.Doc) (resource.Doc, error) {
	id := rec.ID
	var out resource.Doc
	err := func() error {
		patch = resource.Clone(patch)
		netID := resource.Str(d["network_id"])
		if v, ok := patch["mac_address"]; ok && v != d["mac_address"] {
			// Who may is update_port:mac_address's to say (the api
			// asked it); what may change is the plugin's.
			if resource.Str(d["binding:vif_type"]) != "unbound" && resource.Str(d["binding:vif_type"]) != "binding_failed" {
				return fault.Conflict("PortBound", "Unable to complete operation on port %s, port is already bound, port type: %s, old_mac %s, new_mac %s.", id, d["binding:vif_type"], d["mac_address"], v)
			}
			if err := tx.ReleaseMAC(ctx, netID, resource.Str(d["mac_address"])); err != nil {
				return err
			}
			nd := resource.Doc{"mac_address": v}
			if err := p.claimMAC(ctx, tx, nd, netID, id); err != nil {
				return err
			}
			patch["mac_address"] = nd["mac_address"]
		}
		if v, ok := patch["fixed_ips"]; ok {
			old, _ := parseFixedIPs(d["fixed_ips"])
			for _, f := range old {
				if err := tx.ReleaseIP(ctx, f.SubnetID, f.IP.String()); err != nil {
					return err
				}
			}
			work := resource.Doc{"id": id, "device_owner": firstOf(patch, d, "device_owner"), "mac_address": firstOf(patch, d, "mac_address"), "fixed_ips": v}
			// Addresses the port keeps are claimed again below.
			fixed, err := p.allocateFixedIPs(ctx, tx, work, netID, old)
			if err != nil {
				return err
			}
			patch["fixed_ips"] = fixed
		}
		merged := resource.Clone(d)
		for k, v := range patch {
			merged[k] = v
		}
		if _, ok := patch["allowed_address_pairs"]; ok || patch["port_security_enabled"] == false {
			if err := checkAddressPairs(merged); err != nil {
				return err
			}
			fillPairMACs(merged)
		}
		if _, ok := patch["extra_dhcp_opts"]; ok {
			if err := checkExtraDHCPOpts(merged); err != nil {
				return err
			}
		}
		if merged["binding:profile"] == nil {
			merged["binding:profile"] = map[string]any{}
		}
		_, rehost := patch["binding:host_id"]
		_, revnic := patch["binding:vnic_type"]
		if rehost || revnic {
			nrec, err := tx.Get(ctx, "network", netID)
			if err != nil {
				return err
			}
			nd, err := record.Decode(nrec)
			if err != nil {
				return err
			}
			if err := p.bind(ctx, tx, merged, nd); err != nil {
				return err
			}
		}
		// A port is ACTIVE only while its host's agent has it wired: a
		// new host, or admin down, makes it DOWN until the agent says.
		if resource.Str(merged["binding:host_id"]) != resource.Str(d["binding:host_id"]) || merged["admin_state_up"] == false {
			merged["status"] = "DOWN"
		}
		if resource.Str(merged["binding:host_id"]) != resource.Str(d["binding:host_id"]) {
			merged[provisioningWired] = false
		}
		p.setDNSAssignment(merged)
		if err := p.events.PortUpdate.run(ctx, tx, PortEvent{Port: merged, Old: d, Patch: patch}); err != nil {
			return err
		}
		normalizeSecurityGroups(merged)
		if !equalValue(map[string]any(merged), map[string]any(d)) {
			stdattr.Touch(merged, p.now())
		}
		b, err := encode(merged)
		if err != nil {
			return err
		}
		rec.Doc = b
		out = merged
		return tx.Update(ctx, rec)
	}()
	return out, err
}

func firstOf(a, b resource.Doc, k string) any {
	if v, ok := a[k]; ok {
		return v
	}
	return b[k]
}

// Delete removes a port; its addresses and MAC go with it (the store's
// foreign keys cascade).
func (p Ports) Delete(ctx context.Context, id string, ifRev int64) error {
	return p.st.Update(ctx, func(tx store.Tx) error {
		_, d, err := lockPort(ctx, tx, id, ifRev)
		if err != nil {
			return err
		}
		if err := p.events.PortDelete.run(ctx, tx, PortEvent{Port: d}); err != nil {
			return err
		}
		return tx.Delete(ctx, "port", id)
	})
}

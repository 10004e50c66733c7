package l3

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"

	"muon/internal/agentapi"
	"muon/internal/kernel/nsdev"
)

// A router's NAT is one table in its namespace:
//
//	table ip muon {
//	  map fip_dnat { type ipv4_addr : ipv4_addr }          floating -> fixed
//	  map fip_snat { type ipv4_addr : ipv4_addr }          fixed -> floating
//	  map forwards { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }
//	  chain prerouting { type nat hook prerouting priority dstnat
//	    dnat to ip daddr . meta l4proto . th dport map @forwards
//	    dnat to ip daddr map @fip_dnat }
//	  chain postrouting { type nat hook postrouting priority srcnat
//	    oifname GW snat to ip saddr map @fip_snat
//	    iifname != GW ct status dnat snat to GWIP     (instances reaching a floating IP)
//	    oifname GW snat to GWIP }                      (enable_snat)
//	}
//
// Its rules change only with the gateway; a floating IP or a port
// forwarding is elements of the maps, added and removed in one
// transaction with whatever else changed.
const (
	tableName   = "muon"
	setDNAT     = "fip_dnat"
	setSNAT     = "fip_snat"
	setForwards = "forwards"
)

var (
	forwardKey  = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	forwardData = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
)

// removal is a mapping taken away or put in place, whose connections
// go: every one of an address (proto 0), or those to its ports lo..hi;
// with toOnly, only those to it (a new floating IP's: flows that came
// before it and were not translated, which conntrack would go on not
// translating).
type removal struct {
	addr   netip.Addr
	proto  uint8
	lo, hi uint16
	toOnly bool
}

func protoNumber(p string) uint8 {
	switch p {
	case "tcp":
		return unix.IPPROTO_TCP
	case "udp":
		return unix.IPPROTO_UDP
	case "sctp":
		return unix.IPPROTO_SCTP
	}
	return 0
}

// wanted is the elements of each map for a spec.
func wanted(s Spec) elems {
	out := newElems()
	for fip, fixed := range s.FloatingIPs {
		fipElems(out, fip, fixed)
	}
	for _, fw := range s.Forwards {
		f, err1 := netip.ParseAddr(fw.FloatingIP)
		in, err2 := netip.ParseAddr(fw.InternalIP)
		proto := protoNumber(fw.Protocol)
		if err1 != nil || err2 != nil || !f.Is4() || !in.Is4() || proto == 0 {
			continue
		}
		fb, ib := f.As4(), in.As4()
		for p := fw.ExternalPort; p <= fw.ExternalEnd && p <= 65535; p++ {
			to := fw.InternalPort
			if fw.InternalEnd > fw.InternalPort {
				to += p - fw.ExternalPort
			}
			key := make([]byte, 12)
			copy(key, fb[:])
			key[4] = proto
			binary.BigEndian.PutUint16(key[8:], uint16(p))
			val := make([]byte, 8)
			copy(val, ib[:])
			binary.BigEndian.PutUint16(val[4:], uint16(to))
			out[setForwards][string(key)] = string(val)
		}
	}
	return out
}

// rulesOf names the rules a spec needs; the first rule carries it.
func rulesOf(s Spec) string {
	if s.Gateway == "" {
		return ""
	}
	return fmt.Sprintf("muon-nat v1 gateway=%s ip=%s snat=%v helpers=%v", s.Gateway, s.GatewayIP, s.SNAT, s.Helpers)
}

// elems are map elements by set, key -> value (the values of deletions
// unused).
type elems map[string]map[string]string

func newElems() elems { return elems{setDNAT: {}, setSNAT: {}, setForwards: {}} }

// fipElems adds a floating IP's two elements to e.
func fipElems(e elems, fip, fixed string) {
	f, err1 := netip.ParseAddr(fip)
	x, err2 := netip.ParseAddr(fixed)
	if err1 != nil || err2 != nil || !f.Is4() || !x.Is4() {
		return
	}
	fb, xb := f.As4(), x.As4()
	e[setDNAT][string(fb[:])] = string(xb[:])
	e[setSNAT][string(xb[:])] = string(fb[:])
}

// delta is what turns have into want: the elements to delete and add
// (a changed value is both).
func delta(have, want elems) (dels, adds elems) {
	dels, adds = newElems(), newElems()
	for _, name := range []string{setDNAT, setSNAT, setForwards} {
		for k, v := range have[name] {
			if w, ok := want[name][k]; !ok || w != v {
				dels[name][k] = v
			}
		}
		for k, v := range want[name] {
			if h, ok := have[name][k]; !ok || h != v {
				adds[name][k] = v
			}
		}
	}
	return dels, adds
}

// specDelta is delta between two specs' elements without building
// either whole: only the floating IPs that differ, and the forwards if
// they do.
func specDelta(last, s Spec) (dels, adds elems) {
	have, want := newElems(), newElems()
	for fip, fixed := range last.FloatingIPs {
		if now, ok := s.FloatingIPs[fip]; !ok || now != fixed {
			fipElems(have, fip, fixed)
		}
	}
	for fip, fixed := range s.FloatingIPs {
		if was, ok := last.FloatingIPs[fip]; !ok || was != fixed {
			fipElems(want, fip, fixed)
		}
	}
	if !slices.Equal(last.Forwards, s.Forwards) {
		have[setForwards] = wanted(Spec{Forwards: last.Forwards})[setForwards]
		want[setForwards] = wanted(Spec{Forwards: s.Forwards})[setForwards]
	}
	return delta(have, want)
}

func (e elems) empty() bool {
	return len(e[setDNAT])+len(e[setSNAT])+len(e[setForwards]) == 0
}

// nat makes the router's table as the spec says, in one transaction.
// last, when set, is what the kernel holds (else it is read back). It
// returns the rules it left and the mappings it took away.
func (k *linuxKernel) nat(ns *nsdev.NS, s Spec, last *made) (string, []removal, error) {
	rules := rulesOf(s)
	trusted := last != nil && last.rules == rules && rules != ""
	var dels, adds elems
	if trusted {
		if dels, adds = specDelta(last.spec, s); dels.empty() && adds.empty() {
			return rules, nil, nil
		}
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle)), nftables.WithSockOptions(bigSendBuffer))
	if err != nil {
		return "", nil, err
	}
	table := &nftables.Table{Name: tableName, Family: nftables.TableFamilyIPv4}
	sets := map[string]*nftables.Set{}
	exists, haveRules := false, ""
	if trusted {
		exists, haveRules = true, rules
	} else {
		have := newElems()
		if t, err := c.ListTableOfFamily(tableName, nftables.TableFamilyIPv4); err == nil {
			exists, table = true, t
			for _, name := range []string{setDNAT, setSNAT, setForwards} {
				set, err := c.GetSetByName(table, name)
				if err != nil {
					continue
				}
				sets[name] = set
				els, err := c.GetSetElements(set)
				if err != nil {
					return "", nil, err
				}
				for _, e := range els {
					have[name][string(e.Key)] = string(e.Val)
				}
			}
			if rs, err := c.GetRules(table, &nftables.Chain{Name: "postrouting", Table: table}); err == nil && len(rs) > 0 {
				haveRules = string(rs[0].UserData)
			}
		}
		dels, adds = delta(have, wanted(s))
	}
	removed := removals(dels, adds)
	if rules == "" {
		// No gateway: no NAT.
		if exists {
			c.DelTable(table)
			if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
				return "", nil, fmt.Errorf("nftables: %w", err)
			}
		}
		return "", removed, nil
	}
	if !exists || haveRules != rules || !trusted && len(sets) < 3 {
		c.AddTable(table)
		for _, def := range []*nftables.Set{
			{Table: table, Name: setDNAT, IsMap: true, KeyType: nftables.TypeIPAddr, DataType: nftables.TypeIPAddr},
			{Table: table, Name: setSNAT, IsMap: true, KeyType: nftables.TypeIPAddr, DataType: nftables.TypeIPAddr},
			{Table: table, Name: setForwards, IsMap: true, Concatenation: true, KeyType: forwardKey, DataType: forwardData},
		} {
			if sets[def.Name] == nil {
				if err := c.AddSet(def, nil); err != nil {
					return "", nil, err
				}
				sets[def.Name] = def
			}
		}
		pre := c.AddChain(&nftables.Chain{Name: "prerouting", Table: table, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
		post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: table, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
		helpers := c.AddChain(&nftables.Chain{Name: "helpers", Table: table, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityFilter})
		if exists {
			c.FlushChain(pre)
			c.FlushChain(post)
			c.FlushChain(helpers)
		}
		addRules(c, pre, post, sets, s, rules)
		addHelpers(c, helpers, s.Helpers)
	}
	for _, name := range []string{setDNAT, setSNAT, setForwards} {
		set := sets[name]
		if set == nil {
			set = &nftables.Set{Table: table, Name: name}
		}
		set.IsMap = true
		if name == setForwards {
			set.KeyType, set.DataType, set.Concatenation = forwardKey, forwardData, true
		} else {
			set.KeyType, set.DataType = nftables.TypeIPAddr, nftables.TypeIPAddr
		}
		var del, add []nftables.SetElement
		for key := range dels[name] {
			del = append(del, nftables.SetElement{Key: []byte(key)})
		}
		for key, val := range adds[name] {
			add = append(add, nftables.SetElement{Key: []byte(key), Val: []byte(val)})
		}
		// A message's element list is one netlink attribute, at most
		// 64 KiB: a thousand elements fit.
		for chunk := range slices.Chunk(del, 1000) {
			if err := c.SetDeleteElements(set, chunk); err != nil {
				return "", nil, err
			}
		}
		for chunk := range slices.Chunk(add, 1000) {
			if err := c.SetAddElements(set, chunk); err != nil {
				return "", nil, err
			}
		}
	}
	if err := c.Flush(); err != nil {
		return "", nil, fmt.Errorf("nftables: %w", err)
	}
	return rules, removed, nil
}

// bigSendBuffer lets one transaction carry tens of thousands of
// elements (netlink refuses a message larger than the socket's send
// buffer, and drops acknowledgements its receive buffer cannot hold).
func bigSendBuffer(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], 64<<20); err != nil {
				serr = errors.Join(serr, unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], 64<<20))
			}
		}
	}); err != nil {
		return err
	}
	return serr
}

// removals are the mappings deleted: a floating IP's (all its
// connections) and a forward's (those to its port); and the floating IPs
// added (the connections to them).
func removals(dels, adds elems) []removal {
	var out []removal
	for key := range dels[setDNAT] {
		out = append(out, removal{addr: netip.AddrFrom4([4]byte([]byte(key)))})
	}
	for key := range adds[setDNAT] {
		if _, ok := dels[setDNAT][key]; !ok {
			out = append(out, removal{addr: netip.AddrFrom4([4]byte([]byte(key))), toOnly: true})
		}
	}
	for key := range dels[setForwards] {
		if len(key) == 12 {
			p := binary.BigEndian.Uint16([]byte(key)[8:])
			out = append(out, removal{addr: netip.AddrFrom4([4]byte([]byte(key)[:4])), proto: key[4], lo: p, hi: p})
		}
	}
	return out
}

func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

func addRules(c *nftables.Conn, pre, post *nftables.Chain, sets map[string]*nftables.Set, s Spec, tag string) {
	gwip, _ := netip.ParseAddr(s.GatewayIP)
	gw := gwip.As4()
	c.AddRule(&nftables.Rule{Table: pre.Table, Chain: pre, Exprs: []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 9},
		&expr.Payload{DestRegister: 10, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: setForwards, SetID: sets[setForwards].ID, DestRegister: 1, IsDestRegSet: true},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 9, Specified: true},
	}})
	c.AddRule(&nftables.Rule{Table: pre.Table, Chain: pre, Exprs: []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: setDNAT, SetID: sets[setDNAT].ID, DestRegister: 1, IsDestRegSet: true},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
	}})
	c.AddRule(&nftables.Rule{Table: post.Table, Chain: post, UserData: []byte(tag), Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(s.Gateway)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: setSNAT, SetID: sets[setSNAT].ID, DestRegister: 1, IsDestRegSet: true},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
	}})
	if !gwip.Is4() {
		return
	}
	c.AddRule(&nftables.Rule{Table: post.Table, Chain: post, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(s.Gateway)},
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(uint32(conntrack.StatusDstNAT)), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Immediate{Register: 1, Data: gw[:]},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
	}})
	if s.SNAT {
		c.AddRule(&nftables.Rule{Table: post.Table, Chain: post, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(s.Gateway)},
			&expr.Immediate{Register: 1, Data: gw[:]},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
		}})
	}
}

// addHelpers gives new connections of each helper's protocol and port
// to a conntrack helper object of the table ("ftp-tcp": type ftp,
// protocol tcp), as `ct helper set` does.
func addHelpers(c *nftables.Conn, ch *nftables.Chain, hs []agentapi.ConntrackHelper) {
	made := map[string]bool{}
	for _, h := range hs {
		proto := protoNumber(h.Protocol)
		if proto == 0 || h.Port <= 0 || h.Port > 65535 {
			continue
		}
		name := h.Helper + "-" + h.Protocol
		if !made[name] {
			c.AddObj(&nftables.NamedObj{Table: ch.Table, Name: name, Type: nftables.ObjTypeCtHelper,
				Obj: &expr.CtHelper{Name: h.Helper, L3Proto: unix.NFPROTO_IPV4, L4Proto: proto}})
			made[name] = true
		}
		port := binaryutil.BigEndian.PutUint16(uint16(h.Port))
		c.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port},
			&expr.Objref{Type: int(nftables.ObjTypeCtHelper), Name: name},
		}})
	}
}

// forget deletes the connections of mappings taken away, so that a
// flow through a floating IP that went does not live on in conntrack.
func forget(ns *nsdev.NS, rs []removal) {
	c, err := conntrack.Dial(&netlink.Config{NetNS: int(ns.Handle)})
	if err != nil {
		return
	}
	defer c.Close()
	flows, err := c.Dump(nil)
	if err != nil {
		return
	}
	by := map[netip.Addr][]removal{}
	for _, r := range rs {
		by[r.addr] = append(by[r.addr], r)
	}
	for _, f := range flows {
		o, rp := f.TupleOrig, f.TupleReply
		hit := false
		for _, r := range by[o.IP.DestinationAddress] {
			hit = hit || r.proto == 0 || o.Proto.Protocol == r.proto &&
				o.Proto.DestinationPort >= r.lo && o.Proto.DestinationPort <= r.hi
		}
		for _, r := range by[rp.IP.DestinationAddress] {
			hit = hit || r.proto == 0 && !r.toOnly
		}
		if hit {
			c.Delete(f)
		}
	}
}

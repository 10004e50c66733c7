// Package service answers DHCPv4, DHCPv6, router advertisements, DNS and
// metadata (169.254.169.254) for every network a host's DHCP agent
// serves, in one process: no dnsmasq, no process per network. It gives
// what Neutron's dnsmasq-based DHCP agent and its metadata proxy give.
//
// It knows no kernel and no namespace. The agent's driver opens the
// sockets in each network's namespace (agentapi.NamespaceName) and hands
// them over with the network's id; every answer is built by a pure
// method, testable without root:
//
//	t := service.NewTable(service.Config{Upstreams: []string{"10.0.0.2:53"}}, log)
//	t.SetNetwork(n) // facts: subnets, the DHCP port, MTU, domain
//	t.SetPort(p)    // clients, by id, before or after their network
//	t.RemovePort(id); t.RemoveNetwork(id); t.Reset()
//	t.Servable(portID) // the port would be answered: report it ready
//
//	reply, to, ok := t.DHCPv4(netID, req)        // nil: drop
//	reply, ok := t.DHCPv6(netID, req, from)
//	reply, ok := t.DNS(ctx, netID, req, tcp)
//	ra, ok := t.RouterAdvertisement(netID, ifMAC)
//	h := t.Metadata(netID)                         // an http.Handler
//
// and served by loops over the driver's sockets, each returning when ctx
// ends or its socket is closed (ServeDNS closes its sockets as it
// returns; the others leave theirs to the driver):
//
//	t.ServeDHCPv4(ctx, netID, conn) // UDP :67, SO_BINDTODEVICE, SO_BROADCAST
//	t.ServeDHCPv6(ctx, netID, conn) // UDP [::]:547, joined to ff02::1:2
//	t.ServeRA(ctx, netID, ndpConn, ifMAC) // ndp.Listen(ifi, ndp.LinkLocal)
//	t.ServeDNS(ctx, netID, udp, tcp) // port 53, UDP and TCP
//	http.Serve(l, t.Metadata(netID))  // the driver's, on 169.254.169.254:80
//
// # Who is answered
//
// DHCP answers only the network's admin-up ports, by MAC (dnsmasq would
// still answer an admin-down port; an admin-down port cannot send
// anyway, and answering it would make it look ready). Unknown MACs,
// malformed packets, other than BOOTREQUEST or Ethernet, go unanswered;
// Stats counts them. A (network, MAC) sending more than
// Config.RatePerMAC requests a second (burst Config.Burst) is dropped.
//
// DNS and metadata answer for every port of the network, whatever its
// state: a name is assigned with the port.
//
// # DHCPv4
//
// DISCOVER gets an OFFER of the port's first fixed IP on a DHCP-enabled
// subnet, REQUEST an ACK when it asks for (option 50, else ciaddr) one of
// the port's addresses, else a NAK: the client starts over and gets the
// address the port has now. INFORM gets an ACK without lease. RELEASE and
// DECLINE get nothing. A REQUEST naming another server (option 54) is
// left to it. Replies go to giaddr:67 when relayed, to ciaddr:68 when the
// client has an address (not for NAKs), else to 255.255.255.255:68.
//
// The options: subnet mask, router (gateway_ip), DNS servers
// (dns_nameservers, else the DHCP port's address), domain name
// (dns_domain), hostname, lease time with T1 50% and T2 87.5%, server
// identifier (the DHCP port's address on the subnet), MTU, broadcast
// address, and classless static routes in both 121 and 249: routes to
// the network's other IPv4 subnets on link, host_routes, the metadata
// route 169.254.169.254/32 via the DHCP port when the subnet is not
// Routed (or has no gateway: Neutron's enable_isolated_metadata), and,
// as clients ignore option 3 with 121, the default route via the
// gateway. A reply larger than the client takes loses option 249.
//
// A port's extra_dhcp_opts (ip_version 4) are given by number ("42",
// "option:42") or dnsmasq name ("ntp-server", "tftp-server",
// "bootfile-name", "server-ip-address" for siaddr, ...) and replace the
// computed option of the same code; 121 replaces 249 too unless 249 is
// given. An empty value removes the option. Options with tags
// ("tag:ipxe,bootfile-name") and values that do not encode are skipped,
// with a debug log. IPv6 extra options (option6:dns-server,
// domain-search, sntp-server, information-refresh-time, bootfile-url, or
// a number with an address, hex or text value) go in DHCPv6 replies.
//
// # DHCPv6 and router advertisements
//
// DHCPv6 leases a port's address on a dhcpv6-stateful subnet in IA_NA,
// and tells DNS servers (option 23) and the domain (24) for stateful and
// stateless subnets; see Table.DHCPv6 for the client's identification.
// The server's DUID is the DUID-LL of the DHCP port's MAC.
//
// Router advertisements tell the prefixes of the slaac, dhcpv6-stateless
// and dhcpv6-stateful subnets with the M and O flags, with router
// lifetime 0: the namespace is no router, the L3 agent's routers
// advertise default routes. See Table.RouterAdvertisement.
//
// # Concurrency
//
// Every method of a Table is safe for concurrent use: the driver's
// goroutine writes while the serving goroutines read. What a request
// reads is immutable once built, so a read holds the table's lock only
// for its map lookups.
package service

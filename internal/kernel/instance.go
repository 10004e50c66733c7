package kernel

// Instance is what Nova and os-vif would make for a VM's port, with a
// network namespace standing in for the VM: the instance side (eth0 in
// NetNS) with the port's MAC and addresses, and the host side Tap in the
// caller's namespace, for the agent to wire.
type Instance struct {
	NetNS    string   // named namespace (ip netns), made when missing
	Tap      string   // host side, tap<port id[:11]>
	MAC      string   // the port's
	MTU      int      // the network's
	Addrs    []string // CIDR form: 10.0.0.5/24
	Gateways []string // a default route via each (one per family)
}

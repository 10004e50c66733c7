package kernel

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

var _ Kernel = (*Fake)(nil)

// Fake is an in-memory Kernel for tests of the agents' logic; Dump(ctx,
// fake, nil) prints it. It refuses what the real one would: attaching to
// a missing or non-bridge master, entries on missing devices, kinds its
// Caps lack.
type Fake struct {
	Caps  Capabilities
	mark  string
	mu    sync.Mutex
	links map[string]*Link
	fdb   map[string][]FDB
	neigh map[string][]Neigh
	watch []chan struct{}
	// Calls counts mutating calls, so tests can see a converged Sync
	// change nothing.
	Calls int
}

// NewFake is the fake kernel of the agent named owner, with bridge and
// VXLAN support and nothing else (as this project's CI kernel).
func NewFake(owner string) *Fake {
	return &Fake{
		mark:  Mark(owner),
		Caps:  Capabilities{Bridge: true, VXLAN: true, Missing: map[string]string{"vlan": "fake", "geneve": "fake", "gre": "fake"}},
		links: map[string]*Link{}, fdb: map[string][]FDB{}, neigh: map[string][]Neigh{},
	}
}

// AddLink adds a device made outside the agent (a NIC, a tap) and
// signals watchers.
func (f *Fake) AddLink(l Link) {
	f.mu.Lock()
	if l.MTU == 0 {
		l.MTU = 1500
	}
	f.links[l.Name] = &l
	f.mu.Unlock()
	f.notify()
}

// RemoveLink removes a device as if its owner deleted it.
func (f *Fake) RemoveLink(name string) {
	f.mu.Lock()
	f.del(name)
	f.mu.Unlock()
	f.notify()
}

func (f *Fake) notify() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.watch {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (f *Fake) Capabilities(context.Context) Capabilities { return f.Caps }

func (f *Fake) Mark() string { f.mu.Lock(); defer f.mu.Unlock(); return f.mark }

func (f *Fake) Own(owner string) { f.mu.Lock(); defer f.mu.Unlock(); f.mark = Mark(owner) }

// claim makes an existing link ours, or refuses it. f.mu is held.
func (f *Fake) claim(l *Link) error {
	if !claimable(l.Alias, f.mark) {
		return &ForeignError{Name: l.Name, Alias: l.Alias}
	}
	if l.Alias != f.mark {
		f.Calls++
		l.Alias = f.mark
	}
	return nil
}

func (f *Fake) Links(context.Context) ([]Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Link, 0, len(f.links))
	for _, l := range f.links {
		c := *l
		if l.VXLAN != nil {
			v := *l.VXLAN
			c.VXLAN = &v
		}
		if l.VLAN != nil {
			v := *l.VLAN
			c.VLAN = &v
		}
		out = append(out, c)
	}
	return out, nil
}

func (f *Fake) EnsureBridge(_ context.Context, name string, mtu int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l, ok := f.links[name]; ok {
		if err := f.claim(l); err != nil {
			return err
		}
		if l.Kind != "bridge" {
			return fmt.Errorf("%s exists and is a %s, not a bridge", name, l.Kind)
		}
		if l.MTU != mtu || !l.Up {
			f.Calls++
			l.MTU, l.Up = mtu, true
		}
		return nil
	}
	f.Calls++
	f.links[name] = &Link{Name: name, Kind: "bridge", MTU: mtu, Up: true, Alias: f.mark}
	return nil
}

func (f *Fake) EnsureVXLAN(_ context.Context, v VXLAN) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.Caps.VXLAN {
		return f.Caps.Why("vxlan", "fake")
	}
	if v.Port == 0 {
		v.Port = VXLANPort
	}
	if l, ok := f.links[v.Name]; ok {
		if err := f.claim(l); err != nil {
			return err
		}
		if l.Kind == "vxlan" && l.VXLAN.VNI == v.VNI && l.VXLAN.Local == v.Local && l.VXLAN.Port == v.Port &&
			l.VXLAN.Learning == v.Learning && l.VXLAN.Proxy == v.Proxy {
			if l.MTU != v.MTU || !l.Up {
				f.Calls++
				l.MTU, l.Up = v.MTU, true
				l.VXLAN.MTU = v.MTU
			}
			return nil
		}
		f.del(v.Name)
	}
	f.Calls++
	c := v
	f.links[v.Name] = &Link{Name: v.Name, Kind: "vxlan", MTU: v.MTU, Up: true, Alias: f.mark, VXLAN: &c}
	return nil
}

func (f *Fake) EnsureVLAN(_ context.Context, name, parent string, id, mtu int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.Caps.VLAN {
		return f.Caps.Why("vlan", "fake")
	}
	if _, ok := f.links[parent]; !ok {
		return fmt.Errorf("vlan %s: no parent device %s", name, parent)
	}
	if l, ok := f.links[name]; ok {
		if err := f.claim(l); err != nil {
			return err
		}
	}
	if l, ok := f.links[name]; ok && l.VLAN != nil && l.VLAN.ID == id && l.VLAN.Parent == parent {
		if l.MTU != mtu || !l.Up {
			f.Calls++
			l.MTU, l.Up = mtu, true
		}
		return nil
	}
	f.del(name)
	f.Calls++
	f.links[name] = &Link{Name: name, Kind: "vlan", MTU: mtu, Up: true, Alias: f.mark, VLAN: &VLAN{Parent: parent, ID: id}}
	return nil
}

// del removes a link; its ports lose their master. f.mu is held.
func (f *Fake) del(name string) {
	if _, ok := f.links[name]; !ok {
		return
	}
	f.Calls++
	delete(f.links, name)
	delete(f.fdb, name)
	delete(f.neigh, name)
	for _, l := range f.links {
		if l.Master == name {
			l.Master = ""
		}
	}
}

func (f *Fake) DeleteLink(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l, ok := f.links[name]; ok && !l.OwnedBy(f.mark) {
		return &ForeignError{Name: name, Alias: l.Alias}
	}
	f.del(name)
	return nil
}

func (f *Fake) get(name string) (*Link, error) {
	l, ok := f.links[name]
	if !ok {
		return nil, fmt.Errorf("link %s not found", name)
	}
	return l, nil
}

func (f *Fake) SetMaster(_ context.Context, name, bridge string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.get(name)
	if err != nil {
		return err
	}
	if bridge != "" {
		b, err := f.get(bridge)
		if err != nil {
			return err
		}
		if b.Kind != "bridge" {
			return fmt.Errorf("%s is not a bridge", bridge)
		}
	}
	if l.Master != bridge {
		f.Calls++
		l.Master = bridge
	}
	return nil
}

func (f *Fake) SetUp(_ context.Context, name string, up bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.get(name)
	if err != nil {
		return err
	}
	if l.Up != up {
		f.Calls++
		l.Up = up
	}
	return nil
}

func (f *Fake) SetMTU(_ context.Context, name string, mtu int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.get(name)
	if err != nil {
		return err
	}
	if l.MTU != mtu {
		f.Calls++
		l.MTU = mtu
	}
	return nil
}

func (f *Fake) FDB(_ context.Context, dev string) ([]FDB, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(dev); err != nil {
		return nil, err
	}
	return slices.Clone(f.fdb[dev]), nil
}

func (f *Fake) AddFDB(_ context.Context, dev string, e FDB) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(dev); err != nil {
		return err
	}
	if !slices.Contains(f.fdb[dev], e) {
		f.Calls++
		f.fdb[dev] = append(f.fdb[dev], e)
	}
	return nil
}

func (f *Fake) DelFDB(_ context.Context, dev string, e FDB) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := slices.Index(f.fdb[dev], e); i >= 0 {
		f.Calls++
		f.fdb[dev] = slices.Delete(f.fdb[dev], i, i+1)
	}
	return nil
}

func (f *Fake) Neighs(_ context.Context, dev string) ([]Neigh, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(dev); err != nil {
		return nil, err
	}
	return slices.Clone(f.neigh[dev]), nil
}

func (f *Fake) AddNeigh(_ context.Context, dev string, n Neigh) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(dev); err != nil {
		return err
	}
	ns := f.neigh[dev]
	i := slices.IndexFunc(ns, func(x Neigh) bool { return x.IP == n.IP })
	switch {
	case i < 0:
		f.Calls++
		f.neigh[dev] = append(ns, n)
	case ns[i] != n:
		f.Calls++
		ns[i] = n
	}
	return nil
}

func (f *Fake) DelNeigh(_ context.Context, dev string, n Neigh) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ns := f.neigh[dev]
	if i := slices.IndexFunc(ns, func(x Neigh) bool { return x.IP == n.IP }); i >= 0 {
		f.Calls++
		f.neigh[dev] = slices.Delete(ns, i, i+1)
	}
	return nil
}

func (f *Fake) Watch(ctx context.Context) (<-chan struct{}, error) {
	c := make(chan struct{}, 1)
	f.mu.Lock()
	f.watch = append(f.watch, c)
	f.mu.Unlock()
	return c, nil
}

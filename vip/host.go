package vip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/storhaug/storhaug/internal/netnsdo"
)

// ErrNoNamespace is returned by Open when the named network namespace does
// not exist.
var ErrNoNamespace = errors.New("no such network namespace")

// ErrNoLink is returned when the interface the admin named does not exist.
var ErrNoLink = errors.New("no such interface")

// Host is the network stack of one network namespace, reached through one
// netlink socket.
type Host struct {
	Namespace string // the namespace's name ("" for the caller's own)
	h         *netlink.Handle
	ns        netns.NsHandle
}

// Open returns the host for the named network namespace (under /run/netns,
// "" for the caller's own). It opens a single NETLINK_ROUTE socket.
func Open(namespace string) (*Host, error) {
	h := &Host{Namespace: namespace, ns: netns.None()}
	var err error
	if namespace == "" {
		h.h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return h, err
	}
	if h.ns, err = openNamespace(namespace); err != nil {
		return nil, err
	}
	h.h, err = netlink.NewHandleAt(h.ns, unix.NETLINK_ROUTE)
	if err != nil {
		h.ns.Close()
		return nil, fmt.Errorf("netlink in network namespace %s: %w", namespace, err)
	}
	return h, nil
}

// openNamespace opens the named network namespace; one that does not
// exist is ErrNoNamespace.
func openNamespace(name string) (netns.NsHandle, error) {
	ns, err := netns.GetFromName(name)
	if errors.Is(err, os.ErrNotExist) {
		return ns, fmt.Errorf("%w: %s", ErrNoNamespace, name)
	}
	if err != nil {
		return ns, fmt.Errorf("network namespace %s: %w", name, err)
	}
	return ns, nil
}

// Close releases the netlink socket.
func (h *Host) Close() {
	if h == nil {
		return
	}
	if h.h != nil {
		h.h.Close()
	}
	if h.ns.IsOpen() {
		h.ns.Close()
	}
}

// Do runs fn inside the host's namespace (for sockets that must be opened
// there).
func (h *Host) Do(fn func() error) error { return netnsdo.Do(h.Namespace, fn) }

func family(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// Routes lists the routes of the main table for addr's family.
func (h *Host) Routes(addr netip.Addr) ([]Route, error) {
	rs, err := h.h.RouteListFiltered(family(addr), &netlink.Route{}, 0)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("listing routes: %w", err)
	}
	out := make([]Route, 0, len(rs))
	for _, r := range rs {
		if r.Dst == nil {
			continue // default route
		}
		dst, ok := netipPrefix(r.Dst)
		if !ok {
			continue
		}
		gw := r.Gw != nil
		for _, nh := range r.MultiPath {
			gw = gw || nh.Gw != nil
		}
		if addr.Is4() && r.Scope != netlink.SCOPE_LINK {
			gw = true // findif looks at "scope link" routes only for IPv4
		}
		rt := Route{Dst: dst, LinkIndex: r.LinkIndex, Unicast: r.Type == unix.RTN_UNICAST,
			Gateway: gw, Metric: r.Priority}
		if src, ok := netip.AddrFromSlice(r.Src); ok {
			rt.Src = src.Unmap()
		}
		out = append(out, rt)
	}
	// Names, for the routes that matter only: one request per link.
	names := map[int]string{}
	for i := range out {
		if !out[i].Dst.Contains(addr) {
			continue
		}
		n, ok := names[out[i].LinkIndex]
		if !ok {
			if l, err := h.h.LinkByIndex(out[i].LinkIndex); err == nil {
				n = l.Attrs().Name
			}
			names[out[i].LinkIndex] = n
		}
		out[i].Link = n
	}
	return out, nil
}

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// Target is a Spec resolved on a host: the interface and prefix are known.
type Target struct {
	Spec
	LinkIndex int
	MAC       net.HardwareAddr
	Bcast     netip.Addr // the IPv4 broadcast address to set; invalid for none
}

// Resolve finds the interface, prefix and broadcast address for s as findif
// does. Errors: ErrNoLink when the named interface does not exist,
// ErrNoInterface when none can be found, a *ParamError when the found
// interface makes the label too long.
func (h *Host) Resolve(s Spec) (Target, error) {
	t := Target{Spec: s}
	var link netlink.Link
	if s.Link != "" {
		l, err := h.h.LinkByName(s.Link)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
				return t, fmt.Errorf("%w: %s", ErrNoLink, s.Link)
			}
			return t, fmt.Errorf("interface %s: %w", s.Link, err)
		}
		link = l
	}
	if s.Prefix < 0 || s.Link == "" || s.Broadcast == BroadcastAuto && s.Addr.Is4() {
		routes, err := h.Routes(s.Addr)
		if err != nil {
			return t, err
		}
		r, rerr := FindRoute(routes, s.Addr, s.Prefix, s.Link)
		switch {
		case rerr == nil:
			if s.Link == "" {
				l, err := h.h.LinkByIndex(r.LinkIndex)
				if err != nil {
					return t, fmt.Errorf("interface #%d of route %s: %w", r.LinkIndex, r.Dst, err)
				}
				link = l
				t.Link = l.Attrs().Name
			}
			if s.Prefix < 0 {
				t.Prefix = r.Dst.Bits()
			}
		case s.Link == "" || s.Prefix < 0:
			return t, rerr
		}
	}
	t.LinkIndex = link.Attrs().Index
	t.MAC = link.Attrs().HardwareAddr
	if err := s.CheckLabel(t.Link); err != nil {
		return t, err
	}
	if s.Addr.Is4() {
		t.Bcast = h.broadcast(t)
	}
	return t, nil
}

// broadcast picks the IPv4 broadcast address for t.
func (h *Host) broadcast(t Target) netip.Addr {
	plus := func() netip.Addr {
		if t.Prefix >= 31 {
			return netip.Addr{}
		}
		b := t.Addr.As4()
		m := net.CIDRMask(t.Prefix, 32)
		for i := range b {
			b[i] |= ^m[i]
		}
		return netip.AddrFrom4(b)
	}
	switch t.Broadcast {
	case BroadcastNone:
		return netip.Addr{}
	case BroadcastExplicit:
		return t.BroadcastAddr
	case BroadcastPlus:
		return plus()
	}
	// Auto: as an address of the interface in the same subnet has it.
	pfx := netip.PrefixFrom(t.Addr, t.Prefix).Masked()
	if addrs, err := h.h.AddrList(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: t.LinkIndex}}, unix.AF_INET); err == nil {
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok || ip.Unmap() == t.Addr || !pfx.Contains(ip.Unmap()) {
				continue
			}
			if b, ok := netip.AddrFromSlice(a.Broadcast); ok && b.Unmap().IsValid() {
				return b.Unmap()
			}
		}
	}
	// None found (or the interface's address has none): host bits set,
	// rather than no broadcast address at all.
	return plus()
}

// State is what is on the host of a virtual address.
type State struct {
	Found     bool
	LinkIndex int
	Link      string // set by Lookup when the link was looked up
	Prefix    int
	Label     string
	Flags     int
	LinkUp    bool // the link's operational state is not down
	MAC       net.HardwareAddr
}

// Tentative reports whether IPv6 duplicate address detection is still on.
func (s State) Tentative() bool { return s.Flags&unix.IFA_F_TENTATIVE != 0 }

// DADFailed reports whether IPv6 duplicate address detection found the
// address in use elsewhere.
func (s State) DADFailed() bool { return s.Flags&unix.IFA_F_DADFAILED != 0 }

// Lookup finds addr on the host with one address dump: on the link with
// index linkIndex, or on any link when linkIndex is 0. With link true it
// also asks for that link (its name and state), one more request.
func (h *Host) Lookup(addr netip.Addr, linkIndex int, link bool) (State, error) {
	return h.lookup(addr, linkIndex, link, "")
}

// LookupOn finds addr on the link called name (any link when name is ""),
// with the link's name and state: one address dump and one link request
// (one per link holding the address, when it is on several).
func (h *Host) LookupOn(addr netip.Addr, name string) (State, error) {
	return h.lookup(addr, 0, true, name)
}

func (h *Host) lookup(addr netip.Addr, linkIndex int, link bool, name string) (State, error) {
	var st State
	err := h.Do(func() (err error) {
		st, err = lookup(addr, linkIndex, link, name)
		return err
	})
	return st, err
}

// Matches reports whether what is on the host is what t asks for: the
// prefix, the label (IPv4), and no failed duplicate address detection.
// The reason says what differs.
func (s State) Matches(t Target) (bool, string) {
	switch {
	case !s.Found:
		return false, "absent"
	case s.DADFailed():
		return false, "duplicate address detection failed (dadfailed): the address is in use elsewhere"
	case t.Prefix >= 0 && s.Prefix != t.Prefix:
		return false, fmt.Sprintf("prefix length is %d, not %d", s.Prefix, t.Prefix)
	}
	if t.Addr.Is4() {
		// Without a label the kernel labels the address with the link's
		// name; an address labelled otherwise is accepted then.
		if want := t.FullLabel(t.Link); want != "" && s.Label != want {
			return false, fmt.Sprintf("label is %q, not %q", s.Label, want)
		}
	}
	return true, ""
}

func (t Target) netlinkAddr() *netlink.Addr {
	bitsLen := t.Addr.BitLen()
	a := &netlink.Addr{
		IPNet: &net.IPNet{IP: net.IP(t.Addr.AsSlice()), Mask: net.CIDRMask(t.Prefix, bitsLen)},
		Label: t.FullLabel(t.Link),
	}
	if t.Addr.Is4() {
		if t.Bcast.IsValid() {
			a.Broadcast = net.IP(t.Bcast.AsSlice())
		} else {
			a.Broadcast = net.IPv4zero // tells netlink: no broadcast
		}
	}
	if t.NoDAD && t.Addr.Is6() {
		a.Flags |= unix.IFA_F_NODAD
	}
	if t.NoPrefixRoute {
		a.Flags |= unix.IFA_F_NOPREFIXROUTE
	}
	if t.PreferredLft >= 0 {
		a.ValidLft = int(^uint32(0)) // forever
		a.PreferedLft = t.PreferredLft
	}
	if t.Addr.IsLinkLocalUnicast() {
		a.Scope = int(netlink.SCOPE_LINK)
	}
	return a
}

// Add puts the address on its link as t describes it. When it is there
// already as t asks, Add does nothing and reports false; when it is there
// otherwise (another prefix or label, dadfailed), Add replaces it.
func (h *Host) Add(t Target) (added bool, err error) {
	st, err := h.Lookup(t.Addr, t.LinkIndex, false)
	if err != nil {
		return false, err
	}
	if st.Found {
		if ok, _ := st.Matches(t); ok {
			return false, nil
		}
		if err := h.h.AddrDel(nil, st.netlinkAddr(t.Addr)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return false, fmt.Errorf("removing %s to re-add it: %w", t.Addr, err)
		}
	}
	a := t.netlinkAddr()
	a.LinkIndex = t.LinkIndex
	if err := h.h.AddrAdd(nil, a); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return false, nil
		}
		return false, fmt.Errorf("adding %s/%d to %s: %w", t.Addr, t.Prefix, t.Link, err)
	}
	return true, nil
}

// Remove deletes addr from the link with index linkIndex (any link for 0).
// It reports whether there was something to delete.
func (h *Host) Remove(addr netip.Addr, linkIndex int) (bool, error) {
	removed := false
	for range 8 { // an address may be on several links; bounded
		st, err := h.Lookup(addr, linkIndex, false)
		if err != nil {
			return removed, err
		}
		if !st.Found {
			return removed, nil
		}
		if err := h.h.AddrDel(nil, st.netlinkAddr(addr)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return removed, fmt.Errorf("removing %s: %w", addr, err)
		}
		removed = true
	}
	return removed, nil
}

// ErrDADFailed is returned by WaitDAD when another host has the address.
var ErrDADFailed = errors.New("duplicate address detection failed: the address is in use on the network")

// WaitDAD waits until IPv6 duplicate address detection for t ends, or ctx
// does. It returns ErrDADFailed when it failed. It watches address events
// and checks again every poll interval in case one is missed.
func (h *Host) WaitDAD(ctx context.Context, t Target) error {
	if !t.Addr.Is6() {
		return nil
	}
	done := make(chan struct{})
	defer close(done)
	ch := make(chan netlink.AddrUpdate, 16)
	ns := h.ns
	opts := netlink.AddrSubscribeOptions{}
	if ns.IsOpen() {
		opts.Namespace = &ns
	}
	if err := netlink.AddrSubscribeWithOptions(ch, done, opts); err != nil {
		ch = nil // fall back to polling
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := h.Lookup(t.Addr, t.LinkIndex, false)
		if err != nil {
			return err
		}
		switch {
		case !st.Found:
			return fmt.Errorf("%s disappeared from %s during duplicate address detection", t.Addr, t.Link)
		case st.DADFailed():
			return ErrDADFailed
		case !st.Tentative():
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("duplicate address detection for %s still running at the operation's deadline: %w", t.Addr, ctx.Err())
		case _, ok := <-ch:
			if !ok {
				ch = nil
			}
		case <-tick.C:
		}
	}
}

// FlushRouteCache flushes the route cache of addr's family in the host's
// namespace (what "ip route flush cache" does), so that local applications
// stop using the address at once.
func (h *Host) FlushRouteCache(addr netip.Addr) error {
	p := "/proc/sys/net/ipv4/route/flush"
	if addr.Is6() {
		p = "/proc/sys/net/ipv6/route/flush"
	}
	return h.Do(func() error {
		// A sysctl, not a file of ours: written in place.
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteString("1\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

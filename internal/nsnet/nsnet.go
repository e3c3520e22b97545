// Package nsnet builds networks of named network namespaces (/run/netns,
// as "ip netns" makes them): a namespace with lo up, a bridge, and a veth
// pair from a bridge into a namespace with its addresses. It is what
// internal/nstest (one test's network) and test/lab (the lab's two
// networks) share; it never touches the caller's own namespace except to
// run code elsewhere (internal/netnsdo).
package nsnet

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/storhaug/storhaug/internal/netnsdo"
)

// NewNamed makes the named network namespace, with lo up (or removes it
// again when lo cannot be set up).
func NewNamed(name string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is retired
		h, err := netns.NewNamed(name)
		if err != nil {
			errc <- fmt.Errorf("network namespace %s: %w", name, err)
			return
		}
		defer h.Close()
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			netns.DeleteNamed(name)
			err = fmt.Errorf("network namespace %s: lo: %w", name, err)
		}
		errc <- err
	}()
	return <-errc
}

// AddBridges adds the bridges called names to namespace ns and sets them up.
func AddBridges(ns string, names ...string) error {
	return netnsdo.Do(ns, func() error {
		for _, name := range names {
			b := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
			if err := netlink.LinkAdd(b); err != nil {
				return err
			}
			if err := netlink.LinkSetUp(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// A Veth links a namespace to a bridge: a veth pair whose end Port is
// enslaved to Bridge in namespace BridgeNS, and whose other end is Name in
// namespace NS, with Addrs ("198.51.100.1/24", "2001:db8::1/64"; IPv6
// without duplicate address detection), up.
type Veth struct {
	BridgeNS, Bridge, Port string
	NS, Name               string
	Addrs                  []string
}

// Add makes the link. The namespace end is called "p"+Port in BridgeNS
// until it is moved, so Port must be unique there and at most 14 bytes.
// It returns the namespace end's Ethernet address.
func (v Veth) Add() (net.HardwareAddr, error) {
	target, err := netns.GetFromName(v.NS)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", v.NS, err)
	}
	defer target.Close()
	peer := "p" + v.Port
	err = netnsdo.Do(v.BridgeNS, func() error {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: v.Port}, PeerName: peer}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		br, err := netlink.LinkByName(v.Bridge)
		if err != nil {
			return err
		}
		p, err := netlink.LinkByName(v.Port)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetMaster(p, br); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(p); err != nil {
			return err
		}
		in, err := netlink.LinkByName(peer)
		if err != nil {
			return err
		}
		return netlink.LinkSetNsFd(in, int(target))
	})
	if err != nil {
		return nil, fmt.Errorf("link for %s: %w", v.Port, err)
	}
	var mac net.HardwareAddr
	err = netnsdo.Do(v.NS, func() error {
		in, err := netlink.LinkByName(peer)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetName(in, v.Name); err != nil {
			return err
		}
		mac = in.Attrs().HardwareAddr
		return SetAddrsUp(in, v.Addrs)
	})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", v.Port, v.Name, err)
	}
	return mac, nil
}

// SetAddrsUp gives a link exactly these addresses (IPv6 without duplicate
// address detection) and sets it up.
func SetAddrsUp(link netlink.Link, addrs []string) error {
	have, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	for _, a := range have {
		// a secondary address goes with its primary: already gone
		if err := netlink.AddrDel(link, &a); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return fmt.Errorf("delete %s: %w", a.IPNet, err)
		}
	}
	for _, a := range addrs {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			return err
		}
		if addr.IP.To4() == nil {
			addr.Flags |= syscall.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
	}
	return netlink.LinkSetUp(link)
}

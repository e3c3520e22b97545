package vip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/storhaug/storhaug/internal/netnsdo"
)

// The lookups read the kernel's state over plain blocking netlink sockets
// (the standard library's): a monitor runs every few seconds on every
// node, and it needs one address dump and one link request, not a
// netlink.Handle and Go's poller.

// Check is LookupOn without a Host: it finds addr on the link called name
// (any link when name is "") in the named network namespace ("" for the
// caller's own). A namespace that does not exist is ErrNoNamespace.
func Check(namespace string, addr netip.Addr, name string) (State, error) {
	if namespace != "" {
		ns, err := openNamespace(namespace)
		if err != nil {
			return State{}, err
		}
		ns.Close()
	}
	var st State
	err := netnsdo.Do(namespace, func() (err error) {
		st, err = lookup(addr, 0, true, name)
		return err
	})
	return st, err
}

// lookup finds addr, in the caller's network namespace, on the link with
// index linkIndex (any when 0) and, when link is true, on the link called
// name (any when ""), which it then describes.
func lookup(addr netip.Addr, linkIndex int, link bool, name string) (State, error) {
	b, err := syscall.NetlinkRIB(syscall.RTM_GETADDR, family(addr))
	if err != nil {
		return State{}, fmt.Errorf("listing addresses: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return State{}, fmt.Errorf("listing addresses: %w", err)
	}
	for i := range msgs {
		st, ok := parseAddr(&msgs[i], addr)
		if !ok || linkIndex != 0 && st.LinkIndex != linkIndex {
			continue
		}
		if link {
			l, err := getLink(st.LinkIndex)
			if err != nil {
				return st, fmt.Errorf("interface #%d: %w", st.LinkIndex, err)
			}
			if name != "" && l.name != name {
				continue
			}
			st.Link, st.MAC = l.name, l.mac
			st.LinkUp = l.flags&unix.IFF_UP != 0 && l.operState != operDown &&
				l.operState != operLowerLayerDown && l.operState != operNotPresent
		}
		return st, nil
	}
	return State{}, nil
}

// parseAddr reads an RTM_NEWADDR message and reports whether it is addr.
func parseAddr(m *syscall.NetlinkMessage, addr netip.Addr) (State, bool) {
	if m.Header.Type != syscall.RTM_NEWADDR {
		return State{}, false
	}
	var a addrMessage
	if a.UnmarshalBinary(m.Data) != nil {
		return State{}, false
	}
	st := State{Prefix: int(a.PrefixLen), Flags: int(a.Flags), LinkIndex: int(a.Index), Label: a.Label}
	if a.HasExt {
		st.Flags = int(a.ExtFlags)
	}
	ip := a.Local // IPv4's own address; IPv6 has only IFA_ADDRESS
	if !ip.IsValid() {
		ip = a.Address
	}
	if !ip.IsValid() || ip.Unmap() != addr {
		return State{}, false
	}
	st.Found = true
	return st, true
}

// Operational states of a link (RFC 2863, IFLA_OPERSTATE) that mean down.
const (
	operNotPresent     = 1
	operDown           = 2
	operLowerLayerDown = 3
)

type linkInfo struct {
	name      string
	mac       net.HardwareAddr
	flags     uint32
	operState uint8
}

// linkTimeout bounds the wait for the kernel's answer about a link.
const linkTimeout = 5 * time.Second

// getLink asks for one link by index (an RTM_GETLINK request, not a dump).
func getLink(index int) (linkInfo, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_ROUTE)
	if err != nil {
		return linkInfo{}, err
	}
	defer syscall.Close(fd)
	sa := &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}
	if err := syscall.Bind(fd, sa); err != nil {
		return linkInfo{}, err
	}
	// The kernel answers at once; the bound is for the impossible case.
	tv := syscall.NsecToTimeval(linkTimeout.Nanoseconds())
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return linkInfo{}, err
	}
	req := linkRequest(int32(index), 1)
	if err := syscall.Sendto(fd, req, 0, sa); err != nil {
		return linkInfo{}, err
	}
	buf := make([]byte, 32<<10)
	for {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			return linkInfo{}, err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return linkInfo{}, err
		}
		for i := range msgs {
			m := &msgs[i]
			switch {
			case m.Header.Seq != 1:
				continue
			case m.Header.Type == syscall.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						return linkInfo{}, syscall.Errno(-errno)
					}
				}
				return linkInfo{}, errors.New("no answer")
			case m.Header.Type == syscall.RTM_NEWLINK && len(m.Data) >= syscall.SizeofIfInfomsg:
				return parseLink(m.Data)
			}
		}
	}
}

func parseLink(b []byte) (linkInfo, error) {
	var m linkMessage
	if err := m.UnmarshalBinary(b); err != nil {
		return linkInfo{}, err
	}
	l := linkInfo{name: m.Name, flags: m.Flags, operState: m.OperState}
	if m.HWAddr != nil {
		l.mac = net.HardwareAddr(m.HWAddr)
	}
	return l, nil
}

// netlinkAddr is the address as netlink.Handle.AddrDel needs it.
func (s State) netlinkAddr(addr netip.Addr) *netlink.Addr {
	a := &netlink.Addr{
		IPNet:     &net.IPNet{IP: net.IP(addr.AsSlice()), Mask: net.CIDRMask(s.Prefix, addr.BitLen())},
		LinkIndex: s.LinkIndex,
		Flags:     s.Flags,
	}
	if addr.Is4() {
		a.Label = s.Label
	}
	return a
}

package vip

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// The rtnetlink messages the lookups read (linux/if_addr.h,
// linux/rtnetlink.h), as types: an address (RTM_NEWADDR) and a link
// (RTM_NEWLINK), each a fixed header and the attributes we use, in the
// host's byte order. The netlink framing around them is the standard
// library's (syscall.ParseNetlinkMessage).
const (
	ifAddrMsgLen = 8  // struct ifaddrmsg
	ifInfoMsgLen = 16 // struct ifinfomsg
	rtaHdrLen    = 4  // struct rtattr
	nlHdrLen     = 16 // struct nlmsghdr
	maxAttrLen   = 0xffff - rtaHdrLen
)

var hostOrder = binary.NativeEndian

// addrMessage is an RTM_NEWADDR message: struct ifaddrmsg and the
// attributes IFA_LOCAL, IFA_ADDRESS, IFA_LABEL and IFA_FLAGS. An address
// attribute of a length that is no address is left out.
type addrMessage struct {
	Family    uint8
	PrefixLen uint8
	Flags     uint8 // the 8 bits of ifa_flags; ExtFlags has all of them
	Scope     uint8
	Index     uint32
	Local     netip.Addr // IFA_LOCAL: IPv4's own address
	Address   netip.Addr // IFA_ADDRESS: the peer's on point-to-point links; IPv6's own
	Label     string     // IFA_LABEL (IPv4)
	ExtFlags  uint32     // IFA_FLAGS, when HasExtFlags
	HasExt    bool
}

func (m *addrMessage) MarshalBinary() ([]byte, error) {
	if len(m.Label) > maxAttrLen-1 {
		return nil, fmt.Errorf("address label of %d bytes: too long", len(m.Label))
	}
	b := []byte{m.Family, m.PrefixLen, m.Flags, m.Scope}
	b = hostOrder.AppendUint32(b, m.Index)
	if m.Local.IsValid() {
		b = appendAttr(b, unix.IFA_LOCAL, m.Local.AsSlice())
	}
	if m.Address.IsValid() {
		b = appendAttr(b, unix.IFA_ADDRESS, m.Address.AsSlice())
	}
	if m.Label != "" {
		b = appendAttr(b, unix.IFA_LABEL, append([]byte(m.Label), 0))
	}
	if m.HasExt {
		b = appendAttr(b, unix.IFA_FLAGS, hostOrder.AppendUint32(nil, m.ExtFlags))
	}
	return b, nil
}

// UnmarshalBinary reads the message's payload (after the nlmsghdr).
func (m *addrMessage) UnmarshalBinary(b []byte) error {
	if len(b) < ifAddrMsgLen {
		return fmt.Errorf("address message of %d bytes: too short", len(b))
	}
	out := addrMessage{Family: b[0], PrefixLen: b[1], Flags: b[2], Scope: b[3], Index: hostOrder.Uint32(b[4:])}
	err := walkAttrs(b[ifAddrMsgLen:], func(typ uint16, v []byte) {
		switch typ {
		case unix.IFA_LOCAL:
			out.Local, _ = netip.AddrFromSlice(v)
		case unix.IFA_ADDRESS:
			out.Address, _ = netip.AddrFromSlice(v)
		case unix.IFA_LABEL:
			out.Label = cString(v)
		case unix.IFA_FLAGS:
			if len(v) >= 4 {
				out.ExtFlags, out.HasExt = hostOrder.Uint32(v), true
			}
		}
	})
	if err != nil {
		return fmt.Errorf("address message: %w", err)
	}
	*m = out
	return nil
}

// linkMessage is an RTM_NEWLINK message: struct ifinfomsg and the
// attributes IFLA_IFNAME, IFLA_ADDRESS and IFLA_OPERSTATE.
type linkMessage struct {
	Family    uint8
	Type      uint16 // ARPHRD_*
	Index     int32
	Flags     uint32 // IFF_*
	Change    uint32
	Name      string
	HWAddr    []byte
	OperState uint8 // IFLA_OPERSTATE (RFC 2863), when HasOper
	HasOper   bool
}

func (m *linkMessage) MarshalBinary() ([]byte, error) {
	if len(m.Name) > maxAttrLen-1 || len(m.HWAddr) > maxAttrLen {
		return nil, fmt.Errorf("link name of %d bytes or address of %d: too long", len(m.Name), len(m.HWAddr))
	}
	b := make([]byte, ifInfoMsgLen)
	b[0] = m.Family
	hostOrder.PutUint16(b[2:], m.Type)
	hostOrder.PutUint32(b[4:], uint32(m.Index))
	hostOrder.PutUint32(b[8:], m.Flags)
	hostOrder.PutUint32(b[12:], m.Change)
	if m.Name != "" {
		b = appendAttr(b, unix.IFLA_IFNAME, append([]byte(m.Name), 0))
	}
	if m.HWAddr != nil {
		b = appendAttr(b, unix.IFLA_ADDRESS, m.HWAddr)
	}
	if m.HasOper {
		b = appendAttr(b, unix.IFLA_OPERSTATE, []byte{m.OperState})
	}
	return b, nil
}

// UnmarshalBinary reads the message's payload (after the nlmsghdr).
// HWAddr is a copy (nil when empty).
func (m *linkMessage) UnmarshalBinary(b []byte) error {
	if len(b) < ifInfoMsgLen {
		return fmt.Errorf("link message of %d bytes: too short", len(b))
	}
	out := linkMessage{Family: b[0], Type: hostOrder.Uint16(b[2:]), Index: int32(hostOrder.Uint32(b[4:])), Flags: hostOrder.Uint32(b[8:]), Change: hostOrder.Uint32(b[12:])}
	err := walkAttrs(b[ifInfoMsgLen:], func(typ uint16, v []byte) {
		switch typ {
		case unix.IFLA_IFNAME:
			out.Name = cString(v)
		case unix.IFLA_ADDRESS:
			out.HWAddr = append([]byte(nil), v...)
		case unix.IFLA_OPERSTATE:
			if len(v) > 0 {
				out.OperState, out.HasOper = v[0], true
			}
		}
	})
	if err != nil {
		return fmt.Errorf("link message: %w", err)
	}
	*m = out
	return nil
}

// linkRequest is an RTM_GETLINK request for one link, with its nlmsghdr.
func linkRequest(index int32, seq uint32) []byte {
	body, _ := (&linkMessage{Index: index}).MarshalBinary()
	b := hostOrder.AppendUint32(nil, uint32(nlHdrLen+len(body)))
	b = hostOrder.AppendUint16(b, unix.RTM_GETLINK)
	b = hostOrder.AppendUint16(b, unix.NLM_F_REQUEST)
	b = hostOrder.AppendUint32(b, seq)
	b = hostOrder.AppendUint32(b, 0) // port id: the kernel fills it in
	return append(b, body...)
}

// walkAttrs calls fn with each attribute in b (struct rtattr: length,
// type, value, padded to 4 bytes). An attribute whose length runs short
// of its header or past b is an error.
func walkAttrs(b []byte, fn func(typ uint16, v []byte)) error {
	for len(b) >= rtaHdrLen {
		l := int(hostOrder.Uint16(b))
		if l < rtaHdrLen || l > len(b) {
			return fmt.Errorf("attribute of length %d in %d bytes", l, len(b))
		}
		fn(hostOrder.Uint16(b[2:]), b[rtaHdrLen:l])
		b = b[min(rtaAlign(l), len(b)):]
	}
	return nil
}

func rtaAlign(n int) int { return (n + 3) &^ 3 }

// appendAttr appends an attribute, padded to 4 bytes.
func appendAttr(b []byte, typ uint16, v []byte) []byte {
	b = hostOrder.AppendUint16(b, uint16(rtaHdrLen+len(v)))
	b = hostOrder.AppendUint16(b, typ)
	b = append(b, v...)
	return append(b, make([]byte, rtaAlign(len(v))-len(v))...)
}

// cString is b up to its first NUL.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

package tickle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// sock_diag (NETLINK_SOCK_DIAG, INET_DIAG): what ss uses.
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	sockDestroy      = 21 // SOCK_DESTROY
	reqBytecode      = 1  // INET_DIAG_REQ_BYTECODE
	bcSCond          = 7  // INET_DIAG_BC_S_COND
	tcpEstablished   = 1
	reqLen           = 56 // struct inet_diag_req_v2
	msgLen           = 72 // struct inet_diag_msg
)

// diagSocket is one socket as a sock_diag dump reports it.
type diagSocket struct {
	family      uint8
	local, peer netip.AddrPort
	ifindex     uint32
	cookie      [8]byte
}

// sockDiag dumps and destroys TCP sockets over one netlink socket.
type sockDiag struct {
	c *netlink.Conn
}

func dialSockDiag() (*sockDiag, error) {
	c, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, nil)
	if err != nil {
		return nil, fmt.Errorf("sock_diag: %w", err)
	}
	return &sockDiag{c: c}, nil
}

func (d *sockDiag) Close() error { return d.c.Close() }

// established dumps the established TCP sockets whose local address is vip.
// The kernel filters (bytecode), so the cost is in the sockets on the VIP,
// not in every socket of the namespace. An IPv4 VIP is also looked for on
// IPv6 sockets, as ::ffff:a.b.c.d (clients of dual-stack listeners).
func (d *sockDiag) established(vip netip.Addr) ([]diagSocket, error) {
	families := []uint8{unix.AF_INET6}
	if vip.Is4() {
		families = []uint8{unix.AF_INET, unix.AF_INET6}
	}
	var out []diagSocket
	for _, fam := range families {
		req := make([]byte, reqLen)
		req[0] = fam
		req[1] = unix.IPPROTO_TCP
		binary.NativeEndian.PutUint32(req[4:], 1<<tcpEstablished)
		attr, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: reqBytecode, Data: localAddrBytecode(vip)}})
		if err != nil {
			return nil, err
		}
		msgs, err := d.c.Execute(netlink.Message{
			Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Request | netlink.Dump},
			Data:   append(req, attr...),
		})
		if err != nil {
			return nil, fmt.Errorf("sock_diag dump: %w", err)
		}
		for _, m := range msgs {
			s, ok := parseDiagMsg(m.Data)
			if ok && s.local.Addr().Unmap() == vip {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// localAddrBytecode is an inet_diag filter program: "local address is a".
func localAddrBytecode(a netip.Addr) []byte {
	addr := a.AsSlice()
	n := 4 + 8 + len(addr) // op, hostcond, address
	b := make([]byte, n)
	b[0] = bcSCond
	b[1] = byte(n)                                 // yes: go on to the end (accept)
	binary.NativeEndian.PutUint16(b[2:], uint16(n+4)) // no: jump past the end (reject)
	if a.Is4() {
		b[4] = unix.AF_INET
	} else {
		b[4] = unix.AF_INET6
	}
	b[5] = byte(len(addr) * 8) // prefix length
	binary.NativeEndian.PutUint32(b[8:], 0xffffffff) // port -1: any
	copy(b[12:], addr)
	return b
}

func parseDiagMsg(b []byte) (diagSocket, bool) {
	if len(b) < msgLen {
		return diagSocket{}, false
	}
	s := diagSocket{family: b[0]}
	sport := binary.BigEndian.Uint16(b[4:])
	dport := binary.BigEndian.Uint16(b[6:])
	var src, dst netip.Addr
	switch s.family {
	case unix.AF_INET:
		src = netip.AddrFrom4([4]byte(b[8:12]))
		dst = netip.AddrFrom4([4]byte(b[24:28]))
	case unix.AF_INET6:
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
	default:
		return diagSocket{}, false
	}
	s.local = netip.AddrPortFrom(src, sport)
	s.peer = netip.AddrPortFrom(dst, dport)
	s.ifindex = binary.NativeEndian.Uint32(b[40:])
	copy(s.cookie[:], b[44:52])
	return s, true
}

// destroy aborts one socket (SOCK_DESTROY): the kernel sends the peer an
// RST and the local owner of the socket sees ECONNABORTED. It needs
// CONFIG_INET_DIAG_DESTROY and CAP_NET_ADMIN. A socket already gone is
// not an error.
func (d *sockDiag) destroy(s diagSocket) error {
	req := make([]byte, reqLen)
	req[0] = s.family
	req[1] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(req[4:], 0xffffffff)
	binary.BigEndian.PutUint16(req[8:], s.local.Port())
	binary.BigEndian.PutUint16(req[10:], s.peer.Port())
	l, p := s.local.Addr(), s.peer.Addr()
	if s.family == unix.AF_INET {
		l4, p4 := l.Unmap().As4(), p.Unmap().As4()
		copy(req[12:], l4[:])
		copy(req[28:], p4[:])
	} else {
		l16, p16 := l.As16(), p.As16()
		copy(req[12:], l16[:])
		copy(req[28:], p16[:])
	}
	binary.NativeEndian.PutUint32(req[44:], s.ifindex)
	copy(req[48:], s.cookie[:])
	_, err := d.c.Execute(netlink.Message{
		Header: netlink.Header{Type: sockDestroy, Flags: netlink.Request | netlink.Acknowledge},
		Data:   req,
	})
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// ErrDestroyUnsupported says the kernel cannot destroy sockets
// (built without CONFIG_INET_DIAG_DESTROY).
var ErrDestroyUnsupported = errors.New("this kernel cannot destroy sockets (CONFIG_INET_DIAG_DESTROY is not set)")

func destroyUnsupported(err error) bool { return errors.Is(err, unix.EOPNOTSUPP) }

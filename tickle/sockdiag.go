package tickle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// sock_diag (NETLINK_SOCK_DIAG, INET_DIAG): what ss uses. Spoken over a
// plain netlink socket with one reused receive buffer, so that a dump of
// ten thousand sockets allocates nothing per socket.
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	sockDestroy      = 21 // SOCK_DESTROY
	reqBytecode      = 1  // INET_DIAG_REQ_BYTECODE
	bcSCond          = 7  // INET_DIAG_BC_S_COND
	tcpEstablished   = 1
	reqLen           = 56 // struct inet_diag_req_v2
	msgLen           = 72 // struct inet_diag_msg
	nlHdrLen         = 16
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
	fd  int
	seq uint32
	buf []byte
}

var diagSeq atomic.Uint32

func dialSockDiag() (*sockDiag, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sock_diag: %w", err)
	}
	// Ask the kernel for large dump chunks: fewer system calls.
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	return &sockDiag{fd: fd, seq: diagSeq.Add(1) << 16, buf: make([]byte, 64<<10)}, nil
}

func (d *sockDiag) Close() error { return unix.Close(d.fd) }

// request sends one netlink message and calls fn with the payload of each
// answer until the dump ends (or, for a request with an ACK, until the ACK).
func (d *sockDiag) request(typ, flags uint16, body []byte, fn func([]byte)) error {
	d.seq++
	msg := make([]byte, nlHdrLen+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], flags)
	binary.NativeEndian.PutUint32(msg[8:], d.seq)
	copy(msg[nlHdrLen:], body)
	if err := unix.Sendto(d.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b := d.buf[:n]
		for len(b) >= nlHdrLen {
			l := int(binary.NativeEndian.Uint32(b[0:]))
			if l < nlHdrLen || l > len(b) {
				return errors.New("sock_diag: truncated message")
			}
			t := binary.NativeEndian.Uint16(b[4:])
			seq := binary.NativeEndian.Uint32(b[8:])
			payload := b[nlHdrLen:l]
			b = b[min(nlAlign(l), len(b)):]
			if seq != d.seq {
				continue // a late answer to an earlier request
			}
			switch t {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(payload) < 4 {
					return errors.New("sock_diag: short error message")
				}
				if e := int32(binary.NativeEndian.Uint32(payload)); e != 0 {
					return unix.Errno(-e)
				}
				return nil // the ACK
			default:
				fn(payload)
			}
		}
	}
}

func nlAlign(n int) int { return (n + 3) &^ 3 }

// established calls fn for each established TCP socket whose local address
// is vip. The kernel filters (bytecode), so the cost is in the sockets on
// the VIP, not in every socket of the namespace. An IPv4 VIP is also looked
// for on IPv6 sockets, as ::ffff:a.b.c.d (clients of dual-stack listeners).
func (d *sockDiag) established(vip netip.Addr, fn func(*diagSocket)) error {
	families := []uint8{unix.AF_INET6}
	if vip.Is4() {
		families = []uint8{unix.AF_INET, unix.AF_INET6}
	}
	bc := localAddrBytecode(vip)
	body := make([]byte, reqLen+4+len(bc))
	body[1] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(body[4:], 1<<tcpEstablished)
	binary.NativeEndian.PutUint16(body[reqLen:], uint16(4+len(bc)))
	binary.NativeEndian.PutUint16(body[reqLen+2:], reqBytecode)
	copy(body[reqLen+4:], bc)
	var s diagSocket
	for _, fam := range families {
		body[0] = fam
		err := d.request(sockDiagByFamily, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, body, func(p []byte) {
			if parseDiagMsg(p, &s) && s.local.Addr().Unmap() == vip {
				fn(&s)
			}
		})
		if err != nil {
			return fmt.Errorf("sock_diag dump: %w", err)
		}
	}
	return nil
}

// localAddrBytecode is an inet_diag filter program: "local address is a".
func localAddrBytecode(a netip.Addr) []byte {
	addr := a.AsSlice()
	n := 4 + 8 + len(addr) // op, hostcond, address
	b := make([]byte, n)
	b[0] = bcSCond
	b[1] = byte(n)                                    // yes: go on to the end (accept)
	binary.NativeEndian.PutUint16(b[2:], uint16(n+4)) // no: jump past the end (reject)
	if a.Is4() {
		b[4] = unix.AF_INET
	} else {
		b[4] = unix.AF_INET6
	}
	b[5] = byte(len(addr) * 8)                       // prefix length
	binary.NativeEndian.PutUint32(b[8:], 0xffffffff) // port -1: any
	copy(b[12:], addr)
	return b
}

func parseDiagMsg(b []byte, s *diagSocket) bool {
	if len(b) < msgLen {
		return false
	}
	s.family = b[0]
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
		return false
	}
	s.local = netip.AddrPortFrom(src, sport)
	s.peer = netip.AddrPortFrom(dst, dport)
	s.ifindex = binary.NativeEndian.Uint32(b[40:])
	copy(s.cookie[:], b[44:52])
	return true
}

// destroy aborts one socket (SOCK_DESTROY): the kernel sends the peer an
// RST and the local owner of the socket sees an error. It needs
// CONFIG_INET_DIAG_DESTROY and CAP_NET_ADMIN. A socket already gone is
// not an error.
func (d *sockDiag) destroy(s *diagSocket) error {
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
	err := d.request(sockDestroy, unix.NLM_F_REQUEST|unix.NLM_F_ACK, req, func([]byte) {})
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// ErrDestroyUnsupported says the kernel refused to destroy a socket: it was
// built without CONFIG_INET_DIAG_DESTROY (EOPNOTSUPP), or the caller lacks
// CAP_NET_ADMIN (EPERM).
var ErrDestroyUnsupported = errors.New("this kernel cannot destroy sockets (no CONFIG_INET_DIAG_DESTROY, or no CAP_NET_ADMIN)")

func destroyUnsupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPERM)
}

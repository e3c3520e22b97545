package tickle

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// sock_diag (NETLINK_SOCK_DIAG, INET_DIAG): what ss uses. Spoken over a
// plain netlink socket with one reused receive buffer, so that a dump of
// ten thousand sockets allocates nothing per socket. The messages are in
// inetdiag.go.
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	sockDestroy      = 21 // SOCK_DESTROY
	tcpEstablished   = 1
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
	msg := nlHeader{Len: uint32(nlHdrLen + len(body)), Type: typ, Flags: flags, Seq: d.seq}.appendBinary(make([]byte, 0, nlHdrLen+len(body)))
	msg = append(msg, body...)
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
		if done, err := d.answers(d.buf[:n], fn); done || err != nil {
			return err
		}
	}
}

// answers reads one datagram of answers to the request of sequence number
// d.seq, calling fn with each payload; done says the answer is complete
// (the dump's end, or the ACK or error of a request).
func (d *sockDiag) answers(b []byte, fn func([]byte)) (done bool, err error) {
	for len(b) >= nlHdrLen {
		h, payload, rest, err := nextMessage(b)
		if err != nil {
			return true, fmt.Errorf("sock_diag: %w", err)
		}
		b = rest
		if h.Seq != d.seq {
			continue // a late answer to an earlier request
		}
		switch h.Type {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			return true, nlError(payload) // nil: the ACK
		default:
			fn(payload)
		}
	}
	return false, nil
}

// established calls fn for each established TCP socket whose local address
// is vip. The kernel filters (bytecode), so the cost is in the sockets on
// the VIP, not in every socket of the namespace. An IPv4 VIP is also looked
// for on IPv6 sockets, as ::ffff:a.b.c.d (clients of dual-stack listeners).
func (d *sockDiag) established(vip netip.Addr, fn func(*diagSocket)) error {
	families := []uint8{unix.AF_INET6}
	if vip.Is4() {
		families = []uint8{unix.AF_INET, unix.AF_INET6}
	}
	req := inetDiagReq{Protocol: unix.IPPROTO_TCP, States: 1 << tcpEstablished, Attrs: localAddrBytecode(vip)}
	var s diagSocket
	var m inetDiagMsg
	var body []byte
	for _, fam := range families {
		req.Family = fam
		body = req.appendBinary(body[:0])
		err := d.request(sockDiagByFamily, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, body, func(p []byte) {
			if parseDiagMsg(p, &m, &s) && s.local.Addr().Unmap() == vip {
				fn(&s)
			}
		})
		if err != nil {
			return fmt.Errorf("sock_diag dump: %w", err)
		}
	}
	return nil
}

// parseDiagMsg reads one socket of a dump into s, through m (both reused:
// nothing is allocated); it reports whether b is a socket of an IP family.
func parseDiagMsg(b []byte, m *inetDiagMsg, s *diagSocket) bool {
	if m.UnmarshalBinary(b) != nil {
		return false
	}
	local, peer, ok := m.ID.addrs(m.Family)
	if !ok {
		return false
	}
	s.family, s.local, s.peer = m.Family, local, peer
	s.ifindex, s.cookie = m.ID.If, m.ID.Cookie
	return true
}

// destroy aborts one socket (SOCK_DESTROY): the kernel sends the peer an
// RST and the local owner of the socket sees an error. It needs
// CONFIG_INET_DIAG_DESTROY and CAP_NET_ADMIN. A socket already gone is
// not an error.
func (d *sockDiag) destroy(s *diagSocket) error {
	req := inetDiagReq{Family: s.family, Protocol: unix.IPPROTO_TCP, States: 0xffffffff}
	req.ID.setAddrs(s.family, s.local, s.peer)
	req.ID.If, req.ID.Cookie = s.ifindex, s.cookie
	b, _ := req.MarshalBinary()
	err := d.request(sockDestroy, unix.NLM_F_REQUEST|unix.NLM_F_ACK, b, func([]byte) {})
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

package tickle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// The messages sock_diag speaks (linux/netlink.h, linux/inet_diag.h), as
// types. Netlink's own fields are in the host's byte order, ports in the
// network's. Decoding allocates nothing: a dump of ten thousand sockets is
// read into one reused value.
const (
	nlHdrLen      = 16 // struct nlmsghdr
	sockIDLen     = 48 // struct inet_diag_sockid
	reqLen        = 56 // struct inet_diag_req_v2
	msgLen        = 72 // struct inet_diag_msg
	rtaLen        = 4  // struct nlattr (rtattr)
	bcOpLen       = 4  // struct inet_diag_bc_op
	hostcondLen   = 8  // struct inet_diag_hostcond, before its address
	reqBytecode   = 1  // INET_DIAG_REQ_BYTECODE
	bcSCond       = 7  // INET_DIAG_BC_S_COND
	bcDCond       = 8  // INET_DIAG_BC_D_COND
	anyPort       = -1 // a hostcond's port: any
	errShortInput = "too short"
)

var hostOrder = binary.NativeEndian

// nlHeader is struct nlmsghdr.
type nlHeader struct {
	Len   uint32
	Type  uint16
	Flags uint16
	Seq   uint32
	PID   uint32
}

func (h nlHeader) appendBinary(b []byte) []byte {
	b = hostOrder.AppendUint32(b, h.Len)
	b = hostOrder.AppendUint16(b, h.Type)
	b = hostOrder.AppendUint16(b, h.Flags)
	b = hostOrder.AppendUint32(b, h.Seq)
	return hostOrder.AppendUint32(b, h.PID)
}

// nextMessage splits the first netlink message off b: its header, its
// payload (up to the length the header declares) and what follows it
// (from the next 4-byte boundary).
func nextMessage(b []byte) (h nlHeader, payload, rest []byte, err error) {
	if len(b) < nlHdrLen {
		return h, nil, nil, fmt.Errorf("netlink message: %s (%d bytes)", errShortInput, len(b))
	}
	h = nlHeader{Len: hostOrder.Uint32(b), Type: hostOrder.Uint16(b[4:]), Flags: hostOrder.Uint16(b[6:]), Seq: hostOrder.Uint32(b[8:]), PID: hostOrder.Uint32(b[12:])}
	if h.Len < nlHdrLen || uint64(h.Len) > uint64(len(b)) {
		return h, nil, nil, fmt.Errorf("netlink message of length %d in %d bytes", h.Len, len(b))
	}
	l := int(h.Len)
	return h, b[nlHdrLen:l], b[min(nlAlign(l), len(b)):], nil
}

func nlAlign(n int) int { return (n + 3) &^ 3 }

// nlError reads the payload of an NLMSG_ERROR message: 0 is an ACK.
func nlError(payload []byte) error {
	if len(payload) < 4 {
		return errors.New("short netlink error message")
	}
	if e := int32(hostOrder.Uint32(payload)); e != 0 {
		return unix.Errno(-e)
	}
	return nil
}

// inetDiagSockID is struct inet_diag_sockid. An IPv4 address fills the
// first 4 bytes of Src or Dst.
type inetDiagSockID struct {
	SPort, DPort uint16
	Src, Dst     [16]byte
	If           uint32
	Cookie       [8]byte
}

func (id *inetDiagSockID) appendBinary(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, id.SPort)
	b = binary.BigEndian.AppendUint16(b, id.DPort)
	b = append(b, id.Src[:]...)
	b = append(b, id.Dst[:]...)
	b = hostOrder.AppendUint32(b, id.If)
	return append(b, id.Cookie[:]...)
}

func (id *inetDiagSockID) unmarshal(b []byte) {
	id.SPort = binary.BigEndian.Uint16(b[0:])
	id.DPort = binary.BigEndian.Uint16(b[2:])
	copy(id.Src[:], b[4:20])
	copy(id.Dst[:], b[20:36])
	id.If = hostOrder.Uint32(b[36:])
	copy(id.Cookie[:], b[40:48])
}

// addrs returns the source and destination of an AF_INET or AF_INET6
// socket; ok is false for another family.
func (id *inetDiagSockID) addrs(family uint8) (src, dst netip.AddrPort, ok bool) {
	var s, d netip.Addr
	switch family {
	case unix.AF_INET:
		s, d = netip.AddrFrom4([4]byte(id.Src[:4])), netip.AddrFrom4([4]byte(id.Dst[:4]))
	case unix.AF_INET6:
		s, d = netip.AddrFrom16(id.Src), netip.AddrFrom16(id.Dst)
	default:
		return src, dst, false
	}
	return netip.AddrPortFrom(s, id.SPort), netip.AddrPortFrom(d, id.DPort), true
}

// setAddrs sets source and destination: as IPv4 for AF_INET (the
// addresses unmapped), as IPv6 otherwise.
func (id *inetDiagSockID) setAddrs(family uint8, src, dst netip.AddrPort) {
	id.SPort, id.DPort = src.Port(), dst.Port()
	id.Src, id.Dst = [16]byte{}, [16]byte{}
	if family == unix.AF_INET {
		s, d := src.Addr().Unmap().As4(), dst.Addr().Unmap().As4()
		copy(id.Src[:], s[:])
		copy(id.Dst[:], d[:])
		return
	}
	id.Src, id.Dst = src.Addr().As16(), dst.Addr().As16()
}

// inetDiagReq is struct inet_diag_req_v2, with the attributes that may
// follow it (the bytecode filter, already encoded).
type inetDiagReq struct {
	Family   uint8
	Protocol uint8
	Ext      uint8
	States   uint32
	ID       inetDiagSockID
	Attrs    []byte
}

func (r *inetDiagReq) appendBinary(b []byte) []byte {
	b = append(b, r.Family, r.Protocol, r.Ext, 0)
	b = hostOrder.AppendUint32(b, r.States)
	b = r.ID.appendBinary(b)
	return append(b, r.Attrs...)
}

func (r *inetDiagReq) MarshalBinary() ([]byte, error) {
	return r.appendBinary(make([]byte, 0, reqLen+len(r.Attrs))), nil
}

func (r *inetDiagReq) UnmarshalBinary(b []byte) error {
	if len(b) < reqLen {
		return fmt.Errorf("inet_diag request: %s (%d bytes)", errShortInput, len(b))
	}
	r.Family, r.Protocol, r.Ext = b[0], b[1], b[2]
	r.States = hostOrder.Uint32(b[4:])
	r.ID.unmarshal(b[8:])
	r.Attrs = b[reqLen:]
	return nil
}

// inetDiagMsg is struct inet_diag_msg, one socket of a dump (the
// attributes after it are not read).
type inetDiagMsg struct {
	Family  uint8
	State   uint8
	Timer   uint8
	Retrans uint8
	ID      inetDiagSockID
	Expires uint32
	RQueue  uint32
	WQueue  uint32
	UID     uint32
	Inode   uint32
}

func (m *inetDiagMsg) MarshalBinary() ([]byte, error) {
	b := append(make([]byte, 0, msgLen), m.Family, m.State, m.Timer, m.Retrans)
	b = m.ID.appendBinary(b)
	for _, v := range []uint32{m.Expires, m.RQueue, m.WQueue, m.UID, m.Inode} {
		b = hostOrder.AppendUint32(b, v)
	}
	return b, nil
}

func (m *inetDiagMsg) UnmarshalBinary(b []byte) error {
	if len(b) < msgLen {
		return fmt.Errorf("inet_diag message: %s (%d bytes)", errShortInput, len(b))
	}
	m.Family, m.State, m.Timer, m.Retrans = b[0], b[1], b[2], b[3]
	m.ID.unmarshal(b[4:])
	m.Expires = hostOrder.Uint32(b[52:])
	m.RQueue = hostOrder.Uint32(b[56:])
	m.WQueue = hostOrder.Uint32(b[60:])
	m.UID = hostOrder.Uint32(b[64:])
	m.Inode = hostOrder.Uint32(b[68:])
	return nil
}

// appendAttr appends a netlink attribute (struct nlattr and data, padded
// to 4 bytes).
func appendAttr(b []byte, typ uint16, data []byte) []byte {
	b = hostOrder.AppendUint16(b, uint16(rtaLen+len(data)))
	b = hostOrder.AppendUint16(b, typ)
	b = append(b, data...)
	return append(b, make([]byte, nlAlign(len(data))-len(data))...)
}

// bcOp is struct inet_diag_bc_op, an instruction of the filter program
// the kernel runs on each socket: on a match it goes Yes bytes on, else
// No bytes on; landing just past the end accepts, 4 bytes past rejects.
type bcOp struct {
	Code uint8
	Yes  uint8
	No   uint16
}

// hostCond is the operand of a S_COND or D_COND instruction (struct
// inet_diag_hostcond and its address): the address matches on its
// PrefixLen first bits, the port when it is not anyPort.
type hostCond struct {
	Op        bcOp
	Family    uint8
	PrefixLen uint8
	Port      int32
	Addr      netip.Addr // IPv4 for AF_INET, IPv6 for AF_INET6
}

func (c *hostCond) appendBinary(b []byte) []byte {
	b = append(b, c.Op.Code, c.Op.Yes)
	b = hostOrder.AppendUint16(b, c.Op.No)
	b = append(b, c.Family, c.PrefixLen, 0, 0)
	b = hostOrder.AppendUint32(b, uint32(c.Port))
	return append(b, c.Addr.AsSlice()...)
}

func (c *hostCond) UnmarshalBinary(b []byte) error {
	if len(b) < bcOpLen+hostcondLen {
		return fmt.Errorf("inet_diag host condition: %s (%d bytes)", errShortInput, len(b))
	}
	c.Op = bcOp{Code: b[0], Yes: b[1], No: hostOrder.Uint16(b[2:])}
	c.Family, c.PrefixLen = b[4], b[5]
	c.Port = int32(hostOrder.Uint32(b[8:]))
	a := b[bcOpLen+hostcondLen:]
	switch {
	case c.Family == unix.AF_INET && len(a) >= 4:
		c.Addr = netip.AddrFrom4([4]byte(a))
	case c.Family == unix.AF_INET6 && len(a) >= 16:
		c.Addr = netip.AddrFrom16([16]byte(a))
	default:
		return fmt.Errorf("inet_diag host condition of family %d with %d address bytes", c.Family, len(a))
	}
	return nil
}

// localAddrBytecode is an inet_diag filter program, as a request
// attribute: "local address is a" (any port).
func localAddrBytecode(a netip.Addr) []byte { return addrBytecode(bcSCond, a) }

// peerAddrBytecode is the filter "remote address is a" (any port).
func peerAddrBytecode(a netip.Addr) []byte { return addrBytecode(bcDCond, a) }

// addrBytecode is the one-instruction filter program code (S_COND or
// D_COND) on address a, any port.
func addrBytecode(code uint8, a netip.Addr) []byte {
	n := bcOpLen + hostcondLen + len(a.AsSlice())
	c := hostCond{
		Op:        bcOp{Code: code, Yes: uint8(n), No: uint16(n + 4)}, // yes: to the end (accept); no: past it (reject)
		Family:    unix.AF_INET6,
		PrefixLen: uint8(a.BitLen()),
		Port:      anyPort,
		Addr:      a,
	}
	if a.Is4() {
		c.Family = unix.AF_INET
	}
	return appendAttr(nil, reqBytecode, c.appendBinary(make([]byte, 0, n)))
}

package tickle

import (
	"encoding/binary"
	"net/netip"
)

// TCP flags.
const (
	FlagRST = 0x04
	FlagACK = 0x10
)

// TickleWindow is the window a tickle advertises: easy to spot in a capture.
const TickleWindow = 1234

// Segment is a bare TCP segment (no options, no payload) from Src to Dst.
type Segment struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    uint8
	Window   uint16
}

// Tickle returns the segment that makes the client of c answer with its
// real sequence numbers: an ACK from VIP:port with seq 0, ack 0.
func (c Conn) Tickle() Segment {
	return Segment{Src: c.Local, Dst: c.Remote, Flags: FlagACK, Window: TickleWindow}
}

// Packet returns the IP packet carrying s: an IPv4 header (20 bytes) or an
// IPv6 header (40 bytes), then 20 bytes of TCP, every checksum computed.
// Both addresses should be of one family: an IPv4 address with an IPv6 one
// makes an IPv6 packet, with the IPv4 address mapped.
func (s Segment) Packet() []byte {
	src, dst := s.Src.Addr().Unmap(), s.Dst.Addr().Unmap()
	var b []byte
	var pseudo uint32
	if src.Is4() && dst.Is4() {
		b = make([]byte, 40)
		ip := b[:20]
		ip[0] = 0x45 // version 4, 5 words
		binary.BigEndian.PutUint16(ip[2:], 40)
		binary.BigEndian.PutUint16(ip[6:], 0x4000) // don't fragment
		ip[8] = 64                                 // TTL
		ip[9] = 6                                  // TCP
		s4, d4 := src.As4(), dst.As4()
		copy(ip[12:16], s4[:])
		copy(ip[16:20], d4[:])
		binary.BigEndian.PutUint16(ip[10:], ^fold(sum(ip, 0)))
		pseudo = sum(s4[:], sum(d4[:], 6+20))
	} else {
		b = make([]byte, 60)
		ip := b[:40]
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], 20) // payload length
		ip[6] = 6                              // next header: TCP
		ip[7] = 64                             // hop limit
		s16, d16 := src.As16(), dst.As16()
		copy(ip[8:24], s16[:])
		copy(ip[24:40], d16[:])
		pseudo = sum(s16[:], sum(d16[:], 6+20))
	}
	tcp := b[len(b)-20:]
	binary.BigEndian.PutUint16(tcp[0:], s.Src.Port())
	binary.BigEndian.PutUint16(tcp[2:], s.Dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], s.Seq)
	binary.BigEndian.PutUint32(tcp[8:], s.Ack)
	tcp[12] = 5 << 4
	tcp[13] = s.Flags
	binary.BigEndian.PutUint16(tcp[14:], s.Window)
	binary.BigEndian.PutUint16(tcp[16:], ^fold(sum(tcp, pseudo)))
	return b
}

// sum adds b as big-endian 16-bit words to acc (the Internet checksum's
// one's-complement sum, not yet folded).
func sum(b []byte, acc uint32) uint32 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}

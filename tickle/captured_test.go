package tickle

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// Real packets read as the headers say (seeds of FuzzParseCaptured too).
func TestParseCapturedReal(t *testing.T) {
	pkts := hexLines(t, "captured-tcp.hex")
	if len(pkts) != 12 {
		t.Fatalf("%d packets", len(pkts))
	}
	// SYN, SYN-ACK, ACK, 5 bytes of data, ACK, RST+ACK, IPv4 then IPv6.
	wantFlags := []uint8{flagSYN, flagSYN | FlagACK, FlagACK, FlagACK | 0x08, FlagACK, FlagRST | FlagACK}
	wantLen := []uint32{1, 1, 0, 5, 0, 0}
	last := map[netip.AddrPort]captured{} // by sender
	for i, b := range pkts {
		c, ok := parseCaptured(b)
		if !ok || c.Flags != wantFlags[i%6] || c.Len != wantLen[i%6] {
			t.Errorf("packet %d: %+v %v", i, c, ok)
		}
		// The sequence numbers follow on: a sender's next segment starts
		// where its last ended, and acknowledges the peer's last.
		if p, seen := last[c.Src]; seen && c.Seq != p.End() {
			t.Errorf("packet %d (%+v) does not follow %+v", i, c, p)
		}
		if p, seen := last[c.Dst]; seen && c.Ack != p.End() {
			t.Errorf("packet %d (%+v) does not acknowledge %+v", i, c, p)
		}
		last[c.Src] = c
	}
}

// FuzzParseCaptured: a packet socket hands over whatever goes out. A
// segment the package builds reads back as itself; arbitrary bytes either
// are refused or read as the fields at the offsets their headers give,
// never past the bytes given, and the segment read rebuilds into a packet
// that reads the same.
func FuzzParseCaptured(f *testing.F) {
	for _, p := range hexLines(f, "captured-tcp.hex") {
		f.Add(p, false, uint32(0), uint16(0))
	}
	f.Add([]byte("\x45\x00\x00\x28"), true, uint32(1), uint16(445))
	f.Fuzz(func(t *testing.T, raw []byte, v6 bool, n uint32, port uint16) {
		// A made segment.
		seg := Segment{Seq: n, Ack: ^n, Flags: uint8(n >> 5), Window: uint16(n >> 7)}
		if src, dst := addrOf(raw, 2), addrOf(raw[min(len(raw), 4):], 2); !v6 && src.IsValid() && dst.IsValid() {
			seg.Src, seg.Dst = netip.AddrPortFrom(src, port), netip.AddrPortFrom(dst, ^port)
		} else if src, dst := addrOf(raw, 10), addrOf(raw[min(len(raw), 16):], 10); v6 && src.IsValid() && dst.IsValid() && !src.Is4In6() && !dst.Is4In6() {
			seg.Src, seg.Dst = netip.AddrPortFrom(src, port), netip.AddrPortFrom(dst, ^port)
		}
		if seg.Src.IsValid() {
			c, ok := parseCaptured(seg.Packet())
			if !ok || c.Segment != seg || c.Len != seqFlags(seg.Flags) {
				t.Fatalf("%+v read back as %+v %v", seg, c, ok)
			}
		}
		// Arbitrary bytes.
		c, ok := parseCaptured(raw)
		if !ok {
			return
		}
		var hdr, total int
		var src, dst netip.Addr
		switch raw[0] >> 4 {
		case 4:
			hdr, total = int(raw[0]&15)*4, int(binary.BigEndian.Uint16(raw[2:]))
			src, dst = netip.AddrFrom4([4]byte(raw[12:])), netip.AddrFrom4([4]byte(raw[16:]))
		case 6:
			hdr, total = 40, 40+int(binary.BigEndian.Uint16(raw[4:]))
			src, dst = netip.AddrFrom16([16]byte(raw[8:])), netip.AddrFrom16([16]byte(raw[24:]))
		default:
			t.Fatalf("IP version %d read", raw[0]>>4)
		}
		if hdr < 20 || len(raw) < hdr+20 {
			t.Fatalf("read with a %d-byte header from %d bytes", hdr, len(raw))
		}
		tcp := raw[hdr:]
		if c.Src != netip.AddrPortFrom(src, binary.BigEndian.Uint16(tcp)) || c.Dst != netip.AddrPortFrom(dst, binary.BigEndian.Uint16(tcp[2:])) ||
			c.Seq != binary.BigEndian.Uint32(tcp[4:]) || c.Ack != binary.BigEndian.Uint32(tcp[8:]) || c.Flags != tcp[13] || c.Window != binary.BigEndian.Uint16(tcp[14:]) {
			t.Fatalf("%x read as %+v", raw, c)
		}
		if payload := uint32(max(total-hdr-int(tcp[12]>>4)*4, 0)); c.Len != payload+seqFlags(c.Flags) {
			t.Fatalf("length %d in sequence space, the headers say %d of payload, flags %#x", c.Len, payload, c.Flags)
		}
		// Rebuilt, an IPv4-mapped IPv6 packet is an IPv4 one (and one
		// with an IPv4-mapped address and an IPv6 one stays IPv6).
		want := c.Segment
		if a, b := norm(want.Src), norm(want.Dst); a.Addr().Is4() == b.Addr().Is4() {
			want.Src, want.Dst = a, b
		}
		again, ok := parseCaptured(c.Segment.Packet())
		if !ok || again.Segment != want || again.Len != seqFlags(c.Flags) {
			t.Fatalf("%+v rebuilt and read as %+v %v", c, again, ok)
		}
	})
}

// seqFlags is what SYN and FIN count in sequence space.
func seqFlags(f uint8) uint32 {
	n := uint32(0)
	if f&flagSYN != 0 {
		n++
	}
	if f&flagFIN != 0 {
		n++
	}
	return n
}

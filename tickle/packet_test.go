package tickle

import (
	"encoding/hex"
	"net/netip"
	"testing"
)

// The expected bytes were computed independently of this package (a short
// Python script with struct.pack and its own one's-complement sum).
func TestPacketGolden(t *testing.T) {
	ap := netip.MustParseAddrPort
	cases := []struct {
		name string
		seg  Segment
		want string
	}{
		{"tickle v4", Conn{ap("198.51.100.10:445"), ap("198.51.100.20:51234")}.Tickle(),
			"45000028000040004006e64ac633640ac633641401bdc8220000000000000000501004d28c9d0000"},
		{"tickle v6", Conn{ap("[2001:db8::10]:445"), ap("[2001:db8::20]:51234")}.Tickle(),
			"600000000014064020010db800000000000000000000001020010db800000000000000000000002001bdc8220000000000000000501004d285810000"},
		{"rst+ack v4", Segment{Src: ap("203.0.113.7:2049"), Dst: ap("198.51.100.200:40000"),
			Seq: 0x01020304, Ack: 0xa0b0c0d0, Flags: FlagRST | FlagACK},
			"45000028000040004006d3cccb007107c63364c808019c4001020304a0b0c0d0501400003f040000"},
		{"tickle v4-mapped", Conn{ap("[::ffff:198.51.100.10]:445"), ap("[::ffff:198.51.100.20]:51234")}.Tickle(),
			"45000028000040004006e64ac633640ac633641401bdc8220000000000000000501004d28c9d0000"},
	}
	for _, c := range cases {
		got := hex.EncodeToString(c.seg.Packet())
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// A receiver's check: the one's-complement sum over the pseudo-header and
// the segment (checksum included) is 0xffff, whatever the fields.
func TestPacketChecksumsVerify(t *testing.T) {
	for i, c := range []Conn{
		{netip.MustParseAddrPort("198.51.100.1:1"), netip.MustParseAddrPort("198.51.100.255:65535")},
		{netip.MustParseAddrPort("[2001:db8:ffff::1]:65535"), netip.MustParseAddrPort("[2001:db8::ffff:ffff]:1")},
	} {
		for _, seq := range []uint32{0, 1, 0xffffffff, 0x80000000} {
			seg := c.Tickle()
			seg.Seq, seg.Ack, seg.Window = seq, ^seq, uint16(seq)
			p := seg.Packet()
			var pseudo uint32
			var tcp []byte
			if c.Local.Addr().Is4() {
				if fold(sum(p[:20], 0)) != 0xffff {
					t.Errorf("%d: IPv4 header checksum does not verify", i)
				}
				pseudo = sum(p[12:20], 6+20)
				tcp = p[20:]
			} else {
				pseudo = sum(p[8:40], 6+20)
				tcp = p[40:]
			}
			if len(tcp) != 20 {
				t.Fatalf("%d: TCP header is %d bytes", i, len(tcp))
			}
			if fold(sum(tcp, pseudo)) != 0xffff {
				t.Errorf("%d seq %#x: TCP checksum does not verify", i, seq)
			}
		}
	}
}

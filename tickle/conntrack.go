package tickle

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	conntrack "github.com/florianl/go-conntrack"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Connection tracking (ctnetlink), which also sees flows forwarded or NATed
// through this node. The dump is asked for with a kernel-side filter (the
// VIP as the original or the reply destination, TCP; kernels before 5.8
// ignore the filter and the same checks are made here), over
// go-conntrack's netlink connection, and read with a small attribute walk
// that allocates nothing per flow: a keeper reads it every second.
const (
	ctaTupleOrig        = 1
	ctaTupleReply       = 2
	ctaProtoinfo        = 4
	ctaFilter           = 25
	ctaTupleIP          = 1
	ctaTupleProto       = 2
	ctaIPv4Src          = 1
	ctaIPv4Dst          = 2
	ctaIPv6Src          = 3
	ctaIPv6Dst          = 4
	ctaProtoNum         = 1
	ctaProtoSrcPort     = 2
	ctaProtoDstPort     = 3
	ctaProtoinfoTCP     = 1
	ctaProtoinfoTCPSt   = 1
	ctaFilterOrigFlags  = 1
	ctaFilterReplyFlags = 2
	ctaFilterIPDst      = 1 << 1
	ctaFilterProtoNum   = 1 << 3
	ctTCPEstablished    = 3 // TCP_CONNTRACK_ESTABLISHED
	nlaTypeMask         = 0x3fff
	ctGet               = 1<<8 | 1 // NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET
)

// ctDump reads established TCP flows of one VIP from connection tracking.
type ctDump struct {
	nfct  *conntrack.Nfct
	count *os.File // nf_conntrack_count of the namespace: 0 means it tracks nothing
	out   []Conn
}

func dialConntrack() (*ctDump, error) {
	nfct, err := conntrack.Open(&conntrack.Config{})
	if err != nil {
		return nil, fmt.Errorf("conntrack: %w", err)
	}
	d := &ctDump{nfct: nfct}
	// Opened here, in the namespace: reads show that namespace's count.
	d.count, _ = os.Open("/proc/sys/net/netfilter/nf_conntrack_count")
	return d, nil
}

func (d *ctDump) Close() error {
	if d.count != nil {
		d.count.Close()
	}
	return d.nfct.Close()
}

// tracked returns how many flows the namespace tracks (-1: unknown).
func (d *ctDump) tracked() int {
	if d.count == nil {
		return -1
	}
	var b [32]byte
	n, err := d.count.ReadAt(b[:], 0)
	if n == 0 && err != nil {
		return -1
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil {
		return -1
	}
	return v
}

// established returns the established TCP flows with vip on our side, and
// how many flows the namespace tracks in all (0 means it tracks nothing;
// -1 unknown). A flow to vip (original destination) has the client as
// original source; a flow from vip (reply destination: a local or SNATed
// client socket) has the peer as reply source. The slice is reused by the
// next call.
func (d *ctDump) established(vip netip.Addr) (conns []Conn, total int, err error) {
	total = d.tracked()
	d.out = d.out[:0]
	if total == 0 {
		return d.out, 0, nil
	}
	for _, dir := range []uint16{ctaTupleOrig, ctaTupleReply} {
		msgs, err := d.nfct.Con.Execute(ctRequest(vip, dir))
		if err != nil {
			return nil, total, fmt.Errorf("conntrack dump: %w", err)
		}
		for _, m := range msgs {
			if len(m.Data) < 4 {
				continue
			}
			if c, ok := parseCtFlow(m.Data[4:], vip); ok {
				d.out = append(d.out, c)
			}
		}
	}
	return d.out, total, nil
}

// ctRequest asks for the TCP flows whose dir tuple has vip as destination.
func ctRequest(vip netip.Addr, dir uint16) netlink.Message {
	fam, ipType := uint8(unix.AF_INET), uint16(ctaIPv4Dst)
	if vip.Is6() {
		fam, ipType = unix.AF_INET6, ctaIPv6Dst
	}
	flagsType := uint16(ctaFilterOrigFlags)
	if dir == ctaTupleReply {
		flagsType = ctaFilterReplyFlags
	}
	ae := netlink.NewAttributeEncoder()
	ae.Nested(dir, func(t *netlink.AttributeEncoder) error {
		t.Nested(ctaTupleIP, func(ip *netlink.AttributeEncoder) error {
			ip.Bytes(ipType, vip.AsSlice())
			return nil
		})
		t.Nested(ctaTupleProto, func(p *netlink.AttributeEncoder) error {
			p.Uint8(ctaProtoNum, unix.IPPROTO_TCP)
			return nil
		})
		return nil
	})
	ae.Nested(ctaFilter, func(f *netlink.AttributeEncoder) error {
		f.Uint32(flagsType, ctaFilterIPDst|ctaFilterProtoNum)
		return nil
	})
	attrs, _ := ae.Encode()
	return netlink.Message{
		Header: netlink.Header{Type: ctGet, Flags: netlink.Request | netlink.Dump},
		Data:   append([]byte{fam, 0, 0, 0}, attrs...), // struct nfgenmsg
	}
}

// walk calls fn for each netlink attribute in b.
func walk(b []byte, fn func(typ uint16, data []byte)) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		if l < 4 || l > len(b) {
			return
		}
		fn(binary.NativeEndian.Uint16(b[2:])&nlaTypeMask, b[4:l])
		b = b[min(nlAlign(l), len(b)):]
	}
}

type ctTuple struct {
	src, dst         netip.Addr
	sport, dport     uint16
	proto            uint8
	hasPorts, hasIPs bool
}

func parseTuple(b []byte) (t ctTuple) {
	walk(b, func(typ uint16, data []byte) {
		switch typ {
		case ctaTupleIP:
			walk(data, func(typ uint16, a []byte) {
				switch {
				case (typ == ctaIPv4Src || typ == ctaIPv4Dst) && len(a) == 4,
					(typ == ctaIPv6Src || typ == ctaIPv6Dst) && len(a) == 16:
					ip, _ := netip.AddrFromSlice(a)
					if typ == ctaIPv4Src || typ == ctaIPv6Src {
						t.src = ip.Unmap()
					} else {
						t.dst = ip.Unmap()
					}
				}
			})
			t.hasIPs = t.src.IsValid() && t.dst.IsValid()
		case ctaTupleProto:
			n := 0
			walk(data, func(typ uint16, a []byte) {
				switch {
				case typ == ctaProtoNum && len(a) == 1:
					t.proto = a[0]
				case typ == ctaProtoSrcPort && len(a) == 2:
					t.sport = binary.BigEndian.Uint16(a)
					n++
				case typ == ctaProtoDstPort && len(a) == 2:
					t.dport = binary.BigEndian.Uint16(a)
					n++
				}
			})
			t.hasPorts = n == 2
		}
	})
	return t
}

// parseCtFlow reads one flow's attributes: an established TCP flow with
// vip on our side becomes a Conn.
func parseCtFlow(b []byte, vip netip.Addr) (Conn, bool) {
	var orig, reply ctTuple
	state := -1
	walk(b, func(typ uint16, data []byte) {
		switch typ {
		case ctaTupleOrig:
			orig = parseTuple(data)
		case ctaTupleReply:
			reply = parseTuple(data)
		case ctaProtoinfo:
			walk(data, func(typ uint16, data []byte) {
				if typ == ctaProtoinfoTCP {
					walk(data, func(typ uint16, a []byte) {
						if typ == ctaProtoinfoTCPSt && len(a) == 1 {
							state = int(a[0])
						}
					})
				}
			})
		}
	})
	if state != ctTCPEstablished {
		return Conn{}, false
	}
	for _, t := range []ctTuple{orig, reply} {
		if t.proto == unix.IPPROTO_TCP && t.hasIPs && t.hasPorts && t.dst == vip {
			return NewConn(netip.AddrPortFrom(t.dst, t.dport), netip.AddrPortFrom(t.src, t.sport)), true
		}
	}
	return Conn{}, false
}

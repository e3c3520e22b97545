package tickle

import (
	"fmt"
	"net"
	"net/netip"

	conntrack "github.com/florianl/go-conntrack"
)

const ctTCPEstablished = 3 // TCP_CONNTRACK_ESTABLISHED

// ctDump reads connection tracking (which also sees forwarded and NATed
// flows) over one netlink socket.
type ctDump struct {
	nfct *conntrack.Nfct
}

func dialConntrack() (*ctDump, error) {
	nfct, err := conntrack.Open(&conntrack.Config{})
	if err != nil {
		return nil, fmt.Errorf("conntrack: %w", err)
	}
	return &ctDump{nfct: nfct}, nil
}

func (d *ctDump) Close() error { return d.nfct.Close() }

// established returns the established TCP flows with vip on our side, and
// how many flows the table holds in all (0 means the namespace tracks
// nothing). A flow to vip (origin destination) has the client as origin
// source; a flow from vip (reply destination: a local or SNATed client
// socket) has the peer as reply source.
func (d *ctDump) established(vip netip.Addr) (conns []Conn, total int, err error) {
	fam := conntrack.IPv6
	if vip.Is4() {
		fam = conntrack.IPv4
	}
	cons, err := d.nfct.Dump(conntrack.Conntrack, fam)
	if err != nil {
		return nil, 0, fmt.Errorf("conntrack dump: %w", err)
	}
	for _, c := range cons {
		if c.ProtoInfo == nil || c.ProtoInfo.TCP == nil || c.ProtoInfo.TCP.State == nil ||
			*c.ProtoInfo.TCP.State != ctTCPEstablished {
			continue
		}
		if l, r, ok := tupleEnds(c.Origin); ok && l.Addr() == vip {
			conns = append(conns, NewConn(l, r))
		} else if l, r, ok := tupleEnds(c.Reply); ok && l.Addr() == vip {
			conns = append(conns, NewConn(l, r))
		}
	}
	return conns, len(cons), nil
}

// tupleEnds returns a TCP tuple's destination (our side) and source.
func tupleEnds(t *conntrack.IPTuple) (dst, src netip.AddrPort, ok bool) {
	if t == nil || t.Src == nil || t.Dst == nil || t.Proto == nil || t.Proto.Number == nil ||
		*t.Proto.Number != 6 || t.Proto.SrcPort == nil || t.Proto.DstPort == nil {
		return dst, src, false
	}
	d, ok1 := ipAddr(*t.Dst)
	s, ok2 := ipAddr(*t.Src)
	if !ok1 || !ok2 {
		return dst, src, false
	}
	return netip.AddrPortFrom(d, *t.Proto.DstPort), netip.AddrPortFrom(s, *t.Proto.SrcPort), true
}

func ipAddr(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

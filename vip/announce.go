package vip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
)

// Ethernet types and addresses the announcements use.
const (
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd
)

var (
	allNodes     = netip.MustParseAddr("ff02::1")
	allNodesMAC  = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	ethBroadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

// GratuitousARP returns the two Ethernet frames of one IPv4 announcement
// round for ip owned by mac: an ARP request and an ARP reply, both with
// sender and target address ip, to the broadcast address; the request's
// target hardware address is zero, the reply's is mac.
func GratuitousARP(mac net.HardwareAddr, ip netip.Addr) ([][]byte, error) {
	if !ip.Is4() {
		return nil, fmt.Errorf("gratuitous ARP for %s: not an IPv4 address", ip)
	}
	var frames [][]byte
	for _, op := range []struct {
		op  arp.Operation
		tha net.HardwareAddr
	}{{arp.OperationRequest, make(net.HardwareAddr, 6)}, {arp.OperationReply, mac}} {
		b, err := arpFrame(op.op, mac, ip, op.tha, ip)
		if err != nil {
			return nil, err
		}
		frames = append(frames, b)
	}
	return frames, nil
}

func arpFrame(op arp.Operation, sha net.HardwareAddr, sip netip.Addr, tha net.HardwareAddr, tip netip.Addr) ([]byte, error) {
	p, err := arp.NewPacket(op, sha, sip, tha, tip)
	if err != nil {
		return nil, fmt.Errorf("ARP packet: %w", err)
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	f := ethernet.Frame{Destination: ethBroadcast, Source: sha, EtherType: ethernet.EtherTypeARP, Payload: pb}
	return f.MarshalBinary()
}

// UnsolicitedNA returns the Ethernet frame of one IPv6 announcement for ip
// owned by mac: a neighbour advertisement from ip to all nodes (ff02::1),
// hop limit 255, Override set, Solicited and Router clear, with the target
// link-layer address option.
func UnsolicitedNA(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if !ip.Is6() || ip.Is4In6() {
		return nil, fmt.Errorf("neighbour advertisement for %s: not an IPv6 address", ip)
	}
	na := &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: ip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	}
	icmp, err := ndp.MarshalMessageChecksum(na, ip, allNodes)
	if err != nil {
		return nil, fmt.Errorf("neighbour advertisement: %w", err)
	}
	pkt := make([]byte, 40+len(icmp))
	pkt[0] = 6 << 4 // version 6, traffic class 0, flow label 0
	binary.BigEndian.PutUint16(pkt[4:], uint16(len(icmp)))
	pkt[6] = 58  // next header: ICMPv6
	pkt[7] = 255 // hop limit: neighbour discovery requires 255
	src, dst := ip.As16(), allNodes.As16()
	copy(pkt[8:], src[:])
	copy(pkt[24:], dst[:])
	copy(pkt[40:], icmp)
	f := ethernet.Frame{Destination: allNodesMAC, Source: mac, EtherType: ethernet.EtherTypeIPv6, Payload: pkt}
	return f.MarshalBinary()
}

// ErrNoLinkLayer is returned by Announce for an interface without an
// Ethernet address (loopback, tunnels): there is no one to announce to.
var ErrNoLinkLayer = errors.New("the interface has no Ethernet address: nothing to announce")

// An announcer sends the announcements of one address on its interface,
// through a packet socket opened in the interface's namespace (so IPv6
// announcements work while the address is still tentative, and no source
// address selection is involved).
type announcer struct {
	conn   *packet.Conn
	frames [][]byte
	dsts   []net.HardwareAddr
}

// newAnnouncer opens the packet socket for announcing t.
func (h *Host) newAnnouncer(t Target) (*announcer, error) {
	if len(t.MAC) != 6 {
		return nil, ErrNoLinkLayer
	}
	a := &announcer{}
	if t.Addr.Is4() {
		fs, err := GratuitousARP(t.MAC, t.Addr)
		if err != nil {
			return nil, err
		}
		a.frames, a.dsts = fs, []net.HardwareAddr{ethBroadcast, ethBroadcast}
	} else {
		f, err := UnsolicitedNA(t.MAC, t.Addr)
		if err != nil {
			return nil, err
		}
		a.frames, a.dsts = [][]byte{f}, []net.HardwareAddr{allNodesMAC}
	}
	ifi := &net.Interface{Index: t.LinkIndex, Name: t.Link, HardwareAddr: t.MAC}
	err := h.Do(func() error {
		// Protocol 0: the socket sends only and receives nothing.
		c, err := packet.Listen(ifi, packet.Raw, 0, nil)
		a.conn = c
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("packet socket on %s: %w", t.Link, err)
	}
	return a, nil
}

// Close closes the socket.
func (a *announcer) Close() error { return a.conn.Close() }

// Round sends one round of announcements (two ARP frames for IPv4, one
// neighbour advertisement for IPv6). It returns the sending errors.
func (a *announcer) Round() error {
	var errs []error
	for i, f := range a.frames {
		if _, err := a.conn.WriteTo(f, &packet.Addr{HardwareAddr: a.dsts[i]}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Rounds sends n rounds, the first at first (at once when zero or past),
// each next one interval after the previous, until all are sent or ctx
// ends. Each sending error is passed to report with the round's number
// (from 1). It returns the number of rounds sent.
func (a *announcer) Rounds(ctx context.Context, n int, interval time.Duration, first time.Time, report func(round int, err error)) int {
	next := first
	sent := 0
	for i := 1; i <= n; i++ {
		if d := time.Until(next); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return sent
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return sent
		}
		if err := a.Round(); err != nil && report != nil {
			report(i, err)
		}
		sent++
		next = time.Now().Add(interval)
	}
	return sent
}

// Announce sends n rounds of t's announcements from a packet socket it opens
// and closes, timed as Rounds times them (the first at first, each next one
// interval after the previous was sent, until ctx ends); sending errors go
// to report. It returns the rounds sent, or the error opening the socket
// (ErrNoLinkLayer for an interface without an Ethernet address).
func (h *Host) Announce(ctx context.Context, t Target, n int, interval time.Duration, first time.Time, report func(round int, err error)) (int, error) {
	a, err := h.newAnnouncer(t)
	if err != nil {
		return 0, err
	}
	defer a.Close()
	return a.Rounds(ctx, n, interval, first, report), nil
}

// ProbeARP looks for another host using t's IPv4 address before it is
// added (RFC 5227 probes, as arping -D does): it sends count ARP probes,
// wait apart, and listens until wait after the last one or ctx ends. It
// returns the hardware address of a host that claims the address, or nil.
func (h *Host) ProbeARP(ctx context.Context, t Target, count int, wait time.Duration) (net.HardwareAddr, error) {
	if !t.Addr.Is4() || len(t.MAC) != 6 {
		return nil, nil
	}
	probe, err := arpFrame(arp.OperationRequest, t.MAC, netip.IPv4Unspecified(), make(net.HardwareAddr, 6), t.Addr)
	if err != nil {
		return nil, err
	}
	ifi := &net.Interface{Index: t.LinkIndex, Name: t.Link, HardwareAddr: t.MAC}
	var c *packet.Conn
	if err := h.Do(func() error {
		var err error
		c, err = packet.Listen(ifi, packet.Raw, etherTypeARP, nil)
		return err
	}); err != nil {
		return nil, fmt.Errorf("packet socket on %s: %w", t.Link, err)
	}
	defer c.Close()
	buf := make([]byte, 1500)
	for i := 0; i < count; i++ {
		if _, err := c.WriteTo(probe, &packet.Addr{HardwareAddr: ethBroadcast}); err != nil {
			return nil, fmt.Errorf("sending ARP probe for %s on %s: %w", t.Addr, t.Link, err)
		}
		until := time.Now().Add(wait)
		if dl, ok := ctx.Deadline(); ok && dl.Before(until) {
			until = dl
		}
		c.SetReadDeadline(until)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return nil, fmt.Errorf("reading ARP on %s: %w", t.Link, err)
			}
			if mac := claims(buf[:n], t); mac != nil {
				return mac, nil
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, nil
}

// claims returns the sender's hardware address when frame is an ARP packet
// from another host that uses t.Addr (as its sender address, or as the
// target of its own probe).
func claims(frame []byte, t Target) net.HardwareAddr {
	var f ethernet.Frame
	if f.UnmarshalBinary(frame) != nil || f.EtherType != ethernet.EtherTypeARP {
		return nil
	}
	var p arp.Packet
	if p.UnmarshalBinary(f.Payload) != nil {
		return nil
	}
	// Ethernet and IPv4 only: another hardware or protocol type carries
	// other addresses in the same places.
	if p.HardwareType != 1 || p.ProtocolType != uint16(ethernet.EtherTypeIPv4) || len(p.SenderHardwareAddr) != 6 {
		return nil
	}
	if p.SenderHardwareAddr.String() == t.MAC.String() {
		return nil
	}
	if p.SenderIP == t.Addr {
		return p.SenderHardwareAddr
	}
	return nil
}

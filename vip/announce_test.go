package vip

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

var testMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x20, 0x30}

// TestGratuitousARPBytes checks the two frames of an IPv4 round byte by
// byte: Ethernet broadcast, ARP request then reply, sender = target = VIP.
func TestGratuitousARPBytes(t *testing.T) {
	ip := netip.MustParseAddr("198.51.100.10")
	frames, err := GratuitousARP(testMAC, ip)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 2 {
		t.Fatalf("%d frames, want 2", len(frames))
	}
	for i, f := range frames {
		if len(f) < 42 {
			t.Fatalf("frame %d: %d bytes", i, len(f))
		}
		eth, a := f[:14], f[14:]
		if !bytes.Equal(eth[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) || !bytes.Equal(eth[6:12], testMAC) ||
			binary.BigEndian.Uint16(eth[12:]) != 0x0806 {
			t.Errorf("frame %d: Ethernet header % x", i, eth)
		}
		if binary.BigEndian.Uint16(a[0:]) != 1 || binary.BigEndian.Uint16(a[2:]) != 0x0800 || a[4] != 6 || a[5] != 4 {
			t.Errorf("frame %d: ARP header % x", i, a[:6])
		}
		op := binary.BigEndian.Uint16(a[6:])
		wantTHA := []byte{0, 0, 0, 0, 0, 0}
		if i == 0 && op != 1 {
			t.Errorf("frame 0: op %d, want request (1)", op)
		}
		if i == 1 {
			wantTHA = testMAC
			if op != 2 {
				t.Errorf("frame 1: op %d, want reply (2)", op)
			}
		}
		if !bytes.Equal(a[8:14], testMAC) || !bytes.Equal(a[14:18], []byte{198, 51, 100, 10}) ||
			!bytes.Equal(a[18:24], wantTHA) || !bytes.Equal(a[24:28], []byte{198, 51, 100, 10}) {
			t.Errorf("frame %d: addresses % x", i, a[8:28])
		}
	}
	if _, err := GratuitousARP(testMAC, netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("GratuitousARP accepted an IPv6 address")
	}
}

// TestUnsolicitedNABytes checks an IPv6 announcement: to ff02::1 from the
// VIP, hop limit 255, Override only, target link-layer address option, and
// an ICMPv6 checksum computed here independently.
func TestUnsolicitedNABytes(t *testing.T) {
	ip := netip.MustParseAddr("2001:db8::10")
	f, err := UnsolicitedNA(testMAC, ip)
	if err != nil {
		t.Fatal(err)
	}
	eth, ip6 := f[:14], f[14:]
	if !bytes.Equal(eth[0:6], []byte{0x33, 0x33, 0, 0, 0, 1}) || !bytes.Equal(eth[6:12], testMAC) ||
		binary.BigEndian.Uint16(eth[12:]) != 0x86dd {
		t.Errorf("Ethernet header % x", eth)
	}
	if ip6[0]>>4 != 6 || ip6[6] != 58 || ip6[7] != 255 {
		t.Errorf("IPv6 header: version %d, next header %d, hop limit %d", ip6[0]>>4, ip6[6], ip6[7])
	}
	plen := int(binary.BigEndian.Uint16(ip6[4:]))
	src, dst := ip.As16(), netip.MustParseAddr("ff02::1").As16()
	if !bytes.Equal(ip6[8:24], src[:]) || !bytes.Equal(ip6[24:40], dst[:]) {
		t.Errorf("addresses % x -> % x", ip6[8:24], ip6[24:40])
	}
	icmp := ip6[40 : 40+plen]
	if plen != 32 {
		t.Fatalf("payload length %d, want 32 (NA 24 + option 8)", plen)
	}
	if icmp[0] != 136 || icmp[1] != 0 {
		t.Errorf("ICMPv6 type %d code %d, want 136 0", icmp[0], icmp[1])
	}
	if icmp[4] != 0x20 {
		t.Errorf("flags %#x, want Override only (0x20)", icmp[4])
	}
	if !bytes.Equal(icmp[8:24], src[:]) {
		t.Errorf("target % x", icmp[8:24])
	}
	if icmp[24] != 2 || icmp[25] != 1 || !bytes.Equal(icmp[26:32], testMAC) {
		t.Errorf("option % x, want target link-layer address", icmp[24:32])
	}
	// Checksum over the pseudo-header: must sum to 0xffff.
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	add([]byte{0, 0, 0, byte(plen), 0, 0, 0, 58})
	add(icmp)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	if sum != 0xffff {
		t.Errorf("ICMPv6 checksum does not verify (sum %#x)", sum)
	}
}

func TestClaims(t *testing.T) {
	ip := netip.MustParseAddr("198.51.100.10")
	other := net.HardwareAddr{0x02, 1, 2, 3, 4, 5}
	tg := Target{Spec: Spec{Addr: ip}, MAC: testMAC}
	reply, _ := arpFrame(2, other, ip, testMAC, netip.IPv4Unspecified())
	if got := claims(reply, tg); got.String() != other.String() {
		t.Errorf("a reply from %s for %s: claims = %v", other, ip, got)
	}
	own, _ := arpFrame(1, testMAC, ip, other, ip)
	if got := claims(own, tg); got != nil {
		t.Errorf("our own frame counted as a claim: %v", got)
	}
	unrelated, _ := arpFrame(1, other, netip.MustParseAddr("198.51.100.11"), testMAC, ip)
	if got := claims(unrelated, tg); got != nil {
		t.Errorf("a request from another address counted as a claim: %v", got)
	}
}

// FuzzClaims: ARP probing reads whatever arrives on the link. A frame
// counts as a claim only when it is an Ethernet/IPv4 ARP packet whose
// sender is another
// hardware address using the target's IPv4 address, and the claim names
// that sender (read here at the offsets of RFC 826 after the Ethernet
// header and any VLAN tags); a reply made for the address from another
// host always counts.
func FuzzClaims(f *testing.F) {
	ip := netip.MustParseAddr("198.51.100.10")
	other := net.HardwareAddr{0x02, 1, 2, 3, 4, 5}
	reply, _ := arpFrame(2, other, ip, testMAC, netip.IPv4Unspecified())
	f.Add(reply, []byte(other))
	frames, _ := GratuitousARP(testMAC, ip)
	for _, fr := range frames {
		f.Add(fr, []byte(testMAC))
	}
	tg := Target{Spec: Spec{Addr: ip}, MAC: testMAC}
	f.Fuzz(func(t *testing.T, frame, mac []byte) {
		if len(mac) == 6 && !bytes.Equal(mac, testMAC) {
			made, err := arpFrame(2, net.HardwareAddr(mac), ip, testMAC, ip)
			if err != nil {
				t.Fatal(err)
			}
			if got := claims(made, tg); !bytes.Equal(got, mac) {
				t.Fatalf("a reply from %s: claims = %v", net.HardwareAddr(mac), got)
			}
		}
		got := claims(frame, tg)
		if got == nil {
			return
		}
		off := 14
		for len(frame) >= off && (binary.BigEndian.Uint16(frame[off-2:]) == 0x8100 || binary.BigEndian.Uint16(frame[off-2:]) == 0x88a8) {
			off += 4
		}
		arp := frame[off:]
		if binary.BigEndian.Uint16(frame[off-2:]) != 0x0806 || len(arp) < 28 || binary.BigEndian.Uint16(arp) != 1 ||
			binary.BigEndian.Uint16(arp[2:]) != 0x0800 || arp[4] != 6 || arp[5] != 4 {
			t.Fatalf("a claim from a frame that is no Ethernet ARP packet: %x", frame)
		}
		if !bytes.Equal(got, arp[8:14]) || bytes.Equal(got, testMAC) || netip.AddrFrom4([4]byte(arp[14:18])) != ip {
			t.Fatalf("claim by %v from %x", got, frame)
		}
	})
}

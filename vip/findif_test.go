package vip

import (
	"errors"
	"net/netip"
	"testing"
)

func rt(dst, link string, metric int) Route {
	return Route{Dst: netip.MustParsePrefix(dst), Link: link, LinkIndex: len(link), Unicast: true, Metric: metric}
}

// TestFindRoute runs findif's choice over a fake main table.
func TestFindRoute(t *testing.T) {
	table := []Route{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Link: "wan0", Unicast: true, Gateway: true},
		rt("198.51.100.0/24", "eth0", 100),
		rt("198.51.100.0/25", "eth1", 100),
		rt("198.51.100.0/25", "eth2", 50),
		rt("203.0.113.0/24", "eth3", 0),
		{Dst: netip.MustParsePrefix("203.0.113.128/25"), Link: "bh", Unicast: false}, // blackhole
		{Dst: netip.MustParsePrefix("192.0.2.0/24"), Link: "eth4", Unicast: true, Gateway: true},
		rt("2001:db8::/32", "eth5", 1024),
		rt("2001:db8:1::/64", "eth6", 1024),
		rt("fe80::/64", "eth5", 256),
		rt("fe80::/64", "eth6", 256),
	}
	for _, tc := range []struct {
		name   string
		addr   string
		prefix int
		link   string
		want   string // link; "" for ErrNoInterface
		bits   int
	}{
		{"longest prefix, lowest metric", "198.51.100.10", -1, "", "eth2", 25},
		{"outside the /25", "198.51.100.200", -1, "", "eth0", 24},
		{"nic given picks its route", "198.51.100.10", -1, "eth0", "eth0", 24},
		{"prefix given excludes longer routes", "198.51.100.10", 24, "", "eth0", 24},
		{"blackhole ignored", "203.0.113.200", -1, "", "eth3", 24},
		{"gateway route ignored", "192.0.2.10", -1, "", "", 0},
		{"default route ignored", "233.252.0.1", -1, "", "", 0},
		{"nic without matching route", "198.51.100.10", -1, "eth9", "", 0},
		{"ipv6 longest", "2001:db8:1::10", -1, "", "eth6", 64},
		{"ipv6 shorter", "2001:db8:2::10", -1, "", "eth5", 32},
		{"link-local with nic", "fe80::10", -1, "eth6", "eth6", 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := FindRoute(table, netip.MustParseAddr(tc.addr), tc.prefix, tc.link)
			if tc.want == "" {
				if !errors.Is(err, ErrNoInterface) {
					t.Fatalf("got %+v, %v; want ErrNoInterface", r, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Link != tc.want || r.Dst.Bits() != tc.bits {
				t.Errorf("got %s /%d, want %s /%d", r.Link, r.Dst.Bits(), tc.want, tc.bits)
			}
		})
	}
}

package vip

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseGood(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		want Spec
		warn string // a substring of a warning, "" for none
	}{
		{"ipv4 bare", Config{IP: "198.51.100.10"},
			Spec{Addr: netip.MustParseAddr("198.51.100.10"), Prefix: -1, PreferredLft: -1}, ""},
		{"ipv4 prefix nic label", Config{IP: "198.51.100.10", CIDRNetmask: "24", Nic: "eth0", IfLabel: "vip1"},
			Spec{Addr: netip.MustParseAddr("198.51.100.10"), Prefix: 24, Link: "eth0", Label: "vip1", PreferredLft: -1}, ""},
		{"dotted mask", Config{IP: "198.51.100.10", CIDRNetmask: "255.255.255.128"},
			Spec{Addr: netip.MustParseAddr("198.51.100.10"), Prefix: 25, PreferredLft: -1}, "prefix length 25"},
		{"label in nic", Config{IP: "198.51.100.10", Nic: "eth0:v"},
			Spec{Addr: netip.MustParseAddr("198.51.100.10"), Prefix: -1, Link: "eth0", Label: "v", PreferredLft: -1}, "deprecated"},
		{"broadcast plus", Config{IP: "198.51.100.10", Broadcast: "+"},
			Spec{Addr: netip.MustParseAddr("198.51.100.10"), Prefix: -1, Broadcast: BroadcastPlus, PreferredLft: -1}, ""},
		{"broadcast minus", Config{IP: "198.51.100.10", Broadcast: "-"},
			Spec{Addr: netip.MustParseAddr("198.51.100.10"), Prefix: -1, Broadcast: BroadcastNone, PreferredLft: -1}, ""},
		{"broadcast explicit", Config{IP: "198.51.100.10", Broadcast: "198.51.100.255"},
			Spec{Addr: netip.MustParseAddr("198.51.100.10"), Prefix: -1, Broadcast: BroadcastExplicit,
				BroadcastAddr: netip.MustParseAddr("198.51.100.255"), PreferredLft: -1}, ""},
		{"ipv6", Config{IP: "2001:db8::10", CIDRNetmask: "64", NoDAD: true, NoPrefix: true, PreferredLft: "0"},
			Spec{Addr: netip.MustParseAddr("2001:db8::10"), Prefix: 64, NoDAD: true, NoPrefixRoute: true, PreferredLft: 0}, ""},
		{"ipv6 link-local with nic", Config{IP: "fe80::10", Nic: "eth0"},
			Spec{Addr: netip.MustParseAddr("fe80::10"), Prefix: -1, Link: "eth0", PreferredLft: -1}, ""},
		{"ipv6 broadcast plus ignored", Config{IP: "2001:db8::10", Broadcast: "+"},
			Spec{Addr: netip.MustParseAddr("2001:db8::10"), Prefix: -1, PreferredLft: -1}, "ignored"},
		{"label 15 chars", Config{IP: "198.51.100.10", Nic: "eth0", IfLabel: "0123456789"},
			Spec{Addr: netip.MustParseAddr("198.51.100.10"), Prefix: -1, Link: "eth0", Label: "0123456789", PreferredLft: -1}, ""},
		{"preferred seconds", Config{IP: "198.51.100.10", PreferredLft: "300"},
			Spec{Addr: netip.MustParseAddr("198.51.100.10"), Prefix: -1, PreferredLft: 300}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, warn, err := Parse(tc.c)
			if err != nil {
				t.Fatalf("Parse(%+v): %v", tc.c, err)
			}
			if got != tc.want {
				t.Errorf("Parse(%+v) =\n %+v, want\n %+v", tc.c, got, tc.want)
			}
			joined := strings.Join(warn, "\n")
			if tc.warn == "" && len(warn) > 0 {
				t.Errorf("unexpected warnings: %q", warn)
			}
			if tc.warn != "" && !strings.Contains(joined, tc.warn) {
				t.Errorf("warnings %q do not mention %q", warn, tc.warn)
			}
		})
	}
}

// TestParseBad: each bad value is refused with a reason that names the
// parameter at fault.
func TestParseBad(t *testing.T) {
	for _, tc := range []struct {
		name  string
		c     Config
		param string
		says  string
	}{
		{"malformed ip", Config{IP: "198.51.100.300"}, "ip", "not an IPv4 or IPv6"},
		{"garbage ip", Config{IP: "vip1"}, "ip", "not an IPv4 or IPv6"},
		{"missing ip", Config{IP: " "}, "ip", "required"},
		{"ip with zone", Config{IP: "fe80::1%eth0"}, "ip", "zone"},
		{"multicast ip", Config{IP: "224.0.0.1"}, "ip", "cannot be assigned"},
		{"unspecified ip", Config{IP: "::"}, "ip", "cannot be assigned"},
		{"prefix 33", Config{IP: "198.51.100.10", CIDRNetmask: "33"}, "cidr_netmask", "out of range"},
		{"prefix 0", Config{IP: "198.51.100.10", CIDRNetmask: "0"}, "cidr_netmask", "out of range"},
		{"prefix 129", Config{IP: "2001:db8::1", CIDRNetmask: "129"}, "cidr_netmask", "out of range"},
		{"negative prefix", Config{IP: "2001:db8::1", CIDRNetmask: "-1"}, "cidr_netmask", "out of range"},
		{"garbage mask", Config{IP: "198.51.100.10", CIDRNetmask: "24x"}, "cidr_netmask", "neither"},
		{"non-contiguous mask", Config{IP: "198.51.100.10", CIDRNetmask: "255.0.255.0"}, "cidr_netmask", "contiguous"},
		{"v4 mask for v6 ip", Config{IP: "2001:db8::1", CIDRNetmask: "255.255.255.0"}, "cidr_netmask", "IPv4 netmask, but ip"},
		{"v6 mask for v4 ip", Config{IP: "198.51.100.10", CIDRNetmask: "ffff:ffff::"}, "cidr_netmask", "IPv6 netmask, but ip"},
		{"v6 broadcast for v4", Config{IP: "198.51.100.10", Broadcast: "2001:db8::ff"}, "broadcast", "not an IPv4"},
		{"broadcast for v6", Config{IP: "2001:db8::1", Broadcast: "198.51.100.255"}, "broadcast", "IPv6 has no broadcast"},
		{"bad broadcast", Config{IP: "198.51.100.10", Broadcast: "all"}, "broadcast", "not an address"},
		{"label too long", Config{IP: "198.51.100.10", Nic: "eth0", IfLabel: "abcdefghijk"}, "iflabel", "more than the 15"},
		{"label too long alone", Config{IP: "198.51.100.10", IfLabel: "abcdefghijklmn"}, "iflabel", "too long"},
		{"label in nic too long", Config{IP: "198.51.100.10", Nic: "eth0:abcdefghijk"}, "iflabel", "more than the 15"},
		{"label with space", Config{IP: "198.51.100.10", IfLabel: "a b"}, "iflabel", "space"},
		{"label on v6", Config{IP: "2001:db8::1", IfLabel: "v"}, "iflabel", "IPv6"},
		{"empty label in nic", Config{IP: "198.51.100.10", Nic: "eth0:"}, "nic", "empty label"},
		{"nic too long", Config{IP: "198.51.100.10", Nic: "abcdefghijklmnop"}, "nic", "too long"},
		{"nic with slash", Config{IP: "198.51.100.10", Nic: "a/b"}, "nic", "slash"},
		{"link-local without nic", Config{IP: "fe80::10"}, "nic", "required for the link-local"},
		{"bad preferred_lft", Config{IP: "2001:db8::1", PreferredLft: "soon"}, "preferred_lft", "seconds"},
		{"negative preferred_lft", Config{IP: "2001:db8::1", PreferredLft: "-5"}, "preferred_lft", "seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse(tc.c)
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%+v) = %v, want a ParamError", tc.c, err)
			}
			if pe.Param != tc.param {
				t.Errorf("error %q names parameter %s, want %s", err, pe.Param, tc.param)
			}
			if !strings.HasPrefix(err.Error(), "parameter "+tc.param+": ") || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q: want it to start with %q and say %q", err, "parameter "+tc.param, tc.says)
			}
		})
	}
}

func TestCheckLabelFoundLink(t *testing.T) {
	s, _, err := Parse(Config{IP: "198.51.100.10", IfLabel: "abcdefghij"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckLabel("eth0"); err != nil {
		t.Errorf("eth0:abcdefghij (15 chars): %v", err)
	}
	var pe *ParamError
	if err := s.CheckLabel("enp0s31f6"); !errors.As(err, &pe) || pe.Param != "iflabel" {
		t.Errorf("enp0s31f6:abcdefghij: got %v, want an iflabel error", err)
	}
	if got := s.FullLabel("eth0"); got != "eth0:abcdefghij" {
		t.Errorf("FullLabel = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("198.51.100.10", "24", "eth0", "vip", "+")
	f.Add("2001:db8::1", "255.255.0.0", "", "", "-")
	f.Fuzz(func(t *testing.T, ip, mask, nic, label, bcast string) {
		s, _, err := Parse(Config{IP: ip, CIDRNetmask: mask, Nic: nic, IfLabel: label, Broadcast: bcast})
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("error without a parameter: %v", err)
			}
			return
		}
		if !s.Addr.IsValid() || s.Prefix > s.Addr.BitLen() || s.Prefix == 0 || s.Prefix < -1 {
			t.Fatalf("accepted %+v", s)
		}
		if s.Label != "" && len(s.FullLabel(s.Link)) > MaxLabel && s.Link != "" {
			t.Fatalf("accepted label %q on %q", s.Label, s.Link)
		}
	})
}

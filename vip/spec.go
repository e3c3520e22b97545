// Package vip manages a virtual IP address on Linux through netlink and
// packet sockets, with no ip or arping processes: it reads and checks what
// the admin asked for ([Parse]), finds the interface the address belongs on
// as resource-agents' findif does ([FindRoute]), adds, checks and removes
// the address, waits for IPv6 duplicate address detection, probes for an
// IPv4 duplicate, and announces the address to its neighbours (gratuitous
// ARP, unsolicited neighbour advertisements) — optionally inside a named
// network namespace. It knows nothing of OCF.
package vip

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
)

// Config is a virtual address as the admin writes it: the strings of
// IPaddr2's parameters of the same names.
type Config struct {
	IP           string // ip
	Nic          string // nic, optionally "nic:label" (older form of iflabel)
	CIDRNetmask  string // cidr_netmask: a prefix length or a dotted mask
	Broadcast    string // broadcast: an address, "+" or "-"
	IfLabel      string // iflabel
	PreferredLft string // preferred_lft: seconds or "forever"
	NoDAD        bool   // nodad
	NoPrefix     bool   // noprefixroute
}

// BroadcastMode says how the IPv4 broadcast address is chosen.
type BroadcastMode int

// Broadcast modes.
const (
	BroadcastAuto     BroadcastMode = iota // as on the interface's address in the same subnet, else "+"
	BroadcastPlus                          // host bits set ("+")
	BroadcastNone                          // none ("-")
	BroadcastExplicit                      // the given address
)

// Spec is a checked virtual address.
type Spec struct {
	Addr          netip.Addr
	Prefix        int    // prefix length; -1 to take it from the matching route
	Link          string // interface; "" to find it from the routes
	Label         string // the label after "link:"; "" for none (IPv4 only)
	Broadcast     BroadcastMode
	BroadcastAddr netip.Addr // for BroadcastExplicit
	NoDAD         bool
	NoPrefixRoute bool
	PreferredLft  int // seconds; -1 for forever
}

// ParamError is a value the admin gave that is wrong in itself, whatever
// the host: it names the parameter.
type ParamError struct {
	Param string
	Msg   string
}

func (e *ParamError) Error() string { return "parameter " + e.Param + ": " + e.Msg }

func paramErr(param, format string, args ...any) error {
	return &ParamError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// MaxLabel is the longest address label (and interface name) Linux keeps:
// IFNAMSIZ less the terminating NUL.
const MaxLabel = 15

// Parse checks c and returns the Spec, and warnings for the admin about
// values accepted in an older or looser form (a dotted netmask, a label in
// nic).
func Parse(c Config) (Spec, []string, error) {
	var warn []string
	s := Spec{Prefix: -1, PreferredLft: -1, NoDAD: c.NoDAD, NoPrefixRoute: c.NoPrefix}

	ipStr := strings.TrimSpace(c.IP)
	a, err := netip.ParseAddr(ipStr)
	switch {
	case ipStr == "":
		return s, nil, paramErr("ip", "is required")
	case err != nil:
		return s, nil, paramErr("ip", "%q is not an IPv4 or IPv6 address", ipStr)
	case a.Zone() != "":
		return s, nil, paramErr("ip", "%q has a zone: give the interface in nic instead", ipStr)
	case a.Is4In6():
		return s, nil, paramErr("ip", "%q is an IPv4-mapped IPv6 address: give the IPv4 address", ipStr)
	case a.IsUnspecified(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return s, nil, paramErr("ip", "%s cannot be assigned to an interface", ipStr)
	}
	s.Addr = a

	nic := strings.TrimSpace(c.Nic)
	label := strings.TrimSpace(c.IfLabel)
	if i := strings.IndexByte(nic, ':'); i >= 0 {
		// nic:label, as IPaddr2 still accepts; the label in nic wins.
		if label != "" {
			warn = append(warn, fmt.Sprintf("nic %q carries a label: iflabel %q is ignored", nic, label))
		} else {
			warn = append(warn, fmt.Sprintf("a label in nic (%q) is deprecated: use iflabel", nic))
		}
		nic, label = nic[:i], nic[i+1:]
		if label == "" {
			return s, nil, paramErr("nic", "%q has an empty label after the colon", c.Nic)
		}
	}
	if nic != "" {
		if err := checkLinkName(nic); err != nil {
			return s, nil, paramErr("nic", "%v", err)
		}
	}
	s.Link = nic
	if a.Is6() && a.IsLinkLocalUnicast() && nic == "" {
		return s, nil, paramErr("nic", "is required for the link-local address %s", a)
	}

	if m := strings.TrimSpace(c.CIDRNetmask); m != "" {
		p, dotted, err := parsePrefix(m, a)
		if err != nil {
			return s, nil, err
		}
		if dotted {
			warn = append(warn, fmt.Sprintf("cidr_netmask %s is a netmask: write it as the prefix length %d", m, p))
		}
		s.Prefix = p
	}

	switch b := strings.TrimSpace(c.Broadcast); {
	case b == "":
	case a.Is6():
		if b != "+" && b != "-" {
			return s, nil, paramErr("broadcast", "IPv6 has no broadcast address (%q given for %s)", b, a)
		}
		warn = append(warn, "broadcast is ignored for IPv6")
	case b == "+":
		s.Broadcast = BroadcastPlus
	case b == "-":
		s.Broadcast = BroadcastNone
	default:
		ba, err := netip.ParseAddr(b)
		if err != nil {
			return s, nil, paramErr("broadcast", "%q is not an address, + or -", b)
		}
		if !ba.Is4() {
			return s, nil, paramErr("broadcast", "%s is not an IPv4 address, but ip %s is", b, a)
		}
		s.Broadcast, s.BroadcastAddr = BroadcastExplicit, ba
	}

	if label != "" {
		if a.Is6() {
			return s, nil, paramErr("iflabel", "IPv6 addresses have no labels (%q given for %s)", label, a)
		}
		if err := checkLabel(nic, label); err != nil {
			return s, nil, err
		}
		s.Label = label
	}

	switch p := strings.TrimSpace(c.PreferredLft); p {
	case "", "forever", "infinity":
	default:
		n, err := strconv.ParseUint(strings.TrimSuffix(p, "sec"), 10, 32)
		if err != nil || n >= 1<<32-1 {
			return s, nil, paramErr("preferred_lft", "%q is not a number of seconds or forever", p)
		}
		s.PreferredLft = int(n)
	}
	return s, warn, nil
}

// FullLabel is the label as the kernel keeps it, "link:label"; "" when the
// spec has none.
func (s Spec) FullLabel(link string) string {
	if s.Label == "" {
		return ""
	}
	return link + ":" + s.Label
}

// CheckLabel checks that link:label fits the kernel's limit, once the link
// is known (it may have been found rather than given).
func (s Spec) CheckLabel(link string) error {
	if s.Label == "" {
		return nil
	}
	return checkLabel(link, s.Label)
}

func checkLabel(link, label string) error {
	for _, r := range label {
		if r <= ' ' || r == '/' || r == 0x7f {
			return paramErr("iflabel", "%q contains a space, control character or slash", label)
		}
	}
	if link == "" {
		// The shortest interface name is one character.
		if n := len(label) + 2; n > MaxLabel {
			return paramErr("iflabel", "%q is too long: with the interface name it exceeds %d characters", label, MaxLabel)
		}
		return nil
	}
	if full := link + ":" + label; len(full) > MaxLabel {
		return paramErr("iflabel", "%q is %d characters, more than the %d Linux allows", full, len(full), MaxLabel)
	}
	return nil
}

func checkLinkName(n string) error {
	if len(n) > MaxLabel {
		return fmt.Errorf("%q is longer than %d characters, too long for an interface name", n, MaxLabel)
	}
	if n == "." || n == ".." {
		return fmt.Errorf("%q is not an interface name", n)
	}
	for _, r := range n {
		if r <= ' ' || r == '/' || r == 0x7f {
			return fmt.Errorf("%q contains a space, control character or slash", n)
		}
	}
	return nil
}

// parsePrefix reads cidr_netmask for the address a: a prefix length, or a
// netmask (dotted for IPv4), which is converted.
func parsePrefix(m string, a netip.Addr) (int, bool, error) {
	max := a.BitLen()
	fam := "IPv4"
	if a.Is6() {
		fam = "IPv6"
	}
	if n, err := strconv.Atoi(m); err == nil {
		if n < 1 || n > max {
			return 0, false, paramErr("cidr_netmask", "prefix length %d is out of range for %s (1-%d)", n, fam, max)
		}
		return n, false, nil
	}
	mask, err := netip.ParseAddr(m)
	if err != nil || mask.Zone() != "" {
		return 0, false, paramErr("cidr_netmask", "%q is neither a prefix length nor a netmask", m)
	}
	if mask.Is4() != a.Is4() {
		mfam := "an IPv4"
		if mask.Is6() {
			mfam = "an IPv6"
		}
		return 0, false, paramErr("cidr_netmask", "%s is %s netmask, but ip %s is %s", m, mfam, a, fam)
	}
	b := mask.AsSlice()
	ones := 0
	for _, x := range b {
		ones += bits.OnesCount8(x)
	}
	// Contiguous: the mask equals the prefix of that many ones.
	if netip.PrefixFrom(allOnes(a.Is4()), ones).Masked().Addr() != mask {
		return 0, false, paramErr("cidr_netmask", "%s is not a contiguous netmask", m)
	}
	if ones < 1 {
		return 0, false, paramErr("cidr_netmask", "netmask %s is out of range for %s (prefix 1-%d)", m, fam, max)
	}
	return ones, true, nil
}

func allOnes(v4 bool) netip.Addr {
	if v4 {
		return netip.AddrFrom4([4]byte{255, 255, 255, 255})
	}
	var b [16]byte
	for i := range b {
		b[i] = 0xff
	}
	return netip.AddrFrom16(b)
}

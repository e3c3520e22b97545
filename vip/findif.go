package vip

import (
	"errors"
	"fmt"
	"net/netip"
)

// Route is what interface discovery needs to know of one route of the main
// table.
type Route struct {
	Dst       netip.Prefix
	LinkIndex int
	Link      string
	Unicast   bool // an ordinary route (not unreachable, blackhole, prohibit, ...)
	Gateway   bool // reached through a gateway rather than on the link
	Metric    int
	Src       netip.Addr // preferred source, if any
}

// ErrNoInterface is returned when no interface can be found for the
// address: no connected route matches it (and nic is not given).
var ErrNoInterface = errors.New("no interface found")

// FindRoute picks, as findif does, the connected route the address belongs
// to: among unicast routes on a link (not through a gateway) whose prefix
// holds addr — and, when prefix is given (>= 0), is no longer than it — and
// that are on link when link is given, the longest prefix, then the lowest
// metric. Default routes never match.
func FindRoute(routes []Route, addr netip.Addr, prefix int, link string) (Route, error) {
	var best Route
	found := false
	for _, r := range routes {
		if !r.Unicast || r.Gateway || r.Dst.Bits() <= 0 || !r.Dst.Contains(addr) {
			continue
		}
		if prefix >= 0 && r.Dst.Bits() > prefix {
			continue
		}
		if link != "" && r.Link != link {
			continue
		}
		if !found || r.Dst.Bits() > best.Dst.Bits() ||
			r.Dst.Bits() == best.Dst.Bits() && r.Metric < best.Metric {
			best, found = r, true
		}
	}
	if !found {
		where := ""
		if link != "" {
			where = " on " + link
		}
		return Route{}, fmt.Errorf("%w for %s: no connected route%s holds it", ErrNoInterface, addr, where)
	}
	return best, nil
}

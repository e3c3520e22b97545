// Package tickle makes the TCP clients of a moved address reset and reconnect
// at once, instead of hanging until keepalive or retransmission give up.
//
// On the node that owns a virtual address it records the established TCP
// connections whose local address is the VIP (from sock_diag and conntrack,
// [Recorder]) and keeps them, current within about a second, in one file per
// VIP on shared storage ([WriteFile], [ReadFile]; a [Keeper] does this while
// the address is up). On the node that takes the address over it sends each
// recorded client a "tickle": an ACK from VIP:port with seq 0 and ack 0
// ([Sender]). The client answers with its real sequence numbers, the new
// owner's kernel has no socket for them and answers with an exact RST, and
// the client reconnects. Tickles go out in rounds spaced past Linux's 500 ms
// rate limit on answers to invalid segments ([Schedule]). When an address is
// released gracefully ([Release]), the local sockets on it are destroyed
// ([Recorder.Destroy]) so local services drop them too; where the kernel
// cannot destroy sockets, each is tickled and answered with an exact RST.
//
// The package knows nothing of OCF; the IPaddr3 agent and the "storhaug
// tickle" command drive it.
package tickle

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Conn is one TCP connection as the owner of the address sees it: Local is
// VIP:port, Remote is the client. Addresses are never IPv4-mapped IPv6.
type Conn struct {
	Local  netip.AddrPort
	Remote netip.AddrPort
}

func (c Conn) String() string { return c.Local.String() + " " + c.Remote.String() }

// NewConn returns the connection local -> remote with IPv4-mapped addresses
// turned into plain IPv4 ones and zones dropped.
func NewConn(local, remote netip.AddrPort) Conn {
	return Conn{Local: norm(local), Remote: norm(remote)}
}

func norm(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

func compareConn(a, b Conn) int {
	if c := a.Local.Compare(b.Local); c != 0 {
		return c
	}
	return a.Remote.Compare(b.Remote)
}

// Dedup sorts conns and removes duplicates, in place; it returns the result.
func Dedup(conns []Conn) []Conn {
	slices.SortFunc(conns, compareConn)
	return slices.Compact(conns)
}

// Ports is a set of local ports (the VIP's side of a connection) to record
// and tickle; the zero value is every port.
type Ports struct {
	ranges [][2]uint16
}

// ParsePorts reads a port filter: a list of ports and ranges separated by
// commas or spaces, such as "445,2049 20048-20050"; "" is every port.
func ParsePorts(s string) (Ports, error) {
	var p Ports
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := parsePort(lo)
		if err != nil {
			return Ports{}, err
		}
		b := a
		if isRange {
			if b, err = parsePort(hi); err != nil {
				return Ports{}, err
			}
			if b < a {
				return Ports{}, fmt.Errorf("port range %q runs backwards", f)
			}
		}
		p.ranges = append(p.ranges, [2]uint16{a, b})
	}
	return p, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return uint16(n), nil
}

// All reports whether the filter lets every port through.
func (p Ports) All() bool { return len(p.ranges) == 0 }

// Has reports whether port passes the filter.
func (p Ports) Has(port uint16) bool {
	if len(p.ranges) == 0 {
		return true
	}
	for _, r := range p.ranges {
		if port >= r[0] && port <= r[1] {
			return true
		}
	}
	return false
}

func (p Ports) String() string {
	if len(p.ranges) == 0 {
		return "all"
	}
	var s []string
	for _, r := range p.ranges {
		if r[0] == r[1] {
			s = append(s, strconv.Itoa(int(r[0])))
		} else {
			s = append(s, fmt.Sprintf("%d-%d", r[0], r[1]))
		}
	}
	return strings.Join(s, ",")
}

// Filter returns the connections of conns whose local address is vip and
// whose local port passes p (conns is reused).
func (p Ports) Filter(vip netip.Addr, conns []Conn) []Conn {
	out := conns[:0]
	for _, c := range conns {
		if c.Local.Addr() == vip && p.Has(c.Local.Port()) {
			out = append(out, c)
		}
	}
	return out
}

// Schedule says when tickle rounds go out: round k (from 0) at k*Interval
// after the first. Linux answers invalid segments at most every 500 ms per
// socket (tcp_invalid_ratelimit), so Interval should stay above that.
type Schedule struct {
	Rounds   int
	Interval time.Duration
}

// DefaultSchedule is three rounds at 0, 1.1 and 2.2 s, as CTDB does.
var DefaultSchedule = Schedule{Rounds: 3, Interval: 1100 * time.Millisecond}

// At is when round k goes out, counted from the first.
func (s Schedule) At(k int) time.Duration { return time.Duration(k) * s.Interval }

// Validate checks the schedule's bounds.
func (s Schedule) Validate() error {
	if s.Rounds < 1 || s.Rounds > 20 {
		return fmt.Errorf("%d rounds: use 1 to 20", s.Rounds)
	}
	if s.Rounds > 1 && (s.Interval < 600*time.Millisecond || s.Interval > time.Minute) {
		return fmt.Errorf("interval %v: use 600 ms to 60 s (Linux ignores repeats within 500 ms)", s.Interval)
	}
	return nil
}

// Logger receives the package's messages (an *ocf.Logger does).
type Logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
	Debugf(format string, args ...any)
}

type nopLogger struct{}

func (nopLogger) Infof(string, ...any)  {}
func (nopLogger) Warnf(string, ...any)  {}
func (nopLogger) Debugf(string, ...any) {}

func orNop(l Logger) Logger {
	if l == nil {
		return nopLogger{}
	}
	return l
}

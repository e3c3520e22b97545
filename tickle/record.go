package tickle

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/storhaug/storhaug/internal/netnsdo"
)

// Source says where connections are recorded from.
type Source string

// The sources: Auto is both, de-duplicated.
const (
	Auto      Source = "auto"
	Conntrack Source = "conntrack"
	SockDiag  Source = "sockdiag"
)

// Sources lists the valid values of a Source.
var Sources = []string{string(Auto), string(Conntrack), string(SockDiag)}

// ParseSource checks a source name.
func ParseSource(s string) (Source, error) {
	switch Source(s) {
	case Auto, Conntrack, SockDiag:
		return Source(s), nil
	case "":
		return Auto, nil
	}
	return "", fmt.Errorf("%q is not one of auto, conntrack, sockdiag", s)
}

// Recorder records the established TCP connections on a VIP, in one network
// namespace, over netlink sockets it keeps open between calls.
//
// sock_diag is always used for conntrack's blind spot: conntrack tracks
// nothing in a namespace until some netfilter rule needs it. When conntrack
// is asked for but its table is empty, the Recorder says so once and relies
// on sock_diag.
type Recorder struct {
	VIP    netip.Addr
	Ports  Ports
	Source Source
	Log    Logger

	diag      *sockDiag
	ct        *ctDump
	ctWarned  bool
	ctEmpty   bool // conntrack's table was empty at the last look
	destroyOK bool
}

// OpenRecorder opens the netlink sockets a Recorder needs in the named
// network namespace ("" for the caller's own).
func OpenRecorder(netns string, vip netip.Addr, ports Ports, src Source, log Logger) (*Recorder, error) {
	r := &Recorder{VIP: vip.Unmap(), Ports: ports, Source: src, Log: orNop(log), destroyOK: true}
	err := netnsdo.Do(netns, func() error {
		var err error
		if r.diag, err = dialSockDiag(); err != nil {
			return err
		}
		if src != SockDiag {
			if r.ct, err = dialConntrack(); err != nil {
				r.Log.Warnf("tickle: cannot read conntrack (%v); recording from sock_diag only", err)
				r.ctWarned = true
			}
		}
		return nil
	})
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close closes the netlink sockets.
func (r *Recorder) Close() error {
	if r.diag != nil {
		r.diag.Close()
	}
	if r.ct != nil {
		r.ct.Close()
	}
	return nil
}

// Record returns the established connections on the VIP whose local port
// passes the filter, sorted and de-duplicated.
func (r *Recorder) Record() ([]Conn, error) {
	var conns []Conn
	var errs []error
	if r.ct != nil {
		c, total, err := r.ct.established(r.VIP)
		switch {
		case err != nil:
			errs = append(errs, err)
		case total == 0:
			r.ctEmpty = true
		default:
			r.ctEmpty = false
			conns = append(conns, c...)
		}
	}
	socks, err := r.diag.established(r.VIP)
	if err != nil {
		errs = append(errs, err)
	}
	for _, s := range socks {
		conns = append(conns, NewConn(s.local, s.peer))
	}
	if r.ct != nil && r.ctEmpty && len(socks) > 0 && !r.ctWarned {
		r.ctWarned = true
		r.Log.Warnf("tickle: conntrack tracks nothing in this network namespace (no netfilter rule uses connection tracking), "+
			"so forwarded or NATed connections to %s cannot be seen; recording local sockets from sock_diag only", r.VIP)
	}
	conns = Dedup(r.Ports.Filter(r.VIP, conns))
	if len(errs) > 0 && (r.Source == Conntrack || err != nil) {
		return conns, errors.Join(errs...)
	}
	if len(errs) > 0 {
		r.Log.Debugf("tickle: %v", errors.Join(errs...))
	}
	return conns, nil
}

// Destroy aborts the local sockets on the VIP (those whose local port passes
// the filter): their owners see an error at once and the peers get an RST.
// It returns how many were destroyed. ErrDestroyUnsupported says the kernel
// cannot do it.
func (r *Recorder) Destroy() (int, error) {
	if !r.destroyOK {
		return 0, ErrDestroyUnsupported
	}
	socks, err := r.diag.established(r.VIP)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, s := range socks {
		if !r.Ports.Has(s.local.Port()) {
			continue
		}
		err := r.diag.destroy(s)
		if destroyUnsupported(err) {
			r.destroyOK = false
			return n, ErrDestroyUnsupported
		}
		if err != nil {
			if len(errs) < 3 {
				errs = append(errs, fmt.Errorf("destroying %s -> %s: %w", s.local, s.peer, err))
			}
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

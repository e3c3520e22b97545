package tickle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

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
// Auto reads both. Conntrack reads conntrack alone while it can be read
// and tracks something: a namespace tracks nothing until some netfilter
// rule needs conntrack, and then (as when conntrack cannot be read) the
// Recorder says so once and relies on sock_diag, which is always available.
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
	buf       []Conn
	// auto: conntrack showed only what sock_diag shows, at its last read
	ctLocalOnly bool
	ctSkipped   int
	polled      bool
	lastFP      fingerprint
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
	conns, err := r.gather()
	return Dedup(slices.Clone(conns)), err
}

// Poll records like Record but returns the list only when it differs from
// the one the previous Poll saw (changed is false and conns nil
// otherwise): the keeper's cheap path, which neither sorts nor allocates
// while nothing changes. The comparison is by an order-independent
// fingerprint of the set.
func (r *Recorder) Poll() (conns []Conn, changed bool, err error) {
	raw, err := r.gather()
	if err != nil && len(raw) == 0 {
		return nil, false, err
	}
	fp := fingerprintOf(raw)
	if r.polled && fp == r.lastFP {
		return nil, false, err
	}
	r.polled, r.lastFP = true, fp
	return Dedup(slices.Clone(raw)), true, err
}

// ctLocalEvery is how often (in polls) auto reads conntrack while it has
// seen nothing there that sock_diag does not show (only local sockets):
// then conntrack's dump, which costs the kernel far more than sock_diag's,
// adds nothing but is still looked at every ~10 s for forwarded or NATed
// flows appearing.
const ctLocalEvery = 10

// gather fills r.buf with the connections on the VIP that pass the port
// filter, unsorted, possibly with duplicates (a flow both sources see).
func (r *Recorder) gather() ([]Conn, error) {
	r.buf = r.buf[:0]
	var errs []error
	readCt := r.ct != nil && (r.Source != Auto || !r.ctLocalOnly || r.ctSkipped >= ctLocalEvery-1)
	if readCt {
		r.ctSkipped = 0
		c, total, err := r.ct.established(r.VIP)
		switch {
		case err != nil:
			errs = append(errs, err)
			readCt = false
		case total == 0:
			r.ctEmpty = true
		default:
			r.ctEmpty = false
			for _, cn := range c {
				if r.Ports.Has(cn.Local.Port()) {
					r.buf = append(r.buf, cn)
				}
			}
		}
	} else if r.ct != nil {
		r.ctSkipped++
	}
	nct := len(r.buf)
	nsock := 0
	var err error
	// conntrack alone only while it can be read and tracks something.
	if r.Source != Conntrack || r.ct == nil || r.ctEmpty || len(errs) > 0 {
		err = r.diag.established(r.VIP, func(s *diagSocket) {
			nsock++
			if r.Ports.Has(s.local.Port()) {
				r.buf = append(r.buf, NewConn(s.local, s.peer))
			}
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	if readCt && err == nil {
		r.ctLocalOnly = subset(r.buf[:nct], r.buf[nct:])
	}
	if r.ct != nil && r.ctEmpty && nsock > 0 && !r.ctWarned {
		r.ctWarned = true
		r.Log.Warnf("tickle: conntrack tracks nothing in this network namespace (no netfilter rule uses connection tracking), "+
			"so forwarded or NATed connections to %s cannot be seen; recording local sockets from sock_diag only", r.VIP)
	}
	if err != nil {
		return r.buf, errors.Join(errs...)
	}
	if len(errs) > 0 && r.Source == Conntrack && !r.ctWarned {
		r.ctWarned = true
		r.Log.Warnf("tickle: cannot read conntrack (%v); recording local sockets from sock_diag", errors.Join(errs...))
	} else if len(errs) > 0 {
		r.Log.Debugf("tickle: %v", errors.Join(errs...))
	}
	return r.buf, nil
}

// subset reports whether every connection of a is in b.
func subset(a, b []Conn) bool {
	if len(a) == 0 {
		return true
	}
	in := make(map[Conn]struct{}, len(b))
	for _, c := range b {
		in[c] = struct{}{}
	}
	for _, c := range a {
		if _, ok := in[c]; !ok {
			return false
		}
	}
	return true
}

// fingerprint identifies a set of connections whatever their order.
type fingerprint struct {
	n        int
	sum, xor uint64
}

func fingerprintOf(conns []Conn) fingerprint {
	fp := fingerprint{n: len(conns)}
	for _, c := range conns {
		h := c.hash()
		fp.sum += h
		fp.xor ^= mix(h ^ 0x9e3779b97f4a7c15)
	}
	return fp
}

func (c Conn) hash() uint64 {
	l, r := c.Local.Addr().As16(), c.Remote.Addr().As16()
	h := mix(binary.LittleEndian.Uint64(l[:8]))
	h = mix(h ^ binary.LittleEndian.Uint64(l[8:]))
	h = mix(h ^ binary.LittleEndian.Uint64(r[:8]))
	h = mix(h ^ binary.LittleEndian.Uint64(r[8:]))
	return mix(h ^ uint64(c.Local.Port())<<16 ^ uint64(c.Remote.Port()))
}

// mix is splitmix64's finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// Destroy aborts the local sockets on the VIP (those whose local port passes
// the filter): their owners see an error at once and the peers get an RST.
// It returns how many were destroyed. ErrDestroyUnsupported says the kernel
// cannot do it.
func (r *Recorder) Destroy() (int, error) {
	if !r.destroyOK {
		return 0, ErrDestroyUnsupported
	}
	var socks []diagSocket
	err := r.diag.established(r.VIP, func(s *diagSocket) {
		if r.Ports.Has(s.local.Port()) {
			socks = append(socks, *s)
		}
	})
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for i := range socks {
		s := &socks[i]
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

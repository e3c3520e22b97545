package tickle

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/storhaug/storhaug/internal/netnsdo"
)

// Sender sends tickles through raw IP sockets (AF_INET and AF_INET6,
// IPPROTO_RAW: the packet carries its own IP header). It needs CAP_NET_RAW.
type Sender struct {
	fd4, fd6 int
}

// OpenSender opens the raw sockets in the named network namespace ("" for
// the caller's own).
func OpenSender(netns string) (*Sender, error) {
	s := &Sender{fd4: -1, fd6: -1}
	err := netnsdo.Do(netns, func() error {
		var err error
		if s.fd4, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
			return fmt.Errorf("raw IPv4 socket: %w", err)
		}
		if s.fd6, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
			return fmt.Errorf("raw IPv6 socket: %w", err)
		}
		return nil
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the sockets.
func (s *Sender) Close() error {
	for _, fd := range []*int{&s.fd4, &s.fd6} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	return nil
}

// Send sends one segment.
func (s *Sender) Send(seg Segment) error {
	pkt := seg.Packet()
	dst := seg.Dst.Addr().Unmap()
	var err error
	if dst.Is4() {
		err = unix.Sendto(s.fd4, pkt, 0, &unix.SockaddrInet4{Addr: dst.As4()})
	} else {
		// Port 0: with IPPROTO_RAW the sockaddr's port must not be set.
		err = unix.Sendto(s.fd6, pkt, 0, &unix.SockaddrInet6{Addr: dst.As16()})
	}
	if err != nil {
		return fmt.Errorf("sending to %s: %w", seg.Dst, err)
	}
	return nil
}

// Tickle sends one tickle to each connection's client and returns how many
// went out; errors are joined (at most a few are kept).
//
// Large lists are split over the machine's CPUs, one sender each: a send
// is a system call through the whole output path, and where the clients
// share the kernel (namespaces, containers) it also carries their reply
// and the RST that answers it; parallel senders bring the last client's
// reset forward.
func (s *Sender) Tickle(conns []Conn) (int, error) {
	workers := min(runtime.GOMAXPROCS(0), len(conns)/parallelMin)
	if workers <= 1 {
		return s.tickle(conns)
	}
	type result struct {
		sent int
		err  error
	}
	results := make(chan result, workers)
	per := (len(conns) + workers - 1) / workers
	for i := 0; i < len(conns); i += per {
		part := conns[i:min(i+per, len(conns))]
		go func() {
			n, err := s.tickle(part)
			results <- result{n, err}
		}()
	}
	sent := 0
	var errs []error
	for range (len(conns) + per - 1) / per {
		r := <-results
		sent += r.sent
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	return sent, errors.Join(errs...)
}

// parallelMin is the smallest share of a list worth a sender of its own.
const parallelMin = 64

func (s *Sender) tickle(conns []Conn) (int, error) {
	sent := 0
	var errs []error
	for _, c := range conns {
		if err := s.Send(c.Tickle()); err != nil {
			if len(errs) < 3 {
				errs = append(errs, err)
			}
			continue
		}
		sent++
	}
	if failed := len(conns) - sent; failed > len(errs) {
		errs = append(errs, fmt.Errorf("%d sends failed in all", failed))
	}
	return sent, errors.Join(errs...)
}

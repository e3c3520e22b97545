package tickle

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// AbortPeer destroys (SOCK_DESTROY) the established TCP connections of
// this network namespace with peer in which either end uses port: the
// connections a service listening on port (and connecting to the same port
// of its peers, as ctdbd does) holds with that one peer. The local owner of
// each socket sees the connection fail at once (ECONNABORTED) instead of
// waiting for keepalives or retransmissions to give up; the kernel sends
// the peer an RST, which a peer that is powered off never gets. It returns
// how many connections it destroyed; a kernel that cannot destroy sockets
// is ErrDestroyUnsupported.
func AbortPeer(peer netip.Addr, port uint16) (int, error) {
	peer = peer.Unmap()
	if !peer.IsValid() || port == 0 {
		return 0, fmt.Errorf("tickle: abort: need a peer address and a port, not %v port %d", peer, port)
	}
	d, err := dialSockDiag()
	if err != nil {
		return 0, err
	}
	defer d.Close()
	var match []diagSocket
	err = d.withPeer(peer, func(s *diagSocket) {
		if s.local.Port() == port || s.peer.Port() == port {
			match = append(match, *s)
		}
	})
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for i := range match {
		if err := d.destroy(&match[i]); err != nil {
			if destroyUnsupported(err) {
				return n, fmt.Errorf("%w: %v", ErrDestroyUnsupported, err)
			}
			errs = append(errs, fmt.Errorf("%v -> %v: %w", match[i].local, match[i].peer, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// withPeer calls fn for each established TCP socket whose remote address
// is peer (the kernel filters; an IPv4 peer is also looked for on IPv6
// sockets, as ::ffff:a.b.c.d).
func (d *sockDiag) withPeer(peer netip.Addr, fn func(*diagSocket)) error {
	families := []uint8{unix.AF_INET6}
	if peer.Is4() {
		families = []uint8{unix.AF_INET, unix.AF_INET6}
	}
	req := inetDiagReq{Protocol: unix.IPPROTO_TCP, States: 1 << tcpEstablished, Attrs: peerAddrBytecode(peer)}
	var s diagSocket
	var m inetDiagMsg
	var body []byte
	for _, fam := range families {
		req.Family = fam
		body = req.appendBinary(body[:0])
		err := d.request(sockDiagByFamily, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, body, func(p []byte) {
			if parseDiagMsg(p, &m, &s) && s.peer.Addr().Unmap() == peer {
				fn(&s)
			}
		})
		if err != nil {
			return fmt.Errorf("sock_diag dump: %w", err)
		}
	}
	return nil
}

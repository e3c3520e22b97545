package ctdb

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Dropped is what [DropPeer] did.
type Dropped struct {
	Peer    netip.AddrPort // the peer's CTDB address and port, from ctdbd's nodemap
	Aborted int            // connections ended
	// Already says ctdbd had the peer disconnected before DropPeer acted.
	Already bool
	// Took is the time from the abort until ctdbd's nodemap showed the
	// peer disconnected.
	Took time.Duration
}

// DropPeer makes the ctdbd behind socket give up on node pnn now instead
// of after KeepaliveLimit missed keepalives (KeepaliveInterval apart): it
// is for a peer known to be dead — powered off by a fencing that
// completed — and must never be called on a guess.
//
// abort ends this node's TCP connections with the peer's CTDB address in
// which either end is its CTDB port (tickle.AbortPeer: both the
// connection ctdbd made to the peer and the one the peer made to ctdbd).
// ctdbd's TCP transport (ctdb/tcp, CTDB 4.12 and later) treats a failed
// connection as the peer's death: node_dead marks it DISCONNECTED (and
// UNHEALTHY), cancels the controls waiting on it, and the leader's
// recovery daemon, finding an inactive node in its nodemap, starts a
// recovery. The transport then reconnects every second; a node counts as
// connected again only when its connection to the peer and the peer's to
// it are both up, which a powered-off node never achieves. A peer that is
// in fact alive and reachable simply reconnects.
//
// DropPeer then waits, within ctx, until ctdbd's nodemap shows pnn
// disconnected.
func DropPeer(ctx context.Context, socket string, pnn int, abort func(peer netip.Addr, port uint16) (int, error)) (Dropped, error) {
	var d Dropped
	self, raw, err := readNodemap(ctx, socket)
	if err != nil {
		return d, err
	}
	if int(self) == pnn {
		return d, fmt.Errorf("pnn %d is this node", pnn)
	}
	peer, err := peerOf(raw, pnn)
	if err != nil {
		return d, err
	}
	d.Peer = netip.AddrPortFrom(peer.Addr, peer.Port)
	if !peer.Addr.IsValid() || peer.Port == 0 {
		return d, fmt.Errorf("ctdbd's nodemap has no address for pnn %d", pnn)
	}
	if peer.Flags&flagDisconnected != 0 {
		d.Already = true
		return d, nil
	}
	t0 := time.Now()
	d.Aborted, err = abort(peer.Addr, peer.Port)
	if err != nil && d.Aborted == 0 {
		return d, fmt.Errorf("ending the connections with %v: %w", d.Peer, err)
	}
	for {
		_, raw, nerr := readNodemap(ctx, socket)
		if nerr == nil {
			if p, perr := peerOf(raw, pnn); perr == nil && p.Flags&flagDisconnected != 0 {
				d.Took = time.Since(t0)
				return d, err
			}
		}
		select {
		case <-ctx.Done():
			return d, errors.Join(err, fmt.Errorf("ctdbd did not mark pnn %d disconnected (%d connections ended): %w", pnn, d.Aborted, ctx.Err()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// peerOf finds pnn in a marshalled ctdb_node_map.
func peerOf(b []byte, pnn int) (nodeAndFlags, error) {
	var m nodeMap
	if err := m.UnmarshalBinary(b); err != nil {
		return nodeAndFlags{}, err
	}
	for _, n := range m {
		if int(n.PNN) == pnn {
			return n, nil
		}
	}
	return nodeAndFlags{}, fmt.Errorf("pnn %d is not in ctdbd's nodemap", pnn)
}

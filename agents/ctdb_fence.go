package agents

// The CTDB agent's part in a failover: when Pacemaker has fenced a node,
// the survivors' ctdbd give that node up at once instead of after their
// own keepalives (KeepaliveInterval × KeepaliveLimit, 25 s with CTDB's
// defaults) — only then does CTDB recover its databases and smbd serve
// again. The clone runs with notify=true (storhaug setup sets it); the
// post-stop notification names the nodes whose instance stopped, and a
// node whose stop was implied by its fencing is dropped (ctdb.DropPeer)
// when, and only when, the fencer's history shows it fenced (off or
// reboot, succeeded) since its CTDB instance was last seen starting. No
// confirmed fencing (fencing off, failed, pending, or older than the
// peer's start): nothing is done, and CTDB keeps its own detection. The
// pre-stop notification, run while the node is being fenced, reads its
// pnn, so that only the fencer is asked after the fencing.

import (
	"context"
	"strconv"
	"time"

	"github.com/storhaug/storhaug/ctdb"
	"github.com/storhaug/storhaug/pacemaker"
)

// ctdbPNNAttr is the permanent node attribute in which each instance
// records its node's CTDB pnn at start: the survivors of a fenced node
// cannot ask that node's ctdbd which pnn it had.
const ctdbPNNAttr = "storhaug-ctdb-pnn"

// dropTimeout bounds the wait for ctdbd to mark a dropped peer
// disconnected, within the notification's own timeout.
const dropTimeout = 10 * time.Second

// publishPNN records this node's pnn for the survivors of its fencing.
func (c *ctdbRes) publishPNN(pnn int) {
	ctx, cancel := context.WithTimeout(c.r.Context(), crmTimeout)
	defer cancel()
	if err := pacemaker.SetNodeAttr(ctx, c.sys.pacemaker, c.r.NodeName(), ctdbPNNAttr, strconv.Itoa(pnn)); err != nil {
		c.r.Log.Warnf("cannot record this node's CTDB pnn (node attribute %s): %v; the survivors of its fencing will wait for CTDB's keepalives", ctdbPNNAttr, err)
	}
}

func (c *ctdbRes) notify() error {
	r := c.r
	n := r.Notify()
	r.Log.Debugf("notify %s-%s: start %v stop %v promote %v demote %v", n.Type, n.Operation, n.Start, n.Stop, n.Promote, n.Demote)
	preStop := n.Type == "pre" && n.Operation == "stop"
	if !preStop && (n.Type != "post" || n.Operation != "start" && n.Operation != "stop") {
		return nil
	}
	s, had := c.load()
	if !had {
		return nil // not running here (or its state is lost): nothing to tell ctdbd
	}
	self := r.NodeName()
	if preStop {
		c.readStopPNNs(s, n.Stop)
		return nil
	}
	if n.Operation == "start" {
		changed := false
		for _, node := range n.Start {
			if node == self {
				continue
			}
			if s.PeerStarts == nil {
				s.PeerStarts = map[string]time.Time{}
			}
			s.PeerStarts[node] = time.Now()
			delete(s.StopPNNs, node) // it may have come back with another
			changed = true
		}
		if changed {
			if err := c.save(s); err != nil {
				r.Log.Warnf("%v", err)
			}
		}
		return nil
	}
	for _, node := range n.Stop {
		if node != self {
			c.dropIfFenced(s, node)
		}
	}
	return nil // a notification never fails: CTDB's own detection remains
}

// stopPNNFresh is how long a pnn read before a peer's stop is used by the
// post-stop notification (of the same transition) instead of reading it
// again.
const stopPNNFresh = 5 * time.Minute

// readStopPNNs records the pnns of the peers about to stop (pre-stop
// notification): for a lost node, the transition runs it while the node is
// being fenced, so the post-stop notification, which the survivors' CTDB
// recovery (and SMB) wait for, need not read the CIB after the fencing.
func (c *ctdbRes) readStopPNNs(s *ctdb.State, stopping []string) {
	r := c.r
	var peers []string
	for _, node := range stopping {
		if node != r.NodeName() {
			peers = append(peers, node)
		}
	}
	if len(peers) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), crmTimeout)
	defer cancel()
	attrs, err := pacemaker.NodeAttrs(ctx, c.sys.pacemaker)
	if err != nil {
		r.Log.Warnf("cannot read the CTDB pnns of %v before their stop: %v", peers, err)
		return
	}
	now := time.Now()
	for node, p := range s.StopPNNs {
		if now.Sub(p.At) > stopPNNFresh {
			delete(s.StopPNNs, node)
		}
	}
	for _, node := range peers {
		pnn, err := strconv.Atoi(attrs[node][ctdbPNNAttr])
		if err != nil {
			continue
		}
		if s.StopPNNs == nil {
			s.StopPNNs = map[string]ctdb.PeerPNN{}
		}
		s.StopPNNs[node] = ctdb.PeerPNN{PNN: pnn, At: now}
	}
	if err := c.save(s); err != nil {
		r.Log.Warnf("%v", err)
	}
}

// dropIfFenced makes the local ctdbd give node up, if the fencer confirms
// node was fenced since its CTDB instance (or this one) last started.
func (c *ctdbRes) dropIfFenced(s *ctdb.State, node string) {
	r := c.r
	since := s.Started
	if t := s.PeerStarts[node]; t.After(since) {
		since = t
	}
	if since.IsZero() {
		r.Log.Infof("%s stopped; this instance does not know when it started: CTDB keeps its own dead-node detection", node)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), crmTimeout)
	defer cancel()
	// The node attributes (for the node's pnn) are read while the fencer
	// is asked: the VIPs' new owners wait for CTDB's recovery, which
	// waits for this drop.
	type nodeAttrs struct {
		m    map[string]map[string]string
		err  error
		d    time.Duration
		read bool // read now, not before the stop
	}
	t0 := time.Now()
	attrsc := make(chan nodeAttrs, 1)
	if p, ok := s.StopPNNs[node]; ok && time.Since(p.At) < stopPNNFresh {
		// Read by the pre-stop notification.
		attrsc <- nodeAttrs{m: map[string]map[string]string{node: {ctdbPNNAttr: strconv.Itoa(p.PNN)}}}
	} else {
		go func() {
			m, err := pacemaker.NodeAttrs(ctx, c.sys.pacemaker)
			attrsc <- nodeAttrs{m, err, time.Since(t0), true}
		}()
	}
	evs, err := pacemaker.FenceHistory(ctx, c.sys.pacemaker)
	histTook := time.Since(t0)
	if err != nil {
		r.Log.Warnf("%s stopped; cannot read its fencing history: %v; CTDB keeps its own dead-node detection", node, err)
		return
	}
	ev, ok := pacemaker.FencedSince(evs, node, since)
	if !ok {
		r.Log.Infof("%s stopped, with no fencing of it confirmed since %s: CTDB keeps its own dead-node detection",
			node, since.UTC().Format(time.RFC3339))
		return
	}
	a := <-attrsc
	attrs, err := a.m, a.err
	if err != nil {
		r.Log.Warnf("%s was fenced; cannot read its CTDB pnn: %v", node, err)
		return
	}
	pnn, err := strconv.Atoi(attrs[node][ctdbPNNAttr])
	if err != nil {
		r.Log.Warnf("%s was fenced; it recorded no CTDB pnn (node attribute %s): CTDB keeps its own dead-node detection", node, ctdbPNNAttr)
		return
	}
	dctx, dcancel := context.WithTimeout(r.Context(), dropTimeout)
	defer dcancel()
	d, err := c.sys.dropPeer(dctx, c.socketPath(), pnn)
	fenced := node + "'s fencing (" + ev.Action + " by " + ev.Delegate + ") completed at " + ev.Completed.UTC().Format(time.RFC3339) +
		" (the fencer's history read in " + histTook.Round(time.Millisecond).String() + pnnFrom(a.read, a.d) + ")"
	switch {
	case err != nil:
		r.Log.Warnf("%s; dropping CTDB node %d (%v): %v", fenced, pnn, d.Peer, err)
	case d.Already:
		r.Log.Infof("%s; CTDB node %d (%v) was already disconnected", fenced, pnn, d.Peer)
	default:
		r.Log.Infof("%s; CTDB node %d (%v) dropped: %d connections ended, disconnected after %v",
			fenced, pnn, d.Peer, d.Aborted, d.Took.Round(time.Millisecond))
	}
}

// pnnFrom says where the dropped node's pnn came from: read now, in d, or
// before the node's stop.
func pnnFrom(read bool, d time.Duration) string {
	if !read {
		return ", the pnn read before its stop"
	}
	return ", the pnn in " + d.Round(time.Millisecond).String()
}

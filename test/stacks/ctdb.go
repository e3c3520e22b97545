package stacks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/storhaug/storhaug/test/lab"
)

// CTDB is CTDB managing the public addresses itself, as ctdb(7) and
// Samba's wiki set up a clustered Samba: every node's
// /etc/ctdb/public_addresses lists the three VIPs on eth0; the 10.interface
// event script (enabled by Debian's package; it needs ethtool) adds and
// removes them, CTDB's recovery master moves them (IPAllocAlgorithm LCP2,
// the default) and the taking node sends the tickle ACKs and gratuitous ARPs;
// 50.samba is enabled, so CTDB starts and watches smbd. ctdbd is started
// on every node as its service would be (the lab's CTDB service), not by
// Pacemaker.
//
// Pacemaker keeps running, with only the lab's fence device: CTDB does not
// use it (CTDB's own membership, keepalives and cluster lock decide), but a
// crashed node is powered off the same way in every stack, and the lab's
// Recover expects it. CTDB is enabled in the lab (lab.Enable): a recovered
// node starts ctdbd as its boot would.
//
// Public addresses have no home node: at rest (every node healthy) LCP2
// gives each node one, but which one may change after a failover and a
// return. VIPs reports the current placement when it is at rest, else the
// last placement at rest.
//
// SMB only. Debian 12's ctdb package ships no NFS-Ganesha callout to use:
// nfs-ganesha-callout and 20.nfs_ganesha.check are only examples in
// /usr/share/doc/ctdb/examples ("has not been properly tested", it says),
// and that callout cannot run in the lab or on a plain Debian cluster: it
// knows only GPFS (it calls /usr/lpp/mmfs/bin/mmgetstate) or GlusterFS
// (it moves /var/lib/nfs aside and links it to the gluster volume) for
// ganesha's state, and starts ganesha with "service nfs-ganesha", for which
// Debian's nfs-ganesha has a systemd unit but no init script.
func CTDB(o Options) Stack { return &ctdbStack{opts: o} }

type ctdbStack struct {
	opts Options
	lab  *lab.Lab
	vips map[string]string
}

func (s *ctdbStack) Name() string        { return "ctdb" }
func (s *ctdbStack) Protocols() []string { return []string{"smb"} }
func (s *ctdbStack) VIPs() map[string]string {
	if s.lab != nil {
		if h, err := Holders(s.lab, vipAddrs()...); err == nil && s.atRest(h) == nil {
			s.vips = h
		}
	}
	return copyMap(s.vips)
}

// atRest: at rest, with every node healthy, LCP2 gives each node one
// address.
func (s *ctdbStack) atRest(h map[string]string) error {
	seen := map[string]bool{}
	for _, a := range vipAddrs() {
		n := h[a]
		if n == "" || seen[n] {
			return fmt.Errorf("VIPs not one per node: %v", h)
		}
		seen[n] = true
	}
	return nil
}

// Tracked: CTDB's tickle list for vip (from smbd's registered
// connections), on the node that holds it, has a connection of client.
func (s *ctdbStack) Tracked(ctx context.Context, l *lab.Lab, vip, client string) (bool, error) {
	h, err := Holders(l, vip)
	if err != nil || h[vip] == "" {
		return false, fmt.Errorf("%s held by no node (%v)", vip, err)
	}
	out, err := run(ctx, l.Node(h[vip]), "ctdb", "gettickles", vip)
	if err != nil {
		return false, err
	}
	if !strings.Contains(out, client) {
		return false, fmt.Errorf("ctdb gettickles %s: %q", vip, out)
	}
	return true, nil
}

const publicAddressesPath = "/etc/ctdb/public_addresses"

func (s *ctdbStack) Setup(ctx context.Context, l *lab.Lab) error {
	if err := writeTunables(l, s.opts); err != nil {
		return err
	}
	var pa strings.Builder
	for _, v := range vipHomes {
		fmt.Fprintf(&pa, "%s/%d eth0\n", v.addr, vipPrefix)
	}
	for _, n := range l.Nodes() {
		if err := n.WriteFile(publicAddressesPath, []byte(pa.String()), 0o644); err != nil {
			return fmt.Errorf("stacks: %s: %w", n.Name(), err)
		}
		// Debian's package enables 10.interface already.
		for _, script := range []string{"10.interface", "50.samba"} {
			if err := sh(ctx, n, fmt.Sprintf("[ -e /etc/ctdb/events/legacy/%s.script ] || ctdb event script enable legacy %s", script, script)); err != nil {
				return err
			}
		}
	}
	if err := l.Enable(lab.CTDB); err != nil {
		return err
	}
	if err := l.StartAll(ctx, lab.CTDB); err != nil {
		return fmt.Errorf("stacks: start ctdbd: %w", err)
	}
	if err := l.WaitCTDBHealthy(ctx, 3*time.Minute); err != nil {
		return fmt.Errorf("stacks: %s: %w", s.Name(), err)
	}
	where, err := waitServed(ctx, l, []int{lab.SMBPort}, s.atRest, 3*time.Minute)
	if err != nil {
		return fmt.Errorf("stacks: %s: %w", s.Name(), err)
	}
	s.lab, s.vips = l, where
	return nil
}

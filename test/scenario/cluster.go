package scenario

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/storhaug/storhaug/test/lab"
)

// VIPResourcer is a Stack whose VIPs are Pacemaker resources: the move
// fault needs their ids.
type VIPResourcer interface {
	VIPResource(vip string) string
}

func vipID(s Stack, vip string) (string, error) {
	if v, ok := s.(VIPResourcer); ok {
		return v.VIPResource(vip), nil
	}
	return "", fmt.Errorf("stack %s does not name its VIPs' resources", s.Name())
}

// vipNodes lists the live nodes holding vip on a link that is up (a cut
// or powered-off node's address reaches nobody).
func vipNodes(ctx context.Context, l *lab.Lab, vip string) ([]string, error) {
	want, err := netip.ParseAddr(vip)
	if err != nil {
		return nil, err
	}
	var on []string
	for _, n := range l.Nodes() {
		if !n.Alive() {
			continue
		}
		has := false
		err := n.Do(func() error {
			link, err := netlink.LinkByName(n.Link())
			if err != nil {
				return err
			}
			if link.Attrs().OperState != netlink.OperUp {
				return nil
			}
			addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
			if err != nil {
				return err
			}
			for _, a := range addrs {
				if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == want {
					has = true
				}
			}
			return nil
		})
		if err != nil && n.Alive() {
			return nil, fmt.Errorf("%s: %w", n.Name(), err)
		}
		if has {
			on = append(on, n.Name())
		}
	}
	return on, nil
}

// settle waits until the cluster is whole again: every node alive and
// online (not standby), every resource started and none failed, every VIP
// on its home node alone, CTDB healthy where it runs.
func (r *run) settle(ctx context.Context) error {
	return Settle(ctx, r.l, r.stack, r.opts.SettleLimit)
}

// quiesce waits, after settle and before a fault, until no ganesha.nfsd of
// the cluster is in grace, so that each fault meets a cluster in its steady
// state: a previous fault's grace still running on a survivor (after a
// failback's release it always runs its whole Grace_Period, see the
// ganesha agent) would be extended by the takeover, and the new opens would
// measure the previous fault instead of this one.
func (r *run) quiesce(ctx context.Context) error {
	return r.l.WaitFor(ctx, "no ganesha in grace", r.opts.SettleLimit, func() (bool, error) {
		in, err := inGrace(ctx, r.l)
		if err != nil {
			return false, err
		}
		if len(in) > 0 {
			return false, fmt.Errorf("ganesha in grace on %s", strings.Join(in, ", "))
		}
		return true, nil
	})
}

// inGrace lists the nodes whose ganesha.nfsd says it is in grace.
func inGrace(ctx context.Context, l *lab.Lab) ([]string, error) {
	var in []string
	for _, n := range l.Nodes() {
		if !n.Alive() || !n.Running("ganesha.nfsd") {
			continue
		}
		g, err := n.GaneshaInGrace(ctx)
		if err != nil {
			return nil, fmt.Errorf("get_grace on %s: %w", n.Name(), err)
		}
		if g {
			in = append(in, n.Name())
		}
	}
	return in, nil
}

// Settle waits up to limit until the cluster of l runs the stack as set
// up: every node alive and online, every resource started and not failed,
// every VIP of the stack on its home node alone, CTDB healthy on every
// node where it runs.
func Settle(ctx context.Context, l *lab.Lab, s Stack, limit time.Duration) error {
	return l.WaitFor(ctx, "the cluster settled, every resource started", limit, func() (bool, error) {
		for _, n := range l.Nodes() {
			if !n.Alive() {
				return false, fmt.Errorf("%s is down", n.Name())
			}
		}
		if msg := notSettled(ctx, l); msg != "" {
			return false, fmt.Errorf("%s", msg)
		}
		for vip, home := range s.VIPs() {
			on, err := vipNodes(ctx, l, vip)
			if err != nil {
				return false, err
			}
			if len(on) != 1 || on[0] != home {
				return false, fmt.Errorf("%s on %v, want %s", vip, on, home)
			}
		}
		for _, n := range l.Nodes() {
			if !n.Running("ctdbd") {
				continue
			}
			if res, err := n.Run(ctx, "ctdb", "nodestatus"); err != nil {
				return false, fmt.Errorf("ctdb on %s: %s", n.Name(), strings.TrimSpace(res.Output()))
			}
		}
		return true, nil
	})
}

// notSettled says what in Pacemaker's view is not as it should be ("" if
// nothing): a node not online or in standby, a resource not started or
// failed.
func notSettled(ctx context.Context, l *lab.Lab) string {
	if l.Options().Pacemaker != lab.Started {
		return ""
	}
	st, err := l.CrmMon(ctx)
	if err != nil {
		return err.Error()
	}
	var bad []string
	for _, n := range st.Nodes {
		if !n.Online || n.Standby || n.Unclean || n.Pending {
			bad = append(bad, fmt.Sprintf("node %s online=%v standby=%v", n.Name, n.Online, n.Standby))
		}
	}
	for _, res := range st.Resources {
		if res.Orphan {
			continue
		}
		ok := res.Active && !res.Failed && !res.Blocked && slices.Contains([]string{"Started", "Promoted", "Unpromoted"}, res.Role)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s %s on %v", res.ID, res.Role, res.Nodes))
		}
	}
	sort.Strings(bad)
	return strings.Join(bad, "; ")
}

package lab

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/storhaug/storhaug/internal/netnsdo"
	"github.com/storhaug/storhaug/internal/nsnet"
)

// The network: namespace <prefix>-br holds two bridges: "br0", the
// network clients reach (node and client eth0, VIPs), and "br1", the
// cluster's own network (each node's eth1; corosync talks on it). Every
// link has its peer in the bridge namespace, named after the node or
// client ("n1", "c1"; "xn1" for n1's eth1), enslaved to its bridge. No link
// is ever made in the host's namespace.

const (
	bridgeName  = "br0"
	clusterName = "br1"
)

func (l *Lab) bridgeNS() string { return nsName(l.opts.Prefix, "br") }

// clusterPort is the bridge-side name of a node's eth1.
func clusterPort(node string) string { return "x" + node }

// newNamedNS makes a named network namespace with lo up.
func newNamedNS(name string) error {
	if err := nsnet.NewNamed(name); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

func (l *Lab) makeNetwork() error {
	br := l.bridgeNS()
	if err := newNamedNS(br); err != nil {
		return err
	}
	if err := nsnet.AddBridges(br, bridgeName, clusterName); err != nil {
		return fmt.Errorf("lab: bridge: %w", err)
	}
	for _, n := range l.nodes {
		if err := newNamedNS(n.NetNS()); err != nil {
			return err
		}
		if err := l.attach(n.name, bridgeName, n.NetNS(), "eth0", n.addrs()...); err != nil {
			return err
		}
		if err := l.attach(clusterPort(n.name), clusterName, n.NetNS(), "eth1", n.clusterAddrs()...); err != nil {
			return err
		}
	}
	for _, c := range l.clients {
		if err := newNamedNS(c.ns); err != nil {
			return err
		}
		if err := l.attach(c.name, bridgeName, c.ns, "eth0", c.addr4+"/24", c.addr6+"/64"); err != nil {
			return err
		}
	}
	return nil
}

// addrs are the node's own addresses on eth0; clusterAddrs on eth1.
func (n *Node) addrs() []string        { return []string{n.addr4 + "/24", n.addr6 + "/64"} }
func (n *Node) clusterAddrs() []string { return []string{ClusterAddr4(n.index) + "/24"} }

// attach links namespace ns to a bridge: a veth pair whose bridge end is
// called port and whose other end is ifname in ns, with the addresses.
func (l *Lab) attach(port, bridge, ns, ifname string, addrs ...string) error {
	v := nsnet.Veth{BridgeNS: l.bridgeNS(), Bridge: bridge, Port: port, NS: ns, Name: ifname, Addrs: addrs}
	if _, err := v.Add(); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// resetLinks gives the node's eth0 and eth1 their own addresses only and
// sets them up: what a booting machine has.
func (n *Node) resetLinks() error {
	return n.Do(func() error {
		for _, l := range []struct {
			name  string
			addrs []string
		}{{"eth0", n.addrs()}, {"eth1", n.clusterAddrs()}} {
			link, err := netlink.LinkByName(l.name)
			if err != nil {
				return err
			}
			if err := netlink.LinkSetDown(link); err != nil {
				return err
			}
			if err := nsnet.SetAddrsUp(link, l.addrs); err != nil {
				return fmt.Errorf("%s: %w", l.name, err)
			}
		}
		return nil
	})
}

// setLinks sets the node's eth0 and eth1 up or down (inside the node: a
// powered-off machine's network cards are dead, whatever the cables).
func (n *Node) setLinks(up bool) error {
	return n.Do(func() error {
		for _, name := range []string{"eth0", "eth1"} {
			link, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			set := netlink.LinkSetDown
			if up {
				set = netlink.LinkSetUp
			}
			if err := set(link); err != nil {
				return err
			}
		}
		return nil
	})
}

// portOp runs fn on a port of the bridge namespace.
func (l *Lab) portOp(port string, fn func(netlink.Link) error) error {
	return netnsdo.Do(l.bridgeNS(), func() error {
		p, err := netlink.LinkByName(port)
		if err != nil {
			return fmt.Errorf("lab: port %s: %w", port, err)
		}
		return fn(p)
	})
}

// CutLink pulls the node's cables: its ports on both bridges go down, so
// the node's eth0 and eth1 lose carrier (NO-CARRIER) and nothing passes
// either way. Its processes keep running.
func (l *Lab) CutLink(node string) error {
	if l.Node(node) == nil {
		return fmt.Errorf("lab: no node %q", node)
	}
	l.logf("cut links of %s", node)
	if err := l.portOp(node, netlink.LinkSetDown); err != nil {
		return err
	}
	return l.portOp(clusterPort(node), netlink.LinkSetDown)
}

// RestoreLink plugs the node's cables back in.
func (l *Lab) RestoreLink(node string) error {
	if l.Node(node) == nil {
		return fmt.Errorf("lab: no node %q", node)
	}
	l.logf("restore links of %s", node)
	if err := l.portOp(node, netlink.LinkSetUp); err != nil {
		return err
	}
	return l.portOp(clusterPort(node), netlink.LinkSetUp)
}

// Partition splits the whole network: each group of node names gets
// switches of its own (one per network), so nodes talk only within their
// group. The first group stays on the main switches together with the
// clients and with every node named in no group. Partition first heals
// any earlier partition.
func (l *Lab) Partition(groups ...[]string) error {
	return l.partition(true, groups)
}

// PartitionCluster splits only the cluster's network (eth1, where corosync
// talks) into the groups, as Partition does; the client network stays
// whole: every node still reaches the clients, and the clients every node
// and VIP. This is the partition of a cluster whose interconnect fails.
func (l *Lab) PartitionCluster(groups ...[]string) error {
	return l.partition(false, groups)
}

// IsolateCluster cuts node off from the other nodes on the cluster's
// network only: PartitionCluster({other nodes...}, {node}).
func (l *Lab) IsolateCluster(node string) error {
	return l.PartitionCluster(l.others(node), []string{node})
}

func (l *Lab) others(node string) []string {
	var rest []string
	for _, n := range l.nodes {
		if n.name != node {
			rest = append(rest, n.name)
		}
	}
	return rest
}

func (l *Lab) partition(public bool, groups [][]string) error {
	seen := map[string]bool{}
	for _, g := range groups {
		for _, name := range g {
			if l.Node(name) == nil {
				return fmt.Errorf("lab: partition: no node %q", name)
			}
			if seen[name] {
				return fmt.Errorf("lab: partition: node %s is in two groups", name)
			}
			seen[name] = true
		}
	}
	if err := l.Heal(); err != nil {
		return err
	}
	what := "cluster network"
	if public {
		what = "network"
	}
	l.logf("partition %s %v", what, groups)
	err := netnsdo.Do(l.bridgeNS(), func() error {
		for i, g := range groups {
			if i == 0 {
				continue
			}
			l.mu.Lock()
			l.parts = i
			l.mu.Unlock()
			type sw struct {
				name string
				port func(string) string
			}
			sws := []sw{{"bkp" + strconv.Itoa(i), clusterPort}}
			if public {
				sws = append(sws, sw{"brp" + strconv.Itoa(i), func(n string) string { return n }})
			}
			for _, s := range sws {
				b := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: s.name}}
				if err := netlink.LinkAdd(b); err != nil {
					return err
				}
				if err := netlink.LinkSetUp(b); err != nil {
					return err
				}
				for _, node := range g {
					p, err := netlink.LinkByName(s.port(node))
					if err != nil {
						return err
					}
					if err := netlink.LinkSetMaster(p, b); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	l.saveState()
	return err
}

// Isolate cuts node off from the other nodes (not from the clients): the
// same as Partition({other nodes...}, {node}) with the clients staying with
// the others.
func (l *Lab) Isolate(node string) error {
	return l.Partition(l.others(node), []string{node})
}

// Heal undoes Partition and PartitionCluster: every port back on its main
// switch.
func (l *Lab) Heal() error {
	l.mu.Lock()
	parts := l.parts
	l.mu.Unlock()
	if parts == 0 {
		return nil
	}
	l.logf("heal partition")
	err := netnsdo.Do(l.bridgeNS(), func() error {
		for _, sw := range []struct {
			bridge string
			port   func(string) string
		}{{bridgeName, func(n string) string { return n }}, {clusterName, clusterPort}} {
			br, err := netlink.LinkByName(sw.bridge)
			if err != nil {
				return err
			}
			for _, n := range l.nodes {
				p, err := netlink.LinkByName(sw.port(n.name))
				if err != nil {
					return err
				}
				if p.Attrs().MasterIndex != br.Attrs().Index {
					if err := netlink.LinkSetMaster(p, br); err != nil {
						return err
					}
				}
			}
		}
		for i := 1; i <= parts; i++ {
			for _, name := range []string{"brp", "bkp"} {
				if b, err := netlink.LinkByName(name + strconv.Itoa(i)); err == nil {
					if err := netlink.LinkDel(b); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err == nil {
		l.mu.Lock()
		l.parts = 0
		l.mu.Unlock()
		l.saveState()
	}
	return err
}

// Client is a client namespace on the lab network (a network namespace
// only: it sees the host's file system).
type Client struct {
	name, ns     string
	addr4, addr6 string
}

// Name is "c1", "c2", ...
func (c *Client) Name() string { return c.name }

// Addr4 is the client's IPv4 address (198.51.100.101, ...).
func (c *Client) Addr4() string { return c.addr4 }

// Addr6 is the client's IPv6 address (2001:db8::101, ...).
func (c *Client) Addr6() string { return c.addr6 }

// NetNS is the name of the client's network namespace (under /run/netns),
// for internal/netnsdo.Do or `ip netns exec`.
func (c *Client) NetNS() string { return c.ns }

// NetNSPath is the file of the client's network namespace.
func (c *Client) NetNSPath() string { return "/run/netns/" + c.ns }

// Do runs fn on an OS thread inside the client's network namespace;
// sockets fn opens stay in it.
func (c *Client) Do(fn func() error) error { return netnsdo.Do(c.ns, fn) }

// Command returns a command running inside the client's network namespace,
// with a clean environment plus env. When ctx ends it is killed.
func (c *Client) Command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + c.NetNSPath(), "--", name}, args...)...)
	cmd.Env = append(append([]string(nil), baseEnv...), env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process != nil {
			return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		return nil
	}
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Run runs a command in the client namespace; see Node.Run.
func (c *Client) Run(ctx context.Context, name string, args ...string) (Result, error) {
	return runCmd(c.Command(ctx, nil, name, args...), c.name, name, args)
}

// Exec is Run with extra environment variables.
func (c *Client) Exec(ctx context.Context, env []string, name string, args ...string) (Result, error) {
	return runCmd(c.Command(ctx, env, name, args...), c.name, name, args)
}

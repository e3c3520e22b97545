package lab

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/storhaug/storhaug/internal/netnsdo"
)

// The network: namespace <prefix>-br holds the bridge "br0"; every node and
// client namespace has an "eth0" whose peer, in the bridge namespace, is
// named after the node or client ("n1", "c1") and enslaved to br0. No link
// is ever made in the host's namespace.

const bridgeName = "br0"

func (l *Lab) bridgeNS() string { return nsName(l.opts.Prefix, "br") }

// newNamedNS makes a named network namespace with lo up.
func newNamedNS(name string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is retired
		h, err := netns.NewNamed(name)
		if err != nil {
			errc <- fmt.Errorf("lab: network namespace %s: %w", name, err)
			return
		}
		defer h.Close()
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		errc <- err
	}()
	return <-errc
}

func (l *Lab) makeNetwork() error {
	br := l.bridgeNS()
	if err := newNamedNS(br); err != nil {
		return err
	}
	err := netnsdo.Do(br, func() error {
		b := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName}}
		if err := netlink.LinkAdd(b); err != nil {
			return err
		}
		return netlink.LinkSetUp(b)
	})
	if err != nil {
		return fmt.Errorf("lab: bridge: %w", err)
	}
	for _, n := range l.nodes {
		if err := l.attach(n.name, n.NetNS(), n.addr4, n.addr6); err != nil {
			return err
		}
	}
	for _, c := range l.clients {
		if err := l.attach(c.name, c.ns, c.addr4, c.addr6); err != nil {
			return err
		}
	}
	return nil
}

// attach makes the namespace ns and links it to the bridge.
func (l *Lab) attach(port, ns, addr4, addr6 string) error {
	if err := newNamedNS(ns); err != nil {
		return err
	}
	target, err := netns.GetFromName(ns)
	if err != nil {
		return err
	}
	defer target.Close()
	peer := "p" + port
	err = netnsdo.Do(l.bridgeNS(), func() error {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: port}, PeerName: peer}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		br, err := netlink.LinkByName(bridgeName)
		if err != nil {
			return err
		}
		p, err := netlink.LinkByName(port)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetMaster(p, br); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(p); err != nil {
			return err
		}
		in, err := netlink.LinkByName(peer)
		if err != nil {
			return err
		}
		return netlink.LinkSetNsFd(in, int(target))
	})
	if err != nil {
		return fmt.Errorf("lab: link for %s: %w", port, err)
	}
	err = netnsdo.Do(ns, func() error {
		in, err := netlink.LinkByName(peer)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetName(in, "eth0"); err != nil {
			return err
		}
		for _, a := range []string{addr4 + "/24", addr6 + "/64"} {
			addr, err := netlink.ParseAddr(a)
			if err != nil {
				return err
			}
			if addr.IP.To4() == nil {
				addr.Flags |= syscall.IFA_F_NODAD
			}
			if err := netlink.AddrAdd(in, addr); err != nil {
				return fmt.Errorf("%s: %w", a, err)
			}
		}
		return netlink.LinkSetUp(in)
	})
	if err != nil {
		return fmt.Errorf("lab: %s eth0: %w", port, err)
	}
	return nil
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

// CutLink pulls the node's cable: its port on the bridge goes down, so the
// node's eth0 loses carrier (NO-CARRIER) and nothing passes either way.
// Its processes keep running.
func (l *Lab) CutLink(node string) error {
	if l.Node(node) == nil {
		return fmt.Errorf("lab: no node %q", node)
	}
	l.logf("cut link of %s", node)
	return l.portOp(node, netlink.LinkSetDown)
}

// RestoreLink plugs the node's cable back in.
func (l *Lab) RestoreLink(node string) error {
	if l.Node(node) == nil {
		return fmt.Errorf("lab: no node %q", node)
	}
	l.logf("restore link of %s", node)
	return l.portOp(node, netlink.LinkSetUp)
}

// Partition splits the network: each group of node names gets a switch of
// its own, so nodes talk only within their group. The first group stays on
// the main switch together with the clients and with every node named in no
// group. Partition first heals any earlier partition.
func (l *Lab) Partition(groups ...[]string) error {
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
	l.logf("partition %v", groups)
	err := netnsdo.Do(l.bridgeNS(), func() error {
		for i, g := range groups {
			if i == 0 {
				continue
			}
			name := "brp" + strconv.Itoa(i)
			b := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
			if err := netlink.LinkAdd(b); err != nil {
				return err
			}
			l.mu.Lock()
			l.parts = i
			l.mu.Unlock()
			if err := netlink.LinkSetUp(b); err != nil {
				return err
			}
			for _, node := range g {
				p, err := netlink.LinkByName(node)
				if err != nil {
					return err
				}
				if err := netlink.LinkSetMaster(p, b); err != nil {
					return err
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
	var rest []string
	for _, n := range l.nodes {
		if n.name != node {
			rest = append(rest, n.name)
		}
	}
	return l.Partition(rest, []string{node})
}

// Heal undoes Partition: every port back on the main switch.
func (l *Lab) Heal() error {
	l.mu.Lock()
	parts := l.parts
	l.mu.Unlock()
	if parts == 0 {
		return nil
	}
	l.logf("heal partition")
	err := netnsdo.Do(l.bridgeNS(), func() error {
		br, err := netlink.LinkByName(bridgeName)
		if err != nil {
			return err
		}
		for _, n := range l.nodes {
			p, err := netlink.LinkByName(n.name)
			if err != nil {
				return err
			}
			if p.Attrs().MasterIndex != br.Attrs().Index {
				if err := netlink.LinkSetMaster(p, br); err != nil {
					return err
				}
			}
		}
		for i := 1; i <= parts; i++ {
			if b, err := netlink.LinkByName("brp" + strconv.Itoa(i)); err == nil {
				if err := netlink.LinkDel(b); err != nil {
					return err
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

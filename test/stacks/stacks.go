// Package stacks configures a running lab (package test/lab: 3 nodes,
// Pacemaker and D-Bus started, CTDB, Samba and Ganesha prepared, fencing on)
// into the HA stacks storhaug is compared with, the "anchors" of issue 13,
// each as its users run it, with the same VIPs (198.51.100.201-203), the
// same NFS export (/export) and SMB share ("share") as storhaug's setup, so
// that the same kernel-client mounts work against every stack:
//
//   - ResourceAgents: what an admin builds from Debian 12's resource-agents:
//     ocf:heartbeat:CTDB (CTDB manages Samba), and per VIP a group of
//     ocf:heartbeat:portblock (block), ocf:heartbeat:IPaddr2 and portblock
//     (unblock, with tickles from a directory on the shared storage); NFS
//     through storhaug's ganesha and ganesha_trigger agents (Debian 12's
//     resource-agents has no ganesha agent) with ganesha's default grace.
//   - CTDB: CTDB manages the public addresses itself (public_addresses,
//     10.interface, its own takeover and tickles) and Samba (50.samba);
//     Pacemaker runs only the lab's fence device. SMB only: see CTDB.
//
// Both keep CTDB's shipped tunables and ganesha's default lease and grace
// unless Options say otherwise. A stack's Setup is its whole
// configuration; it expects a lab nothing else has configured.
package stacks

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/storhaug/storhaug/test/lab"
	"github.com/vishvananda/netlink"
)

// Stack is one HA stack in a lab; it satisfies the scenario package's
// Stack interface.
type Stack interface {
	Name() string
	// Setup configures the running lab into the stack and returns when
	// every VIP is up and the export and share answer through them.
	Setup(ctx context.Context, l *lab.Lab) error
	// VIPs maps each VIP to the node that holds it after Setup.
	VIPs() map[string]string
	// Protocols are what clients reach through the VIPs: "smb", "nfs".
	Protocols() []string
	// Tracked reports whether the stack has recorded the TCP connections
	// of the client at address client to vip (what it tickles after a
	// move), as its holder of vip sees them.
	Tracked(ctx context.Context, l *lab.Lab, vip, client string) (bool, error)
}

// Options apply to every stack.
type Options struct {
	// CTDBTunables, when set, replace CTDB's shipped tunables in every
	// node's ctdb.tunables (e.g. the same as storhaug's stack, so that a
	// comparison separates mechanism from defaults). Nil: as shipped.
	CTDBTunables map[string]int
	// LabGrace keeps the lab's ganesha lease and grace (storhaug's stack's)
	// for a stack that would run with ganesha's defaults.
	LabGrace bool
}

// TunablesSame reports whether the stack runs with storhaug's stack's
// settings rather than as shipped ("tunables":"same" in the bench).
func (o Options) TunablesSame() bool { return o.CTDBTunables != nil || o.LabGrace }

// VIPs of every stack, homed (where the stack lets an admin say so) on
// n1..n3: the same as storhaug's shipped sample configuration.
var vipHomes = []struct{ addr, home string }{
	{"198.51.100.201", "n1"}, {"198.51.100.202", "n2"}, {"198.51.100.203", "n3"},
}

const vipPrefix = 24

func vipAddrs() []string {
	var a []string
	for _, v := range vipHomes {
		a = append(a, v.addr)
	}
	return a
}

// tunablesPath is CTDB's tunables file, on the host and in every node: the
// lab writes shortened keepalives into the nodes' file; a stack as shipped
// gets the package's file (the host's) back.
const tunablesPath = "/etc/ctdb/ctdb.tunables"

// writeTunables puts CTDB's tunables file on every node: the host's (the
// package's) file, or the options' values.
func writeTunables(l *lab.Lab, o Options) error {
	var data []byte
	if o.CTDBTunables == nil {
		b, err := os.ReadFile(tunablesPath)
		if err != nil {
			return fmt.Errorf("stacks: CTDB's shipped tunables: %w", err)
		}
		data = b
	} else {
		names := make([]string, 0, len(o.CTDBTunables))
		for k := range o.CTDBTunables {
			names = append(names, k)
		}
		sort.Strings(names)
		var b strings.Builder
		b.WriteString("# The same CTDB tunables for every stack (test/stacks).\n")
		for _, k := range names {
			fmt.Fprintf(&b, "%s=%d\n", k, o.CTDBTunables[k])
		}
		data = []byte(b.String())
	}
	for _, n := range l.Nodes() {
		if err := n.WriteFile(tunablesPath, data, 0o644); err != nil {
			return fmt.Errorf("stacks: %s: %w", n.Name(), err)
		}
	}
	return nil
}

// ganeshaDefaults removes the lab's shortened lease and grace from every
// node's ganesha.conf: ganesha's defaults (Lease_Lifetime 60 s,
// Grace_Period 90 s) apply.
func ganeshaDefaults(l *lab.Lab) error {
	for _, n := range l.Nodes() {
		b, err := n.ReadFile(lab.GaneshaConf)
		if err != nil {
			return fmt.Errorf("stacks: %s: %w", n.Name(), err)
		}
		var out []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.TrimSpace(line)
			if strings.HasPrefix(f, "Lease_Lifetime") || strings.HasPrefix(f, "Grace_Period") {
				continue
			}
			out = append(out, line)
		}
		if err := n.WriteFile(lab.GaneshaConf, []byte(strings.Join(out, "\n")), 0o644); err != nil {
			return fmt.Errorf("stacks: %s: %w", n.Name(), err)
		}
	}
	return nil
}

// run runs a command in a node, its output in the error.
func run(ctx context.Context, n *lab.Node, name string, args ...string) (string, error) {
	r, err := n.Run(ctx, name, args...)
	if err != nil {
		return "", fmt.Errorf("stacks: %s: %s %s: %v: %s", n.Name(), name, strings.Join(args, " "), err, strings.TrimSpace(r.Output()))
	}
	return r.Stdout, nil
}

// sh runs a shell script in a node, its output in the error.
func sh(ctx context.Context, n *lab.Node, script string) error {
	r, err := n.Sh(ctx, script)
	if err != nil {
		return fmt.Errorf("stacks: %s: %v: %s", n.Name(), err, strings.TrimSpace(r.Output()))
	}
	return nil
}

// Holders maps each address to the live node that has it on eth0, as the
// nodes' kernels say (whatever put it there).
func Holders(l *lab.Lab, addrs ...string) (map[string]string, error) {
	want := map[string]bool{}
	for _, a := range addrs {
		want[a] = true
	}
	got := map[string]string{}
	for _, n := range l.Nodes() {
		if !n.Alive() {
			continue
		}
		err := n.Do(func() error {
			link, err := netlink.LinkByName(n.Link())
			if err != nil {
				return err
			}
			as, err := netlink.AddrList(link, netlink.FAMILY_ALL)
			if err != nil {
				return err
			}
			for _, a := range as {
				if s := a.IP.String(); want[s] {
					if other, dup := got[s]; dup {
						return fmt.Errorf("%s on %s and %s", s, other, n.Name())
					}
					got[s] = n.Name()
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("stacks: addresses of %s: %w", n.Name(), err)
		}
	}
	return got, nil
}

// waitServed waits until every VIP is on some node, placed as the stack
// places them at rest (placed returns nil), and a client (c1) connects to
// each of ports through it; it returns where the VIPs are.
func waitServed(ctx context.Context, l *lab.Lab, ports []int, placed func(map[string]string) error, timeout time.Duration) (map[string]string, error) {
	addrs := vipAddrs()
	var where map[string]string
	err := l.WaitFor(ctx, "VIPs up and serving", timeout, func() (bool, error) {
		h, err := Holders(l, addrs...)
		if err != nil {
			return false, err
		}
		if len(h) != len(addrs) {
			return false, fmt.Errorf("VIPs held: %v", h)
		}
		if err := placed(h); err != nil {
			return false, err
		}
		for _, a := range addrs {
			for _, p := range ports {
				err := l.Client(1).Do(func() error {
					c, err := net.DialTimeout("tcp", net.JoinHostPort(a, strconv.Itoa(p)), time.Second)
					if err == nil {
						c.Close()
					}
					return err
				})
				if err != nil {
					return false, err
				}
			}
		}
		where = h
		return true, nil
	})
	return where, err
}

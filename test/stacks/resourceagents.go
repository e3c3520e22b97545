package stacks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/storhaug/storhaug/test/lab"
)

// ResourceAgents is the stack an admin builds today from Debian 12's
// resource-agents (4.12) and Pacemaker, as its documentation and the usual
// guides lay it out:
//
//   - a clone of ocf:heartbeat:CTDB with ctdb_recovery_lock on the shared
//     storage and ctdb_manages_samba=yes (CTDB's 50.samba starts smbd, as
//     in storhaug's shipped sample); its other parameters at their defaults,
//     which already are the lab's paths;
//   - per VIP, a group: portblock action=block, IPaddr2, portblock
//     action=unblock with tickle_dir on the shared storage (its monitor
//     records the VIP's connections there; its start on the new owner sends
//     them tickle ACKs) and reset_local_on_unblock_stop=true, for TCP ports
//     445 and 2049, the group ordered after and colocated with CTDB and
//     ganesha and preferring its home node;
//   - for NFS, which Debian 12's resource-agents has no agent for,
//     storhaug's ocf:storhaug:ganesha clone and a ganesha_trigger per VIP
//     (clone-max=1, notify, after the VIP's group), ganesha with its default
//     lease and grace (90 s) and nothing lifting grace early.
//
// One change to what Debian ships: iptables 1.8.9 lists a rule's protocol
// as a number ("6", netfilter bug 1729), and portblock 4.12 finds its rules
// by the name ("tcp"; fixed upstream by resource-agents PR 1924, after
// Debian 12), so as shipped its unblock never removes the block and the
// clients never get through. Each node's /etc/alternatives/iptables
// (inside the node's /etc overlay) points at a wrapper that lists
// protocols by name, as iptables before and after 1.8.9 does.
func ResourceAgents(o Options) Stack { return &resourceAgents{opts: o} }

type resourceAgents struct {
	opts Options
	vips map[string]string
}

func (s *resourceAgents) Name() string            { return "resource-agents" }
func (s *resourceAgents) Protocols() []string     { return []string{"smb", "nfs"} }
func (s *resourceAgents) VIPs() map[string]string { return copyMap(s.vips) }

// Tracked: the unblock instance's monitor has written client's connection
// into its tickle file.
func (s *resourceAgents) Tracked(ctx context.Context, l *lab.Lab, vip, client string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(l.SharedDir(), raTickleDir, vip))
	if err != nil {
		return false, err
	}
	if !strings.Contains(string(b), client+":") {
		return false, fmt.Errorf("no connection of %s in the tickle file: %q", client, b)
	}
	return true, nil
}

// raTickleDir is where the unblock instances record connections, on the
// shared storage (relative to the lab's SharedDir).
const raTickleDir = "tickle-ra"

// portblockPorts are the ports each VIP's portblock pair blocks and tickles.
const portblockPorts = "445,2049"

// iptablesWrapper stands in for /etc/alternatives/iptables (see
// ResourceAgents).
const iptablesWrapper = `#!/bin/sh
# test/stacks: iptables 1.8.9 lists protocols as numbers; portblock expects names.
case " $* " in
*" -L "*|*" --list "*)
	/usr/sbin/iptables-nft "$@" | sed -E 's/^([A-Z]+[[:space:]]+)6([[:space:]])/\1tcp\2/; s/^([A-Z]+[[:space:]]+)17([[:space:]])/\1udp\2/'
	;;
*)
	exec /usr/sbin/iptables-nft "$@"
	;;
esac
`

const iptablesWrapperPath = "/etc/storhaug-stacks/iptables"

// atRest: every VIP at home.
func (s *resourceAgents) atRest(h map[string]string) error {
	for _, v := range vipHomes {
		if h[v.addr] != v.home {
			return fmt.Errorf("%s on %q, not at home on %s", v.addr, h[v.addr], v.home)
		}
	}
	return nil
}

func (s *resourceAgents) Setup(ctx context.Context, l *lab.Lab) error {
	if err := writeTunables(l, s.opts); err != nil {
		return err
	}
	if !s.opts.LabGrace {
		if err := ganeshaDefaults(l); err != nil {
			return err
		}
	}
	tickles := filepath.Join(l.SharedDir(), raTickleDir)
	for _, n := range l.Nodes() {
		if err := n.WriteFile(iptablesWrapperPath, []byte(iptablesWrapper), 0o755); err != nil {
			return fmt.Errorf("stacks: %s: %w", n.Name(), err)
		}
		if err := sh(ctx, n, fmt.Sprintf("mkdir -p %s && ln -sfn %s /etc/alternatives/iptables", tickles, iptablesWrapperPath)); err != nil {
			return err
		}
	}
	if err := l.ReplaceCIB(ctx, "resources", s.resources(l)); err != nil {
		return fmt.Errorf("stacks: resources: %w", err)
	}
	if err := l.ReplaceCIB(ctx, "constraints", s.constraints()); err != nil {
		return fmt.Errorf("stacks: constraints: %w", err)
	}
	where, err := waitServed(ctx, l, []int{lab.SMBPort, lab.GaneshaPort}, s.atRest, 4*time.Minute)
	if err != nil {
		return fmt.Errorf("stacks: %s: %w", s.Name(), err)
	}
	s.vips = where
	return nil
}

func raID(i int, what string) string {
	if what == "" {
		return fmt.Sprintf("ra-vip%d", i)
	}
	return fmt.Sprintf("ra-vip%d-%s", i, what)
}

// nv is an instance_attributes or meta_attributes block.
func nv(tag, id string, pairs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<%s id="%s-%s">`, tag, id, tag)
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(&b, `<nvpair id="%s-%s-%s" name="%s" value="%s"/>`, id, tag, pairs[i], pairs[i], pairs[i+1])
	}
	fmt.Fprintf(&b, `</%s>`, tag)
	return b.String()
}

// ops: name, interval, timeout triples.
func ops(id string, specs ...string) string {
	var b strings.Builder
	b.WriteString("<operations>")
	for i := 0; i+2 < len(specs); i += 3 {
		fmt.Fprintf(&b, `<op id="%s-%s-%s" name="%s" interval="%s" timeout="%s"/>`, id, specs[i], specs[i+1], specs[i], specs[i+1], specs[i+2])
	}
	b.WriteString("</operations>")
	return b.String()
}

func primitive(id, class, provider, typ, body string) string {
	return fmt.Sprintf(`<primitive id="%s" class="%s" provider="%s" type="%s">%s</primitive>`, id, class, provider, typ, body)
}

func (s *resourceAgents) resources(l *lab.Lab) string {
	var b strings.Builder
	b.WriteString("<resources>")
	ctdb := primitive("ra-ctdb", "ocf", "heartbeat", "CTDB",
		nv("instance_attributes", "ra-ctdb", "ctdb_recovery_lock", l.ClusterLock(), "ctdb_manages_samba", "yes")+
			ops("ra-ctdb", "start", "0s", "90s", "stop", "0s", "100s", "monitor", "10s", "20s"))
	fmt.Fprintf(&b, `<clone id="ra-ctdb-clone">%s%s</clone>`, nv("meta_attributes", "ra-ctdb-clone", "interleave", "true"), ctdb)
	ganesha := primitive("ra-ganesha", "ocf", "storhaug", "ganesha",
		nv("instance_attributes", "ra-ganesha", "config", lab.GaneshaConf, "state_mnt", l.SharedDir(), "logfile", "/var/log/ganesha/ganesha.log")+
			ops("ra-ganesha", "start", "0s", "60s", "stop", "0s", "60s", "monitor", "10s", "30s"))
	fmt.Fprintf(&b, `<clone id="ra-ganesha-clone">%s%s</clone>`, nv("meta_attributes", "ra-ganesha-clone", "interleave", "true", "notify", "true"), ganesha)
	tickles := filepath.Join(l.SharedDir(), raTickleDir)
	for i, v := range vipHomes {
		i++
		block := primitive(raID(i, "block"), "ocf", "heartbeat", "portblock",
			nv("instance_attributes", raID(i, "block"), "ip", v.addr, "protocol", "tcp", "portno", portblockPorts, "action", "block")+
				ops(raID(i, "block"), "start", "0s", "20s", "stop", "0s", "20s", "monitor", "10s", "10s"))
		ip := primitive(raID(i, ""), "ocf", "heartbeat", "IPaddr2",
			nv("instance_attributes", raID(i, ""), "ip", v.addr, "cidr_netmask", fmt.Sprint(vipPrefix), "nic", "eth0")+
				ops(raID(i, ""), "start", "0s", "20s", "stop", "0s", "20s", "monitor", "10s", "20s"))
		unblock := primitive(raID(i, "unblock"), "ocf", "heartbeat", "portblock",
			nv("instance_attributes", raID(i, "unblock"), "ip", v.addr, "protocol", "tcp", "portno", portblockPorts, "action", "unblock",
				"tickle_dir", tickles, "reset_local_on_unblock_stop", "true")+
				ops(raID(i, "unblock"), "start", "0s", "20s", "stop", "0s", "20s", "monitor", "10s", "10s"))
		fmt.Fprintf(&b, `<group id="%s">%s%s%s</group>`, raID(i, "group"), block, ip, unblock)
		trigger := primitive(raID(i, "trigger"), "ocf", "storhaug", "ganesha_trigger",
			nv("instance_attributes", raID(i, "trigger"), "ip", v.addr)+
				ops(raID(i, "trigger"), "start", "0s", "30s", "stop", "0s", "30s", "monitor", "10s", "20s", "notify", "0s", "30s"))
		fmt.Fprintf(&b, `<clone id="%s">%s%s</clone>`, raID(i, "trigger-clone"),
			nv("meta_attributes", raID(i, "trigger-clone"), "clone-max", "1", "clone-node-max", "1", "notify", "true", "interleave", "true"), trigger)
	}
	b.WriteString("</resources>")
	return b.String()
}

func (s *resourceAgents) constraints() string {
	var b strings.Builder
	b.WriteString("<constraints>")
	for i, v := range vipHomes {
		i++
		g := raID(i, "group")
		for _, c := range []string{"ra-ctdb-clone", "ra-ganesha-clone"} {
			fmt.Fprintf(&b, `<rsc_order id="%s-after-%s" first="%s" then="%s" kind="Mandatory"/>`, g, c, c, g)
			fmt.Fprintf(&b, `<rsc_colocation id="%s-with-%s" rsc="%s" with-rsc="%s" score="INFINITY"/>`, g, c, g, c)
		}
		t := raID(i, "trigger-clone")
		fmt.Fprintf(&b, `<rsc_order id="%s-after-group" first="%s" then="%s" kind="Mandatory"/>`, t, g, t)
		fmt.Fprintf(&b, `<rsc_colocation id="%s-with-group" rsc="%s" with-rsc="%s" score="INFINITY"/>`, t, t, g)
		fmt.Fprintf(&b, `<rsc_location id="%s-prefers-%s" rsc="%s" node="%s" score="100"/>`, g, v.home, g, v.home)
	}
	b.WriteString("</constraints>")
	return b.String()
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

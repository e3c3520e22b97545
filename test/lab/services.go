package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/vishvananda/netlink"

	"github.com/storhaug/storhaug/ganesha"
)

// Service is a daemon the lab can run on a node.
type Service string

const (
	Corosync  Service = "corosync"
	Pacemaker Service = "pacemaker" // pacemakerd and its subdaemons
	DBus      Service = "dbus"
	CTDB      Service = "ctdb"
	Samba     Service = "smbd"
	Ganesha   Service = "ganesha"
	// Rpcbind and Statd run on every node when Options.NFSv3 is set (ganesha
	// registers NFSv3, MOUNT and NLM with rpcbind, and NLM asks statd to
	// monitor its clients).
	Rpcbind Service = "rpcbind"
	Statd   Service = "statd"
)

type serviceDef struct {
	argv  []string
	env   []string
	main  []string // comm names to send SIGTERM to for a stop
	procs []string // comm names that must be gone after a stop
	// stopTimeout: after it the remaining procs are SIGKILLed.
	stopTimeout time.Duration
}

var services = map[Service]serviceDef{
	Corosync: {
		argv: []string{"corosync", "-f"},
		main: []string{"corosync"}, procs: []string{"corosync"}, stopTimeout: 20 * time.Second,
	},
	Pacemaker: {
		argv: []string{"pacemakerd"},
		env:  []string{"PCMK_logfile=/var/log/pacemaker/pacemaker.log", "PCMK_logfacility=none"},
		main: []string{"pacemakerd"},
		procs: []string{"pacemakerd", "pacemaker-based", "pacemaker-fenced", "pacemaker-execd",
			"pacemaker-attrd", "pacemaker-schedulerd", "pacemaker-controld"},
		stopTimeout: 90 * time.Second,
	},
	DBus: {
		argv: []string{"dbus-daemon", "--system", "--nofork", "--nopidfile"},
		main: []string{"dbus-daemon"}, procs: []string{"dbus-daemon"}, stopTimeout: 10 * time.Second,
	},
	CTDB: {
		argv:        []string{"ctdbd"},
		main:        []string{"ctdbd"},
		procs:       []string{"ctdbd", "ctdb_recoverd", "ctdb-recoverd", "ctdb-eventd", "ctdb_mutex_fcnt"},
		stopTimeout: 30 * time.Second,
	},
	Samba: {
		argv:  []string{"smbd", "--foreground", "--no-process-group"},
		main:  []string{"smbd"},
		procs: []string{"smbd", "smbd-notifyd", "cleanupd", "smbd-cleanupd", "samba-bgqd"}, stopTimeout: 20 * time.Second,
	},
	Rpcbind: {
		argv: []string{"rpcbind", "-f"},
		main: []string{"rpcbind"}, procs: []string{"rpcbind"}, stopTimeout: 10 * time.Second,
	},
	Statd: {
		argv: []string{"rpc.statd", "-F", "--no-notify"},
		main: []string{"rpc.statd"}, procs: []string{"rpc.statd"}, stopTimeout: 10 * time.Second,
	},
	Ganesha: {
		argv: []string{"ganesha.nfsd", "-F", "-L", "/var/log/ganesha/ganesha.log", "-f", GaneshaConf,
			"-p", "/run/ganesha/ganesha.pid", "-N", "NIV_EVENT"},
		main: []string{"ganesha.nfsd"}, procs: []string{"ganesha.nfsd"}, stopTimeout: 30 * time.Second,
	},
}

// Services in the order they start.
var serviceOrder = []Service{Corosync, Pacemaker, DBus, CTDB, Rpcbind, Statd, Ganesha, Samba}

func (l *Lab) mode(s Service) Mode {
	switch s {
	case Corosync, Pacemaker:
		return l.opts.Pacemaker
	case DBus:
		return l.opts.DBus
	case CTDB:
		return l.opts.CTDB
	case Samba:
		return l.opts.Samba
	case Ganesha:
		return l.opts.Ganesha
	case Rpcbind, Statd:
		if l.opts.NFSv3 && l.opts.Ganesha != Off {
			return Started
		}
	}
	return Off
}

// Start starts a service on the node (the lab's way: the daemon a child of
// the node's PID 1, its stdout and stderr in /var/log/lab/<service>.out)
// and waits until it is ready: corosync answers, pacemakerd's subdaemons
// run, the bus socket accepts, ctdbd answers (not: is healthy), smbd and
// ganesha.nfsd accept TCP connections (ganesha also owns its D-Bus name).
// Starting a running service is a no-op.
func (n *Node) Start(ctx context.Context, s Service) error {
	def, ok := services[s]
	if !ok {
		return fmt.Errorf("lab: unknown service %q", s)
	}
	if n.running(def.main...) {
		return nil
	}
	if s == Statd {
		// statd's directories, in the node's /var/lib/nfs.
		if r, err := n.Sh(ctx, "mkdir -p /var/lib/nfs/sm /var/lib/nfs/sm.bak && chown statd /var/lib/nfs/sm /var/lib/nfs/sm.bak"); err != nil {
			return fmt.Errorf("lab: %s: statd directories: %v %s", n.name, err, r.Output())
		}
	}
	if err := n.spawn(ctx, string(s), def.env, def.argv...); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return n.lab.WaitFor(ctx, fmt.Sprintf("%s: %s ready", n.name, s), 60*time.Second, func() (bool, error) {
		return n.ready(ctx, s)
	})
}

// spawn starts a daemon inside the node, detached (setsid -f): its parent
// becomes the node's PID 1. Output goes to /var/log/lab/<tag>.out.
func (n *Node) spawn(ctx context.Context, tag string, env []string, argv ...string) error {
	if !n.Alive() {
		return fmt.Errorf("lab: node %s is down", n.name)
	}
	out, err := os.OpenFile(filepath.Join(n.LogDir(), "lab", tag+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	fmt.Fprintf(out, "=== %s lab: starting %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd := n.Command(ctx, env, "setsid", append([]string{"-f"}, argv...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("lab: %s: start %s: %w", n.name, tag, err)
	}
	return nil
}

func (n *Node) ready(ctx context.Context, s Service) (bool, error) {
	def := services[s]
	if !n.running(def.main...) {
		return false, fmt.Errorf("%s is not running (see %s)", s, filepath.Join(n.LogDir(), "lab", string(s)+".out"))
	}
	switch s {
	case Corosync:
		_, err := n.Run(ctx, "corosync-cfgtool", "-s")
		return err == nil, err
	case Pacemaker:
		for _, p := range def.procs {
			if !n.running(p) {
				return false, nil
			}
		}
		return true, nil
	case DBus:
		p, err := n.Path("/run/dbus/system_bus_socket")
		if err != nil {
			return false, err
		}
		c, err := net.DialTimeout("unix", p, time.Second)
		if err != nil {
			return false, err
		}
		c.Close()
		return true, nil
	case CTDB:
		_, err := n.Run(ctx, "ctdb", "pnn")
		return err == nil, err
	case Samba:
		return n.tcpOpen(SMBPort)
	case Rpcbind:
		return n.tcpOpen(111)
	case Ganesha:
		if ok, err := n.tcpOpen(GaneshaPort); !ok {
			return false, err
		}
		conn, err := n.SystemBus()
		if err != nil {
			return false, err
		}
		defer conn.Close()
		var has bool
		err = conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, "org.ganesha.nfsd").Store(&has)
		return has, err
	}
	return true, nil
}

// tcpOpen: something listens on the node's address at port.
func (n *Node) tcpOpen(port int) (bool, error) {
	var ok bool
	err := n.Do(func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(n.addr4, strconv.Itoa(port)), time.Second)
		if err != nil {
			return err
		}
		ok = true
		return c.Close()
	})
	return ok, err
}

// GaneshaInGrace asks the node's ganesha.nfsd, over the node's own system
// bus, whether it is in grace.
func (n *Node) GaneshaInGrace(ctx context.Context) (bool, error) {
	p, err := n.Path("/run/dbus/system_bus_socket")
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b, err := ganesha.Connect(ctx, "unix:path="+p)
	if err != nil {
		return false, err
	}
	defer b.Close()
	return b.GetGrace(ctx)
}

// SystemBus connects to the node's private system D-Bus (from the host,
// through /proc/<pid>/root). The caller closes it.
func (n *Node) SystemBus() (*dbus.Conn, error) {
	p, err := n.Path("/run/dbus/system_bus_socket")
	if err != nil {
		return nil, err
	}
	conn, err := dbus.Dial("unix:path=" + p)
	if err != nil {
		return nil, err
	}
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// Stop stops a service on the node: SIGTERM to its main process, then waits
// until all its processes are gone (SIGKILL after the service's stop
// timeout). Stopping a stopped service is a no-op.
func (n *Node) Stop(ctx context.Context, s Service) error {
	def, ok := services[s]
	if !ok {
		return fmt.Errorf("lab: unknown service %q", s)
	}
	if !n.Alive() {
		return nil
	}
	if _, err := n.signalProcs(syscall.SIGTERM, def.main...); err != nil {
		return err
	}
	deadline := time.Now().Add(def.stopTimeout)
	for n.running(def.procs...) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			n.signalProcs(syscall.SIGKILL, def.procs...)
			return waitNot(ctx, 10*time.Second, func() bool { return n.running(def.procs...) },
				fmt.Errorf("lab: %s: %s still runs after SIGKILL", n.name, s))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func waitNot(ctx context.Context, d time.Duration, cond func() bool, err error) error {
	deadline := time.Now().Add(d)
	for cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// KillDaemon SIGKILLs every process called name (as /proc/pid/comm shows
// it, e.g. "ctdbd", "ganesha.nfsd", "pacemaker-contr") inside the node, by
// its pid, and returns how many it killed; none is an error.
func (l *Lab) KillDaemon(node, name string) (int, error) {
	n := l.Node(node)
	if n == nil {
		return 0, fmt.Errorf("lab: no node %q", node)
	}
	l.logf("kill %s on %s", name, node)
	c, err := n.signalProcs(syscall.SIGKILL, name)
	if err == nil && c == 0 {
		err = fmt.Errorf("lab: %s: no process called %q", node, name)
	}
	return c, err
}

// StartAll starts a service on the given nodes (all nodes if none), in
// parallel.
func (l *Lab) StartAll(ctx context.Context, s Service, nodes ...string) error {
	return l.each(nodes, func(n *Node) error { return n.Start(ctx, s) })
}

// StopAll stops a service on the given nodes (all if none), in parallel.
func (l *Lab) StopAll(ctx context.Context, s Service, nodes ...string) error {
	return l.each(nodes, func(n *Node) error { return n.Stop(ctx, s) })
}

func (l *Lab) each(names []string, fn func(*Node) error) error {
	var ns []*Node
	if len(names) == 0 {
		ns = l.nodes
	}
	for _, name := range names {
		n := l.Node(name)
		if n == nil {
			return fmt.Errorf("lab: no node %q", name)
		}
		ns = append(ns, n)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ns))
	for i, n := range ns {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn(n) }()
	}
	wg.Wait()
	var msgs []string
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	return nil
}

// startServices starts, on the given nodes, every service Options says is
// Started, in order (corosync, pacemakerd, dbus, ctdbd, ganesha.nfsd; smbd
// once CTDB is healthy), and waits for the cluster-level readiness: a DC
// with every running node online, CTDB healthy. Pacemaker and CTDB settle
// in parallel.
func (l *Lab) startServices(ctx context.Context, nodes []*Node, t0 time.Time) error {
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.name
	}
	timed := func(key string) {
		if len(nodes) == len(l.nodes) {
			l.setTiming(key, time.Since(t0))
		}
	}
	for _, s := range []Service{Corosync, Pacemaker, DBus, CTDB, Rpcbind, Statd, Ganesha} {
		if l.mode(s) != Started {
			continue
		}
		if err := l.StartAll(ctx, s, names...); err != nil {
			return err
		}
		if s == Ganesha {
			timed("ganesha")
		}
	}
	if l.mode(Pacemaker) == Started {
		if err := l.WaitClusterReady(ctx, 90*time.Second); err != nil {
			return err
		}
		timed("pacemaker-dc")
	}
	if l.mode(CTDB) == Started {
		if err := l.WaitCTDBHealthy(ctx, 90*time.Second); err != nil {
			return err
		}
		timed("ctdb-healthy")
	}
	if l.mode(Samba) == Started {
		if err := l.StartAll(ctx, Samba, names...); err != nil {
			return err
		}
		timed("samba")
	}
	return nil
}

// WaitCTDBHealthy waits until `ctdb nodestatus all` says every node whose
// ctdbd runs is OK (as seen from the first such node), and at least one is.
func (l *Lab) WaitCTDBHealthy(ctx context.Context, timeout time.Duration) error {
	return l.WaitFor(ctx, "CTDB healthy on every node", timeout, func() (bool, error) {
		var want []*Node
		for _, n := range l.nodes {
			if n.Alive() && n.running("ctdbd") {
				want = append(want, n)
			}
		}
		if len(want) == 0 {
			return false, fmt.Errorf("no ctdbd runs")
		}
		for _, n := range want {
			r, err := n.Run(ctx, "ctdb", "nodestatus")
			if err != nil {
				return false, fmt.Errorf("%s: %s", n.name, strings.TrimSpace(r.Output()))
			}
		}
		return true, nil
	})
}

// Recover boots a crashed (or stopped, or fenced) node again and starts
// its services as at Up (those Options says are Started), waiting until it
// is back: in Pacemaker's membership, CTDB healthy, smbd and ganesha
// answering. Its private state (CIB, CTDB databases, /etc) survived the
// crash, as a real node's disk would. With Pacemaker running on other
// nodes, a crashed node is first left to be fenced (the cluster sees it
// offline and clean, see WaitFenced): a node booted before the fencer shot
// it would be shot again half-way through its boot. A node the fencer has
// already powered on again (stonith reboot) is not booted a second time:
// Recover waits for its boot sequence and starts what is still missing.
func (l *Lab) Recover(ctx context.Context, node string) error {
	n := l.Node(node)
	if n == nil {
		return fmt.Errorf("lab: no node %q", node)
	}
	t0 := time.Now()
	if n.Alive() {
		// the cluster may be about to fence it (cut off, then back)
		if err := l.waitNotUnclean(ctx, node, 60*time.Second); err != nil {
			return err
		}
	}
	if !n.Alive() {
		if err := l.WaitFenced(ctx, node, 90*time.Second); err != nil {
			return err
		}
	}
	unlock, err := n.lockFile(ctx, "power.lock")
	if err != nil {
		return err
	}
	booted := false
	if !n.Alive() {
		l.logf("recover %s", node)
		if err := n.boot(); err != nil {
			unlock()
			return err
		}
		booted = true
		if err := l.saveState(); err != nil {
			unlock()
			return err
		}
	}
	seqUnlock, err := n.lockFile(ctx, "boot.lock") // after a fence daemon's boot sequence
	unlock()
	if err != nil {
		return err
	}
	defer seqUnlock()
	if err := l.startServices(ctx, []*Node{n}, t0); err != nil {
		return err
	}
	if booted {
		l.logf("%s recovered in %.1fs", node, time.Since(t0).Seconds())
	}
	return nil
}

// waitNotUnclean waits while another node's Pacemaker (with quorum) holds
// node unclean: it will fence it.
func (l *Lab) waitNotUnclean(ctx context.Context, node string, timeout time.Duration) error {
	if l.opts.Pacemaker != Started {
		return nil
	}
	return l.WaitFor(ctx, node+" not awaiting fencing", timeout, func() (bool, error) {
		s := l.othersView(ctx, node)
		if s == nil || !s.Quorum {
			return true, nil
		}
		for _, ns := range s.Nodes {
			if ns.Name == node && ns.Unclean {
				return false, fmt.Errorf("%s: %s unclean", s.From, node)
			}
		}
		return true, nil
	})
}

// othersView is crm_mon from the first running node other than node.
func (l *Lab) othersView(ctx context.Context, node string) *ClusterState {
	for _, o := range l.nodes {
		if o.name == node || !o.Alive() || !o.running("pacemaker-controld") {
			continue
		}
		if st, err := o.CrmMon(ctx); err == nil {
			return st
		}
	}
	return nil
}

// WaitFenced waits until no node of the cluster still means to fence node:
// the cluster (a running node with Pacemaker and quorum) sees it offline
// and clean, i.e. fenced or out of the cluster cleanly. It returns at once
// when the lab has no Pacemaker, or no other node could fence (none runs
// Pacemaker, or they have no quorum).
func (l *Lab) WaitFenced(ctx context.Context, node string, timeout time.Duration) error {
	if l.opts.Pacemaker != Started {
		return nil
	}
	return l.WaitFor(ctx, node+" fenced or cleanly out of the cluster", timeout, func() (bool, error) {
		s := l.othersView(ctx, node)
		if s == nil || !s.Quorum {
			return true, nil
		}
		for _, ns := range s.Nodes {
			if ns.Name == node {
				if ns.Online || ns.Unclean {
					return false, fmt.Errorf("%s: %s online=%v unclean=%v", s.From, node, ns.Online, ns.Unclean)
				}
			}
		}
		return true, nil
	})
}

// Restart crashes the node and recovers it.
func (l *Lab) Restart(ctx context.Context, node string) error {
	if err := l.Crash(node); err != nil {
		return err
	}
	return l.Recover(ctx, node)
}

// Crash kills the node at once: SIGKILL to its PID 1 takes every process
// of the node with it (no clean shutdown, sockets closed by the kernel).
// Its network namespace and link stay; its disk (private dirs) survives.
func (l *Lab) Crash(node string) error {
	n := l.Node(node)
	if n == nil {
		return fmt.Errorf("lab: no node %q", node)
	}
	l.logf("crash %s", node)
	err := n.kill()
	l.saveState()
	return err
}

// StopCluster stops the node's cluster stack cleanly: pacemakerd (which
// first moves its resources away), then corosync.
func (l *Lab) StopCluster(ctx context.Context, node string) error {
	n := l.Node(node)
	if n == nil {
		return fmt.Errorf("lab: no node %q", node)
	}
	l.logf("stop cluster on %s", node)
	if err := n.Stop(ctx, Pacemaker); err != nil {
		return err
	}
	return n.Stop(ctx, Corosync)
}

// StartCluster starts corosync then pacemakerd on the node and waits until
// it is online in the cluster.
func (l *Lab) StartCluster(ctx context.Context, node string) error {
	n := l.Node(node)
	if n == nil {
		return fmt.Errorf("lab: no node %q", node)
	}
	l.logf("start cluster on %s", node)
	if err := n.Start(ctx, Corosync); err != nil {
		return err
	}
	if err := n.Start(ctx, Pacemaker); err != nil {
		return err
	}
	return l.WaitFor(ctx, node+" online", 60*time.Second, func() (bool, error) {
		st, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		return st.DC != "" && st.IsOnline(node), nil
	})
}

// Repair brings a shared lab back to the state Up left it in, after a test
// that crashed, cut or partitioned nodes (or failed half-way): heals any
// partition, restores every link, recovers dead nodes, restarts the
// services Options says are Started where they are not running, and waits
// until Pacemaker (if Started) has a DC and every node online.
func (l *Lab) Repair(ctx context.Context) error {
	if err := l.Heal(); err != nil {
		return err
	}
	for _, n := range l.nodes {
		for _, port := range []string{n.name, clusterPort(n.name)} {
			if err := l.portOp(port, netlink.LinkSetUp); err != nil {
				return err
			}
		}
	}
	// A node a test left cut off may still be fenced while the others
	// repair: then it is recovered in a second round.
	for round := 0; ; round++ {
		for _, n := range l.nodes {
			if !n.Alive() {
				if err := l.Recover(ctx, n.name); err != nil {
					return err
				}
				continue
			}
			for _, s := range serviceOrder {
				if l.mode(s) == Started && !n.running(services[s].main...) {
					l.logf("repair: start %s on %s", s, n.name)
					if err := n.Start(ctx, s); err != nil {
						return err
					}
				}
			}
		}
		if l.opts.Pacemaker != Started {
			return nil
		}
		if err := l.WaitClusterReady(ctx, 90*time.Second); err != nil {
			return err
		}
		dead := false
		for _, n := range l.nodes {
			dead = dead || !n.Alive()
		}
		if !dead || round == 2 {
			return nil
		}
		l.logf("repair: a node was fenced during the repair; once more")
	}
}

// StopStrays stops, on every node, the daemons of services the lab only
// prepared (ctdbd, smbd, ganesha.nfsd, and dbus-daemon / the cluster stack
// when Prepared) that still run: after ResetCIB no resource owns them, so
// they are leftovers of an earlier test. It returns what it stopped
// ("n2:ctdb"), and logs it.
func (l *Lab) StopStrays(ctx context.Context) ([]string, error) {
	var stopped []string
	for _, n := range l.nodes {
		if !n.Alive() {
			continue
		}
		for i := len(serviceOrder) - 1; i >= 0; i-- {
			s := serviceOrder[i]
			if l.mode(s) == Started || !n.running(services[s].procs...) {
				continue
			}
			l.logf("stray %s on %s: stopping it", s, n.name)
			if err := n.Stop(ctx, s); err != nil {
				return stopped, err
			}
			stopped = append(stopped, n.name+":"+string(s))
		}
	}
	return stopped, nil
}

package agents

// ganesha: the NFS-Ganesha daemon, run as a clone on every NFS node, with
// its NFS state on shared storage (package ganesha does the work).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/storhaug/storhaug/ganesha"
	"github.com/storhaug/storhaug/ocf"
)

var ganeshaAgent = sync.OnceValue(func() *ocf.Agent {
	return &ocf.Agent{
		Name:      "ganesha",
		Version:   "1.0",
		ShortDesc: "NFS-Ganesha user-space NFS server",
		LongDesc: `Starts, stops and monitors ganesha.nfsd, the NFS-Ganesha server, normally as a clone on every NFS node.
Monitor checks that the process in the pidfile is ganesha.nfsd and that it answers on D-Bus as org.ganesha.nfsd
(the interface failover uses to start grace periods).
With state_mnt set, NFS state lives on shared storage: <state_mnt>/nfs-ganesha/<node>/ holds this node's
ganesha/{v4recov,v4old} and statd/{sm,sm.bak}, with links to the other nodes' directories, and /var/lib/nfs
points there while the resource runs (a previous /var/lib/nfs is kept as /var/lib/nfs.backup and put back on stop).
Missing directories and links are created at start. D-Bus must be running before ganesha.nfsd starts.
Start and validate-all read ganesha's effective configuration (the config file and the files it %includes) and refuse,
naming the parameter, what breaks failover: NFSv4 { Server_Scope } unset or other than parameter server_scope
(every node must report one scope, or Linux clients refuse to reclaim their state on the node that takes an address over:
"server scope mismatch"), NFS_CORE_PARAM { Clustered } true, ganesha's default (the fs recovery backend then keeps
client records in v4recov/node<id>, which a takeover reads with the wrong names: nobody can reclaim), NFSv4
{ Grace_Period } shorter than Lease_Lifetime, NFSv4 { Graceless = true }.
Grace after a failover ends as soon as every client in the taken-over records has sent RECLAIM_COMPLETE only when
NFS_CORE_PARAM { Enable_NLM = false } (an NFSv4-only cluster), at ganesha's next reaper run (every Lease_Lifetime/2 s,
at most 10: Lease_Lifetime = 10 makes it at most 5 s after the last reclaim); with NLM on (NFSv3 locks) it always
lasts Grace_Period.
A release (ganesha_trigger's stop, when an address leaves this node: a move, a failback) puts this node's ganesha in
grace too, and that grace lasts its whole Grace_Period even with NLM off: ganesha (4.3, and its source to date) starts
it without recounting the clients to wait for, and each released client that had reclaimed here counts one reclaim
back, so the count never comes out even. Until it ends, new opens of this node's other clients wait, and a takeover
here restarts it (Grace_Period from the takeover, whatever its clients do).
Start warns when NLM is on although Protocols has no NFSv3.
With NLM on, when another node's instance stops (a node lost, or stopped), the post-stop notification puts this
node's ganesha into grace too ("0:"), as CTDB's NFS-Ganesha callout does at every IP reallocation: the stopped
node's NLM locks are gone from the shared file system, and until their holders have reclaimed them on the node that
takes the address over (after SM_NOTIFY), no client of any node may take them. With NLM off (NFSv4 only) the other
nodes are left out of grace: ganesha's grace there would end at an arbitrary moment or hold every client's new opens
for Grace_Period; the window is the time from the fencing to the clients' reclaim on the new owner. For an NFSv3 cluster the shortest safe grace is
Grace_Period = Lease_Lifetime, at least the time the NFSv3 clients need to get SM_NOTIFY and reclaim (ganesha_trigger
waits 10 s for their answers): e.g. Lease_Lifetime = 20; Grace_Period = 20; the admin trades a state lost by a client
that cannot reach the cluster for longer than a lease (a network cut, a paused VM) and more lease renewals for shorter
grace after each failover.`,
		Params: []ocf.Param{
			{Name: "config", Default: "/etc/ganesha/ganesha.conf", ShortDesc: "configuration file",
				LongDesc: "Full path of ganesha.nfsd's configuration file (-f)."},
			{Name: "pidfile", Default: "/var/run/ganesha/ganesha.pid", ShortDesc: "pidfile",
				LongDesc: "Full path of the pidfile ganesha.nfsd writes (-p); stop and monitor find the daemon by it."},
			{Name: "options", ShortDesc: "more options",
				LongDesc: "More command-line options for ganesha.nfsd, separated by spaces (such as \"-E 42\")."},
			{Name: "logfile", ShortDesc: "log file",
				LongDesc: "ganesha.nfsd's log file (-L), or SYSLOG. Empty: ganesha's own default."},
			{Name: "debuglevel", ShortDesc: "log level",
				LongDesc: "ganesha.nfsd's log level (-N), such as NIV_EVENT. Empty: ganesha's own default."},
			{Name: "binary", Default: ganesha.DefaultBinary, ShortDesc: "ganesha.nfsd binary",
				LongDesc: "Full path of the ganesha.nfsd binary."},
			{Name: "state_mnt", ShortDesc: "shared state directory",
				LongDesc: "Where the shared NFS state storage is mounted (storhaug.conf HA_MNT_DIR/HA_NFS_MNT_DIR). " +
					"Empty: /var/lib/nfs is left alone."},
			{Name: "state_fs", Deprecated: "ignored: the state storage is mounted by its own resource", ShortDesc: "shared state FS type",
				LongDesc: "Accepted for compatibility with the original storhaug's CIB."},
			{Name: "nodename", ShortDesc: "this node's state directory name",
				LongDesc: "The name of this node's directory under <state_mnt>/nfs-ganesha. Empty: the node's name in Pacemaker " +
					"(the name ganesha_trigger sends in grace requests), else the host name."},
			{Name: "peers", ShortDesc: "the other nodes",
				LongDesc: "The other NFS nodes, separated by spaces or commas, whose state directories this node links to. " +
					"Empty: every node directory found under <state_mnt>/nfs-ganesha."},
			{Name: "nfs_dir", Default: ganesha.DefaultNFSDir, ShortDesc: "local NFS state directory",
				LongDesc: "The local NFS state directory that is pointed at the shared one (ganesha's RecoveryRoot is under it)."},
			{Name: "dbus_address", ShortDesc: "D-Bus address",
				LongDesc: "The address of the bus ganesha.nfsd registers on. Empty: the system bus."},
			{Name: "server_scope", ShortDesc: "the cluster's NFSv4 server scope",
				LongDesc: "The value NFSv4 { Server_Scope } must have in ganesha's configuration, the same on every node " +
					"(storhaug setup sets the cluster's name, HA_NAME). Empty: any value; unset is only a warning."},
			{Name: "dbus_timeout", Type: ocf.Integer, Default: "10", ShortDesc: "D-Bus timeout (s)",
				LongDesc: "How long monitor waits for ganesha.nfsd to answer on D-Bus, in seconds (never longer than the operation's timeout)."},
		},
		Actions: []ocf.Action{
			{Name: "start", Timeout: 60 * time.Second, Handler: ganeshaStart},
			{Name: "stop", Timeout: 60 * time.Second, Handler: ganeshaStop},
			{Name: "monitor", Timeout: 30 * time.Second, Interval: 10 * time.Second, Handler: ganeshaMonitor},
			{Name: "validate-all", Timeout: 20 * time.Second, Handler: ganeshaValidate},
			{Name: "notify", Timeout: 20 * time.Second, Handler: ganeshaNotify},
		},
	}
})

// ganeshaConf is the daemon and its state layout as the parameters describe them.
type ganeshaConf struct {
	d      *ganesha.Daemon
	layout *ganesha.Layout // nil without state_mnt
	scope  string          // the Server_Scope every node must have ("" : any)
	bus    string
	dbusTO time.Duration
}

func ganeshaFrom(r *ocf.Request) (*ganeshaConf, error) {
	c := &ganeshaConf{
		d: &ganesha.Daemon{
			Binary:     r.String("binary"),
			Config:     r.String("config"),
			PIDFile:    r.String("pidfile"),
			LogFile:    r.String("logfile"),
			DebugLevel: r.String("debuglevel"),
			Options:    strings.Fields(r.String("options")),
		},
		scope:  r.String("server_scope"),
		bus:    r.String("dbus_address"),
		dbusTO: time.Duration(r.Int("dbus_timeout")) * time.Second,
	}
	if c.bus != "" {
		c.d.Env = []string{"DBUS_SYSTEM_BUS_ADDRESS=" + c.bus}
	}
	for _, p := range []string{"binary", "config", "pidfile"} {
		if !strings.HasPrefix(r.String(p), "/") {
			return c, ocf.Errorf(ocf.ErrConfigured, "parameter %s: %q is not a full path", p, r.String(p))
		}
	}
	if c.dbusTO <= 0 {
		return c, ocf.Errorf(ocf.ErrConfigured, "parameter dbus_timeout: %d is not a positive number of seconds", r.Int("dbus_timeout"))
	}
	if mnt := r.String("state_mnt"); mnt != "" {
		node := r.String("nodename")
		if node == "" {
			node = nodeName(r)
		}
		if err := ganesha.CheckName(node); err != nil {
			return c, ocf.Errorf(ocf.ErrConfigured, "parameter nodename: %w", err)
		}
		var peers []string
		if s := r.String("peers"); s != "" {
			peers = strings.FieldsFunc(s, func(c rune) bool { return c == ',' || c == ' ' || c == '\t' })
			for _, p := range peers {
				if err := ganesha.CheckName(p); err != nil {
					return c, ocf.Errorf(ocf.ErrConfigured, "parameter peers: %w", err)
				}
			}
		}
		c.layout = &ganesha.Layout{Root: mnt, Node: node, Peers: peers, NFSDir: r.String("nfs_dir")}
	}
	return c, nil
}

// nodeName is this node's name in Pacemaker, else the host name.
func nodeName(r *ocf.Request) string {
	if n := r.NodeName(); n != "" {
		return n
	}
	h, _ := os.Hostname()
	return h
}

// validate checks what start needs on this node.
func (c *ganeshaConf) validate() error {
	if st, err := os.Stat(c.d.Binary); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return ocf.Errorf(ocf.ErrInstalled, "parameter binary: %s is not an executable file (is nfs-ganesha installed?)", c.d.Binary)
	}
	f, err := os.Open(c.d.Config)
	if err != nil {
		return ocf.Errorf(ocf.ErrConfigured, "parameter config: cannot read %s: %v", c.d.Config, errors.Unwrap(err))
	}
	f.Close()
	if _, err := c.checkConfig(); err != nil {
		return err
	}
	if c.layout != nil {
		if st, err := os.Stat(c.layout.Root); err != nil || !st.IsDir() {
			return ocf.Errorf(ocf.ErrGeneric, "parameter state_mnt: %s is not a directory (is the shared state storage mounted?)", c.layout.Root)
		}
	}
	return nil
}

// checkConfig reads ganesha's effective configuration and checks what
// failover needs of it (ganesha.Config.CheckHA): a configuration that breaks
// failover is OCF_ERR_CONFIGURED naming ganesha's parameter.
func (c *ganeshaConf) checkConfig() (*ganesha.HA, error) {
	cfg, err := ganesha.ReadConfig(c.d.Config)
	if err != nil {
		return nil, ocf.Errorf(ocf.ErrConfigured, "parameter config: %w", err)
	}
	h, err := cfg.CheckHA(c.scope)
	var ce *ganesha.ConfigError
	if errors.As(err, &ce) && ce.Key == ganesha.KeyScope && c.scope != "" {
		return h, ocf.Errorf(ocf.ErrConfigured, "parameter server_scope (%s): %w", c.scope, err)
	}
	if err != nil {
		return h, ocf.Errorf(ocf.ErrConfigured, "parameter config: %w", err)
	}
	return h, nil
}

func ganeshaValidate(r *ocf.Request) error {
	c, err := ganeshaFrom(r)
	if err != nil {
		return err
	}
	return c.validate()
}

func ganeshaStart(r *ocf.Request) error {
	c, err := ganeshaFrom(r)
	if err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	if h, _ := c.checkConfig(); h != nil {
		for _, w := range h.Warnings {
			r.Log.Warnf("%s", w)
		}
		r.Log.Infof("failover grace: %s", graceSummary(h))
	}
	ctx := r.Context()
	bus, err := ganesha.Connect(ctx, c.bus)
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot start ganesha.nfsd without D-Bus (it would never register): %w", err)
	}
	defer bus.Close()
	ready := func(ctx context.Context, pid int) error { return bus.Answers(ctx, pid) }

	if pid, _ := c.d.PID(); pid != 0 { // already running: wait until it answers
		r.Log.Infof("ganesha.nfsd already runs (pid %d)", pid)
		if c.layout != nil && !c.layout.Active() {
			return ocf.Errorf(ocf.ErrGeneric, "ganesha.nfsd (pid %d) runs, but %s does not lead to %s: stop it first",
				pid, c.layout.NFSDir, c.layout.NodeDir(c.layout.Node))
		}
		for {
			if err = ready(ctx, pid); err == nil {
				return nil
			}
			select {
			case <-ctx.Done():
				return ocf.Errorf(ocf.ErrGeneric, "ganesha.nfsd (pid %d) runs but does not answer on D-Bus: %w", pid, err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if owner, err := bus.OwnerPID(ctx); err == nil {
		return ocf.Errorf(ocf.ErrGeneric, "%s is already owned by pid %d, which is not the ganesha.nfsd of pidfile %s",
			ganesha.BusName, owner, c.d.PIDFile)
	}

	if c.layout != nil {
		if err := c.layout.Ensure(); err != nil {
			return ocf.Errorf(ocf.ErrGeneric, "shared NFS state: %w", err)
		}
		if err := c.layout.Activate(); err != nil {
			return ocf.Errorf(ocf.ErrGeneric, "shared NFS state: %w", err)
		}
	}
	r.Log.Infof("starting %s %s", c.d.Binary, strings.Join(c.d.Args(), " "))
	t0 := time.Now()
	pid, err := c.d.Start(ctx, ready)
	if err != nil {
		if c.layout != nil {
			if e := c.layout.Deactivate(); e != nil {
				r.Log.Warnf("cannot restore %s: %v", c.layout.NFSDir, e)
			}
		}
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	r.Log.Infof("ganesha.nfsd (pid %d) answers on D-Bus after %v", pid, time.Since(t0).Round(time.Millisecond))
	return nil
}

func ganeshaStop(r *ocf.Request) error {
	c, err := ganeshaFrom(r)
	if err != nil { // parameters bad: still stop whatever the pidfile names
		r.Log.Warnf("%v", err)
	}
	pid, err := c.d.Stop(r.Context())
	switch {
	case errors.Is(err, ganesha.ErrKilled):
		r.Log.Warnf("%v", err)
	case err != nil:
		return ocf.Errorf(ocf.ErrGeneric, "cannot stop ganesha.nfsd: %w", err)
	case pid != 0:
		r.Log.Infof("ganesha.nfsd (pid %d) stopped", pid)
	}
	if c.layout != nil {
		if err := c.layout.Deactivate(); err != nil {
			return ocf.Errorf(ocf.ErrGeneric, "cannot restore %s: %w", c.layout.NFSDir, err)
		}
	}
	return nil
}

func ganeshaMonitor(r *ocf.Request) error {
	c, err := ganeshaFrom(r)
	if err != nil {
		if r.IsProbe() {
			return ocf.Exit(ocf.NotRunning)
		}
		return err
	}
	pid, err := c.d.PID()
	if err != nil {
		r.Log.Warnf("%v", err)
	}
	if pid == 0 {
		return ocf.Exit(ocf.NotRunning)
	}
	if c.layout != nil && !c.layout.Active() {
		return ocf.Errorf(ocf.ErrGeneric, "ganesha.nfsd (pid %d) runs, but %s no longer leads to %s",
			pid, c.layout.NFSDir, c.layout.NodeDir(c.layout.Node))
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.dbusTO)
	defer cancel()
	bus, err := ganesha.Connect(ctx, c.bus)
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "ganesha.nfsd (pid %d) runs, but %w", pid, err)
	}
	defer bus.Close()
	if err := bus.Answers(ctx, pid); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "ganesha.nfsd (pid %d) runs but does not answer on D-Bus: %w", pid, err)
	}
	return nil
}

// graceSummary says how long grace holds new opens after a failover.
func graceSummary(h *ganesha.HA) string {
	if h.EarlyLift {
		return fmt.Sprintf("NLM off: grace ends once every taken-over client has reclaimed, at ganesha's next reaper run "+
			"(every %d s: Lease_Lifetime/2, at most 10), at most Grace_Period %d s (Server_Scope %q)", h.ReaperDelay(), h.Grace, h.Scope)
	}
	return fmt.Sprintf("NLM on: grace lasts Grace_Period %d s after each failover (Lease_Lifetime %d s, Server_Scope %q)", h.Grace, h.Lease, h.Scope)
}

// ganeshaNotify: with NLM on, another node's instance stopping puts this
// ganesha into grace too, so that no client here takes a lock the stopped
// node's NFSv3 clients are about to reclaim elsewhere. Failures are
// logged: the notification itself must not fail the transition.
func ganeshaNotify(r *ocf.Request) error {
	n := r.Notify()
	if n.Type != "post" || n.Operation != "stop" {
		return nil
	}
	me := nodeName(r)
	var lost []string
	for _, s := range n.Stop {
		if s != me {
			lost = append(lost, s)
		}
	}
	if len(lost) == 0 {
		return nil
	}
	c, err := ganeshaFrom(r)
	if err != nil {
		r.Log.Warnf("%v", err)
		return nil
	}
	h, err := c.checkConfig()
	if err != nil || !h.NLM {
		return nil // NFSv4 only: the taker's grace is enough (see the agent's description)
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.dbusTO)
	defer cancel()
	bus, err := ganesha.Connect(ctx, c.bus)
	if err != nil {
		r.Log.Warnf("not in grace for the locks of %s: %v", strings.Join(lost, ", "), err)
		return nil
	}
	defer bus.Close()
	if err := bus.Grace(ctx, ganesha.JustGrace, ""); err != nil {
		if !errors.Is(err, ganesha.ErrNotRunning) {
			r.Log.Warnf("not in grace for the locks of %s: %v", strings.Join(lost, ", "), err)
		}
		return nil
	}
	r.Log.Infof("in grace while the NFSv3 clients of %s reclaim their locks (NLM on)", strings.Join(lost, ", "))
	return nil
}

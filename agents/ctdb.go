package agents

// ocf:storhaug:CTDB runs ctdbd for a Samba cluster: as a clone with a
// cluster lock (leadership by ctdb itself), or as a promotable clone in
// which Pacemaker picks the one node allowed to be CTDB's leader. The
// daemon work is in package ctdb; this file is the OCF face: the
// declaration, start, stop and validation. ctdb_conf.go maps the
// parameters to CTDB's configuration, ctdb_leader.go holds the monitor and
// the leader role (promote, demote, the leader watch).

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/storhaug/storhaug/ctdb"
	"github.com/storhaug/storhaug/internal/proc"
	"github.com/storhaug/storhaug/ocf"
	"github.com/storhaug/storhaug/pacemaker"
	"github.com/storhaug/storhaug/tickle"
)

var ctdbAgent = sync.OnceValue(func() *ocf.Agent { return newCTDBAgent(ctdbHost()) })

// newCTDBAgent declares the agent, its handlers reaching the system
// through sys.
func newCTDBAgent(sys *ctdbSystem) *ocf.Agent {
	on := func(h func(*ctdbRes) error) func(*ocf.Request) error {
		return func(r *ocf.Request) error { return h(sys.res(r)) }
	}
	return &ocf.Agent{
		Name:      "CTDB",
		Version:   "1.0",
		ShortDesc: "CTDB, Samba's clustered database daemon",
		LongDesc: `Runs ctdbd (CTDB 4.9 or later) for a clustered Samba, in one of two modes.
As a promotable clone (the storhaug setup), Pacemaker picks the one node allowed to be CTDB's
leader: the promoted instance gets the leader role ("ctdb setleaderrole on"), every other
instance runs without it, and no cluster lock is needed. As a plain clone, ctdb elects its
leader itself and ctdb_recovery_lock (a cluster lock on shared storage) is required.
The agent owns the keys of /etc/ctdb/ctdb.conf it sets (logging, cluster lock, database
directories, leader capability, start as disabled) and the event scripts it enables, keeps
every other setting of the admin, and restores what it changed when it stops. It refuses to
start when a persistent database is corrupt (checked with tdbdump). With ctdb_manages_samba
it writes a clustering block into smb.conf's [global] section, removed again on stop.
Failover: run the clone with notify=true (storhaug setup does). When Pacemaker has fenced a
node, the post-stop notification makes every survivor's ctdbd give that node up at once (its
TCP connections with the node are ended with SOCK_DESTROY; ctdbd marks the node disconnected
and recovers its databases) instead of after CTDB's keepalives (KeepaliveInterval ×
KeepaliveLimit, 25 s by default), during which smbd waits. This happens only when the fencer's
history shows the node fenced (off or reboot, succeeded) since its CTDB last started; with
fencing disabled, failed or pending, CTDB keeps its own detection. Each instance records its
node's pnn in the permanent node attribute storhaug-ctdb-pnn for this; the pre-stop notification,
which runs while a lost node is being fenced, reads it, so that the drop does not wait for the CIB. The agent sets no CTDB
tunables: CTDB's defaults stay, and shortening the keepalives instead would let CTDB give up on
a node that Pacemaker has not fenced and that may still write.
Replaces ocf:heartbeat:CTDB: its parameters keep their names and defaults; those that no
longer apply to CTDB 4.9 and later are accepted and reported as deprecated.`,
		Params: []ocf.Param{
			{Name: "ctdb_recovery_lock", Unique: true, ShortDesc: "CTDB cluster lock",
				LongDesc: `The cluster lock: a file on storage all nodes share (its directory must be writable), or "!helper args" for a lock helper.
Required for a plain clone; optional for a promotable clone, where Pacemaker picks the leader.`},
			{Name: "ctdb_manages_samba", Type: ocf.Boolean, Default: "no", ShortDesc: "Should CTDB manage Samba?",
				LongDesc: "Enable CTDB's 50.samba event script and write the clustering settings into smb.conf. Prefer a separate Samba resource."},
			{Name: "ctdb_manages_winbind", Type: ocf.Boolean, Default: "no", ShortDesc: "Should CTDB manage Winbind?",
				LongDesc: "Enable CTDB's 49.winbind event script. Prefer a separate Winbind resource."},
			{Name: "ctdb_service_smb", ShortDesc: "Name of the smb service", LongDesc: "CTDB_SERVICE_SMB for the 50.samba event script (script.options)."},
			{Name: "ctdb_service_nmb", ShortDesc: "Name of the nmb service", LongDesc: "CTDB_SERVICE_NMB for the 50.samba event script (script.options)."},
			{Name: "ctdb_service_winbind", ShortDesc: "Name of the winbind service", LongDesc: "CTDB_SERVICE_WINBIND for the 49.winbind event script (script.options)."},
			{Name: "ctdb_samba_skip_share_check", Type: ocf.Boolean, Default: "yes", ShortDesc: "Skip share check during monitor?",
				LongDesc: "CTDB_SAMBA_SKIP_SHARE_CHECK for the 50.samba event script (script.options)."},
			{Name: "ctdb_monitor_free_memory", Type: ocf.Integer, Default: "100", ShortDesc: "Minimum amount of free memory (MB)",
				LongDesc: "Ignored.", Deprecated: "CTDB 4.4 and later ignore it; set memory limits in ctdb's 05.system script options."},
			{Name: "ctdb_start_as_disabled", Type: ocf.Boolean, Default: "no", ShortDesc: "Start CTDB disabled?",
				LongDesc: `ctdb.conf [legacy] "start as disabled": the node starts DISABLED (it hosts no public addresses until "ctdb enable").`},
			{Name: "ctdb_config_dir", Default: "/etc/ctdb", ShortDesc: "CTDB config directory",
				LongDesc: "The directory of ctdb.conf, nodes and events/. CTDB 4.9 and later read it at a built-in place (/etc/ctdb); it must be that."},
			{Name: "ctdb_binary", Default: "/usr/bin/ctdb", ShortDesc: "CTDB tool path", LongDesc: "Full path to the ctdb tool."},
			{Name: "ctdbd_binary", Default: "/usr/sbin/ctdbd", ShortDesc: "CTDB daemon path", LongDesc: "Full path to the ctdbd daemon."},
			{Name: "ctdb_dbdir", Default: "/var/lib/ctdb", Unique: true, ShortDesc: "CTDB database directory",
				LongDesc: "Local database directory: volatile, persistent and state databases go in its subdirectories of those names."},
			{Name: "ctdb_logfile", Default: "/var/log/ctdb/log.ctdb", ShortDesc: "CTDB log file",
				LongDesc: `Full path to ctdbd's log file, or "syslog".`},
			{Name: "ctdb_rundir", Default: "/run/ctdb", ShortDesc: "CTDB run directory",
				LongDesc: "Where ctdbd keeps its pid file and socket: the directory built into ctdbd (/run/ctdb)."},
			{Name: "ctdb_socket", Unique: true, ShortDesc: "CTDB socket",
				LongDesc: "ctdbd's socket. Unset: the built-in one (ctdb_rundir/ctdbd.socket). When set, ctdbd, the ctdb tool and smbd are all pointed at it (CTDB_SOCKET)."},
			{Name: "ctdb_timeout", Type: ocf.Integer, Default: "10", ShortDesc: "Time limit of each ctdb call (s)",
				LongDesc: "How long each ctdb call may take, whatever the operation's timeout: a dead peer must not make every monitor time out."},
			{Name: "ctdb_debuglevel", Type: ocf.Integer, Default: "2", ShortDesc: "CTDB debug level",
				LongDesc: "ctdbd's log level: 0 ERROR, 1 WARNING, 2 NOTICE, 3 INFO, 4 and more DEBUG."},
			{Name: "ctdb_max_open_files", Type: ocf.Integer, ShortDesc: "Max open files", LongDesc: "ctdbd's limit of open files (ulimit -n)."},
			{Name: "smb_conf", Default: "/etc/samba/smb.conf", ShortDesc: "Path to smb.conf", LongDesc: "The Samba configuration that gets the clustering block when ctdb_manages_samba is set. Start warns about each share on which smbd grants no SMB durable handles (they need posix locking = no, kernel oplocks = no, kernel share modes = no): there clients' byte-range locks are lost when an address moves gracefully."},
			{Name: "smb_private_dir", Unique: true, ShortDesc: "Samba private dir", LongDesc: "private dir in the clustering block.",
				Deprecated: "only CTDB before 1.0.50 needed a shared private dir; leave it unset."},
			{Name: "smb_passdb_backend", Default: "tdbsam", ShortDesc: "Samba passdb backend", LongDesc: "passdb backend in the clustering block."},
			{Name: "smb_idmap_backend", Default: "tdb2", ShortDesc: "Samba idmap backend", LongDesc: `"idmap config * : backend" in the clustering block.`},
			{Name: "smb_fileid_algorithm", ShortDesc: "Samba VFS fileid algorithm", LongDesc: `fileid:algorithm in the clustering block (and "fileid" added to vfs objects), e.g. fsid for OCFS2.`},
			{Name: "tdbdump_binary", Default: "/usr/bin/tdbdump", ShortDesc: "tdbdump path", LongDesc: "The tool that checks persistent databases before a start."},
		},
		Actions: []ocf.Action{
			{Name: "start", Timeout: 90 * time.Second, Handler: on((*ctdbRes).start)},
			{Name: "stop", Timeout: 100 * time.Second, Handler: on((*ctdbRes).stop)},
			{Name: "monitor", Timeout: 20 * time.Second, Interval: 10 * time.Second, Handler: on((*ctdbRes).monitor)},
			{Name: "monitor", Timeout: 20 * time.Second, Interval: 11 * time.Second, Role: "Promoted"},
			{Name: "promote", Timeout: 30 * time.Second, Handler: on((*ctdbRes).promote)},
			{Name: "demote", Timeout: 30 * time.Second, Handler: on((*ctdbRes).demote)},
			{Name: "notify", Timeout: 20 * time.Second, Handler: on((*ctdbRes).notify)},
			{Name: "validate-all", Timeout: 30 * time.Second, Handler: on((*ctdbRes).validateAll)},
			{Name: "leader-watch", Hidden: true, Handler: on((*ctdbRes).leaderWatch)},
		},
	}
}

// ctdbSystem is what the CTDB agent reaches the system through: the
// host's by default ([ctdbHost]), a test's fakes otherwise.
type ctdbSystem struct {
	runner ctdb.Runner
	// dataDir is where CTDB ships its event scripts.
	dataDir string
	// pacemaker runs Pacemaker's tools (crm_attribute).
	pacemaker pacemaker.Runner
	// spawnHelper starts a helper process (the leader watch) and returns
	// its pid; helperRuns reports whether pid is that helper, running with
	// exactly args; stopHelper ends it.
	spawnHelper func(h proc.Helper) (int, error)
	helperRuns  func(pid int, args []string) bool
	stopHelper  func(ctx context.Context, pid int, args []string) error
	// startDaemon and stopDaemon run ctdbd.
	startDaemon func(ctx context.Context, d *ctdb.Daemon) (int, error)
	stopDaemon  func(ctx context.Context, d *ctdb.Daemon, t *ctdb.Tool) (string, error)
	// localNode asks the ctdbd behind socket for this node's state.
	localNode func(ctx context.Context, socket string) (ctdb.Node, error)
	// dropPeer makes the ctdbd behind socket give up on the fenced peer
	// pnn (ctdb.DropPeer, its connections ended by tickle.AbortPeer).
	dropPeer func(ctx context.Context, socket string, pnn int) (ctdb.Dropped, error)
}

// ctdbHost is the real system.
func ctdbHost() *ctdbSystem {
	return &ctdbSystem{
		runner:      ctdb.Exec{},
		dataDir:     "/usr/share/ctdb",
		pacemaker:   pacemaker.Exec{},
		spawnHelper: proc.Spawn,
		helperRuns:  proc.Runs,
		stopHelper: func(ctx context.Context, pid int, args []string) error {
			_, err := proc.Stop(ctx, pid, func(p int) bool { return proc.Runs(p, args) })
			return err
		},
		startDaemon: func(ctx context.Context, d *ctdb.Daemon) (int, error) { return d.Start(ctx) },
		stopDaemon: func(ctx context.Context, d *ctdb.Daemon, t *ctdb.Tool) (string, error) {
			return d.Stop(ctx, t)
		},
		localNode: ctdb.LocalNode,
		dropPeer: func(ctx context.Context, socket string, pnn int) (ctdb.Dropped, error) {
			return ctdb.DropPeer(ctx, socket, pnn, tickle.AbortPeer)
		},
	}
}

// ctdbRes is one invocation's view of the resource.
type ctdbRes struct {
	r          *ocf.Request
	sys        *ctdbSystem
	promotable bool
	tool       *ctdb.Tool
	daemon     *ctdb.Daemon
	socket     string
	state      string // the state file
	toolCache  string // what was learnt of the installed ctdb tool
	leaderFile string // written by the leader-watch helper
}

func (sys *ctdbSystem) res(r *ocf.Request) *ctdbRes {
	inst := r.Instance
	if inst == "" {
		inst = "CTDB"
	}
	c := &ctdbRes{
		r:          r,
		sys:        sys,
		promotable: r.Meta("promotable") == "true" || r.Meta("master_max") != "" && r.Meta("master_max") != "0",
		state:      r.StateFile("CTDB", inst, ".json"),
		toolCache:  r.StateFile("CTDB", "tool", ".json"),
		leaderFile: r.StateFile("CTDB", inst, ".leader"),
	}
	c.socket = r.String("ctdb_socket")
	var env []string
	if c.socket != "" {
		env = []string{"CTDB_SOCKET=" + c.socket}
	}
	to := time.Duration(r.Int("ctdb_timeout")) * time.Second
	if to <= 0 {
		to = 10 * time.Second
	}
	c.tool = &ctdb.Tool{Path: r.String("ctdb_binary"), Socket: c.socket, Timeout: to, Runner: sys.runner, Naming: ctdb.Naming{Leader: true}}
	c.daemon = &ctdb.Daemon{Path: r.String("ctdbd_binary"), RunDir: r.String("ctdb_rundir"), Env: env, MaxOpenFiles: r.Int("ctdb_max_open_files")}
	return c
}

// nodeStatus is this node's state, asked of ctdbd over its socket (no
// ctdb process: the monitor's one question), within ctdb_timeout. Should
// ctdbd answer in a way the agent does not understand (a CTDB release
// that changed its protocol), the ctdb tool is asked instead.
func (c *ctdbRes) nodeStatus(ctx context.Context) (ctdb.Node, error) {
	sctx, cancel := context.WithTimeout(ctx, c.tool.Timeout)
	defer cancel()
	n, err := c.sys.localNode(sctx, c.socketPath())
	if err == nil || errors.Is(err, ctdb.ErrNotRunning) || errors.Is(err, os.ErrDeadlineExceeded) || sctx.Err() != nil {
		return n, err
	}
	c.r.Log.Debugf("asking ctdbd over %s: %v; asking the ctdb tool", c.socketPath(), err)
	return c.tool.NodeStatus(ctx)
}

func (c *ctdbRes) socketPath() string {
	if c.socket != "" {
		return c.socket
	}
	return filepath.Join(c.r.String("ctdb_rundir"), "ctdbd.socket")
}

func (c *ctdbRes) load() (*ctdb.State, bool) { return ctdb.LoadState(c.state) }

// save records s; a state that cannot be recorded fails the action, since
// the next one would not know what to restore.
func (c *ctdbRes) save(s *ctdb.State) error {
	if err := s.Save(c.state); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot record the agent's state in %s: %w", c.state, err)
	}
	return nil
}

// naming detects (once per installed tool) whether ctdb says "leader" or
// "recmaster", remembered in the state directory.
func (c *ctdbRes) naming(s *ctdb.State) (ctdb.Version, error) {
	v, ti, err := c.tool.Detect(c.r.Context(), c.toolCache)
	var ce *ctdb.CacheError
	if errors.As(err, &ce) {
		c.r.Log.Warnf("%v", err)
		err = nil
	}
	if err != nil {
		return v, err
	}
	s.Naming, s.Version = ti.Naming, ti.Version
	return v, nil
}

// absentBinaries reports a ctdb or ctdbd that is not installed: nothing
// to do for stop, not running for a probe.
func (c *ctdbRes) absentBinaries() error {
	for _, p := range []string{"ctdb_binary", "ctdbd_binary"} {
		if err := executable(c.r.String(p)); err != nil {
			return err
		}
	}
	return nil
}

func (c *ctdbRes) validateAll() error {
	if err := c.validate(); err != nil {
		return err
	}
	c.r.Log.Infof("mode: %s", c.modeText())
	return nil
}

func (c *ctdbRes) start() error {
	r := c.r
	if err := c.validate(); err != nil {
		return err
	}
	ctx := r.Context()
	s, _ := c.load()
	t0 := time.Now()
	if n, err := c.nodeStatus(ctx); err == nil {
		r.Log.Infof("ctdbd is already running (pnn %d, %s)", n.PNN, n.State())
		return c.afterStart(s, n)
	}
	if _, err := c.naming(s); err != nil {
		return ocf.Errorf(ocf.ErrInstalled, "parameter ctdb_binary: cannot tell the installed CTDB release: %w", err)
	}
	tNaming := time.Since(t0)
	db := r.String("ctdb_dbdir")
	n, err := ctdb.CheckPersistent(ctx, c.sys.runner, r.String("tdbdump_binary"), filepath.Join(db, "persistent"), 60*time.Second)
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	tCheck := time.Since(t0)
	for _, d := range []string{"volatile", "persistent", "state"} {
		if err := os.MkdirAll(filepath.Join(db, d), 0o755); err != nil {
			return ocf.Errorf(ocf.ErrPerm, "parameter ctdb_dbdir: %w", err)
		}
	}
	if lf := r.String("ctdb_logfile"); lf != "syslog" {
		if err := os.MkdirAll(filepath.Dir(lf), 0o755); err != nil {
			return ocf.Errorf(ocf.ErrPerm, "parameter ctdb_logfile: %w", err)
		}
	}
	if err := os.MkdirAll(r.String("ctdb_rundir"), 0o755); err != nil {
		return ocf.Errorf(ocf.ErrPerm, "parameter ctdb_rundir: %w", err)
	}
	s.Promotable = c.promotable
	setup := c.setup()
	if err := setup.Apply(&s.Undo); err != nil {
		code := ocf.ErrGeneric
		if errors.As(err, new(*ctdb.MissingError)) {
			code = ocf.ErrInstalled
		}
		if serr := c.save(s); serr != nil {
			r.Log.Errorf("%v", serr)
		}
		return ocf.Errorf(code, "%w", err)
	}
	if err := c.save(s); err != nil {
		return err
	}
	c.warnDurable()
	tConf := time.Since(t0)
	pid, err := c.sys.startDaemon(ctx, c.daemon)
	if err != nil {
		c.undoStart(setup, s)
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	s.PID = pid
	s.Started = time.Now()
	if err := c.save(s); err != nil {
		r.Log.Warnf("%v", err)
	}
	tSpawn := time.Since(t0)
	quick := *c.tool // a leader announces itself every second: two are enough
	quick.Timeout = 2 * time.Second
	node, err := c.daemon.WaitReady(ctx, pid, c.promotable, c.nodeStatus, quick.Leader)
	if err != nil {
		how, serr := c.sys.stopDaemon(context.WithoutCancel(ctx), c.daemon, c.tool)
		r.Log.Warnf("ctdbd stopped after the failed start: %s %v", how, serr)
		c.undoStart(setup, s)
		return ocf.Errorf(ocf.ErrGeneric, "%w; see %s", err, r.String("ctdb_logfile"))
	}
	round := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	r.Log.Infof("ctdbd started (pid %d, pnn %d, %s) in %v: status check and release detection %v, %d persistent databases checked in %v, configuration %v, ctdbd spawned in %v, then %v until ready; mode: %s",
		pid, node.PNN, node.State(), round(time.Since(t0)), round(tNaming), n, round(tCheck-tNaming),
		round(tConf-tCheck), round(tSpawn-tConf), round(time.Since(t0)-tSpawn), c.modeText())
	return c.afterStart(s, node)
}

// warnDurable warns, when CTDB manages Samba, about each share of
// smb.conf on which smbd grants no durable handle: there a client's
// byte-range locks are lost, without the application being told, when its
// address moves gracefully to another node (move, standby, failback).
func (c *ctdbRes) warnDurable() {
	if !c.r.Bool("ctdb_manages_samba") {
		return
	}
	b, err := os.ReadFile(c.r.String("smb_conf"))
	if err != nil {
		return // Apply has reported it
	}
	for _, w := range ctdb.DurableHandleBlockers(b) {
		c.r.Log.Warnf("parameter smb_conf: %s share %s: no SMB durable handles, so clients' byte-range locks are lost when an address moves gracefully (durable handles need posix locking = no, kernel oplocks = no, kernel share modes = no)", c.r.String("smb_conf"), w)
	}
}

// undoStart restores the configuration of a start that failed and forgets
// the state, reporting what it could not do.
func (c *ctdbRes) undoStart(setup *ctdb.Setup, s *ctdb.State) {
	if err := setup.Restore(&s.Undo); err != nil {
		c.r.Log.Warnf("restoring the configuration: %v", err)
	}
	if err := os.Remove(c.state); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.r.Log.Warnf("%v", err)
	}
}

func (c *ctdbRes) stop() error {
	r := c.r
	s, had := c.load()
	c.stopWatch(s)
	setup := c.setup()
	if err := c.absentBinaries(); err != nil {
		if had {
			c.undoStart(setup, s)
		}
		return nil
	}
	how, err := c.sys.stopDaemon(r.Context(), c.daemon, c.tool)
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	r.Log.Infof("ctdbd %s", how)
	if c.promotable && r.Instance != "" {
		if err := c.clearScore(); err != nil {
			r.Log.Warnf("promotion score: %v", err)
		}
	}
	if had {
		c.undoStart(setup, s)
	}
	return nil
}

package agents

// ocf:storhaug:CTDB runs ctdbd for a Samba cluster: as a clone with a
// cluster lock (leadership by ctdb itself), or as a promotable clone in
// which Pacemaker picks the one node allowed to be CTDB's leader. The
// daemon work is in package ctdb; this file is the OCF face.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/storhaug/storhaug/ctdb"
	"github.com/storhaug/storhaug/internal/atomicfile"
	"github.com/storhaug/storhaug/ocf"
)

var ctdbAgent = sync.OnceValue(func() *ocf.Agent {
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
			{Name: "smb_conf", Default: "/etc/samba/smb.conf", ShortDesc: "Path to smb.conf", LongDesc: "The Samba configuration that gets the clustering block when ctdb_manages_samba is set."},
			{Name: "smb_private_dir", Unique: true, ShortDesc: "Samba private dir", LongDesc: "private dir in the clustering block.",
				Deprecated: "only CTDB before 1.0.50 needed a shared private dir; leave it unset."},
			{Name: "smb_passdb_backend", Default: "tdbsam", ShortDesc: "Samba passdb backend", LongDesc: "passdb backend in the clustering block."},
			{Name: "smb_idmap_backend", Default: "tdb2", ShortDesc: "Samba idmap backend", LongDesc: `"idmap config * : backend" in the clustering block.`},
			{Name: "smb_fileid_algorithm", ShortDesc: "Samba VFS fileid algorithm", LongDesc: `fileid:algorithm in the clustering block (and "fileid" added to vfs objects), e.g. fsid for OCFS2.`},
			{Name: "tdbdump_binary", Default: "/usr/bin/tdbdump", ShortDesc: "tdbdump path", LongDesc: "The tool that checks persistent databases before a start."},
		},
		Actions: []ocf.Action{
			{Name: "start", Timeout: 90 * time.Second, Handler: ctdbStart},
			{Name: "stop", Timeout: 100 * time.Second, Handler: ctdbStop},
			{Name: "monitor", Timeout: 20 * time.Second, Interval: 10 * time.Second, Handler: ctdbMonitor},
			{Name: "monitor", Timeout: 20 * time.Second, Interval: 11 * time.Second, Role: "Promoted"},
			{Name: "promote", Timeout: 30 * time.Second, Handler: ctdbPromote},
			{Name: "demote", Timeout: 30 * time.Second, Handler: ctdbDemote},
			{Name: "notify", Timeout: 20 * time.Second, Handler: ctdbNotify},
			{Name: "validate-all", Timeout: 30 * time.Second, Handler: ctdbValidate},
			{Name: "leader-watch", Hidden: true, Handler: ctdbLeaderWatch},
		},
	}
})

// ctdbEnv is what the handlers reach the system through; tests replace it.
type ctdbEnv struct {
	runner ctdb.Runner
	// crmAttribute runs crm_attribute with args.
	crmAttribute func(ctx context.Context, args ...string) error
	// spawnWatch starts the leader-watch helper and returns its pid.
	spawnWatch func(r *ocf.Request) (int, error)
	// startDaemon and stopDaemon run ctdbd.
	startDaemon func(ctx context.Context, d *ctdb.Daemon) (int, error)
	stopDaemon  func(ctx context.Context, d *ctdb.Daemon, t *ctdb.Tool) (string, error)
	// watchAlive reports whether the leader-watch helper with pid runs.
	watchAlive func(pid int) bool
	// localNode asks the ctdbd behind socket for this node's state.
	localNode func(ctx context.Context, socket string) (ctdb.Node, error)
}

var ctdbSys = ctdbEnv{
	runner: ctdb.Exec{},
	crmAttribute: func(ctx context.Context, args ...string) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "crm_attribute", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("crm_attribute %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	},
	spawnWatch:  spawnLeaderWatch,
	watchAlive:  watchRunning,
	startDaemon: func(ctx context.Context, d *ctdb.Daemon) (int, error) { return d.Start(ctx) },
	stopDaemon: func(ctx context.Context, d *ctdb.Daemon, t *ctdb.Tool) (string, error) {
		return d.Stop(ctx, t)
	},
	localNode: ctdb.LocalNode,
}

// ctdbRes is one invocation's view of the resource.
type ctdbRes struct {
	r          *ocf.Request
	promotable bool
	tool       *ctdb.Tool
	daemon     *ctdb.Daemon
	socket     string
	state      string // the state file
	leaderFile string // written by the leader-watch helper
}

func newCTDB(r *ocf.Request) *ctdbRes {
	inst := r.Instance
	if inst == "" {
		inst = "CTDB"
	}
	inst = strings.NewReplacer("/", "_", ":", "_").Replace(inst)
	c := &ctdbRes{
		r:          r,
		promotable: r.Meta("promotable") == "true" || r.Meta("master_max") != "" && r.Meta("master_max") != "0",
		state:      filepath.Join(r.StateDir(), "storhaug-CTDB-"+inst+".json"),
		leaderFile: filepath.Join(r.StateDir(), "storhaug-CTDB-"+inst+".leader"),
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
	c.tool = &ctdb.Tool{Path: r.String("ctdb_binary"), Socket: c.socket, Timeout: to, Runner: ctdbSys.runner, Naming: ctdb.Naming{Leader: true}}
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
	n, err := ctdbSys.localNode(sctx, c.socketPath())
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

// ctdbState is what start changed, for stop to restore, and what it knows.
type ctdbState struct {
	Conf       []ctdb.Change `json:"conf,omitempty"`
	Options    []ctdb.Change `json:"script_options,omitempty"`
	Scripts    []ctdb.Script `json:"scripts,omitempty"` // previous states of the scripts changed
	Samba      bool          `json:"samba,omitempty"`
	PID        int           `json:"pid,omitempty"`
	PNN        int           `json:"pnn"`
	WatchPID   int           `json:"watch_pid,omitempty"`
	Naming     string        `json:"naming,omitempty"`
	Version    string        `json:"version,omitempty"`
	Promotable bool          `json:"promotable,omitempty"`
}

func (c *ctdbRes) load() (*ctdbState, bool) {
	b, err := os.ReadFile(c.state)
	if err != nil {
		return &ctdbState{PNN: ctdb.UnknownPNN}, false
	}
	var s ctdbState
	if json.Unmarshal(b, &s) != nil {
		return &ctdbState{PNN: ctdb.UnknownPNN}, false
	}
	return &s, true
}

func (c *ctdbRes) save(s *ctdbState) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := os.MkdirAll(filepath.Dir(c.state), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(c.state, b, 0o600)
}

// binaryID identifies the installed ctdb tool, so that a detection made
// once is redone after an upgrade.
func binaryID(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", path, fi.Size(), fi.ModTime().UnixNano())
}

// toolInfo is what the agent learnt of the installed ctdb tool, kept
// across starts and stops (in the state directory) until the tool changes.
type toolInfo struct {
	BinaryID string `json:"binary_id"`
	Version  string `json:"version"`
	Naming   string `json:"naming"`
}

// naming detects (once per installed tool) whether ctdb says "leader" or
// "recmaster": "ctdb version" and the tool's command list, two calls,
// remembered in the state directory.
func (c *ctdbRes) naming(s *ctdbState) (ctdb.Version, error) {
	id := binaryID(c.tool.Path)
	p := filepath.Join(c.r.StateDir(), "storhaug-CTDB-tool.json")
	var ti toolInfo
	if b, err := os.ReadFile(p); err == nil && json.Unmarshal(b, &ti) == nil && ti.BinaryID == id && ti.Naming != "" {
		c.tool.Naming = ctdb.Naming{Leader: ti.Naming == "leader"}
		s.Naming, s.Version = ti.Naming, ti.Version
		v, _ := ctdb.ParseVersion([]byte(ti.Version))
		return v, nil
	}
	v, err := c.tool.Version(c.r.Context())
	if err != nil {
		return v, err
	}
	n := ctdb.NamingFromUsage(c.tool.Usage(c.r.Context()), v)
	c.tool.Naming = n
	ti = toolInfo{BinaryID: id, Version: v.String(), Naming: "recmaster"}
	if n.Leader {
		ti.Naming = "leader"
	}
	s.Naming, s.Version = ti.Naming, ti.Version
	if b, err := json.Marshal(ti); err == nil {
		os.MkdirAll(filepath.Dir(p), 0o755)
		atomicfile.Write(p, b, 0o644)
	}
	return v, nil
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// validate checks the parameters and this node's setup.
func (c *ctdbRes) validate() error {
	r := c.r
	for _, p := range []string{"ctdb_binary", "ctdbd_binary"} {
		if err := executable(r.String(p)); err != nil {
			return ocf.Errorf(ocf.ErrInstalled, "parameter %s: %v", p, err)
		}
	}
	if r.Int("ctdb_timeout") <= 0 {
		return ocf.Errorf(ocf.ErrConfigured, "parameter ctdb_timeout: must be at least 1 (seconds), not %d", r.Int("ctdb_timeout"))
	}
	if lvl := r.Int("ctdb_debuglevel"); lvl < 0 || lvl > 10 {
		return ocf.Errorf(ocf.ErrConfigured, "parameter ctdb_debuglevel: %d is not a level from 0 to 10", lvl)
	}
	if n := r.Int("ctdb_max_open_files"); r.IsSet("ctdb_max_open_files") && n < 64 {
		return ocf.Errorf(ocf.ErrConfigured, "parameter ctdb_max_open_files: %d is too small", n)
	}
	dir := r.String("ctdb_config_dir")
	if dir != "/etc/ctdb" {
		r.Log.Warnf("parameter ctdb_config_dir: CTDB 4.9 and later read %s only if it is their built-in directory (/etc/ctdb)", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "nodes")); err != nil {
		return ocf.Errorf(ocf.ErrArgs, "parameter ctdb_config_dir: %s does not exist: ctdb needs the list of nodes", filepath.Join(dir, "nodes"))
	}
	if _, err := os.Stat(filepath.Join(dir, "public_addresses")); err == nil {
		r.Log.Warnf("%s exists: CTDB will manage IP addresses itself", filepath.Join(dir, "public_addresses"))
	}
	if err := executable(r.String("tdbdump_binary")); err != nil {
		return ocf.Errorf(ocf.ErrInstalled, "parameter tdbdump_binary: %v (needed to check persistent databases)", err)
	}
	lock := r.String("ctdb_recovery_lock")
	switch {
	case lock == "" && !c.promotable:
		return ocf.Errorf(ocf.ErrConfigured, "parameter ctdb_recovery_lock is required for a plain clone (or make the resource a promotable clone, where Pacemaker picks the leader)")
	case strings.HasPrefix(lock, "!"):
		helper := strings.Fields(lock[1:])
		if len(helper) == 0 {
			return ocf.Errorf(ocf.ErrConfigured, "parameter ctdb_recovery_lock: %q names no lock helper", lock)
		}
		if err := executable(helper[0]); err != nil {
			return ocf.Errorf(ocf.ErrInstalled, "parameter ctdb_recovery_lock: lock helper: %v", err)
		}
	case lock != "":
		d := filepath.Dir(lock)
		f, err := os.CreateTemp(d, ".storhaug-ctdb-lock-test-*")
		if err != nil {
			return ocf.Errorf(ocf.ErrArgs, "parameter ctdb_recovery_lock: the lock's directory %s does not exist or is not writable: %v", d, err)
		}
		f.Close()
		os.Remove(f.Name())
	}
	if r.Bool("ctdb_manages_samba") {
		if _, err := os.Stat(r.String("smb_conf")); err != nil {
			return ocf.Errorf(ocf.ErrInstalled, "parameter smb_conf: %s does not exist (ctdb_manages_samba is set)", r.String("smb_conf"))
		}
	}
	return nil
}

func (c *ctdbRes) modeText() string {
	if c.promotable {
		s := "promotable clone: Pacemaker picks the CTDB leader (the promoted instance)"
		if l := c.r.String("ctdb_recovery_lock"); l != "" {
			s += ", with cluster lock " + l
		}
		return s
	}
	return "clone with cluster lock " + c.r.String("ctdb_recovery_lock") + ": CTDB elects its leader"
}

func ctdbValidate(r *ocf.Request) error {
	c := newCTDB(r)
	if err := c.validate(); err != nil {
		return err
	}
	r.Log.Infof("mode: %s", c.modeText())
	return nil
}

// logLevel maps the shell agent's numeric debug level to ctdb.conf's names.
func logLevel(n int) string {
	switch {
	case n <= 0:
		return "ERROR"
	case n == 1:
		return "WARNING"
	case n == 2:
		return "NOTICE"
	case n == 3:
		return "INFO"
	}
	return "DEBUG"
}

// confSettings are the ctdb.conf keys the agent owns.
func (c *ctdbRes) confSettings() []ctdb.Setting {
	r := c.r
	loc := "file:" + r.String("ctdb_logfile")
	if r.String("ctdb_logfile") == "syslog" {
		loc = "syslog"
	}
	db := r.String("ctdb_dbdir")
	sec, key := c.tool.Naming.LockKey()
	lock := ctdb.Setting{Section: sec, Key: key, Value: r.String("ctdb_recovery_lock")}
	if lock.Value == "" {
		lock.Remove = true
	}
	set := []ctdb.Setting{
		{Section: "logging", Key: "location", Value: loc},
		{Section: "logging", Key: "log level", Value: logLevel(r.Int("ctdb_debuglevel"))},
		lock,
		{Section: "database", Key: "volatile database directory", Value: filepath.Join(db, "volatile")},
		{Section: "database", Key: "persistent database directory", Value: filepath.Join(db, "persistent")},
		{Section: "database", Key: "state database directory", Value: filepath.Join(db, "state")},
		{Section: "legacy", Key: "start as disabled", Value: strconv.FormatBool(r.Bool("ctdb_start_as_disabled"))},
	}
	if c.tool.Naming.Leader { // the other naming of the lock must not linger
		set = append(set, ctdb.Setting{Section: "cluster", Key: "recovery lock", Remove: true})
	}
	csec, ckey := c.tool.Naming.CapabilityKey()
	if c.promotable {
		// Nobody may lead until Pacemaker promotes an instance.
		set = append(set, ctdb.Setting{Section: csec, Key: ckey, Value: "false"})
	} else {
		set = append(set, ctdb.Setting{Section: csec, Key: ckey, Remove: true})
	}
	return set
}

// optionSettings are the script.options variables the agent owns.
func (c *ctdbRes) optionSettings() []ctdb.Setting {
	r := c.r
	yn := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	s := []ctdb.Setting{{Key: "CTDB_SAMBA_SKIP_SHARE_CHECK", Value: yn(r.Bool("ctdb_samba_skip_share_check"))}}
	for _, p := range [][2]string{{"ctdb_service_smb", "CTDB_SERVICE_SMB"}, {"ctdb_service_nmb", "CTDB_SERVICE_NMB"}, {"ctdb_service_winbind", "CTDB_SERVICE_WINBIND"}} {
		if v := r.String(p[0]); v != "" {
			s = append(s, ctdb.Setting{Key: p[1], Value: v})
		}
	}
	return s
}

func (c *ctdbRes) scripts() map[string]bool {
	dir := c.r.String("ctdb_config_dir")
	_, pa := os.Stat(filepath.Join(dir, "public_addresses"))
	_, sr := os.Stat(filepath.Join(dir, "static-routes"))
	return map[string]bool{
		"00.ctdb":      true,
		"10.interface": pa == nil,
		"11.routing":   sr == nil,
		"49.winbind":   c.r.Bool("ctdb_manages_winbind"),
		"50.samba":     c.r.Bool("ctdb_manages_samba"),
	}
}

// ctdbDataDir is where CTDB ships its event scripts.
var ctdbDataDir = "/usr/share/ctdb"

// configure writes ctdb.conf, script.options, the event script links and
// the smb.conf block, recording what it replaced in s.
func (c *ctdbRes) configure(s *ctdbState) error {
	r := c.r
	dir := r.String("ctdb_config_dir")
	confPath := filepath.Join(dir, "ctdb.conf")
	old, err := os.ReadFile(confPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return ocf.Errorf(ocf.ErrGeneric, "cannot read %s: %v", confPath, err)
	}
	conf := ctdb.ParseConf(old)
	ch := conf.Apply(c.confSettings())
	if len(ch) > 0 {
		if err := writeKeepMode(confPath, conf.Bytes(), 0o644); err != nil {
			return ocf.Errorf(ocf.ErrGeneric, "cannot write %s: %v", confPath, err)
		}
	}
	s.Conf = ctdb.MergeChanges(s.Conf, ch)

	optPath := filepath.Join(dir, "script.options")
	oldOpt, _ := os.ReadFile(optPath)
	opts := ctdb.ParseShellVars(oldOpt)
	och := opts.Apply(c.optionSettings())
	if len(och) > 0 {
		if err := writeKeepMode(optPath, opts.Bytes(), 0o644); err != nil {
			return ocf.Errorf(ocf.ErrGeneric, "cannot write %s: %v", optPath, err)
		}
	}
	s.Options = ctdb.MergeChanges(s.Options, och)

	for name, on := range c.scripts() {
		was, changed, err := ctdb.SetScript(dir, ctdbDataDir, name, on)
		if err != nil {
			if !on {
				r.Log.Warnf("cannot disable event script %s: %v", name, err)
				continue
			}
			return ocf.Errorf(ocf.ErrInstalled, "cannot enable event script %s: %v", name, err)
		}
		if changed && !hasScript(s.Scripts, name) {
			s.Scripts = append(s.Scripts, ctdb.Script{Name: name, Enabled: was})
		}
	}

	if r.Bool("ctdb_manages_samba") {
		p := r.String("smb_conf")
		b, err := os.ReadFile(p)
		if err != nil {
			return ocf.Errorf(ocf.ErrInstalled, "parameter smb_conf: %v", err)
		}
		nb := ctdb.ApplySamba(b, ctdb.SambaSettings{
			Socket: c.socket, PassdbBackend: r.String("smb_passdb_backend"), IdmapBackend: r.String("smb_idmap_backend"),
			PrivateDir: r.String("smb_private_dir"), FileidAlgorithm: r.String("smb_fileid_algorithm"),
		})
		if string(nb) != string(b) {
			if err := writeKeepMode(p, nb, 0o644); err != nil {
				return ocf.Errorf(ocf.ErrGeneric, "cannot write %s: %v", p, err)
			}
		}
		s.Samba = true
	}
	return nil
}

func hasScript(list []ctdb.Script, name string) bool {
	for _, s := range list {
		if s.Name == name {
			return true
		}
	}
	return false
}

// writeKeepMode writes a file atomically, keeping its mode when it exists.
func writeKeepMode(path string, data []byte, def os.FileMode) error {
	if fi, err := os.Stat(path); err == nil {
		def = fi.Mode().Perm()
	}
	return atomicfile.Write(path, data, def)
}

// unconfigure restores what configure changed.
func (c *ctdbRes) unconfigure(s *ctdbState) error {
	r := c.r
	dir := r.String("ctdb_config_dir")
	var errs []error
	if len(s.Conf) > 0 {
		p := filepath.Join(dir, "ctdb.conf")
		if b, err := os.ReadFile(p); err == nil {
			conf := ctdb.ParseConf(b)
			conf.Restore(s.Conf)
			errs = append(errs, writeKeepMode(p, conf.Bytes(), 0o644))
		}
	}
	if len(s.Options) > 0 {
		p := filepath.Join(dir, "script.options")
		if b, err := os.ReadFile(p); err == nil {
			o := ctdb.ParseShellVars(b)
			o.Restore(s.Options)
			errs = append(errs, writeKeepMode(p, o.Bytes(), 0o644))
		}
	}
	for _, sc := range s.Scripts {
		if _, _, err := ctdb.SetScript(dir, ctdbDataDir, sc.Name, sc.Enabled); err != nil {
			errs = append(errs, err)
		}
	}
	if s.Samba {
		p := r.String("smb_conf")
		if b, err := os.ReadFile(p); err == nil && ctdb.HasSamba(b) {
			errs = append(errs, writeKeepMode(p, ctdb.RemoveSamba(b), 0o644))
		}
	}
	return errors.Join(errs...)
}

// probeOK reports what an absent installation means for this action:
// nothing to do for stop, not running for a probe.
func (c *ctdbRes) absentBinaries() error {
	for _, p := range []string{"ctdb_binary", "ctdbd_binary"} {
		if err := executable(c.r.String(p)); err != nil {
			return err
		}
	}
	return nil
}

func ctdbStart(r *ocf.Request) error {
	c := newCTDB(r)
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
		return ocf.Errorf(ocf.ErrInstalled, "parameter ctdb_binary: cannot tell the installed CTDB release: %v", err)
	}
	tNaming := time.Since(t0)
	db := r.String("ctdb_dbdir")
	n, err := ctdb.CheckPersistent(ctx, ctdbSys.runner, r.String("tdbdump_binary"), filepath.Join(db, "persistent"), 60*time.Second)
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%v", err)
	}
	tCheck := time.Since(t0)
	for _, d := range []string{"volatile", "persistent", "state"} {
		if err := os.MkdirAll(filepath.Join(db, d), 0o755); err != nil {
			return ocf.Errorf(ocf.ErrPerm, "parameter ctdb_dbdir: %v", err)
		}
	}
	if lf := r.String("ctdb_logfile"); lf != "syslog" {
		if err := os.MkdirAll(filepath.Dir(lf), 0o755); err != nil {
			return ocf.Errorf(ocf.ErrPerm, "parameter ctdb_logfile: %v", err)
		}
	}
	if err := os.MkdirAll(r.String("ctdb_rundir"), 0o755); err != nil {
		return ocf.Errorf(ocf.ErrPerm, "parameter ctdb_rundir: %v", err)
	}
	s.Promotable = c.promotable
	if err := c.configure(s); err != nil {
		c.save(s)
		return err
	}
	if err := c.save(s); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot record the agent's state in %s: %v", c.state, err)
	}
	tConf := time.Since(t0)
	pid, err := ctdbSys.startDaemon(ctx, c.daemon)
	if err != nil {
		c.unconfigure(s)
		os.Remove(c.state)
		return ocf.Errorf(ocf.ErrGeneric, "%v", err)
	}
	s.PID = pid
	c.save(s)
	tSpawn := time.Since(t0)
	node, err := c.waitStarted(ctx, pid)
	if err != nil {
		how, serr := ctdbSys.stopDaemon(context.WithoutCancel(ctx), c.daemon, c.tool)
		r.Log.Warnf("ctdbd stopped after the failed start: %s %v", how, serr)
		c.unconfigure(s)
		os.Remove(c.state)
		return err
	}
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	r.Log.Infof("ctdbd started (pid %d, pnn %d, %s) in %v: status check and release detection %v, %d persistent databases checked in %v, configuration %v, ctdbd spawned in %v, then %v until ready; mode: %s",
		pid, node.PNN, node.State(), ms(time.Since(t0)), ms(tNaming), n, ms(tCheck-tNaming),
		ms(tConf-tCheck), ms(tSpawn-tConf), ms(time.Since(t0)-tSpawn), c.modeText())
	return c.afterStart(s, node)
}

// waitStarted polls this node's state until it is ready: healthy (or
// disabled) for a plain clone; for a promotable clone, connected to the
// cluster, since nobody can lead (and nodes stay unhealthy) until
// Pacemaker promotes an instance.
func (c *ctdbRes) waitStarted(ctx context.Context, pid int) (ctdb.Node, error) {
	last := "no answer yet"
	for {
		n, err := c.nodeStatus(ctx)
		switch {
		case err == nil && n.Healthy():
			return n, nil
		case err == nil && c.promotable && !n.Banned && !n.Stopped && !n.Disconnected:
			// Nobody can lead before Pacemaker promotes an instance, and
			// no node is healthy before then: done, unless a leader
			// exists (this instance joins a running cluster), then wait
			// for health like a plain clone.
			// A leader announces itself every second: two are enough.
			quick := *c.tool
			quick.Timeout = 2 * time.Second
			if l, lerr := quick.Leader(ctx); lerr == nil && l == ctdb.UnknownPNN {
				return n, nil
			}
			last = n.State() + " (a leader exists: waiting for health)"
		case err == nil:
			last = n.State()
		default:
			last = err.Error()
		}
		if !c.daemon.Alive(pid) {
			return ctdb.Node{}, ocf.Errorf(ocf.ErrGeneric, "ctdbd (pid %d) exited during its start (last state: %s); see %s", pid, last, c.r.String("ctdb_logfile"))
		}
		select {
		case <-ctx.Done():
			return ctdb.Node{}, ocf.Errorf(ocf.ErrGeneric, "ctdbd did not become healthy within the start timeout (this node: %s)", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// afterStart finishes a start in promotable mode: the leader role off
// here, the leader watch running and this node's promotion score set.
func (c *ctdbRes) afterStart(s *ctdbState, n ctdb.Node) error {
	s.PNN = n.PNN
	if !c.promotable {
		return c.save(s)
	}
	if _, err := c.naming(s); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%v", err)
	}
	if err := c.tool.SetLeaderRole(c.r.Context(), false); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot take the leader role from this unpromoted instance: %v", err)
	}
	c.ensureWatch(s)
	if err := c.setScore(n.PNN); err != nil {
		c.r.Log.Warnf("promotion score: %v", err)
	}
	return c.save(s)
}

// setScore makes this node a candidate for promotion: lower pnns first,
// so that the choice is the same on every node.
func (c *ctdbRes) setScore(pnn int) error {
	score := 1000 - pnn
	if score < 1 {
		score = 1
	}
	args := []string{"-p", c.r.Instance, "-v", strconv.Itoa(score)}
	if n := c.r.NodeName(); n != "" {
		args = append(args, "-N", n)
	}
	return ctdbSys.crmAttribute(c.r.Context(), args...)
}

func (c *ctdbRes) clearScore() error {
	args := []string{"-p", c.r.Instance, "-D"}
	if n := c.r.NodeName(); n != "" {
		args = append(args, "-N", n)
	}
	return ctdbSys.crmAttribute(c.r.Context(), args...)
}

func watchAlive(pid int) bool { return ctdbSys.watchAlive(pid) }

// watchRunning reports whether the leader-watch helper with pid runs.
func watchRunning(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && strings.Contains(string(b), "leader-watch")
}

func (c *ctdbRes) ensureWatch(s *ctdbState) {
	if watchAlive(s.WatchPID) {
		return
	}
	if s.Naming == "recmaster" {
		// Before 4.16 nobody broadcasts the leader, and "ctdb recmaster"
		// is a plain control: cheap, no watch needed.
		return
	}
	pid, err := ctdbSys.spawnWatch(c.r)
	if err != nil {
		c.r.Log.Warnf("cannot start the leader watch: %v", err)
		return
	}
	s.WatchPID = pid
}

func (c *ctdbRes) stopWatch(s *ctdbState) {
	if watchAlive(s.WatchPID) {
		syscall.Kill(s.WatchPID, syscall.SIGTERM)
	}
	s.WatchPID = 0
	os.Remove(c.leaderFile)
}

// watchedLeader reads the leader as the watch last saw it.
func (c *ctdbRes) watchedLeader(s *ctdbState) (int, bool) {
	if !watchAlive(s.WatchPID) {
		return 0, false
	}
	b, err := os.ReadFile(c.leaderFile)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	return n, true
}

// leader returns the cluster's leader: from the watch when it runs (no
// call at all), else by asking ctdb (which waits for a broadcast, up to a
// second).
func (c *ctdbRes) leader(s *ctdbState) (int, error) {
	if l, ok := c.watchedLeader(s); ok {
		return l, nil
	}
	if _, err := c.naming(s); err != nil {
		return 0, err
	}
	return c.tool.Leader(c.r.Context())
}

func ctdbMonitor(r *ocf.Request) error {
	c := newCTDB(r)
	if err := c.absentBinaries(); err != nil {
		if r.IsProbe() {
			return ocf.Exit(ocf.NotRunning)
		}
		return ocf.Errorf(ocf.ErrInstalled, "%v", err)
	}
	n, err := c.nodeStatus(r.Context())
	if errors.Is(err, ctdb.ErrNotRunning) {
		return ocf.Exit(ocf.NotRunning)
	}
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot get this node's status from ctdb: %v", err)
	}
	if !c.promotable {
		return c.verdict(n, false)
	}
	s, _ := c.load()
	if !watchAlive(s.WatchPID) && !r.IsProbe() {
		if s.Naming == "" {
			c.naming(s) // from the tool cache, normally
		}
		c.ensureWatch(s)
		s.PNN = n.PNN
		c.save(s)
	}
	l, err := c.leader(s)
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot tell the CTDB leader: %v", err)
	}
	if l == ctdb.UnknownPNN && n.Unhealthy && !n.Banned && !n.Stopped {
		r.Log.Debugf("pnn %d is %s: no leader yet, waiting for Pacemaker to promote one", n.PNN, n.State())
		return nil
	}
	return c.verdict(n, l == n.PNN)
}

func (c *ctdbRes) verdict(n ctdb.Node, leader bool) error {
	if !n.Healthy() {
		code := ocf.ErrGeneric
		if leader {
			code = ocf.FailedPromoted
		}
		reason := ""
		if n.Unhealthy && !n.Banned && !n.Stopped && !n.Disconnected && !n.Unknown {
			// Only an unhealthy node costs a second call: why is it?
			ss, err := c.tool.ScriptStatus(c.r.Context())
			switch {
			case err != nil:
				reason = fmt.Sprintf(" (event scripts: %v)", err)
			case ss.NeverRun || len(ss.Failed) == 0:
				// Starting: ctdb marks a node unhealthy until its first
				// monitor event has passed.
				c.r.Log.Infof("CTDB node %d is %s until its first monitor event passes (starting)", n.PNN, n.State())
				if leader {
					return ocf.Exit(ocf.RunningPromoted)
				}
				return nil
			default:
				reason = ": " + strings.Join(ss.Failed, "; ")
			}
		}
		return ocf.Errorf(code, "CTDB node %d is %s%s", n.PNN, n.State(), reason)
	}
	if n.Disabled {
		c.r.Log.Infof("CTDB node %d is DISABLED by the admin (it serves its databases, hosts no public addresses)", n.PNN)
	}
	if leader {
		return ocf.Exit(ocf.RunningPromoted)
	}
	return nil
}

func ctdbStop(r *ocf.Request) error {
	c := newCTDB(r)
	s, had := c.load()
	c.stopWatch(s)
	if err := c.absentBinaries(); err != nil {
		if had {
			c.unconfigure(s)
			os.Remove(c.state)
		}
		return nil
	}
	how, err := ctdbSys.stopDaemon(r.Context(), c.daemon, c.tool)
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%v", err)
	}
	r.Log.Infof("ctdbd %s", how)
	if c.promotable && r.Instance != "" {
		if err := c.clearScore(); err != nil {
			r.Log.Warnf("promotion score: %v", err)
		}
	}
	if had {
		if err := c.unconfigure(s); err != nil {
			r.Log.Warnf("restoring the configuration: %v", err)
		}
		os.Remove(c.state)
	}
	return nil
}

func ctdbPromote(r *ocf.Request) error {
	c := newCTDB(r)
	if !c.promotable {
		r.Log.Infof("not a promotable clone: CTDB elects its leader itself; nothing to promote")
		return nil
	}
	s, _ := c.load()
	n, err := c.nodeStatus(r.Context())
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot promote: %v", err)
	}
	if _, err := c.naming(s); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%v", err)
	}
	if err := c.tool.SetLeaderRole(r.Context(), true); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot give this node the leader role: %v", err)
	}
	c.ensureWatch(s)
	s.PNN = n.PNN
	c.save(s)
	t0 := time.Now()
	for {
		l, err := c.leader(s)
		if err == nil && l == n.PNN {
			tl := time.Since(t0)
			// The new leader's recovery follows; the nodes are healthy
			// after it (and their next monitor event): what services
			// ordered after the promotion (smbd) need.
			for {
				m, err := c.allHealthy(r.Context())
				if err == nil && m.Healthy() {
					r.Log.Infof("CTDB node %d is the leader %v after the role was given, healthy after %v",
						n.PNN, tl.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
					return nil
				}
				select {
				case <-r.Context().Done():
					r.Log.Warnf("CTDB node %d is the leader (after %v) but not yet healthy at the end of the promote timeout (%v)", n.PNN, tl.Round(time.Millisecond), err)
					return nil
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
		select {
		case <-r.Context().Done():
			return ocf.Errorf(ocf.ErrGeneric, "CTDB node %d has the leader role but was not elected within the promote timeout (leader: %d, %v)", n.PNN, l, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// allHealthy returns this node's row when every node present in the
// cluster (not disconnected, banned or stopped) is healthy, else an error
// naming one that is not.
func (c *ctdbRes) allHealthy(ctx context.Context) (ctdb.Node, error) {
	nodes, err := c.tool.Nodes(ctx)
	if err != nil {
		return ctdb.Node{}, err
	}
	var me ctdb.Node
	for _, n := range nodes {
		if n.This {
			me = n
		}
		if n.Disconnected || n.Banned || n.Stopped {
			continue
		}
		if !n.Healthy() {
			return ctdb.Node{}, fmt.Errorf("CTDB node %d is %s", n.PNN, n.State())
		}
	}
	return me, nil
}

func ctdbDemote(r *ocf.Request) error {
	c := newCTDB(r)
	if !c.promotable {
		return nil
	}
	s, _ := c.load()
	if _, err := c.nodeStatus(r.Context()); errors.Is(err, ctdb.ErrNotRunning) {
		return nil
	}
	if _, err := c.naming(s); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%v", err)
	}
	if err := c.tool.SetLeaderRole(r.Context(), false); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot take the leader role away: %v", err)
	}
	// ctdbd gives the role up at once and stops announcing itself; until
	// the watch notices the silence, it would still name this node.
	if watchAlive(s.WatchPID) {
		atomicfile.Write(c.leaderFile, []byte(strconv.Itoa(ctdb.UnknownPNN)+"\n"), 0o644)
	}
	c.save(s)
	return nil
}

func ctdbNotify(r *ocf.Request) error {
	n := r.Notify()
	r.Log.Debugf("notify %s-%s: start %v stop %v promote %v demote %v", n.Type, n.Operation, n.Start, n.Stop, n.Promote, n.Demote)
	return nil
}

// spawnLeaderWatch starts this binary as the leader-watch helper, in a
// session of its own so that it outlives the action.
func spawnLeaderWatch(r *ocf.Request) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(exe, "agent", "CTDB", "leader-watch")
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	return pid, nil
}

// ctdbLeaderWatch is the helper: it follows the leader broadcasts of the
// local ctdbd and keeps the last one in the leader file, until ctdbd goes
// or it is told to end.
func ctdbLeaderWatch(r *ocf.Request) error {
	c := newCTDB(r)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	defer os.Remove(c.leaderFile)
	// Until the first broadcast, nobody is known to lead.
	atomicfile.Write(c.leaderFile, []byte(strconv.Itoa(ctdb.UnknownPNN)+"\n"), 0o644)
	err := ctdb.WatchLeader(ctx, c.socketPath(), 6*time.Second, func(l int) {
		// Written when it differs from the file (which demote may have
		// changed), so about never: one small read a second.
		want := strconv.Itoa(l) + "\n"
		if b, err := os.ReadFile(c.leaderFile); err != nil || string(b) != want {
			atomicfile.Write(c.leaderFile, []byte(want), 0o644)
		}
	})
	if err != nil {
		r.Log.Infof("leader watch ends: %v", err)
	}
	return nil
}

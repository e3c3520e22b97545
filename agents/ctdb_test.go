package agents

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storhaug/storhaug/ctdb"
	"github.com/storhaug/storhaug/internal/proc"
	"github.com/storhaug/storhaug/ocf"
)

// fakeCTDB is a node's ctdb as the agent sees it: the tool's answers, the
// daemon's life, crm_attribute and the leader watch, without root.
type fakeCTDB struct {
	mu        sync.Mutex
	running   bool
	nodeRow   string // this node's -X nodestatus row
	leader    string // "ctdb leader" output
	corrupt   string // a persistent database tdbdump fails on
	scripts   string // "ctdb scriptstatus" output
	calls     []string
	crm       []string
	started   int
	stopped   int
	watchPID  int
	watchFile string
	fences    string // stonith_admin --history output
	nodeAttrs string // cibadmin --query --scope nodes output
	dropped   []int  // the pnns dropPeer was asked to drop
}

const nsHeader = "|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive|PartiallyOnline|ThisNode|\n"

func (f *fakeCTDB) Run(ctx context.Context, env []string, name string, args ...string) ([]byte, []byte, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.HasSuffix(name, "tdbdump") {
		if f.corrupt != "" && strings.HasSuffix(args[0], f.corrupt) {
			return nil, []byte("Failed to open " + args[0] + "\n"), 1, nil
		}
		return []byte("{}\n"), nil, 0, nil
	}
	if len(args) == 0 { // usage
		return nil, []byte("Commands:\n  leader    show the pnn of the leader\n  setleaderrole on|off  set LEADER role\n"), 1, nil
	}
	cmd := strings.Join(args[4:], " ")
	f.calls = append(f.calls, cmd)
	if cmd == "version" {
		return []byte("4.17.12-Debian\n"), nil, 0, nil
	}
	if !f.running {
		return nil, []byte("connect() failed, errno=111\nFailed to connect to CTDB daemon (/run/ctdb/ctdbd.socket)\n"), 1, nil
	}
	switch cmd {
	case "-X nodestatus", "-X status":
		return []byte(nsHeader + f.nodeRow + "\n"), nil, 0, nil
	case "leader", "recmaster":
		return []byte(f.leader + "\n"), nil, 0, nil
	case "setleaderrole on", "setleaderrole off", "setrecmasterrole on", "setrecmasterrole off", "shutdown":
		return nil, nil, 0, nil
	case "scriptstatus":
		return []byte(f.scripts), nil, 0, nil
	}
	return nil, []byte("unexpected " + cmd), 1, nil
}

// crmFake records the crm_attribute calls.
type crmFake struct{ f *fakeCTDB }

func (c crmFake) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	switch name {
	case "stonith_admin":
		c.f.crm = append(c.f.crm, name+" "+strings.Join(args, " "))
		return []byte(c.f.fences), nil
	case "cibadmin":
		return []byte(c.f.nodeAttrs), nil
	case "crm_attribute":
	default:
		return nil, errors.New("unexpected " + name)
	}
	c.f.crm = append(c.f.crm, strings.Join(args, " "))
	return nil, nil
}

type ctdbFixture struct {
	t     *testing.T
	f     *fakeCTDB
	sys   *ctdbSystem
	agent *ocf.Agent
	err   error // what the last handler returned
	dir   string
	env   map[string]string
	conf  string // ctdb.conf path
}

const adminCTDBConf = "[logging]\n\tlocation = syslog\n\n[cluster]\n\tnode address = 198.51.100.11\n"

func newCTDBFixture(t *testing.T, promotable bool) *ctdbFixture {
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	os.MkdirAll(filepath.Join(etc, "events", "legacy"), 0o755)
	os.WriteFile(filepath.Join(etc, "nodes"), []byte("198.51.100.11\n198.51.100.12\n"), 0o644)
	os.WriteFile(filepath.Join(etc, "ctdb.conf"), []byte(adminCTDBConf), 0o644)
	data := filepath.Join(dir, "share")
	os.MkdirAll(filepath.Join(data, "events", "legacy"), 0o755)
	for _, s := range []string{"00.ctdb", "10.interface", "11.routing", "49.winbind", "50.samba"} {
		os.WriteFile(filepath.Join(data, "events", "legacy", s+".script"), []byte("#!/bin/sh\n"), 0o755)
	}
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	for _, b := range []string{"ctdb", "ctdbd", "tdbdump"} {
		os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\nexit 99\n"), 0o755)
	}
	os.MkdirAll(filepath.Join(dir, "lock"), 0o755)
	os.WriteFile(filepath.Join(dir, "smb.conf"), []byte("[global]\n\tworkgroup = LAB\n"), 0o644)
	f := &fakeCTDB{nodeRow: "|0|198.51.100.11|0|0|0|0|0|0|0|0|Y|", leader: "1",
		scripts: "00.ctdb              OK         0.024 Tue Nov 24 07:23:48 2026\n50.samba             ERROR      0.112 Tue Nov 24 07:24:03 2026\n  OUTPUT: samba not listening on TCP port 445\n"}
	sys := &ctdbSystem{
		runner:    f,
		dataDir:   data,
		pacemaker: crmFake{f},
		spawnHelper: func(h proc.Helper) (int, error) {
			if strings.Join(h.Args, " ") != "CTDB leader-watch ctdb" {
				t.Errorf("helper spawned as %q", h.Args)
			}
			f.watchPID = 12345 // the test writes the leader file
			return f.watchPID, nil
		},
		helperRuns: func(pid int, args []string) bool { return pid != 0 && pid == f.watchPID },
		stopHelper: func(ctx context.Context, pid int, args []string) error {
			f.watchPID = 0
			return nil
		},
		localNode: func(ctx context.Context, socket string) (ctdb.Node, error) {
			return (&ctdb.Tool{Path: "ctdb", Runner: f}).NodeStatus(ctx) // the fake's nodestatus row
		},
		startDaemon: func(ctx context.Context, d *ctdb.Daemon) (int, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.running = true
			f.started++
			return 4242, nil
		},
		dropPeer: func(ctx context.Context, socket string, pnn int) (ctdb.Dropped, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.dropped = append(f.dropped, pnn)
			return ctdb.Dropped{Aborted: 2}, nil
		},
		stopDaemon: func(ctx context.Context, d *ctdb.Daemon, t *ctdb.Tool) (string, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			was := f.running
			f.running = false
			f.stopped++
			if !was {
				return "not running", nil
			}
			return "shut down", nil
		},
	}
	env := map[string]string{
		"OCF_RESOURCE_INSTANCE":       "ctdb",
		"HA_RSCTMP":                   filepath.Join(dir, "state"),
		"HA_LOGFACILITY":              "none",
		"OCF_RESKEY_ctdb_config_dir":  etc,
		"OCF_RESKEY_ctdb_binary":      filepath.Join(bin, "ctdb"),
		"OCF_RESKEY_ctdbd_binary":     filepath.Join(bin, "ctdbd"),
		"OCF_RESKEY_tdbdump_binary":   filepath.Join(bin, "tdbdump"),
		"OCF_RESKEY_ctdb_dbdir":       filepath.Join(dir, "db"),
		"OCF_RESKEY_ctdb_rundir":      filepath.Join(dir, "run"),
		"OCF_RESKEY_ctdb_logfile":     filepath.Join(dir, "log", "log.ctdb"),
		"OCF_RESKEY_smb_conf":         filepath.Join(dir, "smb.conf"),
		"OCF_RESKEY_CRM_meta_on_node": "n1",
	}
	if promotable {
		env["OCF_RESKEY_CRM_meta_promotable"] = "true"
	} else {
		env["OCF_RESKEY_ctdb_recovery_lock"] = filepath.Join(dir, "lock", "reclock")
	}
	x := &ctdbFixture{t: t, f: f, sys: sys, agent: newCTDBAgent(sys), dir: dir, env: env, conf: filepath.Join(etc, "ctdb.conf")}
	for i, a := range x.agent.Actions {
		if h := a.Handler; h != nil {
			x.agent.Actions[i].Handler = func(r *ocf.Request) error { x.err = h(r); return x.err }
		}
	}
	return x
}

func (x *ctdbFixture) run(action string, extra ...string) (ocf.Code, string) {
	env := map[string]string{}
	for k, v := range x.env {
		env[k] = v
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var out, errb bytes.Buffer
	code := x.agent.Run(context.Background(), []string{action}, ocf.MapEnv(env), &out, &errb)
	return code, errb.String()
}

func (x *ctdbFixture) setLeaderFile(pnn string) {
	p := filepath.Join(x.dir, "state", "storhaug-CTDB-ctdb.leader")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte(pnn+"\n"), 0o644)
}

func TestCTDBValidate(t *testing.T) {
	x := newCTDBFixture(t, false)
	if code, out := x.run("validate-all"); code != ocf.Success || !strings.Contains(out, "clone with cluster lock") {
		t.Errorf("plain clone with lock: %v %s", code, out)
	}
	for _, tc := range []struct {
		name   string
		extra  []string
		code   ocf.Code
		reason string
	}{
		{"plain clone without lock", []string{"OCF_RESKEY_ctdb_recovery_lock="}, ocf.ErrConfigured, "ctdb_recovery_lock is required for a plain clone"},
		{"lock dir missing", []string{"OCF_RESKEY_ctdb_recovery_lock=" + filepath.Join(x.dir, "nope", "reclock")}, ocf.ErrArgs, "not writable"},
		{"unknown ctdbd", []string{"OCF_RESKEY_ctdbd_binary=/nonexistent/ctdbd"}, ocf.ErrInstalled, "ctdbd_binary"},
		{"lock helper missing", []string{"OCF_RESKEY_ctdb_recovery_lock=!/nonexistent/helper arg"}, ocf.ErrInstalled, "lock helper"},
		{"nodes missing", []string{"OCF_RESKEY_ctdb_config_dir=" + filepath.Join(x.dir, "empty")}, ocf.ErrArgs, "nodes does not exist"},
		{"bad timeout", []string{"OCF_RESKEY_ctdb_timeout=0"}, ocf.ErrConfigured, "ctdb_timeout"},
		{"smb.conf missing", []string{"OCF_RESKEY_ctdb_manages_samba=yes", "OCF_RESKEY_smb_conf=/nonexistent/smb.conf"}, ocf.ErrInstalled, "smb_conf"},
	} {
		code, out := x.run("validate-all", tc.extra...)
		if code != tc.code || !strings.Contains(out, "ocf-exit-reason:") || !strings.Contains(out, tc.reason) {
			t.Errorf("%s: %v, want %v with %q:\n%s", tc.name, code, tc.code, tc.reason, out)
		}
	}
	p := newCTDBFixture(t, true)
	if code, out := p.run("validate-all"); code != ocf.Success || !strings.Contains(out, "promotable clone: Pacemaker picks the CTDB leader") {
		t.Errorf("promotable without lock: %v %s", code, out)
	}
}

func TestCTDBMonitorPlain(t *testing.T) {
	x := newCTDBFixture(t, false)
	probe := []string{"OCF_RESKEY_CRM_meta_interval=0"}
	if code, _ := x.run("monitor", probe...); code != ocf.NotRunning {
		t.Errorf("probe of a stopped daemon: %v", code)
	}
	if code, _ := x.run("monitor", "OCF_RESKEY_CRM_meta_interval=10000", "OCF_RESKEY_ctdbd_binary=/nonexistent"); code != ocf.ErrInstalled {
		t.Errorf("recurring monitor without ctdbd: %v", code)
	}
	if code, _ := x.run("monitor", append(probe, "OCF_RESKEY_ctdbd_binary=/nonexistent")...); code != ocf.NotRunning {
		t.Errorf("probe without ctdbd installed: %v", code)
	}
	x.f.running = true
	for _, tc := range []struct {
		row    string
		code   ocf.Code
		reason string
	}{
		{"|0|198.51.100.11|0|0|0|0|0|0|0|0|Y|", ocf.Success, ""},
		{"|0|198.51.100.11|0|0|0|1|0|0|0|0|Y|", ocf.Success, "DISABLED by the admin"},
		{"|0|198.51.100.11|0|0|0|0|1|0|0|0|Y|", ocf.ErrGeneric, "CTDB node 0 is UNHEALTHY: 50.samba ERROR: samba not listening on TCP port 445"},
		{"|0|198.51.100.11|0|0|1|0|0|0|1|0|Y|", ocf.ErrGeneric, "CTDB node 0 is BANNED|INACTIVE"},
	} {
		x.f.nodeRow = tc.row
		code, out := x.run("monitor", "OCF_RESKEY_CRM_meta_interval=10000")
		if code != tc.code || !strings.Contains(out, tc.reason) {
			t.Errorf("%s: %v %q, want %v %q", tc.row, code, out, tc.code, tc.reason)
		}
	}
	// Unhealthy only until the first monitor event has run: starting.
	x.f.nodeRow = "|0|198.51.100.11|0|0|0|0|1|0|0|0|Y|"
	x.f.scripts = "Event monitor has never run in legacy\n"
	if code, out := x.run("monitor", "OCF_RESKEY_CRM_meta_interval=10000"); code != ocf.Success || !strings.Contains(out, "first monitor event") {
		t.Errorf("starting node: %v %s", code, out)
	}
	// Promote and demote leave a plain clone's leader roles to ctdb.
	x.f.calls = nil
	if c1, _ := x.run("promote"); c1 != ocf.Success || len(x.f.calls) != 0 {
		t.Errorf("promote in a plain clone: %v %v", c1, x.f.calls)
	}
	if c1, _ := x.run("demote"); c1 != ocf.Success || len(x.f.calls) != 0 {
		t.Errorf("demote in a plain clone: %v %v", c1, x.f.calls)
	}
	// One question to ctdbd per monitor (the fake answers it from its
	// nodestatus row), and not "ctdb status" or "ctdb leader".
	x.f.calls = nil
	x.f.nodeRow = "|0|198.51.100.11|0|0|0|0|0|0|0|0|Y|"
	x.run("monitor", "OCF_RESKEY_CRM_meta_interval=10000")
	if strings.Join(x.f.calls, ",") != "-X nodestatus" {
		t.Errorf("monitor calls %v", x.f.calls)
	}
}

// A node whose monitor event failed before it was ever healthy after
// ctdbd's start is starting (smbd, started by the startup event, is not
// yet listening), for startGrace; once healthy, or after that, the same
// answer is a failure.
func TestCTDBMonitorStartingServices(t *testing.T) {
	x := newCTDBFixture(t, false)
	if code, out := x.run("start"); code != ocf.Success {
		t.Fatalf("start: %v %s", code, out)
	}
	healthy, unhealthy := "|0|198.51.100.11|0|0|0|0|0|0|0|0|Y|", "|0|198.51.100.11|0|0|0|0|1|0|0|0|Y|"
	monitor := func(row string) (ocf.Code, string) {
		x.f.nodeRow = row
		return x.run("monitor", "OCF_RESKEY_CRM_meta_interval=10000")
	}
	if code, out := monitor(unhealthy); code != ocf.Success || !strings.Contains(out, "not yet healthy: starting") {
		t.Errorf("first monitor event failed right after the start: %v, want success (starting)\n%s", code, out)
	}
	if code, out := monitor(healthy); code != ocf.Success {
		t.Fatalf("healthy: %v %s", code, out)
	}
	if code, out := monitor(unhealthy); code != ocf.ErrGeneric || !strings.Contains(out, "samba not listening on TCP port 445") {
		t.Errorf("unhealthy after it was healthy: %v, want a failure\n%s", code, out)
	}

	// Never healthy, long after the start: a failure.
	y := newCTDBFixture(t, false)
	if code, out := y.run("start"); code != ocf.Success {
		t.Fatalf("start: %v %s", code, out)
	}
	s, _ := ctdb.LoadState(y.statePath())
	s.Started = time.Now().Add(-startGrace - time.Second)
	if err := s.Save(y.statePath()); err != nil {
		t.Fatal(err)
	}
	y.f.nodeRow = unhealthy
	if code, out := y.run("monitor", "OCF_RESKEY_CRM_meta_interval=10000"); code != ocf.ErrGeneric || !strings.Contains(out, "UNHEALTHY") {
		t.Errorf("never healthy %v after the start: %v, want a failure\n%s", startGrace, code, out)
	}
}

// When ctdbd's answer over the socket is not understood, monitor asks the
// ctdb tool; a daemon that is not there is not asked twice.
func TestCTDBMonitorFallsBackToTool(t *testing.T) {
	x := newCTDBFixture(t, false)
	if code, out := x.run("start"); code != ocf.Success {
		t.Fatalf("start: %v %s", code, out)
	}
	socketErr := errors.New("ctdbd sent a packet without the CTDB magic")
	x.sys.localNode = func(context.Context, string) (ctdb.Node, error) { return ctdb.Node{}, socketErr }
	x.f.calls = nil
	if code, out := x.run("monitor", "OCF_RESKEY_CRM_meta_interval=10000"); code != ocf.Success || strings.Join(x.f.calls, ",") != "-X nodestatus" {
		t.Errorf("monitor with a socket it cannot read: %v, tool calls %v\n%s", code, x.f.calls, out)
	}
	x.sys.localNode = func(context.Context, string) (ctdb.Node, error) { return ctdb.Node{}, ctdb.ErrNotRunning }
	x.f.calls = nil
	if code, _ := x.run("monitor", "OCF_RESKEY_CRM_meta_interval=10000"); code != ocf.NotRunning || len(x.f.calls) != 0 {
		t.Errorf("monitor with ctdbd gone: %v, tool calls %v", code, x.f.calls)
	}
}

func TestCTDBStartStopRestoresConfig(t *testing.T) {
	x := newCTDBFixture(t, false)
	x.env["OCF_RESKEY_ctdb_manages_samba"] = "yes"
	code, out := x.run("start")
	if code != ocf.Success {
		t.Fatalf("start: %v %s", code, out)
	}
	b, _ := os.ReadFile(x.conf)
	conf := ctdb.ParseConf(b)
	for _, kv := range [][3]string{
		{"logging", "location", "file:" + x.env["OCF_RESKEY_ctdb_logfile"]},
		{"logging", "log level", "NOTICE"},
		{"cluster", "cluster lock", x.env["OCF_RESKEY_ctdb_recovery_lock"]},
		{"cluster", "node address", "198.51.100.11"}, // the admin's, kept
		{"database", "persistent database directory", filepath.Join(x.env["OCF_RESKEY_ctdb_dbdir"], "persistent")},
		{"legacy", "start as disabled", "false"},
	} {
		if v, _ := conf.Get(kv[0], kv[1]); v != kv[2] {
			t.Errorf("ctdb.conf [%s] %s = %q, want %q", kv[0], kv[1], v, kv[2])
		}
	}
	smb, _ := os.ReadFile(x.env["OCF_RESKEY_smb_conf"])
	if !strings.Contains(string(smb), "clustering = yes") {
		t.Errorf("smb.conf:\n%s", smb)
	}
	if _, err := os.Readlink(filepath.Join(x.dir, "etc", "events", "legacy", "50.samba.script")); err != nil {
		t.Errorf("50.samba not enabled: %v", err)
	}
	if code, _ := x.run("start"); code != ocf.Success || x.f.started != 1 {
		t.Errorf("second start: %v, ctdbd started %d times", code, x.f.started)
	}
	if code, _ := x.run("monitor", "OCF_RESKEY_CRM_meta_interval=10000"); code != ocf.Success {
		t.Errorf("monitor after start: %v", code)
	}
	if code, out := x.run("stop"); code != ocf.Success {
		t.Fatalf("stop: %v %s", code, out)
	}
	if b, _ := os.ReadFile(x.conf); string(b) != adminCTDBConf {
		t.Errorf("ctdb.conf after stop:\n%s\nwant\n%s", b, adminCTDBConf)
	}
	if smb, _ := os.ReadFile(x.env["OCF_RESKEY_smb_conf"]); string(smb) != "[global]\n\tworkgroup = LAB\n" {
		t.Errorf("smb.conf after stop:\n%s", smb)
	}
	if _, err := os.Lstat(filepath.Join(x.dir, "etc", "events", "legacy", "50.samba.script")); !os.IsNotExist(err) {
		t.Errorf("50.samba left enabled")
	}
	if code, _ := x.run("stop"); code != ocf.Success {
		t.Errorf("second stop: %v", code)
	}
	if code, _ := x.run("monitor", "OCF_RESKEY_CRM_meta_interval=10000"); code != ocf.NotRunning {
		t.Errorf("monitor after stop: %v", code)
	}
}

func TestCTDBStartRefusesCorruptDatabase(t *testing.T) {
	x := newCTDBFixture(t, false)
	p := filepath.Join(x.env["OCF_RESKEY_ctdb_dbdir"], "persistent")
	os.MkdirAll(p, 0o755)
	os.WriteFile(filepath.Join(p, "secrets.tdb.0"), []byte("x"), 0o600)
	x.f.corrupt = "secrets.tdb.0"
	code, out := x.run("start")
	if code != ocf.ErrGeneric || !strings.Contains(out, "secrets.tdb.0 is corrupt") || x.f.started != 0 {
		t.Errorf("start on a corrupt database: %v, ctdbd started %d times:\n%s", code, x.f.started, out)
	}
	// The OCF error keeps the domain's error in its chain.
	if ce := new(ctdb.CorruptError); !errors.As(x.err, &ce) {
		t.Errorf("start's error %v does not wrap a *ctdb.CorruptError", x.err)
	}
	if b, _ := os.ReadFile(x.conf); string(b) != adminCTDBConf {
		t.Errorf("ctdb.conf changed by a refused start:\n%s", b)
	}
}

func TestCTDBMetaData(t *testing.T) {
	var out bytes.Buffer
	if err := ctdbAgent().WriteMetaData(&out, false); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"ctdb_recovery_lock", "ctdb_manages_samba", "ctdb_manages_winbind", "ctdb_service_smb", "ctdb_service_nmb",
		"ctdb_service_winbind", "ctdb_samba_skip_share_check", "ctdb_start_as_disabled", "ctdb_config_dir", "ctdb_binary", "ctdbd_binary",
		"ctdb_dbdir", "ctdb_logfile", "ctdb_rundir", "ctdb_socket", "ctdb_timeout", "ctdb_debuglevel", "ctdb_max_open_files", "smb_conf",
		"smb_private_dir", "smb_passdb_backend", "smb_idmap_backend", "smb_fileid_algorithm", "ctdb_monitor_free_memory"} {
		if !strings.Contains(out.String(), `<parameter name="`+p+`"`) {
			t.Errorf("meta-data lacks %s", p)
		}
	}
	for _, a := range []string{`name="promote"`, `name="demote"`, `name="notify"`, `role="Master"`} {
		if !strings.Contains(out.String(), a) {
			t.Errorf("meta-data lacks %s", a)
		}
	}
	if strings.Contains(out.String(), "leader-watch") {
		t.Error("hidden action in meta-data")
	}
}

// A share without durable handles loses its clients' locks on a graceful
// move: start says so, naming the setting.
func TestCTDBStartWarnsNoDurableHandles(t *testing.T) {
	x := newCTDBFixture(t, false)
	x.env["OCF_RESKEY_ctdb_manages_samba"] = "yes"
	smb := x.env["OCF_RESKEY_smb_conf"]
	os.WriteFile(smb, []byte("[global]\n\tworkgroup = LAB\n[share]\n\tpath = /srv/share\n"), 0o644)
	code, out := x.run("start")
	if code != ocf.Success || !strings.Contains(out, "share [share]: posix locking = yes (the default)") {
		t.Errorf("start: %v, no warning about posix locking:\n%s", code, out)
	}
	x.run("stop")
	os.WriteFile(smb, []byte("[global]\n\tworkgroup = LAB\n[share]\n\tpath = /srv/share\n\tposix locking = no\n"), 0o644)
	if code, out := x.run("start"); code != ocf.Success || strings.Contains(out, "durable") {
		t.Errorf("start with posix locking = no: %v\n%s", code, out)
	}
}

// statePath is the agent's state file for the fixture's instance.
func (x *ctdbFixture) statePath() string {
	return filepath.Join(x.env["HA_RSCTMP"], "storhaug-CTDB-"+x.env["OCF_RESOURCE_INSTANCE"]+".json")
}

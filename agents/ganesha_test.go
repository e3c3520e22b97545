package agents

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storhaug/storhaug/ganesha"
	"github.com/storhaug/storhaug/ganesha/ganeshatest"
	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/internal/nstest"
	"github.com/storhaug/storhaug/internal/ocftest"
	"github.com/storhaug/storhaug/ocf"
)

const testGaneshaConf = `NFS_CORE_PARAM { Enable_NLM = false; Enable_RQUOTA = false; Protocols = 4; Clustered = false; }
NFSv4 { RecoveryBackend = fs; RecoveryRoot = %s/ganesha; Lease_Lifetime = 10; Grace_Period = 20; }
EXPORT { Export_Id = 1; Path = %s; Pseudo = /export; Access_Type = RW; Squash = No_Root_Squash;
	Protocols = 4; Transports = TCP; SecType = sys; FSAL { Name = VFS; } }
`

type ganeshaFixture struct {
	env    map[string]string
	dir    string // everything of this test
	nfsDir string // stands for /var/lib/nfs
	state  string // the shared state mount
	export string
	bus    string
	pid    func() int
}

// newGaneshaFixture writes a configuration whose every path is in a
// temporary directory, on a private system bus.
func newGaneshaFixture(t *testing.T) *ganeshaFixture {
	need.File(t, ganesha.DefaultBinary, "nfs-ganesha")
	f := &ganeshaFixture{dir: t.TempDir()}
	f.nfsDir = filepath.Join(f.dir, "var-lib-nfs")
	f.state = filepath.Join(f.dir, "state")
	f.export = filepath.Join(f.dir, "export")
	for _, d := range []string{f.nfsDir, f.state, f.export} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(filepath.Join(f.nfsDir, "local-file"), []byte("kept"), 0o644)
	os.WriteFile(filepath.Join(f.export, "hello.txt"), []byte("hello from ganesha\n"), 0o644)
	conf := filepath.Join(f.dir, "ganesha.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(testGaneshaConf, f.nfsDir, f.export)), 0o644)
	f.bus = ganeshatest.Bus(t)
	pidfile := filepath.Join(f.dir, "run", "ganesha.pid")
	f.env = map[string]string{
		"OCF_RESOURCE_INSTANCE":   "nfs-ganesha:0",
		"OCF_RESKEY_config":       conf,
		"OCF_RESKEY_pidfile":      pidfile,
		"OCF_RESKEY_logfile":      filepath.Join(f.dir, "ganesha.log"),
		"OCF_RESKEY_debuglevel":   "NIV_EVENT",
		"OCF_RESKEY_state_mnt":    f.state,
		"OCF_RESKEY_nodename":     "n1",
		"OCF_RESKEY_peers":        "n0,n1",
		"OCF_RESKEY_nfs_dir":      f.nfsDir,
		"OCF_RESKEY_dbus_address": f.bus,
		"HA_RSCTMP":               filepath.Join(f.dir, "rsctmp"),
	}
	f.pid = func() int {
		b, _ := os.ReadFile(pidfile)
		p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return p
	}
	t.Cleanup(func() { // whatever happens, the daemon this test started goes
		if p := f.pid(); p > 0 {
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p)); exe == ganesha.DefaultBinary {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})
	return f
}

func getGrace(t *testing.T, bus string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := ganesha.Connect(ctx, bus)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	in, err := b.GetGrace(ctx)
	if err != nil {
		t.Fatalf("get_grace: %v", err)
	}
	return in
}

// The ganesha agent with the real ganesha.nfsd (in a network namespace of
// the test's own) on a private D-Bus, the trigger's takeover against it, and
// an NFS client reading through it.
func TestGaneshaAgentReal(t *testing.T) {
	n := nstest.New(t)
	srv := n.AddHost("198.51.100.1/24")
	cli := n.AddHost("198.51.100.2/24")
	f := newGaneshaFixture(t)
	probe := with(f.env, "OCF_RESKEY_CRM_meta_interval", "0")
	mon := with(f.env, "OCF_RESKEY_CRM_meta_interval", "10000")
	run := func(action string, env map[string]string) (ocf.Code, string) {
		var code ocf.Code
		var stderr string
		srv.Do(func() error { code, stderr = runAgent(t, ganeshaAgent(), action, env); return nil })
		return code, stderr
	}
	expect := func(action string, env map[string]string, want ocf.Code) string {
		t.Helper()
		code, stderr := run(action, env)
		if code != want {
			t.Fatalf("%s = %v, want %v\n%s", action, code, want, stderr)
		}
		return stderr
	}

	expect("validate-all", f.env, ocf.Success)
	expect("monitor", probe, ocf.NotRunning)
	t0 := time.Now()
	expect("start", f.env, ocf.Success)
	t.Logf("start took %v", time.Since(t0))
	expect("monitor", mon, ocf.Success)
	expect("start", f.env, ocf.Success) // idempotent
	const monitors = 20
	t0 = time.Now()
	for i := 0; i < monitors; i++ {
		expect("monitor", mon, ocf.Success)
	}
	t.Logf("monitor (pidfile, /proc, D-Bus owner and ping): %v each", (time.Since(t0) / monitors).Round(time.Microsecond))

	// /var/lib/nfs now is n1's directory on the shared storage, the old one kept
	if tgt, _ := os.Readlink(f.nfsDir); tgt != filepath.Join(f.state, "nfs-ganesha", "n1") {
		t.Fatalf("%s -> %q", f.nfsDir, tgt)
	}
	if _, err := os.Stat(filepath.Join(f.state, "nfs-ganesha/n1/ganesha/v4recov")); err != nil {
		t.Fatal(err)
	}

	// a client reads through it
	out, err := cli.Command("nfs-cat", "nfs://198.51.100.1/export/hello.txt?version=4").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hello from ganesha") {
		t.Fatalf("nfs-cat: %v: %s", err, out)
	}

	// takeover of n0's clients: n0 has a client record, so grace lasts
	rec := filepath.Join(f.state, "nfs-ganesha/n0/ganesha/v4recov", "198.51.100.9-(9:client-n0)")
	if err := os.MkdirAll(rec, 0o755); err != nil {
		t.Fatal(err)
	}
	tenv := notifyEnv(with(triggerEnv(t, f.bus), "OCF_RESKEY_recovery_root", filepath.Join(f.nfsDir, "ganesha")), "n1", "post", "start", "n1", "n0")
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", tenv); code != ocf.Success {
		t.Fatalf("trigger post-start = %v: %s", code, stderr)
	}
	if !getGrace(t, f.bus) {
		t.Fatal("ganesha is not in grace after the takeover of n0")
	}
	// ganesha read n0's records through n1's peer link
	b, _ := os.ReadFile(filepath.Join(f.dir, "ganesha.log"))
	found := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "Recovery for nodeid") {
			t.Logf("ganesha: %s", l[strings.Index(l, "]")+1:])
			found = found || strings.Contains(l, filepath.Join(f.nfsDir, "ganesha/n0/v4recov"))
		}
	}
	if !found {
		t.Errorf("ganesha's log does not show it read n0's records:\n%s", b)
	}

	// a crash: the pidfile stays, the process is gone: monitor says so
	pid := f.pid()
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	expect("monitor", mon, ocf.NotRunning)
	expect("start", f.env, ocf.Success)
	expect("monitor", mon, ocf.Success)

	// answering on another bus than the agent's: monitor fails with the reason
	other := ganeshatest.Bus(t)
	if stderr := expect("monitor", with(mon, "OCF_RESKEY_dbus_address", other), ocf.ErrGeneric); !strings.Contains(stderr, "does not answer on D-Bus") {
		t.Errorf("monitor reason: %s", stderr)
	}

	t0 = time.Now()
	expect("stop", f.env, ocf.Success)
	t.Logf("stop took %v", time.Since(t0))
	expect("monitor", mon, ocf.NotRunning)
	expect("stop", f.env, ocf.Success)
	if b, err := os.ReadFile(filepath.Join(f.nfsDir, "local-file")); err != nil || string(b) != "kept" {
		t.Fatalf("previous %s not restored: %v", f.nfsDir, err)
	}
	if out, err := cli.Command("nfs-cat", "nfs://198.51.100.1/export/hello.txt?version=4").CombinedOutput(); err == nil {
		t.Fatalf("nfs-cat still works after stop: %s", out)
	}
}

// Bad input: what start, probe, stop and validate-all say.
func TestGaneshaAgentBadInput(t *testing.T) {
	nstest.Skip(t)
	f := newGaneshaFixture(t)
	probe := with(f.env, "OCF_RESKEY_CRM_meta_interval", "0")
	for _, tc := range []struct {
		name   string
		env    map[string]string
		start  ocf.Code
		reason string
	}{
		{"no config", with(f.env, "OCF_RESKEY_config", "/nonexistent/ganesha.conf"), ocf.ErrConfigured, "parameter config"},
		{"no binary", with(f.env, "OCF_RESKEY_binary", "/nonexistent/ganesha.nfsd"), ocf.ErrInstalled, "parameter binary"},
		{"relative config", with(f.env, "OCF_RESKEY_config", "ganesha.conf"), ocf.ErrConfigured, "parameter config"},
		{"no state mount", with(f.env, "OCF_RESKEY_state_mnt", "/nonexistent/state"), ocf.ErrGeneric, "parameter state_mnt"},
		{"bad node name", with(f.env, "OCF_RESKEY_nodename", "../n1"), ocf.ErrConfigured, "parameter nodename"},
		{"no D-Bus", with(f.env, "OCF_RESKEY_dbus_address", "unix:path="+filepath.Join(f.dir, "nobus")), ocf.ErrGeneric, "D-Bus is not reachable"},
	} {
		code, stderr := runAgent(t, ganeshaAgent(), "start", tc.env)
		if code != tc.start || !strings.Contains(stderr, "ocf-exit-reason:") || !strings.Contains(stderr, tc.reason) {
			t.Errorf("%s: start = %v, want %v with %q\n%s", tc.name, code, tc.start, tc.reason, stderr)
		}
		if code, _ := runAgent(t, ganeshaAgent(), "monitor", with(tc.env, "OCF_RESKEY_CRM_meta_interval", "0")); code != ocf.NotRunning {
			t.Errorf("%s: probe = %v, want 7", tc.name, code)
		}
		if code, stderr := runAgent(t, ganeshaAgent(), "stop", tc.env); code != ocf.Success {
			t.Errorf("%s: stop = %v, want 0\n%s", tc.name, code, stderr)
		}
	}
	// another process owns org.ganesha.nfsd: start refuses, naming it
	taken := ganeshatest.Bus(t)
	ganeshatest.Serve(t, taken)
	code, stderr := runAgent(t, ganeshaAgent(), "start", with(f.env, "OCF_RESKEY_dbus_address", taken))
	if code != ocf.ErrGeneric || !strings.Contains(stderr, fmt.Sprintf("org.ganesha.nfsd is already owned by pid %d", os.Getpid())) {
		t.Errorf("start with the bus name taken = %v\n%s", code, stderr)
	}
	if code, _ := runAgent(t, ganeshaAgent(), "validate-all", with(f.env, "OCF_RESKEY_config", "/nonexistent")); code != ocf.ErrConfigured {
		t.Errorf("validate-all without config = %v, want 6", code)
	}
	if code, _ := runAgent(t, ganeshaAgent(), "monitor", probe); code != ocf.NotRunning {
		t.Errorf("probe = %v", code)
	}
	// nothing was started by any of it, and /var/lib/nfs is untouched
	if fi, err := os.Lstat(f.nfsDir); err != nil || !fi.IsDir() {
		t.Errorf("%s changed: %v", f.nfsDir, err)
	}
	if _, err := exec.LookPath("ganesha.nfsd"); err == nil && f.pid() != 0 {
		t.Errorf("a pidfile was left: pid %d", f.pid())
	}
}

// ocf-tester passes for the ganesha agent, with the real daemon in a
// network namespace of the test's own and a private system bus.
func TestGaneshaOCFTester(t *testing.T) {
	n := nstest.New(t)
	srv := n.AddHost("198.51.100.1/24")
	f := newGaneshaFixture(t)
	root := ocftest.Install(t, ocftest.Binary(t))
	params := map[string]string{}
	for k, v := range f.env {
		if name, ok := strings.CutPrefix(k, "OCF_RESKEY_"); ok {
			params[name] = v
		}
	}
	ocftest.Tester{Params: params, Netns: srv.Name, Env: []string{"HA_RSCTMP=" + f.env["HA_RSCTMP"]}}.
		Pass(t, ocftest.AgentPath(root, "ganesha"))
	if b, err := os.ReadFile(filepath.Join(f.nfsDir, "local-file")); err != nil || string(b) != "kept" {
		t.Fatalf("previous %s not restored after ocf-tester: %v", f.nfsDir, err)
	}
}

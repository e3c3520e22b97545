package agents

// The promotable CTDB: promotion and demotion, the leader watch and how it is
// found, and CTDB before 4.16.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/ctdb"
	"github.com/storhaug/storhaug/internal/proc"
	"github.com/storhaug/storhaug/ocf"
)

func TestCTDBPromotable(t *testing.T) {
	x := newCTDBFixture(t, true)
	// Before any promotion nobody leads and every node is unhealthy.
	x.f.nodeRow = "|0|198.51.100.11|0|0|0|0|1|0|0|0|Y|"
	x.f.leader = "UNKNOWN"
	code, out := x.run("start")
	if code != ocf.Success {
		t.Fatalf("start: %v %s", code, out)
	}
	b, _ := os.ReadFile(x.conf)
	conf := ctdb.ParseConf(b)
	if v, _ := conf.Get("cluster", "leader capability"); v != "false" {
		t.Errorf("leader capability %q", v)
	}
	if _, ok := conf.Get("cluster", "cluster lock"); ok {
		t.Error("cluster lock set in promotable mode without ctdb_recovery_lock")
	}
	if !contains(x.f.calls, "setleaderrole off") || !contains(x.f.crm, "-p ctdb -v 1000 -N n1") {
		t.Errorf("start: calls %v crm %v", x.f.calls, x.f.crm)
	}
	x.setLeaderFile("-1")
	if code, _ := x.run("monitor", "OCF_RESKEY_CRM_meta_interval=10000"); code != ocf.Success {
		t.Errorf("unhealthy with no leader (waiting for promotion): %v", code)
	}
	x.f.nodeRow = "|0|198.51.100.11|0|0|0|0|0|0|0|0|Y|"
	x.setLeaderFile("0")
	x.f.calls = nil
	if code, _ := x.run("monitor", "OCF_RESKEY_CRM_meta_interval=11000"); code != ocf.RunningPromoted {
		t.Errorf("leader: %v", code)
	}
	if strings.Join(x.f.calls, ",") != "-X nodestatus" {
		t.Errorf("promoted monitor calls %v (leadership must come from the watch)", x.f.calls)
	}
	x.setLeaderFile("1")
	if code, _ := x.run("monitor", "OCF_RESKEY_CRM_meta_interval=11000"); code != ocf.Success {
		t.Errorf("capable but another node leads: %v, want 0", code)
	}
	x.f.nodeRow = "|0|198.51.100.11|0|0|0|0|1|0|0|0|Y|"
	if code, _ := x.run("monitor", "OCF_RESKEY_CRM_meta_interval=10000"); code != ocf.ErrGeneric {
		t.Errorf("unhealthy under a leader: %v", code)
	}
	x.setLeaderFile("0")
	if code, _ := x.run("monitor", "OCF_RESKEY_CRM_meta_interval=11000"); code != ocf.FailedPromoted {
		t.Errorf("unhealthy leader: %v", code)
	}
	x.f.nodeRow = "|0|198.51.100.11|0|0|0|0|0|0|0|0|Y|"
	x.f.calls = nil
	if code, out := x.run("promote"); code != ocf.Success || !contains(x.f.calls, "setleaderrole on") {
		t.Errorf("promote: %v %v %s", code, x.f.calls, out)
	}
	x.f.calls = nil
	if code, _ := x.run("demote"); code != ocf.Success || !contains(x.f.calls, "setleaderrole off") {
		t.Errorf("demote: %v %v", code, x.f.calls)
	}
	if code, _ := x.run("notify", "OCF_RESKEY_CRM_meta_notify_type=post", "OCF_RESKEY_CRM_meta_notify_operation=promote"); code != ocf.Success {
		t.Errorf("notify: %v", code)
	}
	if code, _ := x.run("stop"); code != ocf.Success || !contains(x.f.crm, "-p ctdb -D -N n1") {
		t.Errorf("stop: %v crm %v", code, x.f.crm)
	}
	if b, _ := os.ReadFile(x.conf); string(b) != adminCTDBConf {
		t.Errorf("ctdb.conf after stop:\n%s", b)
	}
}

// CTDB before 4.16 ("recmaster"): no leader broadcast to watch; the
// promotable monitor asks "ctdb recmaster" (a plain control there).
func TestCTDBPromotableRecmasterNaming(t *testing.T) {
	x := newCTDBFixture(t, true)
	x.f.running = true
	state := filepath.Join(x.dir, "state")
	os.MkdirAll(state, 0o755)
	info := `{"binary_id": "` + ctdb.BinaryID(x.env["OCF_RESKEY_ctdb_binary"]) + `", "version": "4.15.13", "naming": "recmaster"}`
	os.WriteFile(filepath.Join(state, "storhaug-CTDB-tool.json"), []byte(info), 0o644)
	x.f.leader = "0"
	code, out := x.run("monitor", "OCF_RESKEY_CRM_meta_interval=11000")
	if code != ocf.RunningPromoted || !contains(x.f.calls, "recmaster") || x.f.watchPID != 0 {
		t.Errorf("monitor: %v calls %v watch %d\n%s", code, x.f.calls, x.f.watchPID, out)
	}
	x.f.calls = nil
	x.run("promote")
	if !contains(x.f.calls, "setrecmasterrole on") {
		t.Errorf("promote calls %v", x.f.calls)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The leader watch is known by its exact command line: a process that
// merely mentions "leader-watch" in its arguments (here a shell) is not
// taken for it, so monitor starts a real watch rather than trusting the
// leader file of a process that is none.
func TestCTDBWatchFoundByExactIdentity(t *testing.T) {
	x := newCTDBFixture(t, true)
	x.f.running = true
	x.sys.helperRuns = proc.Runs
	in, out, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	impostor := exec.Command("sh", "-c", "read x; : leader-watch")
	impostor.Stdin = in // read returns when the cleanup closes out
	if err := impostor.Start(); err != nil {
		t.Fatal(err)
	}
	in.Close()
	t.Cleanup(func() { out.Close(); impostor.Process.Kill(); impostor.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; { // until its exec
		if args, _ := proc.Cmdline(impostor.Process.Pid); slices.Contains(args, "read x; : leader-watch") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the shell did not start")
		}
		runtime.Gosched()
	}
	state := filepath.Join(x.dir, "state", "storhaug-CTDB-ctdb.json")
	os.MkdirAll(filepath.Dir(state), 0o755)
	os.WriteFile(state, []byte(fmt.Sprintf(`{"pnn": 0, "watch_pid": %d, "naming": "leader"}`, impostor.Process.Pid)), 0o600)
	x.setLeaderFile("0")
	x.run("monitor", "OCF_RESKEY_CRM_meta_interval=11000")
	if x.f.watchPID != 12345 {
		t.Errorf("monitor took pid %d (%q) for the leader watch and started none", impostor.Process.Pid, impostor.Args)
	}
}

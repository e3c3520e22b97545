package command

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/setup"
)

// simulateFile runs crm_simulate on the CIB file f (extra: events for the
// first transition) until the cluster settles, and writes the result back
// to f.
func simulateFile(t *testing.T, f string, extra ...string) {
	t.Helper()
	dir := t.TempDir()
	in := f
	for i := 0; i < 8; i++ {
		out := filepath.Join(dir, fmt.Sprintf("s%d.xml", i))
		cmd := exec.Command("crm_simulate", append([]string{"-x", in, "-S", "-q", "true", "-O", out}, extra...)...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "CIB_file=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		res, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("crm_simulate: %v\n%s", err, res)
		}
		extra = nil
		in = out
		if i > 0 && !strings.Contains(string(res), "Resource action") {
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, data, 0o600); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("the simulated cluster did not settle in 8 transitions")
}

// statusJSON is what storhaug status --output json shows.
func statusJSON(t *testing.T) setup.Status {
	t.Helper()
	out, err := runCLI(t, "status", "--output", "json")
	var st setup.Status
	if err != nil || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status --output json: %v\n%s", err, out)
	}
	return st
}

// cleanupCLI runs storhaug cleanup; its output and error message.
func cleanupCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := runCLI(t, append([]string{"cleanup"}, args...)...)
	if err != nil {
		out += "storhaug: " + err.Error() + "\n"
	}
	return out, err
}

func failuresOf(st setup.Status) []string {
	var fs []string
	for _, f := range st.Failures {
		fs = append(fs, f.Resource+"@"+f.Node)
	}
	return fs
}

// storhaug cleanup on a CIB file with failures Pacemaker's scheduler
// recorded (crm_simulate): status shows them, cleanup --node clears only
// that node's, cleanup the rest; the cluster then probes the resources
// afresh and runs them where they failed. A wrong configuration, an
// unknown node and a cluster that is down are refused with messages that
// say so, and clear nothing.
func TestCleanupCLI(t *testing.T) {
	need.Tool(t, "crm_simulate", "pacemaker-cli-utils")
	dir := t.TempDir()
	cib := filepath.Join(dir, "cib.xml")
	empty, err := exec.Command("cibadmin", "--empty").Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cib, empty, 0o600)
	t.Setenv("CIB_file", cib)
	// The cluster's name, as Pacemaker takes it from corosync.conf.
	if out, err := exec.Command("crm_attribute", "--type", "crm_config", "--name", "cluster-name", "--update", "storhaug").CombinedOutput(); err != nil {
		t.Fatalf("crm_attribute: %v\n%s", err, out)
	}
	sample, _ := os.ReadFile("../examples/storhaug.conf")
	conf := filepath.Join(dir, "storhaug.conf")
	os.WriteFile(conf, append(sample, "HA_STONITH_ENABLED=false\n"...), 0o644)
	noDir := filepath.Join(dir, "none")
	if out, err := runCLI(t, "setup", "-c", conf, "--config-dir", noDir); err != nil {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	simulate := func(extra ...string) {
		t.Helper()
		simulateFile(t, cib, extra...)
	}
	simulate("-u", "n1", "-u", "n2", "-u", "n3")
	if st := statusJSON(t); len(st.Failures) != 0 {
		t.Fatalf("failures before any were injected: %v", failuresOf(st))
	}

	// n2's VIP fails its monitor, ganesha fails on n3.
	vip := "storhaug-vip-198.51.100.202"
	simulate("-i", vip+"_monitor_10000@n2=7", "-i", "storhaug-ganesha_monitor_10000@n3=1")
	st := statusJSON(t)
	if got := fmt.Sprint(failuresOf(st)); !strings.Contains(got, vip+"@n2") || !strings.Contains(got, "storhaug-ganesha@n3") || len(st.Failures) != 2 {
		t.Fatalf("status after the failures: %s, want %s on n2 and storhaug-ganesha on n3", got, vip)
	}
	failed, _ := os.ReadFile(cib)

	// Refused: another cluster's configuration, an unknown node.
	other := filepath.Join(dir, "other.conf")
	os.WriteFile(other, append(sample, "HA_NAME=other\nHA_STONITH_ENABLED=false\n"...), 0o644)
	out, err := cleanupCLI(t, "-c", other, "--config-dir", noDir)
	if err == nil || !strings.Contains(out, `this cluster is "storhaug" but `+other+` says HA_NAME="other"`) {
		t.Errorf("cleanup with another cluster's configuration: %v\n%s", err, out)
	}
	out, err = cleanupCLI(t, "-c", conf, "--config-dir", noDir, "--node", "n9")
	if err == nil || !strings.Contains(out, `--node: "n9" is not a node of this cluster (its nodes: n1, n2, n3)`) {
		t.Errorf("cleanup --node n9: %v\n%s", err, out)
	}
	if now, _ := os.ReadFile(cib); string(now) != string(failed) {
		t.Error("a refused cleanup changed the CIB")
	}

	// Only n3's.
	out, err = cleanupCLI(t, "-c", conf, "--config-dir", noDir, "--node", "n3")
	if err != nil || !strings.Contains(out, "cleaned up storhaug-ganesha on n3") || strings.Contains(out, "n2") {
		t.Errorf("cleanup --node n3: %v\n%s", err, out)
	}
	if got := failuresOf(statusJSON(t)); fmt.Sprint(got) != "["+vip+"@n2]" {
		t.Errorf("after cleanup --node n3 the failures are %v, want only %s on n2", got, vip)
	}
	// All the rest.
	out, err = cleanupCLI(t, "-c", conf, "--config-dir", noDir)
	if err != nil || !strings.Contains(out, "cleaned up "+vip+" on n2") {
		t.Errorf("cleanup: %v\n%s", err, out)
	}
	if st := statusJSON(t); len(st.Failures) != 0 {
		t.Errorf("after cleanup status shows failures %v", failuresOf(st))
	}
	b, _ := os.ReadFile(cib)
	if strings.Contains(string(b), "fail-count-storhaug") || strings.Contains(string(b), "last-failure-storhaug") || strings.Contains(string(b), "_last_failure_0") {
		t.Error("fail counts or failed operations left in the CIB")
	}
	if out, err := cleanupCLI(t, "-c", conf, "--config-dir", noDir); err != nil || !strings.Contains(out, "no failures to clear") {
		t.Errorf("second cleanup: %v\n%s", err, out)
	}
	// Pacemaker probes them afresh: everything runs where it did, no
	// failure comes back.
	simulate()
	st = statusJSON(t)
	for _, v := range st.VIPs {
		if v.Node != v.Home {
			t.Errorf("after cleanup VIP %s is on %q, home %s", v.Address, v.Node, v.Home)
		}
	}
	for _, s := range st.Services {
		if len(s.Running) != 3 {
			t.Errorf("after cleanup %s runs on %v", s.ID, s.Running)
		}
	}
	if len(st.Failures) != 0 {
		t.Errorf("failures after cleanup and a transition: %v", failuresOf(st))
	}

	// The cluster is down: no CIB_file and no Pacemaker on this host.
	os.Unsetenv("CIB_file")
	if exec.Command("cibadmin", "--query").Run() == nil {
		need.Missing(t, "a host without a running cluster: cibadmin --query answers here, so a cluster that is down cannot be tested")
	}
	out, err = cleanupCLI(t, "-c", conf, "--config-dir", noDir)
	if err == nil || !strings.Contains(out, "the cluster is not running on this node") || !strings.Contains(out, "start corosync and pacemaker here") {
		t.Errorf("cleanup with the cluster down: %v\n%s", err, out)
	}
	if code := Run([]string{"storhaug", "cleanup", "-c", conf, "--config-dir", noDir}); code == 0 {
		t.Error("cleanup with the cluster down exits 0")
	}
}

// On a live cluster cleanup is Pacemaker's: crm_resource --cleanup for
// each of storhaug's top-level resources, with --node when asked, and
// nothing for anyone else's.
func TestCleanupLive(t *testing.T) {
	t.Setenv("CIB_file", "")
	cibXML := `<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config>
<cluster_property_set id="cib-bootstrap-options"><nvpair id="o1" name="cluster-name" value="storhaug"/></cluster_property_set></crm_config>
<nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
<resources><primitive id="web" class="ocf" provider="heartbeat" type="apache"/><clone id="storhaug-ctdb-clone"/><primitive id="storhaug-vip-198.51.100.201"/></resources>
<constraints/></configuration><status/></cib>`
	var calls []string
	r := runnerFunc(func(name string, args ...string) ([]byte, error) {
		calls = append(calls, name+" "+strings.Join(args, " "))
		if name == "cibadmin" {
			return []byte(cibXML), nil
		}
		return nil, nil
	})
	cfg := &setup.Config{Name: "storhaug", File: "storhaug.conf"}
	cleaned, err := setup.Cleanup(context.Background(), r, cfg, "n2")
	if err != nil || len(cleaned) != 2 {
		t.Fatalf("cleaned %v, %v", cleaned, err)
	}
	want := "[cibadmin --query crm_resource --cleanup --resource storhaug-ctdb-clone --node n2 crm_resource --cleanup --resource storhaug-vip-198.51.100.201 --node n2]"
	if fmt.Sprint(calls) != want {
		t.Errorf("ran %v\nwant %s", calls, want)
	}
	calls = nil
	if _, err := setup.Cleanup(context.Background(), r, &setup.Config{Name: "other", File: "x.conf"}, ""); err == nil || len(calls) != 1 {
		t.Errorf("wrong cluster: %v, ran %v", err, calls)
	}
}

type runnerFunc func(name string, args ...string) ([]byte, error)

func (f runnerFunc) Run(_ context.Context, _ []byte, name string, args ...string) ([]byte, error) {
	return f(name, args...)
}

package setup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/pacemaker"
)

// A CIB of a running cluster with an admin's own objects.
const liveCIB = `<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="7" num_updates="3" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-cluster-name" name="cluster-name" value="storhaug"/>
      </cluster_property_set>
    </crm_config>
    <nodes>
      <node id="1" uname="n1"><instance_attributes id="nodes-1"><nvpair id="nodes-1-rack" name="rack" value="a"/></instance_attributes></node>
      <node id="2" uname="n2"/>
      <node id="3" uname="n3"/>
    </nodes>
    <resources>
      <primitive id="web" class="ocf" provider="heartbeat" type="apache"/>
    </resources>
    <constraints>
      <rsc_location id="web-prefers-n1" rsc="web" node="n1" score="100"/>
    </constraints>
  </configuration>
  <status/>
</cib>`

func mustParse(t *testing.T, s string) *Element {
	t.Helper()
	e, err := ParseXML([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestPlanIdempotentAndTeardown(t *testing.T) {
	cur := mustParse(t, liveCIB)
	cfg := cfgFor(t, 3, true, "")
	next, changes, err := Plan(cur, cfg, BuildFor(cfg, cur), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) == 0 {
		t.Fatal("setup on a bare cluster changed nothing")
	}
	// The admin's objects are where they were, unchanged.
	for _, id := range []string{"web", "web-prefers-n1", "nodes-1", "cib-bootstrap-options"} {
		var before, after string
		cur.Walk(func(e *Element) bool {
			if e.Get("id") == id {
				before = e.Canonical()
			}
			return true
		})
		next.Walk(func(e *Element) bool {
			if e.Get("id") == id {
				after = e.Canonical()
			}
			return true
		})
		if before == "" || before != after {
			t.Errorf("%s changed:\n%s\n%s", id, before, after)
		}
	}
	if strings.Contains(string(next.XML()), "stonith-enabled") {
		t.Error("setup touched fencing though the configuration does not ask")
	}
	if got := next.Find("configuration", "resources").Children[0].Get("id"); got != "web" {
		t.Errorf("first resource is now %s", got)
	}
	// Again: nothing to do.
	again, changes2, err := Plan(next, cfg, BuildFor(cfg, next), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes2) != 0 || again.Child("configuration").Canonical() != next.Child("configuration").Canonical() {
		t.Errorf("second setup changes %v", changes2)
	}
	// A changed configuration changes only what differs: other homes
	// change the scores of the 9 preferences.
	cfg2 := cfgFor(t, 3, true, "HA_VIP_NODES=n2,n3,n1\n")
	_, changes3, err := Plan(next, cfg2, BuildFor(cfg2, next), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes3 {
		if c.Op != "update" || !strings.Contains(c.ID, "-prefers-") {
			t.Errorf("other homes: unexpected change %s", c)
		}
	}
	if len(changes3) != 9 {
		t.Errorf("other homes: %d changes, want the 9 preferences", len(changes3))
	}
	// Teardown leaves the configuration as it was, also when storhaug's
	// agents left node attributes of their own (storhaug-*).
	for _, n := range next.Find("configuration", "nodes").Children {
		switch n.Get("uname") {
		case "n1":
			n.Children[0].Add(E("nvpair", "id", "nodes-1-storhaug-owner-x", "name", "storhaug-owner-x", "value", "1"))
		case "n2":
			n.Add(E("instance_attributes", "id", "nodes-2").Add(E("nvpair", "id", "nodes-2-storhaug-owner-x", "name", "storhaug-owner-x", "value", "1")))
		}
	}
	gone, _, err := Plan(next, cfg, nil, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if gone.Child("configuration").Canonical() != cur.Child("configuration").Canonical() {
		t.Errorf("teardown left\n%s\nwant\n%s", gone.Child("configuration").XML(), cur.Child("configuration").XML())
	}
}

func TestPlanRefusesWrongCluster(t *testing.T) {
	cur := mustParse(t, liveCIB)
	cfg := cfgFor(t, 3, false, "HA_NAME=other\n")
	if _, _, err := Plan(cur, cfg, BuildFor(cfg, cur), PlanOptions{}); err == nil || !strings.Contains(err.Error(), `this cluster is "storhaug" but test.conf says HA_NAME="other"`) {
		t.Errorf("wrong cluster: %v", err)
	}
	cfg = cfgFor(t, 4, false, "")
	if _, _, err := Plan(cur, cfg, BuildFor(cfg, cur), PlanOptions{}); err == nil || !strings.Contains(err.Error(), "HA_CLUSTER_NODES: n4 not known to this cluster (its nodes: n1, n2, n3)") {
		t.Errorf("unknown node: %v", err)
	}
}

func TestRemoveNodeTakesItsVIP(t *testing.T) {
	cfg := cfgFor(t, 3, true, "")
	e, gone, next, err := cfg.RemoveNode("n2")
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 || gone[0].Addr.String() != "198.51.100.102" {
		t.Errorf("VIPs gone with n2: %v", gone)
	}
	if e["HA_CLUSTER_NODES"] != "n1,n3" || e["HA_VIPS"] != "198.51.100.101/24 198.51.100.103/24" {
		t.Errorf("edit %v", e)
	}
	m := Build(next, Options{})
	for _, c := range m.Constraints {
		if c.Get("node") == "n2" {
			t.Errorf("preference for the removed node: %s", c.Get("id"))
		}
	}
	if _, ok := m.NodeAttrs["n2"]; ok {
		t.Error("n2 keeps role=storage")
	}
	// n3's VIP now fails over to n1 only, and stays home first.
	p := Preferences(next.StorageNodes, next.Homes())
	if fmt.Sprint(p) != "[[{n1 2000} {n3 1000}] [{n3 2000} {n1 1000}]]" {
		t.Errorf("preferences after remove: %v", p)
	}
	if _, _, _, err := cfg.RemoveNode("n9"); err == nil {
		t.Error("removing an unknown node succeeded")
	}
	// Removing down to one node is refused.
	c2 := cfgFor(t, 2, false, "")
	if _, _, _, err := c2.RemoveNode("n1"); err == nil || !strings.Contains(err.Error(), "at least 2 nodes") {
		t.Errorf("remove to one node: %v", err)
	}
}

func TestAddNodeAndSave(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "storhaug.conf")
	os.WriteFile(main, []byte("# cluster\nHA_CLUSTER_NODES=\"n1,n2\"  # two\nDETERMINISTIC_FAILOVER=yes\n"), 0o640)
	os.Mkdir(filepath.Join(dir, "storhaug.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "storhaug.d", "vips.conf"), []byte("HA_VIPS='198.51.100.1 198.51.100.2'\nHA_VIP_NODES=n1,n2\n"), 0o644)
	cfg, err := Load(main, filepath.Join(dir, "storhaug.d"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cfg.AddNode("n2", ""); err == nil {
		t.Error("adding a node twice succeeded")
	}
	if _, _, err := cfg.AddNode("n3", "bogus"); err == nil || !strings.Contains(err.Error(), `"bogus" is not an IP address`) {
		t.Errorf("bad VIP: %v", err)
	}
	e, next, err := cfg.AddNode("n3", "198.51.100.3")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(next.Homes()) != "[n1 n2 n3]" {
		t.Errorf("homes %v", next.Homes())
	}
	if err := cfg.Save(e); err != nil {
		t.Fatal(err)
	}
	re, err := Load(main, filepath.Join(dir, "storhaug.d"))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(re.ClusterNodes, re.VIPs, re.VIPNodes) != fmt.Sprint(next.ClusterNodes, next.VIPs, next.VIPNodes) {
		t.Errorf("saved config reads as %v %v %v", re.ClusterNodes, re.VIPs, re.VIPNodes)
	}
	data, _ := os.ReadFile(main)
	if !strings.HasPrefix(string(data), "# cluster\nHA_CLUSTER_NODES=\"n1,n2,n3\"\nDETERMINISTIC_FAILOVER=yes\n") {
		t.Errorf("main file rewritten as\n%s", data)
	}
	if st, _ := os.Stat(main); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode())
	}
	if d, _ := os.ReadFile(filepath.Join(dir, "storhaug.d", "vips.conf")); string(d) != "HA_VIPS=\"198.51.100.1 198.51.100.2 198.51.100.3\"\nHA_VIP_NODES=\"n1,n2,n3\"\n" {
		t.Errorf("drop-in rewritten as\n%s", d)
	}
}

// --- against Pacemaker's own tools, on CIB files ---

func needTools(t *testing.T) {
	for _, tool := range []string{"cibadmin", "crm_diff", "crm_verify", "crm_simulate", "crm_mon"} {
		need.Tool(t, tool, "pacemaker-cli-utils")
	}
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func emptyCIB(t *testing.T) string {
	f := filepath.Join(t.TempDir(), "cib.xml")
	if err := os.WriteFile(f, []byte(run(t, nil, "cibadmin", "--empty")), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func readCIB(t *testing.T, f string) *Element {
	t.Helper()
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return mustParse(t, string(data))
}

// simulate runs crm_simulate transitions until the cluster settles and
// returns the resulting CIB file. args are extra events for the first one.
func simulate(t *testing.T, f string, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	in := f
	for i := 0; i < 8; i++ {
		out := filepath.Join(dir, fmt.Sprintf("s%d.xml", i))
		a := append([]string{"-x", in, "-S", "-q", "true", "-O", out}, args...)
		res := run(t, nil, "crm_simulate", a...)
		args = nil
		in = out
		// What the storhaug-ready clone's agent does, which crm_simulate
		// does not run.
		ready := map[string]bool{}
		if st, err := pacemaker.ParseCrmMon([]byte(run(t, []string{"CIB_file=" + out}, "crm_mon", pacemaker.CrmMonArgs...))); err != nil {
			t.Fatal(err)
		} else {
			for _, n := range st.RunningOn(idReadyClone) {
				ready[n] = true
			}
		}
		setReadyOn(t, out, ready)
		if i > 0 && !strings.Contains(res, "Resource action") && !strings.Contains(res, "Pseudo action") {
			return out
		}
	}
	t.Fatalf("cluster did not settle in 8 transitions")
	return ""
}

func statusOf(t *testing.T, f string) *Status {
	t.Helper()
	out := run(t, []string{"CIB_file=" + f}, "crm_mon", "--one-shot", "--inactive", "--output-as=xml")
	st, err := ParseStatus(readCIB(t, f), []byte(out), History{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func setupFile(t *testing.T, f string, cfg *Config) (bool, []Change) {
	t.Helper()
	t.Setenv("CIB_file", f)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, _, changes, changed, err := Update(ctx, Exec{}, func(cur *Element) (*Element, []Change, error) {
		return Plan(cur, cfg, BuildFor(cfg, cur), PlanOptions{CreateNodes: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	return changed, changes
}

// Setup on an empty CIB file; crm_verify accepts it; crm_simulate places
// one VIP on each storage node; a second setup changes nothing; a node's
// crash moves its VIP; teardown leaves the CIB as it was.
func TestOfflineSetup(t *testing.T) {
	needTools(t)
	for _, tc := range []struct {
		nodes int
		det   bool
		extra string
	}{
		{2, false, ""}, {2, true, ""}, {3, false, ""}, {3, true, ""}, {5, false, ""}, {5, true, ""},
		// A non-storage node never gets a VIP or a service.
		{3, false, "STORAGE_NODES=n1,n2\nHA_VIPS='198.51.100.101 198.51.100.102'\n"},
		{3, false, "HA_CTDB_MODE=lock\nHA_SMB_MANAGER=lsb\nHA_VIPS='198.51.100.101 198.51.100.102 2001:db8::3/64'\n"},
	} {
		name := fmt.Sprintf("%dnodes-det%v", tc.nodes, tc.det)
		if tc.extra != "" {
			name += "-" + strings.Fields(tc.extra)[0]
		}
		t.Run(name, func(t *testing.T) {
			cfg := cfgFor(t, tc.nodes, tc.det, tc.extra+"HA_STONITH_ENABLED=false\n")
			f := emptyCIB(t)
			orig := readCIB(t, f)
			if changed, _ := setupFile(t, f, cfg); !changed {
				t.Fatal("setup changed nothing")
			}
			run(t, nil, "crm_verify", "-x", f)
			epoch := readCIB(t, f).Get("epoch")
			if changed, changes := setupFile(t, f, cfg); changed || len(changes) > 0 {
				t.Errorf("second setup changed %v", changes)
			}
			if e := readCIB(t, f).Get("epoch"); e != epoch {
				t.Errorf("second setup moved the epoch %s -> %s", epoch, e)
			}

			var up []string
			for _, n := range cfg.ClusterNodes {
				up = append(up, "-u", n)
			}
			st := statusOf(t, simulate(t, f, up...))
			storage := map[string]bool{}
			for _, n := range cfg.StorageNodes {
				storage[n] = true
			}
			perNode := map[string]int{}
			for i, v := range st.VIPs {
				if v.Node == "" || !storage[v.Node] {
					t.Errorf("VIP %s on %q, not a storage node", v.Address, v.Node)
				}
				perNode[v.Node]++
				if tc.det && v.Node != cfg.VIPHome(i) {
					t.Errorf("VIP %s on %s, its home is %s", v.Address, v.Node, cfg.VIPHome(i))
				}
			}
			if len(st.VIPs) != len(cfg.VIPs) {
				t.Errorf("%d VIPs in status, want %d", len(st.VIPs), len(cfg.VIPs))
			}
			for n, k := range perNode {
				if k != 1 {
					t.Errorf("%d VIPs on %s, want one per node", k, n)
				}
			}
			for _, s := range st.Services {
				if len(s.Running) != len(cfg.StorageNodes) {
					t.Errorf("%s runs on %v, want every storage node", s.ID, s.Running)
				}
				for _, n := range s.Running {
					if !storage[n] {
						t.Errorf("%s runs on non-storage node %s", s.ID, n)
					}
				}
			}
			if st.StonithEnabled || len(st.Warnings) == 0 || !strings.Contains(strings.Join(st.Warnings, "\n"), "fencing is disabled") {
				t.Errorf("status does not warn that fencing is off: %v", st.Warnings)
			}

			// Teardown: the configuration is as before setup.
			t.Setenv("CIB_file", f)
			_, _, _, changed, err := Update(context.Background(), Exec{}, func(cur *Element) (*Element, []Change, error) {
				return Plan(cur, cfg, nil, PlanOptions{})
			})
			if err != nil || !changed {
				t.Fatalf("teardown: changed %v, %v", changed, err)
			}
			if got := readCIB(t, f).Child("configuration").Canonical(); got != orig.Child("configuration").Canonical() {
				t.Errorf("teardown left\n%s", readCIB(t, f).Child("configuration").XML())
			}
		})
	}
}

// A crashed node's VIP moves: with deterministic failover to the next node
// of its rotation.
func TestOfflineFailover(t *testing.T) {
	needTools(t)
	cfg := cfgFor(t, 3, true, "HA_STONITH_ENABLED=false\n")
	f := emptyCIB(t)
	setupFile(t, f, cfg)
	settled := simulate(t, f, "-u", "n1", "-u", "n2", "-u", "n3")
	after := statusOf(t, simulate(t, settled, "-d", "n1"))
	where := map[string]string{}
	for _, v := range after.VIPs {
		where[v.Address] = v.Node
	}
	want := map[string]string{"198.51.100.101": "n2", "198.51.100.102": "n2", "198.51.100.103": "n3"}
	if fmt.Sprint(where) != fmt.Sprint(want) {
		t.Errorf("after n1 went down VIPs are on %v, want %v", where, want)
	}
	// n1 comes back: its VIP goes home.
	back := statusOf(t, simulate(t, simulate(t, settled, "-d", "n1"), "-u", "n1"))
	for _, v := range back.VIPs {
		if v.Node != v.Home {
			t.Errorf("after n1 came back, %s is on %s, home %s", v.Address, v.Node, v.Home)
		}
	}
}

// Objects that are not storhaug's survive setup and teardown on a file.
func TestOfflineKeepsForeignObjects(t *testing.T) {
	needTools(t)
	f := filepath.Join(t.TempDir(), "cib.xml")
	os.WriteFile(f, []byte(liveCIB), 0o600)
	cfg := cfgFor(t, 3, false, "HA_STONITH_ENABLED=false\n")
	setupFile(t, f, cfg)
	run(t, nil, "crm_verify", "-x", f)
	_, _, _, _, err := Update(context.Background(), Exec{}, func(cur *Element) (*Element, []Change, error) {
		return Plan(cur, cfg, nil, PlanOptions{})
	})
	if err != nil {
		t.Fatal(err)
	}
	if readCIB(t, f).Child("configuration").Canonical() != mustParse(t, liveCIB).Child("configuration").Canonical() {
		t.Errorf("foreign objects changed:\n%s", readCIB(t, f).Child("configuration").XML())
	}
}

// The patch is refused when the CIB moved on after it was read.
func TestCommitConflict(t *testing.T) {
	needTools(t)
	f := emptyCIB(t)
	t.Setenv("CIB_file", f)
	ctx := context.Background()
	cur, err := QueryCIB(ctx, Exec{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := cfgFor(t, 2, false, "")
	next, _, err := Plan(cur, cfg, BuildFor(cfg, cur), PlanOptions{CreateNodes: true})
	if err != nil {
		t.Fatal(err)
	}
	// Someone else writes in between.
	run(t, nil, "cibadmin", "--create", "--scope", "resources", "--xml-text", `<primitive id="other" class="ocf" provider="heartbeat" type="Dummy"/>`)
	if _, err := Commit(ctx, Exec{}, cur, next); err == nil || !strings.Contains(err.Error(), ErrConflict.Error()) {
		t.Errorf("stale commit: %v", err)
	}
	if strings.Contains(string(readCIB(t, f).XML()), IDPrefix) {
		t.Error("stale commit wrote storhaug objects")
	}
}

// fakeRunner answers like Pacemaker's tools would, from a script.
type fakeRunner struct {
	calls []string
	fn    func(name string, args []string, stdin []byte) ([]byte, error)
}

func (f *fakeRunner) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	f.calls = append(f.calls, name+" "+strings.Join(args, " "))
	return f.fn(name, args, stdin)
}

func TestClusterDown(t *testing.T) {
	t.Setenv("CIB_file", "")
	r := &fakeRunner{fn: func(name string, args []string, _ []byte) ([]byte, error) {
		return nil, &ExitError{Cmd: name, Code: 102, Stderr: "Could not connect to the CIB: Transport endpoint is not connected\nInit failed, could not perform requested operations\n"}
	}}
	_, err := QueryCIB(context.Background(), r)
	if !errors.Is(err, ErrClusterDown) || !strings.Contains(err.Error(), "start corosync and pacemaker") || strings.Contains(err.Error(), "\n") {
		t.Errorf("cluster down: %v", err)
	}
}

// Update retries when the CIB moved on between query and patch, and
// writes nothing when there is nothing to change.
func TestUpdateRetriesOnConflict(t *testing.T) {
	cfg := cfgFor(t, 3, false, "")
	patches := 0
	r := &fakeRunner{fn: func(name string, args []string, _ []byte) ([]byte, error) {
		switch name {
		case "cibadmin":
			if args[0] == "--query" {
				return []byte(liveCIB), nil
			}
			patches++
			if patches == 1 {
				return nil, &ExitError{Cmd: name, Code: 103, Stderr: "Call failed: Update was older than existing configuration"}
			}
			return nil, nil
		case "crm_diff":
			return nil, &ExitError{Cmd: name, Code: 1, Stdout: []byte("<diff/>")}
		}
		return nil, fmt.Errorf("unexpected %s", name)
	}}
	_, _, _, changed, err := Update(context.Background(), r, func(cur *Element) (*Element, []Change, error) {
		return Plan(cur, cfg, BuildFor(cfg, cur), PlanOptions{})
	})
	if err != nil || !changed || patches != 2 {
		t.Errorf("changed %v, %d patches, %v; calls %v", changed, patches, err, r.calls)
	}
	// Nothing to change: no crm_diff, no patch.
	r.calls = nil
	_, _, _, changed, err = Update(context.Background(), r, func(cur *Element) (*Element, []Change, error) {
		return cur.Clone(), nil, nil
	})
	if err != nil || changed || len(r.calls) != 1 {
		t.Errorf("no-op update: changed %v, calls %v, %v", changed, r.calls, err)
	}
}

// Teardown first stops storhaug's resources (target-role=Stopped on each
// top-level one), touching nothing else.
func TestPlanStop(t *testing.T) {
	cur := mustParse(t, liveCIB)
	cfg := cfgFor(t, 3, false, "")
	set, _, err := Plan(cur, cfg, BuildFor(cfg, cur), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stopped, changes, err := PlanStop(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range stopped.Find("configuration", "resources").Children {
		has := strings.Contains(r.Canonical(), `name="target-role" value="Stopped"`)
		if Owned(r.Get("id")) {
			n++
			if !has {
				t.Errorf("%s not stopped", r.Get("id"))
			}
		} else if has {
			t.Errorf("foreign %s stopped", r.Get("id"))
		}
	}
	if len(changes) != n || n == 0 {
		t.Errorf("%d changes for %d resources", len(changes), n)
	}
	if _, again, _ := PlanStop(stopped, cfg); len(again) != 0 {
		t.Errorf("stopping twice changes %v", again)
	}
	if _, _, err := PlanStop(set, cfgFor(t, 3, false, "HA_NAME=other\n")); err == nil {
		t.Error("PlanStop on the wrong cluster")
	}
}

// Pacemaker reads cib-bootstrap-options before every other
// cluster_property_set, whatever their scores: Property says what
// Pacemaker's own crm_verify finds (a stonith-enabled=true there wins over
// storhaug's INFINITY set saying false), and setup refuses to write a
// property that such a value would silently override.
func TestPropertyBootstrapFirst(t *testing.T) {
	needTools(t)
	cib := func(bootstrap string) string {
		return `<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config>` +
			`<cluster_property_set id="storhaug-options" score="INFINITY"><nvpair id="storhaug-options-stonith-enabled" name="stonith-enabled" value="false"/></cluster_property_set>` +
			`<cluster_property_set id="cib-bootstrap-options">` + bootstrap + `</cluster_property_set>` +
			`</crm_config><nodes/><resources/><constraints/></configuration><status/></cib>`
	}
	for _, tc := range []struct {
		bootstrap, want string
	}{
		{`<nvpair id="b1" name="stonith-enabled" value="true"/>`, "true"},
		{`<nvpair id="b1" name="cluster-name" value="storhaug"/>`, "false"},
	} {
		doc := cib(tc.bootstrap)
		if got := Property(mustParse(t, doc), "stonith-enabled"); got != tc.want {
			t.Errorf("%s: Property = %q, want %q", tc.bootstrap, got, tc.want)
		}
		// crm_verify fails on a cluster that must fence but has no device.
		f := filepath.Join(t.TempDir(), "cib.xml")
		os.WriteFile(f, []byte(doc), 0o600)
		out, err := exec.Command("crm_verify", "-V", "-x", f).CombinedOutput()
		if fences := err != nil && strings.Contains(string(out), "STONITH"); fences != (tc.want == "true") {
			t.Errorf("%s: crm_verify (fencing on: %v) disagrees with Property %q:\n%s", tc.bootstrap, fences, tc.want, out)
		}
	}

	cfg := cfgFor(t, 3, true, "HA_STONITH_ENABLED=false\n")
	conflict := mustParse(t, strings.Replace(liveCIB, `<nvpair id="cib-bootstrap-options-cluster-name"`,
		`<nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="true"/><nvpair id="cib-bootstrap-options-cluster-name"`, 1))
	if _, _, err := Plan(conflict, cfg, BuildFor(cfg, conflict), PlanOptions{}); err == nil ||
		!strings.Contains(err.Error(), `cluster property stonith-enabled is "true" in cib-bootstrap-options`) || !strings.Contains(err.Error(), "pcs property unset stonith-enabled") {
		t.Errorf("setup over cib-bootstrap-options stonith-enabled=true: %v", err)
	}
	agree := mustParse(t, strings.Replace(liveCIB, `<nvpair id="cib-bootstrap-options-cluster-name"`,
		`<nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/><nvpair id="cib-bootstrap-options-cluster-name"`, 1))
	if _, _, err := Plan(agree, cfg, BuildFor(cfg, agree), PlanOptions{}); err != nil {
		t.Errorf("setup over an agreeing cib-bootstrap-options: %v", err)
	}
}

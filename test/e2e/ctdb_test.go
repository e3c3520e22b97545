package e2e

// ocf:storhaug:CTDB with the real ctdbd in the lab: ocf-tester on a node, a
// plain clone with the cluster lock under Pacemaker (ctdbd killed, found
// not running, restarted), and the promotable clone in which Pacemaker
// picks the CTDB leader, with smbd and a VIP on top and a client reading
// the share before and after the leader's node crashes.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/test/lab"
)

const (
	ctdbAgentPath = "/usr/lib/ocf/resource.d/storhaug/CTDB"
	ctdbVIP       = "198.51.100.211"
)

// ctdbPNN is the pnn of a lab node: its line in the nodes file.
func ctdbPNN(n *lab.Node) int { return n.ID() - 1 }

// ctdbLeaderOn asks a node's ctdb for the leader's pnn.
func ctdbLeaderOn(ctx context.Context, n *lab.Node) (int, error) {
	r, err := n.Run(ctx, "ctdb", "leader")
	if err != nil {
		return 0, fmt.Errorf("%s: ctdb leader: %v %s", n.Name(), err, r.Output())
	}
	return strconv.Atoi(strings.TrimSpace(r.Stdout))
}

// ctdbHealthyOn reports whether every listed node is OK in n's ctdb status.
func ctdbHealthyOn(ctx context.Context, n *lab.Node, nodes []*lab.Node) (bool, error) {
	r, err := n.Run(ctx, "ctdb", "-X", "status")
	if err != nil {
		return false, fmt.Errorf("%s: %v %s", n.Name(), err, r.Output())
	}
	for _, m := range nodes {
		row := fmt.Sprintf("|%d|%s|0|0|0|", ctdbPNN(m), m.Addr4())
		line := ""
		for _, l := range strings.Split(r.Stdout, "\n") {
			if strings.HasPrefix(l, row) {
				line = l
			}
		}
		// |pnn|ip|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive|...
		f := strings.Split(line, "|")
		if len(f) < 10 || f[7] != "0" || f[8] != "0" || f[9] != "0" {
			return false, fmt.Errorf("%s not OK in %s's view:\n%s", m.Name(), n.Name(), r.Stdout)
		}
	}
	return true, nil
}

func ctdbAgentEnv(extra ...string) []string {
	return append([]string{"OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=ctdb-test", "HA_LOGFACILITY=none"}, extra...)
}

// ocf-tester inside n1 against the installed agent and the real ctdbd (a
// cluster of one live node: the others run no ctdbd): as a plain clone
// with the lab's cluster lock, then as a promotable clone (promote and
// demote cycles with the real leader election); ctdb.conf is as before
// after each.
func TestCTDBAgentOCFTester(t *testing.T) {
	l := sharedLab(t)
	storhaugBin(t)
	ctx := ctxFor(t, 12*time.Minute)
	n := l.Node("n1")
	before, _ := n.ReadFile("/etc/ctdb/ctdb.conf")
	for _, tc := range []struct {
		name string
		opts []string
	}{
		// Each action gets the agent's declared start timeout, as Pacemaker
		// gives it (ocf-tester's own is 20 s: a first recovery with CTDB's
		// shipped RerecoveryTimeout takes ~12 s, more on a loaded machine).
		{"plain clone", []string{"ctdb_recovery_lock=" + l.ClusterLock(), "CRM_meta_timeout=90000"}},
		{"promotable clone", []string{"CRM_meta_promotable=true", "CRM_meta_timeout=90000"}},
	} {
		args := []string{"-v", "-n", "ocft-ctdb"}
		for _, o := range tc.opts {
			args = append(args, "-o", o)
		}
		r, err := n.Exec(ctx, []string{"OCF_ROOT=/usr/lib/ocf"}, "/usr/sbin/ocf-tester", append(args, ctdbAgentPath)...)
		if err != nil || !strings.Contains(r.Output(), "passed all tests") {
			t.Errorf("ocf-tester CTDB (%s) on n1: %v\n%s", tc.name, err, r.Output())
			continue
		}
		t.Logf("ocf-tester CTDB (%s): passed all tests", tc.name)
		if n.Running("ctdbd") {
			t.Errorf("ctdbd still runs on n1 after ocf-tester (%s)", tc.name)
		}
		if after, _ := n.ReadFile("/etc/ctdb/ctdb.conf"); string(after) != string(before) {
			t.Errorf("ctdb.conf not restored after the last stop (%s):\n%s\nwas\n%s", tc.name, after, before)
		}
	}
}

// Start, monitor and stop by hand on one node, with what an admin sees:
// every bad parameter's code, a refused start on a corrupt persistent
// database, a disabled node still running, monitor 7 after kill -9.
func TestCTDBAgentStartMonitorStop(t *testing.T) {
	l := sharedLab(t)
	storhaugBin(t)
	ctx := ctxFor(t, 5*time.Minute)
	n := l.Node("n2")
	env := ctdbAgentEnv("OCF_RESKEY_ctdb_recovery_lock=" + l.ClusterLock())
	run := func(action string, extra ...string) lab.Result {
		r, _ := n.Exec(ctx, append(env, extra...), ctdbAgentPath, action)
		return r
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		n.Exec(ctx, env, ctdbAgentPath, "stop")
	})
	for _, tc := range []struct {
		name  string
		extra []string
		code  int
	}{
		{"plain clone without a lock", []string{"OCF_RESKEY_ctdb_recovery_lock="}, 6},
		{"lock directory missing", []string{"OCF_RESKEY_ctdb_recovery_lock=/nonexistent/dir/reclock"}, 2},
		{"unknown ctdbd", []string{"OCF_RESKEY_ctdbd_binary=/usr/sbin/no-ctdbd"}, 5},
		{"nodes file missing", []string{"OCF_RESKEY_ctdb_config_dir=/tmp"}, 2},
	} {
		r := run("validate-all", tc.extra...)
		if r.Code != tc.code || !strings.Contains(r.Stderr, "ocf-exit-reason:") {
			t.Errorf("validate-all, %s: code %d, want %d:\n%s", tc.name, r.Code, tc.code, r.Output())
		}
	}
	if r := run("monitor", "OCF_RESKEY_CRM_meta_interval=0"); r.Code != 7 {
		t.Fatalf("probe before start: %d %s", r.Code, r.Output())
	}

	// A corrupt persistent database: start refuses, and says which.
	bad := "/var/lib/ctdb/persistent/storhaug_e2e.tdb.1"
	if err := n.WriteFile(bad, []byte("TDB file\nnot really a tdb"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run("start")
	if r.Code != 1 || !strings.Contains(r.Stderr, "storhaug_e2e.tdb.1 is corrupt") || n.Running("ctdbd") {
		t.Errorf("start on a corrupt database: code %d, ctdbd running %v:\n%s", r.Code, n.Running("ctdbd"), r.Output())
	}
	if p, err := n.Path(bad); err == nil {
		os.Remove(p)
	}

	t0 := time.Now()
	if r := run("start"); r.Code != 0 {
		t.Fatalf("start: %d\n%s", r.Code, r.Output())
	} else {
		t.Logf("start %v: %s", time.Since(t0).Round(time.Millisecond), strings.TrimSpace(r.Stderr))
	}
	if r := run("monitor", "OCF_RESKEY_CRM_meta_interval=10000"); r.Code != 0 {
		t.Errorf("monitor after start: %d %s", r.Code, r.Output())
	}
	if r := run("start"); r.Code != 0 {
		t.Errorf("start of a started resource: %d %s", r.Code, r.Output())
	}
	// Disabled by the admin: still running.
	n.Run(ctx, "ctdb", "disable")
	if r := run("monitor", "OCF_RESKEY_CRM_meta_interval=10000"); r.Code != 0 || !strings.Contains(r.Stderr, "DISABLED") {
		t.Errorf("monitor of a disabled node: %d %s", r.Code, r.Output())
	}
	n.Run(ctx, "ctdb", "enable")
	if _, err := l.KillDaemon("n2", "ctdbd"); err != nil {
		t.Fatal(err)
	}
	if r := run("monitor", "OCF_RESKEY_CRM_meta_interval=10000"); r.Code != 7 {
		t.Errorf("monitor after kill -9: %d %s", r.Code, r.Output())
	}
	if r := run("monitor", "OCF_RESKEY_CRM_meta_interval=0"); r.Code != 7 {
		t.Errorf("probe after kill -9: %d %s", r.Code, r.Output())
	}
	if r := run("stop"); r.Code != 0 {
		t.Errorf("stop after kill -9: %d %s", r.Code, r.Output())
	}
	if r := run("start"); r.Code != 0 {
		t.Fatalf("start again: %d %s", r.Code, r.Output())
	}
	t1 := time.Now()
	if r := run("stop"); r.Code != 0 || n.Running("ctdbd") {
		t.Errorf("stop: %d, ctdbd running %v: %s", r.Code, n.Running("ctdbd"), r.Output())
	}
	t.Logf("stop %v", time.Since(t1).Round(time.Millisecond))
	if r := run("monitor", "OCF_RESKEY_CRM_meta_interval=10000"); r.Code != 7 {
		t.Errorf("monitor after stop: %d", r.Code)
	}
}

func ctdbPlainCIB(lock string) string {
	return fmt.Sprintf(`<resources>
  <clone id="ctdb-clone">
    <meta_attributes id="ctdb-clone-meta">
      <nvpair id="ctdb-clone-interleave" name="interleave" value="true"/>
    </meta_attributes>
    <primitive id="ctdb" class="ocf" provider="storhaug" type="CTDB">
      <instance_attributes id="ctdb-params">
        <nvpair id="ctdb-lock" name="ctdb_recovery_lock" value="%s"/>
      </instance_attributes>
      <operations>
        <op id="ctdb-start" name="start" interval="0" timeout="90s"/>
        <op id="ctdb-stop" name="stop" interval="0" timeout="100s"/>
        <op id="ctdb-monitor" name="monitor" interval="5s" timeout="20s"/>
      </operations>
    </primitive>
  </clone>
</resources>`, lock)
}

// A plain clone with the cluster lock on the shared storage: an instance
// on every node, ctdb elects one leader by itself (all nodes agree), a
// node the admin banned fails its monitor (1, "BANNED"), and a ctdbd
// killed with SIGKILL is found not running (7) and restarted by Pacemaker.
func TestCTDBPlainCloneClusterLock(t *testing.T) {
	l := sharedLab(t)
	storhaugBin(t)
	ctx := ctxFor(t, 6*time.Minute)
	t0 := time.Now()
	if err := l.ApplyCIB(ctx, "resources", ctdbPlainCIB(l.ClusterLock())); err != nil {
		t.Fatal(err)
	}
	nodes := l.Nodes()
	err := l.WaitFor(ctx, "ctdb-clone started on 3 nodes and CTDB healthy", 3*time.Minute, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		if len(s.RunningOn("ctdb")) != 3 {
			return false, fmt.Errorf("ctdb running on %v", s.RunningOn("ctdb"))
		}
		return ctdbHealthyOn(ctx, nodes[0], nodes)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("3 instances started, CTDB healthy %.1fs after the CIB change", time.Since(t0).Seconds())
	leader := -1
	for _, n := range nodes {
		ld, err := ctdbLeaderOn(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if leader >= 0 && ld != leader {
			t.Errorf("%s says the leader is %d, another node said %d", n.Name(), ld, leader)
		}
		leader = ld
		r, _ := n.Run(ctx, "ctdb", "getreclock")
		if strings.TrimSpace(r.Stdout) != l.ClusterLock() {
			t.Errorf("%s: cluster lock %q, want %q", n.Name(), r.Stdout, l.ClusterLock())
		}
	}
	t.Logf("leader elected by ctdb: pnn %d", leader)

	// The admin bans n3: Pacemaker's monitor fails with ctdb's word for
	// it, and Pacemaker recovers the instance.
	n3 := l.Node("n3")
	env := ctdbAgentEnv("OCF_RESKEY_ctdb_recovery_lock=" + l.ClusterLock())
	// "ctdb ban" exits 1 when its IP reallocation fails after the ban;
	// what counts is the ban, seen below through Pacemaker.
	if r, err := n3.Run(ctx, "ctdb", "ban", "60"); err != nil {
		t.Logf("ctdb ban 60 on n3: %v %s", err, r.Output())
	}
	err = l.WaitFor(ctx, "a failed monitor of ctdb on n3, BANNED", time.Minute, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		for _, f := range s.FailuresOf("ctdb") {
			if f.Node == "n3" && f.Task == "monitor" {
				if f.ExitCode != 1 || !strings.Contains(f.ExitReason, "BANNED") {
					return false, fmt.Errorf("failed monitor on n3: exit %d reason %q, want 1 with BANNED", f.ExitCode, f.ExitReason)
				}
				return true, nil
			}
		}
		return false, fmt.Errorf("no failed monitor of ctdb on n3 yet")
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitFor(ctx, "CTDB healthy after the ban", 2*time.Minute, func() (bool, error) { return ctdbHealthyOn(ctx, nodes[0], nodes) }); err != nil {
		t.Fatal(err)
	}

	victim := l.Node("n2")
	tk := time.Now()
	if _, err := l.KillDaemon("n2", "ctdbd"); err != nil {
		t.Fatal(err)
	}
	r, _ := victim.Exec(ctx, append(env, "OCF_RESKEY_CRM_meta_interval=5000"), ctdbAgentPath, "monitor")
	if r.Code != 7 {
		t.Errorf("monitor right after kill -9 on n2: %d %s", r.Code, r.Output())
	}
	err = l.WaitFor(ctx, "Pacemaker restarts ctdb on n2", 2*time.Minute, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		if s.FailCountOf("ctdb", "n2") < 1 {
			return false, fmt.Errorf("no failure of ctdb on n2 recorded yet")
		}
		if !victim.Running("ctdbd") {
			return false, fmt.Errorf("no ctdbd on n2")
		}
		return ctdbHealthyOn(ctx, nodes[0], nodes)
	})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := l.CrmMon(ctx)
	for _, f := range s.FailuresOf("ctdb") {
		if f.Node == "n2" && f.Task == "monitor" && f.ExitCode != 7 {
			t.Errorf("the failed monitor on n2 returned %d (%s), want 7", f.ExitCode, f.ExitReason)
		}
	}
	t.Logf("ctdbd on n2 killed, found not running, restarted and healthy again in %.1fs", time.Since(tk).Seconds())
}

// ctdbMasterXML is CTDB as a promotable clone, "ctdb-master" of "ctdb"
// (promoted monitor every 4 s), as storhaug setup makes it.
const ctdbMasterXML = `  <clone id="ctdb-master">
    <meta_attributes id="ctdb-master-meta">
      <nvpair id="ctdb-master-promotable" name="promotable" value="true"/>
      <nvpair id="ctdb-master-promoted-max" name="promoted-max" value="1"/>
      <nvpair id="ctdb-master-notify" name="notify" value="true"/>
      <nvpair id="ctdb-master-interleave" name="interleave" value="true"/>
    </meta_attributes>
    <primitive id="ctdb" class="ocf" provider="storhaug" type="CTDB">
      <operations>
        <op id="ctdb-start" name="start" interval="0" timeout="90s"/>
        <op id="ctdb-stop" name="stop" interval="0" timeout="100s"/>
        <op id="ctdb-promote" name="promote" interval="0" timeout="60s"/>
        <op id="ctdb-demote" name="demote" interval="0" timeout="30s"/>
        <op id="ctdb-monitor" name="monitor" interval="5s" timeout="20s"/>
        <op id="ctdb-monitor-promoted" name="monitor" interval="4s" timeout="20s" role="Promoted"/>
      </operations>
    </primitive>
  </clone>
`

// ctdbPromotableCIB is the storhaug layout: CTDB as a promotable clone
// without a cluster lock, smbd (clustering = yes) cloned after the
// promotion (until an instance is promoted nobody leads and no node is
// healthy; promote returns once the leader's node is healthy), a VIP with
// smbd.
func ctdbPromotableCIB() (resources, constraints string) {
	resources = fmt.Sprintf(`<resources>
%s  <clone id="smb-clone">
    <meta_attributes id="smb-clone-meta">
      <nvpair id="smb-clone-interleave" name="interleave" value="false"/>
    </meta_attributes>
    <primitive id="smb" class="ocf" provider="heartbeat" type="anything">
      <instance_attributes id="smb-params">
        <nvpair id="smb-binfile" name="binfile" value="/usr/sbin/smbd"/>
        <nvpair id="smb-cmdline" name="cmdline_options" value="--foreground --no-process-group"/>
      </instance_attributes>
      <operations>
        <op id="smb-monitor" name="monitor" interval="5s" timeout="20s"/>
      </operations>
    </primitive>
  </clone>
  <primitive id="vip-smb" class="ocf" provider="storhaug" type="IPaddr3">
    <instance_attributes id="vip-smb-params">
      <nvpair id="vip-smb-ip" name="ip" value="%s"/>
      <nvpair id="vip-smb-cidr" name="cidr_netmask" value="24"/>
      <nvpair id="vip-smb-nic" name="nic" value="eth0"/>
    </instance_attributes>
    <meta_attributes id="vip-smb-meta">
      <nvpair id="vip-smb-stickiness" name="resource-stickiness" value="0"/>
    </meta_attributes>
    <operations>
      <op id="vip-smb-monitor" name="monitor" interval="5s" timeout="20s"/>
    </operations>
  </primitive>
</resources>`, ctdbMasterXML, ctdbVIP)
	constraints = `<constraints>
  <rsc_colocation id="smb-with-ctdb" rsc="smb-clone" with-rsc="ctdb-master" score="INFINITY"/>
  <rsc_order id="ctdb-promote-then-smb" first="ctdb-master" first-action="promote" then="smb-clone" then-action="start"/>
  <rsc_order id="ctdb-then-smb" first="ctdb-master" then="smb-clone"/>
  <rsc_colocation id="vip-with-smb" rsc="vip-smb" with-rsc="smb-clone" score="INFINITY"/>
  <rsc_order id="smb-then-vip" first="smb-clone" then="vip-smb"/>
</constraints>`
	return
}

// promotedCTDB returns the node Pacemaker promoted, when exactly one is.
func promotedCTDB(ctx context.Context, l *lab.Lab, from *lab.Node) (string, error) {
	s, err := from.CrmMon(ctx)
	if err != nil {
		return "", err
	}
	p := s.WithRole("ctdb", "Promoted")
	if len(p) != 1 {
		return "", fmt.Errorf("promoted ctdb on %v", p)
	}
	return p[0], nil
}

// Every live node's ctdb names the same leader, and it is want.
func ctdbAllAgree(ctx context.Context, nodes []*lab.Node, want int) error {
	for _, n := range nodes {
		ld, err := ctdbLeaderOn(ctx, n)
		if err != nil {
			return err
		}
		if ld != want {
			return fmt.Errorf("%s's ctdb says the leader is pnn %d, want %d", n.Name(), ld, want)
		}
	}
	return nil
}

func smbRead(ctx context.Context, l *lab.Lab, file, content string) error {
	r, err := l.Client(1).Run(ctx, "smbclient", "//"+ctdbVIP+"/"+lab.ShareName, "-N", "-c", "get "+file+" -")
	if err != nil {
		return fmt.Errorf("smbclient via %s: %v %s", ctdbVIP, err, r.Output())
	}
	if !strings.Contains(r.Stdout, content) {
		return fmt.Errorf("smbclient via %s: content missing:\n%s", ctdbVIP, r.Output())
	}
	return nil
}

// The promotable clone: Pacemaker promotes one instance and that node is
// CTDB's only leader; smbd on every node and a VIP serve the share to a
// client. The promoted node crashes: another is promoted, ctdb's leader
// follows within a measured bound, and the client reads the share through
// the VIP again.
func TestCTDBPromotableLeaderFailover(t *testing.T) {
	l := sharedLab(t)
	storhaugBin(t)
	ctx := ctxFor(t, 8*time.Minute)
	vipsAbsent(t, l, ctdbVIP)
	content := "ctdb e2e " + time.Now().Format(time.RFC3339Nano) + "\n"
	file := "ctdb-e2e.txt"
	if err := os.WriteFile(filepath.Join(l.ShareDir(), file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(l.ShareDir(), file)) })
	res, cons := ctdbPromotableCIB()
	t0 := time.Now()
	if err := l.ApplyCIB(ctx, "resources", res); err != nil {
		t.Fatal(err)
	}
	if err := l.ApplyCIB(ctx, "constraints", cons); err != nil {
		t.Fatal(err)
	}
	nodes := l.Nodes()
	var promoted string
	err := l.WaitFor(ctx, "one ctdb promoted, smbd and the VIP up, CTDB healthy", 4*time.Minute, func() (bool, error) {
		p, err := promotedCTDB(ctx, l, nodes[0])
		if err != nil {
			return false, err
		}
		s, _ := l.CrmMon(ctx)
		if len(s.RunningOn("ctdb")) != 3 || len(s.RunningOn("smb")) != 3 || len(s.RunningOn("vip-smb")) != 1 {
			return false, fmt.Errorf("ctdb on %v, smb on %v, vip on %v", s.RunningOn("ctdb"), s.RunningOn("smb"), s.RunningOn("vip-smb"))
		}
		if ok, err := ctdbHealthyOn(ctx, nodes[0], nodes); !ok {
			return false, err
		}
		promoted = p
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("promoted %s; all up %.1fs after the CIB change", promoted, time.Since(t0).Seconds())
	pn := l.Node(promoted)
	if err := ctdbAllAgree(ctx, nodes, ctdbPNN(pn)); err != nil {
		t.Fatalf("exactly one CTDB leader, the promoted node: %v", err)
	}
	for _, n := range nodes {
		r, _ := n.Run(ctx, "ctdb", "-X", "getcapabilities")
		want := "|0|"
		if n == pn {
			want = "|1|"
		}
		if !strings.Contains(r.Stdout, "\n"+want) {
			t.Errorf("%s: leader capability %q, want %s (only the promoted node may lead)", n.Name(), r.Stdout, want)
		}
	}
	if err := smbRead(ctx, l, file, content); err != nil {
		t.Fatalf("before the crash: %v", err)
	}

	// Crash the promoted node.
	var survivors []*lab.Node
	for _, n := range nodes {
		if n != pn {
			survivors = append(survivors, n)
		}
	}
	tc := time.Now()
	if err := l.Crash(promoted); err != nil {
		t.Fatal(err)
	}
	var newP string
	err = l.WaitFor(ctx, "another node promoted", 3*time.Minute, func() (bool, error) {
		p, err := promotedCTDB(ctx, l, survivors[0])
		if err != nil {
			return false, err
		}
		if p == promoted {
			return false, fmt.Errorf("still promoted on the crashed %s", p)
		}
		newP = p
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tPromoted := time.Since(tc)
	err = l.WaitFor(ctx, "ctdb leader agrees", 2*time.Minute, func() (bool, error) {
		return true, ctdbAllAgree(ctx, survivors, ctdbPNN(l.Node(newP)))
	})
	if err != nil {
		t.Fatal(err)
	}
	tLeader := time.Since(tc)
	err = l.WaitFor(ctx, "the share through the VIP", 2*time.Minute, func() (bool, error) {
		return true, smbRead(ctx, l, file, content)
	})
	if err != nil {
		t.Fatal(err)
	}
	tSMB := time.Since(tc)
	t.Logf("crash of promoted %s: %s promoted after %.1fs, ctdb leader on every survivor after %.1fs, share readable through the VIP after %.1fs",
		promoted, newP, tPromoted.Seconds(), tLeader.Seconds(), tSMB.Seconds())
	if tLeader > 60*time.Second {
		t.Errorf("ctdb's leader followed the promotion only after %v (bound 60s)", tLeader)
	}
}

// The promoted instance's monitor says "promoted" (8) only while ctdb
// names its node the leader. CTDB as a promotable clone, one instance
// promoted and leading; the clone is made unmanaged (Pacemaker monitors
// but does not recover) and the leader role is taken away under the
// promoted instance ("ctdb setleaderrole off" there): the agent's monitor,
// run on that node as Pacemaker runs it, says 8 before and 0 (running, not
// promoted) after, and Pacemaker records its promoted monitor failing with
// 0. A monitor that returned 8 for every promoted instance fails here.
func TestCTDBPromotedMonitorFollowsLeader(t *testing.T) {
	l := sharedLab(t)
	storhaugBin(t)
	ctx := ctxFor(t, 8*time.Minute)
	if err := l.ApplyCIB(ctx, "resources", "<resources>\n"+ctdbMasterXML+"</resources>"); err != nil {
		t.Fatal(err)
	}
	nodes := l.Nodes()
	var promoted string
	err := l.WaitFor(ctx, "one ctdb promoted and leading, CTDB healthy", 4*time.Minute, func() (bool, error) {
		p, err := promotedCTDB(ctx, l, nodes[0])
		if err != nil {
			return false, err
		}
		if ok, err := ctdbHealthyOn(ctx, nodes[0], nodes); !ok {
			return false, err
		}
		if err := ctdbAllAgree(ctx, nodes, ctdbPNN(l.Node(p))); err != nil {
			return false, err
		}
		promoted = p
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pn := l.Node(promoted)
	t.Logf("promoted and CTDB leader: %s (pnn %d)", promoted, ctdbPNN(pn))

	// Pacemaker keeps monitoring but recovers nothing; managed again
	// before the CIB is reset, so that it stops what runs.
	manage := func(ctx context.Context, v string) error {
		r, err := nodes[0].Run(ctx, "crm_resource", "--resource", "ctdb-master", "--meta", "--set-parameter", "is-managed", "--parameter-value", v)
		if err != nil {
			return fmt.Errorf("crm_resource is-managed=%s: %v %s", v, err, r.Output())
		}
		return nil
	}
	if err := manage(ctx, "false"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := manage(ctx, "true"); err != nil {
			t.Error(err)
		}
	})

	// The instance Pacemaker runs on that node (its state file names it).
	r, err := pn.Sh(ctx, "ls /run/resource-agents")
	if err != nil {
		t.Fatalf("state of the CTDB agent on %s: %v %s", promoted, err, r.Output())
	}
	inst := ""
	for _, f := range strings.Fields(r.Stdout) {
		if s, ok := strings.CutPrefix(f, "storhaug-CTDB-"); ok && strings.HasSuffix(s, ".json") {
			inst = strings.TrimSuffix(s, ".json")
		}
	}
	if inst == "" {
		t.Fatalf("no state file of the CTDB agent on %s: %q", promoted, r.Stdout)
	}
	monitor := func() int {
		r, _ := pn.Exec(ctx, []string{"OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=" + inst,
			"OCF_RESKEY_CRM_meta_promotable=true", "OCF_RESKEY_CRM_meta_interval=4000", "OCF_RESKEY_CRM_meta_role=Promoted",
			"OCF_RESKEY_CRM_meta_timeout=20000"}, ctdbAgentPath, "monitor")
		if r.Code != 8 && r.Code != 0 {
			t.Logf("monitor on %s: %d\n%s", promoted, r.Code, r.Output())
		}
		return r.Code
	}
	if code := monitor(); code != 8 {
		t.Fatalf("monitor of the promoted instance on %s while it leads = %d, want 8", promoted, code)
	}

	// Take the leader role away under the promoted instance.
	tc := time.Now()
	if r, err := pn.Run(ctx, "ctdb", "setleaderrole", "off"); err != nil {
		t.Fatalf("ctdb setleaderrole off on %s: %v %s", promoted, err, r.Output())
	}
	var leaderNow string
	err = l.WaitFor(ctx, "ctdb on "+promoted+" no longer names it the leader", time.Minute, func() (bool, error) {
		r, _ := pn.Run(ctx, "ctdb", "leader")
		leaderNow = strings.TrimSpace(r.Output()) // no leader: an unknown pnn or an error
		if leaderNow == strconv.Itoa(ctdbPNN(pn)) {
			return false, fmt.Errorf("leader still pnn %s", leaderNow)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ctdb on %s no longer names it the leader %.1fs after setleaderrole off (ctdb leader: %q)", promoted, time.Since(tc).Seconds(), leaderNow)
	var code int
	err = l.WaitFor(ctx, "the promoted instance's monitor says not promoted", 30*time.Second, func() (bool, error) {
		if code = monitor(); code != 0 {
			return false, fmt.Errorf("monitor = %d", code)
		}
		return true, nil
	})
	if err != nil {
		t.Errorf("monitor on %s after its leader role was taken away: %v (want 0: running, not promoted)", promoted, err)
	} else {
		t.Logf("monitor on %s: 0 (not promoted) %.1fs after setleaderrole off", promoted, time.Since(tc).Seconds())
	}
	// Pacemaker's own promoted monitor (every 4 s) sees it too.
	err = l.WaitFor(ctx, "Pacemaker records the promoted monitor failing", 30*time.Second, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		for _, f := range s.FailuresOf("ctdb") {
			if f.Node == promoted && f.Task == "monitor" && f.ExitCode == 0 {
				return true, nil
			}
		}
		return false, fmt.Errorf("failures %+v", s.FailuresOf("ctdb"))
	})
	if err != nil {
		t.Error(err)
	}
}

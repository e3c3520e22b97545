package e2e

// storhaug setup on the lab: the shipped sample configuration (SMB through
// CTDB, NFS through NFS-Ganesha, one VIP per node) with a drop-in for the
// lab's paths, run by the storhaug command inside node n1 against the live
// cluster; then a second setup, a node crash with clients reading through
// the VIPs, remove and add, and teardown.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/storhaug/storhaug/setup"
	"github.com/storhaug/storhaug/test/lab"
	"github.com/storhaug/storhaug/tickle"
)

// setupVIPs are the sample's VIPs and their home nodes.
var setupVIPs = map[string]string{"198.51.100.201": "n1", "198.51.100.202": "n2", "198.51.100.203": "n3"}

// installSampleConfig writes the sample as /etc/sysconfig/storhaug.conf
// in node and a drop-in with the lab's names and paths.
func installSampleConfig(t *testing.T, ctx context.Context, l *lab.Lab, n *lab.Node) {
	t.Helper()
	sample, err := os.ReadFile("../../examples/storhaug.conf")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := n.Sh(ctx, "mkdir -p /etc/sysconfig/storhaug.d"); err != nil {
		t.Fatalf("mkdir: %v %s", err, r.Output())
	}
	if err := n.WriteFile("/etc/sysconfig/storhaug.conf", sample, 0o644); err != nil {
		t.Fatal(err)
	}
	dropIn := fmt.Sprintf(`# The lab: the cluster is named after the lab's prefix, the shared
# storage is the lab's shared directory (nfs-ganesha/<node> in it is each
# node's /var/lib/nfs, ctdb/ holds CTDB's lock).
HA_NAME=%q
HA_MNT_DIR=%q
HA_NFS_MNT_DIR="."
HA_SMB_MNT_DIR="ctdb"
HA_VIP_TICKLE_DIR=%q
HA_VIP_NIC="eth0"
HA_GANESHA_PARAMS="logfile=/var/log/ganesha/ganesha.log"
`, l.Prefix(), l.SharedDir(), filepath.Join(l.SharedDir(), "tickle-setup"))
	if err := n.WriteFile("/etc/sysconfig/storhaug.d/50-lab.conf", []byte(dropIn), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func storhaugOn(ctx context.Context, n *lab.Node, args ...string) (lab.Result, error) {
	return n.Run(ctx, "/usr/sbin/storhaug", args...)
}

// pacemakerOwn are the cluster properties Pacemaker writes itself (the DC
// adds the last three when it is elected, which on a fresh lab may be after
// the first look at the CIB).
var pacemakerOwn = map[string]bool{"last-lrm-refresh": true, "dc-version": true, "cluster-infrastructure": true, "have-watchdog": true}

// cibConfig is the CIB's configuration section in canonical form, without
// what Pacemaker itself keeps updating there.
func cibConfig(t *testing.T, ctx context.Context, l *lab.Lab) (string, string) {
	t.Helper()
	x, err := l.QueryCIB(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	cib, err := setup.ParseXML([]byte(x))
	if err != nil {
		t.Fatal(err)
	}
	conf := cib.Child("configuration")
	conf.Walk(func(e *setup.Element) bool {
		var kept []*setup.Element
		for _, c := range e.Children {
			if c.Name == "nvpair" && pacemakerOwn[c.Get("name")] {
				continue
			}
			kept = append(kept, c)
		}
		e.Children = kept
		return true
	})
	return conf.Canonical(), cib.Get("admin_epoch") + "." + cib.Get("epoch")
}

// waitSetUp waits until every storhaug resource runs: the VIPs on want
// (address -> node), CTDB promoted on one node, the clones on every node
// of nodes.
func waitSetUp(t *testing.T, ctx context.Context, l *lab.Lab, want map[string]string, nodes []string, timeout time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	err := l.WaitFor(ctx, "storhaug resources up", timeout, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		for addr, node := range want {
			id := setup.VIPID(mustAddr(addr))
			if got := s.RunningOn(id); len(got) != 1 || got[0] != node {
				return false, fmt.Errorf("%s on %v, want %s", id, got, node)
			}
			if got := s.RunningOn(id + "-trigger"); len(got) != 1 || got[0] != node {
				return false, fmt.Errorf("%s-trigger on %v, want %s", id, got, node)
			}
		}
		for _, id := range []string{"storhaug-ctdb", "storhaug-ganesha"} {
			if got := s.RunningOn(id); len(got) != len(nodes) {
				return false, fmt.Errorf("%s on %v, want %v", id, got, nodes)
			}
		}
		if p := s.WithRole("storhaug-ctdb", "Promoted"); len(p) != 1 {
			return false, fmt.Errorf("CTDB promoted on %v", p)
		}
		for _, r := range s.Resources {
			if strings.HasPrefix(r.ID, setup.IDPrefix) && r.Failed {
				return false, fmt.Errorf("%s failed on %v", r.ID, r.Nodes)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(t0)
}

// readThrough reads the test files over SMB and NFS through vip.
func readThrough(ctx context.Context, l *lab.Lab, vip, smbFile, smbContent, nfsFile, nfsContent string) error {
	if err := readOne(ctx, l, "SMB", vip, smbFile, smbContent, nfsFile, nfsContent); err != nil {
		return err
	}
	return readOne(ctx, l, "NFS", vip, smbFile, smbContent, nfsFile, nfsContent)
}

// readOne reads the test file over one protocol through vip.
func readOne(ctx context.Context, l *lab.Lab, proto, vip, smbFile, smbContent, nfsFile, nfsContent string) error {
	c := l.Client(1)
	if proto == "SMB" {
		r, err := c.Run(ctx, "smbclient", "//"+vip+"/"+lab.ShareName, "-N", "-c", "get "+smbFile+" -")
		if err != nil || !strings.Contains(r.Stdout, smbContent) {
			return fmt.Errorf("SMB via %s: %v %s", vip, err, strings.TrimSpace(r.Output()))
		}
		return nil
	}
	r, err := c.Run(ctx, "nfs-cat", fmt.Sprintf("nfs://%s/export/%s?version=4", vip, nfsFile))
	if err != nil || r.Stdout != nfsContent {
		return fmt.Errorf("NFS via %s: %q %v %s", vip, r.Stdout, err, strings.TrimSpace(r.Stderr))
	}
	return nil
}

func TestSetupLab(t *testing.T) {
	l := sharedLab(t)
	storhaugBin(t)
	ctx := ctxFor(t, 20*time.Minute)
	n1 := l.Node("n1")
	nodes := []string{"n1", "n2", "n3"}
	for vip := range setupVIPs {
		vipsAbsent(t, l, vip)
	}
	before, beforeEpoch := cibConfig(t, ctx, l)
	installSampleConfig(t, ctx, l, n1)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		storhaugOn(ctx, n1, "teardown")
	})

	// Files the clients read.
	stamp := time.Now().Format("150405.000")
	smbFile, smbContent := "setup-smb-"+stamp+".txt", "over SMB "+stamp+"\n"
	nfsFile, nfsContent := "setup-nfs-"+stamp+".txt", "over NFS "+stamp+"\n"
	if err := os.WriteFile(filepath.Join(l.ShareDir(), smbFile), []byte(smbContent), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.ExportDir(), nfsFile), []byte(nfsContent), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(filepath.Join(l.ShareDir(), smbFile))
		os.Remove(filepath.Join(l.ExportDir(), nfsFile))
	})

	// setup brings every resource up, each VIP at home.
	t0 := time.Now()
	r, err := storhaugOn(ctx, n1, "setup")
	if err != nil {
		t.Fatalf("storhaug setup: %v\n%s", err, r.Output())
	}
	t.Logf("storhaug setup wrote the CIB in %.2fs:\n%s", time.Since(t0).Seconds(), r.Stdout)
	up := waitSetUp(t, ctx, l, setupVIPs, nodes, 4*time.Minute)
	t.Logf("every resource up %.1fs after setup", time.Since(t0).Seconds())
	_ = up

	// What an admin's tools show of it: pcs and crmsh.
	statusToolsClean(t, ctx, l, n1)

	// A second setup changes nothing: the CIB epoch stays.
	_, epoch1 := cibConfig(t, ctx, l)
	r, err = storhaugOn(ctx, n1, "setup")
	if err != nil || !strings.Contains(r.Stdout, "nothing changed") {
		t.Errorf("second setup: %v\n%s", err, r.Output())
	}
	if _, epoch2 := cibConfig(t, ctx, l); epoch2 != epoch1 {
		t.Errorf("second setup moved the CIB epoch %s -> %s", epoch1, epoch2)
	}

	// status, as a table and as JSON.
	r, err = storhaugOn(ctx, n1, "status")
	if err != nil {
		t.Errorf("storhaug status: %v\n%s", err, r.Output())
	}
	t.Logf("storhaug status:\n%s", r.Stdout)
	for _, want := range []string{"198.51.100.201", "CTDB leader: n", "fencing on", "Failure detection: corosync token 1000 ms + consensus 1200 ms"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("status lacks %q", want)
		}
	}
	if strings.Contains(r.Stdout, "fencing is disabled") {
		t.Error("status warns that fencing is disabled; the lab fences")
	}
	r, err = storhaugOn(ctx, n1, "status", "--output", "json")
	var st setup.Status
	if err != nil || json.Unmarshal([]byte(r.Stdout), &st) != nil {
		t.Fatalf("status --output json: %v\n%s", err, r.Output())
	}
	if st.Cluster != l.Prefix() || len(st.VIPs) != 3 || st.CTDBLeader == "" || !st.Quorum || st.Detection == nil || st.Detection.TokenMS != 1000 {
		t.Errorf("status json: %+v", st)
	}
	for _, v := range st.VIPs {
		if v.Node != setupVIPs[v.Address] || v.Home != v.Node {
			t.Errorf("status: VIP %s on %s (home %s), want %s", v.Address, v.Node, v.Home, setupVIPs[v.Address])
		}
	}

	// A failure: Pacemaker records one for n2's VIP (and recovers it);
	// status shows it; cleanup with another cluster's configuration is
	// refused; storhaug cleanup clears it.
	checkCleanup(t, ctx, l, n1)
	waitSetUp(t, ctx, l, setupVIPs, nodes, time.Minute)

	// Clients read through every VIP.
	for vip := range setupVIPs {
		if err := l.WaitFor(ctx, "reads through "+vip, time.Minute, func() (bool, error) {
			err := readThrough(ctx, l, vip, smbFile, smbContent, nfsFile, nfsContent)
			return err == nil, err
		}); err != nil {
			t.Fatal(err)
		}
	}

	// Crash n3: its VIP moves to n1 (next in its rotation), clients go on
	// reading through it.
	moved := "198.51.100.203"
	// Connections the clients hold open: the VIP's new owner must reset
	// them (tickle ACKs) so that the clients reconnect at once. The clients
	// send nothing by themselves: no TCP keepalive (Go's default 15 s probe
	// alone would get a reset from the new owner, tickles or not).
	type ended struct {
		err error
		at  time.Time
	}
	type held struct {
		port int
		done chan ended
	}
	var helds []held
	var recorded []netip.AddrPort // the clients' ends, as the tickle file lists them
	for _, port := range []int{445, 2049} {
		var conn net.Conn
		if err := l.Client(1).Do(func() error {
			var err error
			conn, err = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: -1}).Dial("tcp", net.JoinHostPort(moved, fmt.Sprint(port)))
			return err
		}); err != nil {
			t.Fatalf("connect to %s:%d: %v", moved, port, err)
		}
		defer conn.Close()
		local := conn.LocalAddr().(*net.TCPAddr).AddrPort()
		recorded = append(recorded, netip.AddrPortFrom(local.Addr().Unmap(), local.Port()))
		if port == 445 {
			if err := lab.SMBNegotiate(conn); err != nil {
				t.Fatalf("SMB negotiate with %s: %v", moved, err)
			}
		}
		h := held{port, make(chan ended, 1)}
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, err := conn.Read(buf); err != nil {
					h.done <- ended{err, time.Now()}
					return
				}
			}
		}()
		helds = append(helds, h)
	}
	// IPaddr3 records the connections (every second) in the tickle file.
	tickles := tickle.Path(filepath.Join(l.SharedDir(), "tickle-setup"), mustAddr(moved))
	if err := l.WaitFor(ctx, "the clients' connections in "+tickles, 30*time.Second, func() (bool, error) {
		f, err := os.Open(tickles)
		if err != nil {
			return false, err
		}
		defer f.Close()
		conns, err := tickle.Decode(f, mustAddr(moved), nil)
		if err != nil {
			return false, err
		}
		for _, want := range recorded {
			if !slices.ContainsFunc(conns, func(c tickle.Conn) bool { return c.Remote == want }) {
				return false, fmt.Errorf("%s not listed in %v", want, conns)
			}
		}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	tc := time.Now()
	// Link first: a powered-off machine sends nothing, not even the FINs a
	// kernel sends for the sockets of killed processes.
	if err := l.CutLink("n3"); err != nil {
		t.Fatal(err)
	}
	if err := l.Crash("n3"); err != nil {
		t.Fatal(err)
	}
	// When the address appears on n1 (looked for every 20 ms): the clients
	// must be reset within 2 s of it, as in the tickle e2e.
	var appeared time.Time
	for deadline := time.Now().Add(90 * time.Second); appeared.IsZero() && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if labAddrOn(t, n1, moved) {
			appeared = time.Now()
		}
	}
	if appeared.IsZero() {
		t.Fatalf("%s did not appear on n1 within 90 s of the crash", moved)
	}
	t.Logf("%s on n1 %.2fs after the crash", moved, appeared.Sub(tc).Seconds())
	err = l.WaitFor(ctx, moved+" on n1", 90*time.Second, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		if got := s.RunningOn(setup.VIPID(mustAddr(moved))); len(got) != 1 || got[0] != "n1" {
			return false, fmt.Errorf("on %v", got)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tMoved := time.Since(tc)
	// Each protocol on its own, each attempt bounded (a client that hangs
	// on the old owner would otherwise hide when the service came back).
	var readsBack [2]time.Duration
	var wg sync.WaitGroup
	for i, proto := range []string{"SMB", "NFS"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.WaitFor(ctx, proto+" reads through "+moved, 90*time.Second, func() (bool, error) {
				actx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				err := readOne(actx, l, proto, moved, smbFile, smbContent, nfsFile, nfsContent)
				return err == nil, err
			})
			if err != nil {
				t.Error(err)
			}
			readsBack[i] = time.Since(tc)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("crash n3: VIP %s on n1 after %.1fs; reads through it again over SMB after %.1fs, over NFS after %.1fs", moved, tMoved.Seconds(), readsBack[0].Seconds(), readsBack[1].Seconds())
	for _, h := range helds {
		var e ended
		reset := false
		select {
		case e = <-h.done:
			reset = true
		default: // not yet: wait until 2 s after the address appeared
			select {
			case e = <-h.done:
				reset = true
			case <-time.After(time.Until(appeared.Add(2 * time.Second))):
			}
		}
		switch {
		case reset:
			switch {
			case !errors.Is(e.err, syscall.ECONNRESET):
				t.Errorf("the client's connection to port %d ended with %v, not a reset", h.port, e.err)
			case e.at.Sub(appeared) > 2*time.Second:
				t.Errorf("the client's connection to port %d was reset %.2fs after %s appeared on n1, want within 2 s (tickles)", h.port, e.at.Sub(appeared).Seconds(), moved)
			default:
				t.Logf("the client's connection to port %d was reset %.2fs after the crash, %.2fs after the address appeared on n1", h.port, e.at.Sub(tc).Seconds(), e.at.Sub(appeared).Seconds())
			}
		default:
			t.Errorf("the client's connection to port %d was not reset %.1fs after %s appeared on n1 (want within 2 s): without tickles the client hangs", h.port, time.Since(appeared).Seconds(), moved)
		}
	}
	if err := l.RestoreLink("n3"); err != nil {
		t.Fatal(err)
	}
	if err := l.Recover(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	waitSetUp(t, ctx, l, setupVIPs, nodes, 3*time.Minute)
	t.Logf("n3 back: every VIP at home %.1fs after the crash", time.Since(tc).Seconds())

	// remove n3: its VIP and role=storage go, the clones shrink to two.
	r, err = storhaugOn(ctx, n1, "remove", "n3")
	if err != nil {
		t.Fatalf("storhaug remove n3: %v\n%s", err, r.Output())
	}
	two := map[string]string{"198.51.100.201": "n1", "198.51.100.202": "n2"}
	waitSetUp(t, ctx, l, two, []string{"n1", "n2"}, 3*time.Minute)
	s, err := l.CrmMon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Resource(setup.VIPID(mustAddr(moved))); ok {
		t.Errorf("the removed node's VIP %s is still a resource", moved)
	}
	if a, _ := s.Attribute("n3", "role"); a != "" {
		t.Errorf("n3 keeps role=%s", a)
	}
	if b, _ := n1.ReadFile("/etc/sysconfig/storhaug.conf"); !strings.Contains(string(b), `HA_CLUSTER_NODES="n1,n2"`) {
		t.Errorf("the configuration does not list n1,n2:\n%s", b)
	}
	// add n3 with its VIP: back as it was.
	r, err = storhaugOn(ctx, n1, "add", "n3", moved+"/24")
	if err != nil {
		t.Fatalf("storhaug add n3: %v\n%s", err, r.Output())
	}
	waitSetUp(t, ctx, l, setupVIPs, nodes, 3*time.Minute)
	if s, err := l.CrmMon(ctx); err != nil {
		t.Error(err)
	} else if a, _ := s.Attribute("n3", "role"); a != "storage" {
		t.Errorf("added n3 has role=%q", a)
	}
	r, err = storhaugOn(ctx, n1, "setup")
	if err != nil || !strings.Contains(r.Stdout, "nothing changed") {
		t.Errorf("setup after remove+add is not a no-op: %v\n%s", err, r.Output())
	}

	// teardown leaves the CIB as it was before setup.
	r, err = storhaugOn(ctx, n1, "teardown")
	if err != nil {
		t.Fatalf("storhaug teardown: %v\n%s", err, r.Output())
	}
	after, afterEpoch := cibConfig(t, ctx, l)
	if after != before {
		t.Errorf("teardown left the configuration\n%s\nwant\n%s", after, before)
	}
	t.Logf("CIB epoch %s before setup, %s after teardown; configuration identical", beforeEpoch, afterEpoch)
	if err := l.WaitFor(ctx, "no storhaug resources left", time.Minute, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		for _, r := range s.Resources {
			if strings.HasPrefix(r.ID, setup.IDPrefix) {
				return false, fmt.Errorf("%s still there", r.ID)
			}
		}
		return true, nil
	}); err != nil {
		t.Error(err)
	}
}

// failuresOn returns the failures storhaug status --output json on n shows.
func failuresOn(ctx context.Context, n *lab.Node) ([]setup.Failure, error) {
	r, err := storhaugOn(ctx, n, "status", "--output", "json")
	var st setup.Status
	if err != nil || json.Unmarshal([]byte(r.Stdout), &st) != nil {
		return nil, fmt.Errorf("status --output json: %v %s", err, r.Output())
	}
	return st.Failures, nil
}

// checkCleanup makes n2's VIP fail (crm_resource --fail), waits until
// storhaug status shows the failure, and clears it with storhaug cleanup.
func checkCleanup(t *testing.T, ctx context.Context, l *lab.Lab, n1 *lab.Node) {
	t.Helper()
	t0 := time.Now()
	vip := setup.VIPID(mustAddr("198.51.100.202"))
	if r, err := n1.Run(ctx, "crm_resource", "--fail", "--resource", vip, "--node", "n2"); err != nil {
		t.Fatalf("crm_resource --fail: %v\n%s", err, r.Output())
	}
	if err := l.WaitFor(ctx, "status shows the failure", 20*time.Second, func() (bool, error) {
		fs, err := failuresOn(ctx, n1)
		if err != nil {
			return false, err
		}
		for _, f := range fs {
			if f.Resource == vip && f.Node == "n2" {
				return true, nil
			}
		}
		return false, fmt.Errorf("failures %+v", fs)
	}); err != nil {
		t.Fatal(err)
	}
	// The status tools show it: the check above would see a failure.
	if c, err := statusComplaints(ctx, l, n1, func(string, ...any) {}); err != nil {
		t.Error(err)
	} else if len(c) == 0 {
		t.Errorf("pcs status and crm status show no complaint about the failed %s: statusToolsClean could not see one", vip)
	}
	// Another cluster's configuration: refused, naming both.
	sample, _ := os.ReadFile("../../examples/storhaug.conf")
	if err := n1.WriteFile("/etc/sysconfig/storhaug-other.conf", append(sample, "HA_NAME=other\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := storhaugOn(ctx, n1, "cleanup", "-c", "/etc/sysconfig/storhaug-other.conf", "--config-dir", "/nonexistent")
	if err == nil || !strings.Contains(r.Stderr, fmt.Sprintf("this cluster is %q but /etc/sysconfig/storhaug-other.conf says HA_NAME=\"other\"", l.Prefix())) {
		t.Errorf("cleanup with another cluster's configuration: %v\n%s", err, r.Output())
	}
	if fs, err := failuresOn(ctx, n1); err != nil || len(fs) == 0 {
		t.Errorf("after a refused cleanup: failures %+v, %v", fs, err)
	}
	r, err = storhaugOn(ctx, n1, "cleanup")
	if err != nil || !strings.Contains(r.Stdout, "cleaned up "+vip) {
		t.Fatalf("storhaug cleanup: %v\n%s", err, r.Output())
	}
	if err := l.WaitFor(ctx, "status shows no failure", 20*time.Second, func() (bool, error) {
		fs, err := failuresOn(ctx, n1)
		if err != nil || len(fs) > 0 {
			return false, fmt.Errorf("failures %+v %v", fs, err)
		}
		return true, nil
	}); err != nil {
		t.Error(err)
	}
	t.Logf("cleanup: failure shown and cleared in %.1fs", time.Since(t0).Seconds())
}

// statusToolsClean runs `pcs status` and `crm status` on n, as an admin
// would, with storhaug's resources configured: both succeed, show every
// storhaug resource, and print no warning, error or failure about our
// agents or resources.
func statusToolsClean(t *testing.T, ctx context.Context, l *lab.Lab, n *lab.Node) {
	t.Helper()
	complaints, err := statusComplaints(ctx, l, n, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range complaints {
		t.Error(c)
	}
}

// statusComplaints runs `pcs status` and `crm status` on n and returns
// what is wrong in what they show of storhaug's resources: a tool that
// fails, a resource it does not show, a line that warns, fails or errs
// (in so many words, or under a heading such as "Failed Resource
// Actions:" or "WARNINGS:") and names our agents or resources.
func statusComplaints(ctx context.Context, l *lab.Lab, n *lab.Node, logf func(string, ...any)) ([]string, error) {
	s, err := n.CrmMon(ctx)
	if err != nil {
		return nil, err
	}
	ours := map[string]bool{}
	for _, r := range s.Resources {
		if strings.HasPrefix(r.Agent, "ocf:storhaug:") {
			id, _, _ := strings.Cut(r.ID, ":")
			ours[id] = true
		}
	}
	if len(ours) == 0 {
		return nil, errors.New("no storhaug resources to show")
	}
	mentions := append([]string{"storhaug"}, l.Agents()...)
	for id := range ours {
		mentions = append(mentions, id)
	}
	bad := func(s string) bool {
		s = strings.ToLower(s)
		return strings.Contains(s, "warn") || strings.Contains(s, "error") || strings.Contains(s, "fail")
	}
	var complaints []string
	for _, cmd := range [][]string{{"pcs", "status"}, {"crm", "status"}} {
		name := strings.Join(cmd, " ")
		r, err := n.Run(ctx, cmd[0], cmd[1:]...)
		out := r.Stdout + r.Stderr
		logf("%s on %s:\n%s", name, n.Name(), out)
		if err != nil {
			complaints = append(complaints, fmt.Sprintf("%s on %s: %v\n%s", name, n.Name(), err, out))
			continue
		}
		for id := range ours {
			if !strings.Contains(r.Stdout, id) {
				complaints = append(complaints, fmt.Sprintf("%s does not show the resource %s", name, id))
			}
		}
		badSection := false
		for _, line := range strings.Split(out, "\n") {
			if line != "" && line[0] != ' ' && line[0] != '\t' { // a heading
				badSection = strings.HasSuffix(strings.TrimSpace(line), ":") && bad(line)
			}
			if !badSection && !bad(line) {
				continue
			}
			for _, m := range mentions {
				if strings.Contains(line, m) {
					complaints = append(complaints, fmt.Sprintf("%s complains about our %s: %s", name, m, strings.TrimSpace(line)))
					break
				}
			}
		}
	}
	return complaints, nil
}

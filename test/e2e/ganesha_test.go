package e2e

// NFS-Ganesha under real Pacemaker: the ganesha clone, an IPaddr3 VIP and
// the VIP's ganesha_trigger, with the real ganesha.nfsd on each node's own
// system D-Bus, and the userspace NFS client (libnfs) on the client
// namespace reading and writing through the VIP.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/test/lab"
)

const ganeshaLogFile = "/var/log/ganesha/ganesha.log"

// vipCase is a VIP and how its trigger names the clients taken over.
type vipCase struct {
	ip, cidr string
	nameForm string // ganesha_trigger's name_form: node or ip
}

// graceName is the name grace requests carry for clients of node.
func (v vipCase) graceName(node string) string {
	if v.nameForm == "ip" {
		return v.ip
	}
	return node
}

// ocf-tester, inside a lab node, against the installed agents: the real
// ganesha.nfsd on the node's D-Bus, the node's /var/lib/nfs on the shared
// storage.
func TestGaneshaAgentsOCFTester(t *testing.T) {
	l := sharedLab(t)
	storhaugBin(t)
	ctx := ctxFor(t, 5*time.Minute)
	n := l.Node("n1")
	for _, tc := range []struct {
		agent  string
		params []string
	}{
		{"ganesha", []string{"state_mnt=" + l.SharedDir(), "logfile=" + ganeshaLogFile}},
		{"ganesha_trigger", nil},
	} {
		args := []string{"-v", "-n", "ocft-" + tc.agent}
		for _, p := range tc.params {
			args = append(args, "-o", p)
		}
		args = append(args, "/usr/lib/ocf/resource.d/storhaug/"+tc.agent)
		r, err := n.Exec(ctx, []string{"OCF_ROOT=/usr/lib/ocf"}, "/usr/sbin/ocf-tester", args...)
		if err != nil || !strings.Contains(r.Output(), "passed all tests") {
			t.Errorf("ocf-tester %s on n1: %v\n%s", tc.agent, err, r.Output())
			continue
		}
		t.Logf("ocf-tester %s: passed all tests", tc.agent)
	}
	if n.Running("ganesha.nfsd") {
		t.Error("ganesha.nfsd still runs on n1 after ocf-tester")
	}
}

func ganeshaCIB(shared string, v vipCase) (resources, constraints string) {
	resources = fmt.Sprintf(`<resources>
  <clone id="nfs-ganesha-clone">
    <meta_attributes id="nfs-ganesha-clone-meta">
      <nvpair id="nfs-ganesha-clone-interleave" name="interleave" value="true"/>
      <nvpair id="nfs-ganesha-clone-notify" name="notify" value="true"/>
    </meta_attributes>
    <primitive id="nfs-ganesha" class="ocf" provider="storhaug" type="ganesha">
      <instance_attributes id="nfs-ganesha-params">
        <nvpair id="nfs-ganesha-state_mnt" name="state_mnt" value="%s"/>
        <nvpair id="nfs-ganesha-logfile" name="logfile" value="%s"/>
      </instance_attributes>
      <operations>
        <op id="nfs-ganesha-monitor" name="monitor" interval="5s" timeout="30s"/>
      </operations>
    </primitive>
  </clone>
  <primitive id="vip1" class="ocf" provider="storhaug" type="IPaddr3">
    <instance_attributes id="vip1-params">
      <nvpair id="vip1-ip" name="ip" value="%s"/>
      <nvpair id="vip1-cidr_netmask" name="cidr_netmask" value="%s"/>
      <nvpair id="vip1-nic" name="nic" value="eth0"/>
    </instance_attributes>
    <meta_attributes id="vip1-meta">
      <nvpair id="vip1-stickiness" name="resource-stickiness" value="0"/>
    </meta_attributes>
    <operations>
      <op id="vip1-monitor" name="monitor" interval="5s" timeout="20s"/>
    </operations>
  </primitive>
  <clone id="vip1_trigger-clone">
    <meta_attributes id="vip1_trigger-clone-meta">
      <nvpair id="vip1_trigger-clone-max" name="clone-max" value="1"/>
      <nvpair id="vip1_trigger-clone-notify" name="notify" value="true"/>
      <nvpair id="vip1_trigger-clone-interleave" name="interleave" value="true"/>
    </meta_attributes>
    <primitive id="vip1_trigger" class="ocf" provider="storhaug" type="ganesha_trigger">
      <instance_attributes id="vip1_trigger-params">
        <nvpair id="vip1_trigger-name_form" name="name_form" value="%s"/>
        <nvpair id="vip1_trigger-ip" name="ip" value="%s"/>
      </instance_attributes>
      <operations>
        <op id="vip1_trigger-monitor" name="monitor" interval="10s" timeout="20s"/>
      </operations>
    </primitive>
  </clone>
</resources>`, shared, ganeshaLogFile, v.ip, v.cidr, v.nameForm, v.ip)
	constraints = `<constraints>
  <rsc_colocation id="vip1-with-ganesha" rsc="vip1" with-rsc="nfs-ganesha-clone" score="INFINITY"/>
  <rsc_order id="ganesha-then-vip1" first="nfs-ganesha-clone" then="vip1"/>
  <rsc_colocation id="vip1_trigger-with-vip1" rsc="vip1_trigger-clone" with-rsc="vip1" score="INFINITY"/>
  <rsc_order id="vip1-then-trigger" first="vip1" then="vip1_trigger-clone"/>
  <rsc_location id="vip1-prefers-n1" rsc="vip1" node="n1" score="100"/>
</constraints>`
	return
}

// nfsWriteRead copies content to the export through the VIP with nfs-cp,
// reads it back with nfs-cat, and checks it landed on the shared export.
func nfsWriteRead(t *testing.T, ctx context.Context, l *lab.Lab, vip, name, content string) {
	t.Helper()
	c := l.Client(1)
	name = t.Name() + "-" + name // the export lives on from test to test
	t.Cleanup(func() { os.Remove(filepath.Join(l.ExportDir(), name)) })
	src := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("nfs://%s/export/%s?version=4", vip, name) // libnfs takes IPv6 unbracketed
	if r, err := c.Run(ctx, "nfs-cp", src, url); err != nil {
		t.Fatalf("nfs-cp to %s: %v\n%s", url, err, r.Output())
	}
	r, err := c.Run(ctx, "nfs-cat", url)
	if err != nil || r.Stdout != content {
		t.Fatalf("nfs-cat %s = %q, %v; want %q\n%s", url, r.Stdout, err, content, r.Stderr)
	}
	if b, err := os.ReadFile(filepath.Join(l.ExportDir(), name)); err != nil || string(b) != content {
		t.Fatalf("export file %s = %q, %v", name, b, err)
	}
}

// waitGrace waits until every listed node's ganesha reports want.
func waitGrace(t *testing.T, ctx context.Context, l *lab.Lab, want bool, timeout time.Duration, nodes ...string) time.Duration {
	t.Helper()
	t0 := time.Now()
	err := l.WaitFor(ctx, fmt.Sprintf("grace=%v on %v", want, nodes), timeout, func() (bool, error) {
		for _, name := range nodes {
			in, err := l.Node(name).GaneshaInGrace(ctx)
			if err != nil {
				return false, fmt.Errorf("%s: %v", name, err)
			}
			if in != want {
				return false, fmt.Errorf("%s: in grace %v", name, in)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(t0)
}

// waitPlacement waits until vip1 and its trigger run on node (and the
// ganesha clone on every node in up).
func waitPlacement(t *testing.T, ctx context.Context, l *lab.Lab, node string, up []string, timeout time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	err := l.WaitFor(ctx, "vip1 and its trigger on "+node, timeout, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		if got := s.RunningOn("vip1"); len(got) != 1 || got[0] != node {
			return false, fmt.Errorf("vip1 on %v", got)
		}
		if got := s.RunningOn("vip1_trigger"); len(got) != 1 || got[0] != node {
			return false, fmt.Errorf("vip1_trigger on %v", got)
		}
		if got := s.RunningOn("nfs-ganesha"); len(got) != len(up) {
			return false, fmt.Errorf("nfs-ganesha on %v, want %v", got, up)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(t0)
}

// ganeshaDiag logs, from every node, the grace lines of ganesha's log and
// the trigger's lines of Pacemaker's.
func ganeshaDiag(t *testing.T, l *lab.Lab) {
	for _, n := range l.Nodes() {
		for _, f := range []struct{ file, pat string }{
			{ganeshaLogFile, "GRACE|recovery|Recovery|grace"},
			{"/var/log/pacemaker/pacemaker.log", "vip1_trigger|ganesha_trigger|IPaddr3(vip1)|vip1_start"},
		} {
			b, err := os.ReadFile(filepath.Join(n.LogDir(), strings.TrimPrefix(f.file, "/var/log/")))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				for _, p := range strings.Split(f.pat, "|") {
					if strings.Contains(line, p) && (strings.Contains(f.file, "ganesha") || strings.Contains(line, "notify") || strings.Contains(line, "INFO") || strings.Contains(line, "ERROR") || strings.Contains(line, "WARN")) {
						t.Logf("%s %s", n.Name(), line)
						break
					}
				}
			}
		}
	}
}

// ganeshaLogs reads what the nodes' ganesha logs gained since the mark
// (the log files live on in the shared lab from test to test).
type ganeshaLogs struct {
	l    *lab.Lab
	mark map[string]int64
}

func markGaneshaLogs(l *lab.Lab) *ganeshaLogs {
	g := &ganeshaLogs{l: l, mark: map[string]int64{}}
	for _, n := range l.Nodes() {
		if st, err := os.Stat(g.path(n.Name())); err == nil {
			g.mark[n.Name()] = st.Size()
		}
	}
	return g
}

func (g *ganeshaLogs) path(node string) string {
	return filepath.Join(g.l.Node(node).LogDir(), strings.TrimPrefix(ganeshaLogFile, "/var/log/"))
}

// since is what node's ganesha log gained since the mark.
func (g *ganeshaLogs) since(node string) string {
	b, err := os.ReadFile(g.path(node))
	if err != nil || int64(len(b)) < g.mark[node] {
		return string(b)
	}
	return string(b[g.mark[node]:])
}

// read reports whether node's ganesha read the client records under from
// (grace "5:<from>") since the mark.
func (g *ganeshaLogs) read(node, from string) bool {
	return strings.Contains(g.since(node), "dir (/var/lib/nfs/ganesha/"+from+"/v4recov)")
}

// A client record in the failed node's v4recov keeps grace for Grace_Period
// (without one ganesha lifts grace at once): the shape ganesha writes,
// <client ip>-(<len>:<client id>).
func addClientRecord(t *testing.T, l *lab.Lab, node string) {
	t.Helper()
	id := "storhaug-e2e-" + node
	rec := filepath.Join(l.SharedDir(), "nfs-ganesha", node, "ganesha", "v4recov",
		fmt.Sprintf("%s-(%d:%s)", l.Client(1).Addr4(), len(id), id))
	if err := os.MkdirAll(rec, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rec) })
}

// An IPv4 VIP whose trigger names nodes (as the original storhaug did). The
// VIP moves (n1 -> another node, then a crash of that node): the node
// taking the VIP over enters grace for the clients of the node that had it,
// the others do not, and the NFS client reads and writes through the VIP
// before and after.
func TestGaneshaFailoverGrace(t *testing.T) {
	ganeshaFailover(t, vipCase{ip: "198.51.100.212", cidr: "24", nameForm: "node"})
}

// The same with an IPv6 VIP whose trigger names the address: grace
// "5:2001:db8::212" (ganesha splits at the first colon) reads the records
// the trigger linked under the address.
func TestGaneshaFailoverGraceIPv6ByAddress(t *testing.T) {
	ganeshaFailover(t, vipCase{ip: "2001:db8::212", cidr: "64", nameForm: "ip"})
}

func ganeshaFailover(t *testing.T, v vipCase) {
	l := sharedLab(t)
	storhaugBin(t)
	ctx := ctxFor(t, 8*time.Minute)
	vipsAbsent(t, l, v.ip)
	logs := markGaneshaLogs(l)
	res, cons := ganeshaCIB(l.SharedDir(), v)
	if err := l.ReplaceCIB(ctx, "resources", res); err != nil {
		t.Fatal(err)
	}
	if err := l.ReplaceCIB(ctx, "constraints", cons); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // stop what Pacemaker started; the next sharedLab repairs the crashed node
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := l.ResetCIB(ctx, 2*time.Minute); err != nil {
			t.Errorf("reset CIB: %v", err)
		}
	})
	t.Cleanup(func() { // runs before the reset above: what ganesha and the trigger did
		if t.Failed() {
			ganeshaDiag(t, l)
		}
	})
	all := []string{"n1", "n2", "n3"}
	d := waitPlacement(t, ctx, l, "n1", all, 2*time.Minute)
	t.Logf("ganesha clone, vip1 and trigger up on n1 in %v", d.Round(time.Millisecond))

	// nothing taken over at the first start ("5:" with an empty name was the original's bug)
	for _, n := range all {
		if strings.Contains(logs.since(n), "recovery event 5") {
			t.Errorf("%s: ganesha got a takeover on the first start", n)
		}
	}
	waitGrace(t, ctx, l, false, time.Minute, all...)
	nfsWriteRead(t, ctx, l, v.ip, "before-move.txt", "written through the VIP on n1\n")

	// A client of the VIP that keeps its state, as a mounted NFSv4.0
	// client does: ganesha on n1 holds it until n1 gives the VIP up.
	held := holdNFS40Client(t, ctx, l, v.ip, l.Node("n1"))
	if recs, err := os.ReadDir(filepath.Join(l.SharedDir(), "nfs-ganesha", "n1", "ganesha", "v4recov")); err == nil {
		for _, r := range recs {
			t.Logf("n1 client record: %s", r.Name())
		}
	}

	// 1. a planned move: n1 is banned; n1's instance releases, the new owner takes over n1's clients
	addClientRecord(t, l, "n1")
	ban := `<rsc_location id="vip1-avoids-n1" rsc="vip1" node="n1" score="-INFINITY"/>`
	t0 := time.Now()
	if err, at := held.Lost(); err != nil {
		t.Fatalf("ganesha on n1 dropped the NFSv4.0 client %v before the move: %v", at.Sub(t0), err)
	}
	if err := l.ApplyCIB(ctx, "constraints", ban); err != nil {
		t.Fatal(err)
	}
	var owner string
	err := l.WaitFor(ctx, "vip1 moved off n1", time.Minute, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		on := s.RunningOn("vip1_trigger")
		if len(on) == 1 && on[0] != "n1" {
			owner = on[0]
			return true, nil
		}
		return false, fmt.Errorf("vip1_trigger on %v", on)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vip1 and trigger moved n1 -> %s in %v", owner, time.Since(t0).Round(time.Millisecond))
	other := "n2"
	if owner == "n2" {
		other = "n3"
	}
	// the post-start notification follows the start crm_mon shows
	d = waitGrace(t, ctx, l, true, 30*time.Second, owner)
	t.Logf("%s in grace %v after the trigger was seen started", owner, d.Round(time.Millisecond))
	if in, err := l.Node(other).GaneshaInGrace(ctx); err != nil || in {
		t.Errorf("get_grace on %s (not involved) = %v, %v; want false", other, in, err)
	}
	if !logs.read(owner, v.graceName("n1")) {
		t.Errorf("ganesha on %s did not read n1's client records (grace 5:%s)", owner, v.graceName("n1"))
	}
	if !strings.Contains(logs.since("n1"), "recovery release ip "+v.ip) {
		t.Errorf("ganesha on n1 got no release of the address (grace 2:%s) before the move", v.ip)
	}
	// The release really released: n1's ganesha no longer holds the client
	// of the address it gave up (RENEW: STALE_CLIENTID / EXPIRED), while
	// the lease it renewed every second had not run out.
	if err := held.waitDropped(15 * time.Second); err != nil {
		t.Errorf("ganesha on n1 still holds the NFSv4.0 client %q of %s after giving the address up: %v", held.owner, v.ip, err)
	} else {
		_, at := held.Lost()
		t.Logf("ganesha on n1 dropped the client of %s %v after the ban", v.ip, at.Sub(t0).Round(time.Millisecond))
	}
	lift := waitGrace(t, ctx, l, false, time.Minute, owner)
	t.Logf("grace on %s lasted another %v after the move was seen (Grace_Period 20 s)", owner, lift.Round(time.Millisecond))
	nfsWriteRead(t, ctx, l, v.ip, "after-move.txt", "written through the VIP on "+owner+"\n")
	if b, err := os.ReadFile(filepath.Join(l.ExportDir(), t.Name()+"-before-move.txt")); err != nil || !strings.Contains(string(b), "n1") {
		t.Errorf("file written before the move: %q, %v", b, err)
	}

	// 2. the owner crashes: the VIP goes to the remaining node, which takes over the crashed node's clients
	addClientRecord(t, l, owner)
	t0 = time.Now()
	if err := l.Crash(owner); err != nil {
		t.Fatal(err)
	}
	// a powered-off machine: its kernel (the lab keeps the node's network
	// namespace) must not answer ARP / neighbour discovery for the VIP
	if err := l.CutLink(owner); err != nil {
		t.Fatal(err)
	}
	d = waitPlacement(t, ctx, l, other, []string{"n1", other}, 2*time.Minute)
	t.Logf("%s crashed: vip1 and trigger on %s after %v", owner, other, d.Round(time.Millisecond))
	d = waitGrace(t, ctx, l, true, 30*time.Second, other)
	t.Logf("%s in grace %v after the trigger was seen started", other, d.Round(time.Millisecond))
	if !logs.read(other, v.graceName(owner)) {
		t.Errorf("ganesha on %s did not read the crashed %s's client records", other, owner)
	}
	if in, err := l.Node("n1").GaneshaInGrace(ctx); err != nil || in {
		t.Errorf("get_grace on n1 (not involved) = %v, %v; want false", in, err)
	}
	waitGrace(t, ctx, l, false, time.Minute, other)
	nfsWriteRead(t, ctx, l, v.ip, "after-crash.txt", "written through the VIP on "+other+"\n")
}

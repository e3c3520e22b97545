package e2e

// Fencing: the lab fences (stonith-enabled=true, the lab's fence device
// stonith:fence_storhaug_lab, stonith-action=off). These tests check the
// paths fencing changes: a node that is lost (crash, or partition from the
// cluster's network while clients still reach it) is fenced by Pacemaker's
// fencer before its VIP starts elsewhere; ganesha_trigger takes over the
// fenced node's NFS clients from Pacemaker's notification (the node is
// reported stopped, not guessed from the recorded owner); a fenced node
// that comes back (Recover, or the device's own reboot) rejoins and the
// resources settle.

import (
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"

	"github.com/storhaug/storhaug/test/lab"
)

// fenceEvent is one entry of `stonith_admin --history NODE --verbose
// --output-as=xml` (without --verbose the history is reduced: a later
// fencing of the same node may not show).
type fenceEvent struct {
	Action    string `xml:"action,attr"`
	Target    string `xml:"target,attr"`
	Status    string `xml:"status,attr"`
	Delegate  string `xml:"delegate,attr"`
	Completed string `xml:"completed,attr"`
}

// completedAt parses the event's completion time (Pacemaker prints it to
// the second, in UTC).
func (e fenceEvent) completedAt() (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05Z", "2006-01-02 15:04:05.999999999Z", "2006-01-02 15:04:05Z07:00"} {
		if t, err := time.Parse(layout, e.Completed); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("fence event completed=%q: unknown time format", e.Completed)
}

// fenceHistory asks n's fencer for the fencing history of target.
func fenceHistory(ctx context.Context, n *lab.Node, target string) ([]fenceEvent, error) {
	r, err := n.Run(ctx, "stonith_admin", "--history", target, "--verbose", "--output-as=xml")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Events []fenceEvent `xml:"list>fence_event"`
	}
	if err := xml.Unmarshal([]byte(r.Stdout), &doc); err != nil {
		return nil, fmt.Errorf("stonith_admin --history: %v\n%s", err, r.Stdout)
	}
	return doc.Events, nil
}

// waitFenced waits until n's fencer reports a successful fencing of target
// (action off or reboot) completed at or after since, and returns it.
func waitFenced(t *testing.T, ctx context.Context, n *lab.Node, target, action string, since time.Time, timeout time.Duration) (fenceEvent, time.Time) {
	t.Helper()
	var got fenceEvent
	var at time.Time
	err := lab.WaitFor(ctx, target+" fenced ("+action+") per "+n.Name()+"'s fencer", timeout, func() (bool, error) {
		evs, err := fenceHistory(ctx, n, target)
		if err != nil {
			return false, err
		}
		for _, e := range evs {
			if e.Target != target || e.Status != "success" || e.Action != action {
				continue
			}
			c, err := e.completedAt()
			if err != nil {
				return false, err
			}
			if !c.Before(since.Truncate(time.Second)) {
				got, at = e, c
				return true, nil
			}
		}
		raw, _ := n.Run(ctx, "stonith_admin", "--history", target, "--verbose", "--output-as=xml")
		return false, fmt.Errorf("history: %+v\n%s", evs, raw.Output())
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, at
}

// pcmkLogs reads what the nodes' pacemaker.log gained since the mark.
type pcmkLogs struct {
	l    *lab.Lab
	mark map[string]int64
	year int
}

func markPcmkLogs(l *lab.Lab) *pcmkLogs {
	p := &pcmkLogs{l: l, mark: map[string]int64{}, year: time.Now().Year()}
	for _, n := range l.Nodes() {
		if st, err := os.Stat(p.path(n)); err == nil {
			p.mark[n.Name()] = st.Size()
		}
	}
	return p
}

func (p *pcmkLogs) path(n *lab.Node) string {
	return filepath.Join(n.LogDir(), "pacemaker", "pacemaker.log")
}

// first is the time of the first line (since the mark, on any node) that
// matches re: Pacemaker's log stamps are "Dec 01 18:13:41.258" (local time,
// milliseconds).
func (p *pcmkLogs) first(re *regexp.Regexp) (time.Time, string, bool) {
	var best time.Time
	var bestLine string
	for _, n := range p.l.Nodes() {
		b, err := os.ReadFile(p.path(n))
		if err != nil || int64(len(b)) < p.mark[n.Name()] {
			continue
		}
		for _, line := range strings.Split(string(b[p.mark[n.Name()]:]), "\n") {
			if len(line) < 19 || !re.MatchString(line) {
				continue
			}
			ts, err := time.ParseInLocation("Jan 02 15:04:05.000", line[:19], time.Local)
			if err != nil {
				continue
			}
			ts = ts.AddDate(p.year, 0, 0)
			if best.IsZero() || ts.Before(best) {
				best, bestLine = ts, line
			}
		}
	}
	return best, bestLine, !best.IsZero()
}

func (p *pcmkLogs) grep(node, substr string) []string {
	b, err := os.ReadFile(p.path(p.l.Node(node)))
	if err != nil || int64(len(b)) < p.mark[node] {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b[p.mark[node]:]), "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

// failoverTimes are, from the pacemaker logs, when the cluster lost the
// victim (its membership), when the fencer confirmed the fencing, and when
// the VIP's start on the new owner returned.
type failoverTimes struct {
	lost, fenced, vipStarted time.Time
}

func readFailoverTimes(t *testing.T, logs *pcmkLogs, victim, action, vip, owner string) failoverTimes {
	t.Helper()
	var ft failoverTimes
	var ok bool
	var line string
	if ft.lost, line, ok = logs.first(regexp.MustCompile(`Node ` + victim + ` state is now lost|` + victim + ` will be fenced`)); !ok {
		t.Errorf("no node's pacemaker.log says %s was lost", victim)
	} else {
		t.Logf("lost:    %s", line)
	}
	if ft.fenced, line, ok = logs.first(regexp.MustCompile(`Operation '` + action + `' targeting ` + victim + ` by \S+ for \S+: OK`)); !ok {
		t.Errorf("no node's pacemaker.log says the fencing of %s succeeded", victim)
	} else {
		t.Logf("fenced:  %s", line)
	}
	if ft.vipStarted, line, ok = logs.first(regexp.MustCompile(`Result of start operation for ` + regexp.QuoteMeta(vip) + ` on ` + owner + `: ok`)); !ok {
		t.Errorf("%s's pacemaker.log has no successful start of %s", owner, vip)
	} else {
		t.Logf("started: %s", line)
	}
	return ft
}

// vipStartOp is the last-rc-change (Pacemaker's operation history, to the
// second) of the VIP's start on node.
func vipStartOp(t *testing.T, ctx context.Context, n *lab.Node, rsc, node string) time.Time {
	t.Helper()
	r, err := n.Run(ctx, "crm_mon", "--one-shot", "--output-as=xml", "--include=operations")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Nodes []struct {
			Name string `xml:"name,attr"`
			Rscs []struct {
				ID  string `xml:"id,attr"`
				Ops []struct {
					Task   string `xml:"task,attr"`
					Change string `xml:"last-rc-change,attr"`
					RC     string `xml:"rc,attr"`
				} `xml:"operation_history"`
			} `xml:"resource_history"`
		} `xml:"node_history>node"`
	}
	if err := xml.Unmarshal([]byte(r.Stdout), &doc); err != nil {
		t.Fatalf("crm_mon: %v", err)
	}
	for _, nd := range doc.Nodes {
		if nd.Name != node {
			continue
		}
		for _, rs := range nd.Rscs {
			if rs.ID != rsc {
				continue
			}
			for _, op := range rs.Ops {
				if op.Task == "start" && op.RC == "0" {
					// "Tue Dec  1 18:13:41 2026"
					ts, err := time.ParseInLocation(time.ANSIC, op.Change, time.Local)
					if err != nil {
						t.Fatalf("last-rc-change %q: %v", op.Change, err)
					}
					return ts
				}
			}
		}
	}
	t.Fatalf("crm_mon on %s: no successful start of %s on %s in the operation history:\n%s", n.Name(), rsc, node, r.Stdout)
	return time.Time{}
}

// arpAnswers sends an ARP request for ip from the client and returns the
// MAC addresses that answer within wait.
func arpAnswers(t *testing.T, c *lab.Client, ip string, wait time.Duration) map[string]bool {
	t.Helper()
	macs := map[string]bool{}
	err := c.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		cl, err := arp.Dial(ifi)
		if err != nil {
			return err
		}
		defer cl.Close()
		target := netip.MustParseAddr(ip)
		if err := cl.Request(target); err != nil {
			return err
		}
		cl.SetReadDeadline(time.Now().Add(wait))
		for {
			p, _, err := cl.Read()
			if err != nil {
				return nil // the deadline
			}
			if p.Operation == arp.OperationReply && p.SenderIP == target {
				macs[p.SenderHardwareAddr.String()] = true
			}
		}
	})
	if err != nil {
		t.Fatalf("ARP from %s: %v", c.Name(), err)
	}
	return macs
}

func nodeMAC(t *testing.T, n *lab.Node) string {
	t.Helper()
	var mac string
	err := n.Do(func() error {
		l, err := netlink.LinkByName("eth0")
		if err == nil {
			mac = l.Attrs().HardwareAddr.String()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// linksDown reports whether the node's eth0 and eth1 are down (a fenced,
// powered-off node).
func linksDown(t *testing.T, n *lab.Node) bool {
	t.Helper()
	down := true
	err := n.Do(func() error {
		for _, name := range []string{"eth0", "eth1"} {
			l, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			down = down && l.Attrs().Flags&net.FlagUp == 0
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return down
}

// fenceFailover sets up ganesha + vip1 + its trigger (vip1 on n1), loses
// n1 by fault, and checks: n1 fenced before vip1 starts elsewhere; the
// trigger takes n1's clients over because Pacemaker reported n1 stopped;
// n1 comes back with Recover and vip1 returns home.
func fenceFailover(t *testing.T, fault string) {
	l := sharedLab(t)
	storhaugBin(t)
	ctx := ctxFor(t, 8*time.Minute)
	const victim = "n1"
	v := vipCase{ip: "198.51.100.211", cidr: "24", nameForm: "node"}
	res, cons := ganeshaCIB(l.SharedDir(), v)
	if err := l.ReplaceCIB(ctx, "resources", res); err != nil {
		t.Fatal(err)
	}
	if err := l.ReplaceCIB(ctx, "constraints", cons); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		l.Heal()
		if err := l.Recover(ctx, victim); err != nil {
			t.Errorf("recover %s: %v", victim, err)
		}
		if err := l.ResetCIB(ctx, 2*time.Minute); err != nil {
			t.Errorf("reset CIB: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			ganeshaDiag(t, l)
		}
	})
	all := []string{"n1", "n2", "n3"}
	waitPlacement(t, ctx, l, victim, all, 2*time.Minute)
	waitGrace(t, ctx, l, false, time.Minute, all...)
	nfsWriteRead(t, ctx, l, v.ip, "before.txt", "written through the VIP on n1\n")
	addClientRecord(t, l, victim)
	victimMAC := nodeMAC(t, l.Node(victim))
	if m := arpAnswers(t, l.Client(1), v.ip, time.Second); len(m) != 1 || !m[victimMAC] {
		t.Fatalf("before the fault %s is answered by %v, want %s's %s only", v.ip, m, victim, victimMAC)
	}

	logs := markPcmkLogs(l)
	glogs := markGaneshaLogs(l)
	tf := time.Now()
	switch fault {
	case "crash":
		// Only the processes: the node's namespace, links and addresses
		// live on and answer ARP until the fencer powers the node off.
		if err := l.Crash(victim); err != nil {
			t.Fatal(err)
		}
	case "partition":
		// n1 loses the cluster's network; clients still reach it (and
		// its VIP) until it is fenced.
		if err := l.IsolateCluster(victim); err != nil {
			t.Fatal(err)
		}
		if !reachable(l.Client(1), l.Node(victim).Addr4()) {
			t.Errorf("the client cannot reach %s across a partition of the cluster network only", victim)
		}
	}
	var owner string
	err := l.WaitFor(ctx, "vip1 and its trigger off "+victim, 2*time.Minute, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		on, tr := s.RunningOn("vip1"), s.RunningOn("vip1_trigger")
		if len(on) == 1 && on[0] != victim && len(tr) == 1 && tr[0] == on[0] {
			owner = on[0]
			return true, nil
		}
		return false, fmt.Errorf("vip1 on %v, trigger on %v", on, tr)
	})
	if err != nil {
		t.Fatal(err)
	}
	tMoved := time.Since(tf)
	other := l.Node(owner)

	// The fencer's word: n1 was fenced (off), after the fault.
	ev, completed := waitFenced(t, ctx, other, victim, "off", tf, 30*time.Second)
	if l.Node(victim).Alive() {
		t.Errorf("%s runs after its fencing (%+v)", victim, ev)
	}
	if !linksDown(t, l.Node(victim)) {
		t.Errorf("%s's links are up after its fencing: its namespace would answer ARP for its addresses", victim)
	}
	// ... before the VIP started elsewhere: Pacemaker's operation history
	// (to the second) and the logs (to the millisecond).
	started := vipStartOp(t, ctx, other, "vip1", owner)
	if started.Before(completed) {
		t.Errorf("vip1 started on %s at %s, before %s's fencing completed at %s", owner, started, victim, completed)
	}
	ft := readFailoverTimes(t, logs, victim, "off", "vip1", owner)
	if !ft.fenced.IsZero() && !ft.vipStarted.IsZero() && !ft.vipStarted.After(ft.fenced) {
		t.Errorf("vip1's start on %s returned at %s, not after the fencing of %s at %s", owner,
			ft.vipStarted.Format("15:04:05.000"), victim, ft.fenced.Format("15:04:05.000"))
	}
	t.Logf("%s %s: lost +%.2fs, fenced +%.2fs (%s by %s), vip1 started on %s +%.2fs, seen moved +%.2fs",
		fault, victim, ft.lost.Sub(tf).Seconds(), ft.fenced.Sub(tf).Seconds(), ev.Action, ev.Delegate, owner,
		ft.vipStarted.Sub(tf).Seconds(), tMoved.Seconds())
	// One owner answers for the VIP: the fenced node no longer does.
	if m := arpAnswers(t, l.Client(1), v.ip, time.Second); len(m) != 1 || !m[nodeMAC(t, other)] {
		t.Errorf("after the failover %s is answered by %v, want %s's %s only", v.ip, m, owner, nodeMAC(t, other))
	}

	// ganesha_trigger's fenced path: Pacemaker reported n1 stopped in the
	// post-start notification; the trigger did not have to fall back to
	// the recorded owner, and the new owner's ganesha read n1's records.
	if lines := logs.grep(owner, "no node reported stopped"); len(lines) > 0 {
		t.Errorf("the trigger on %s did not get %s as stopped from Pacemaker: %s", owner, victim, strings.Join(lines, "\n"))
	}
	waitGrace(t, ctx, l, true, 30*time.Second, owner)
	if !glogs.read(owner, v.graceName(victim)) {
		t.Errorf("ganesha on %s did not read the fenced %s's client records (grace 5:%s)", owner, victim, v.graceName(victim))
	}
	waitGrace(t, ctx, l, false, time.Minute, owner)
	nfsWriteRead(t, ctx, l, v.ip, "after.txt", "written through the VIP on "+owner+"\n")

	// The fenced node comes back: it rejoins, and vip1 returns home.
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	tr := time.Now()
	if err := l.Recover(ctx, victim); err != nil {
		t.Fatal(err)
	}
	for _, name := range all {
		if err := l.WaitMembership(ctx, name, all, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	waitPlacement(t, ctx, l, victim, all, 2*time.Minute)
	t.Logf("%s back: rejoined, vip1 home after %.1fs", victim, time.Since(tr).Seconds())
	if m := arpAnswers(t, l.Client(1), v.ip, time.Second); len(m) != 1 || !m[victimMAC] {
		t.Errorf("after failback %s is answered by %v, want %s's %s only", v.ip, m, victim, victimMAC)
	}
}

// A crashed node is fenced before its VIP starts elsewhere.
func TestFenceCrash(t *testing.T) { fenceFailover(t, "crash") }

// A node that loses the cluster's network (clients still reach it) is
// fenced before its VIP starts elsewhere.
func TestFencePartition(t *testing.T) { fenceFailover(t, "partition") }

// The device's reboot: the node goes down and boots by itself (the lab's
// fence daemon starts its services), rejoins; Recover during its boot
// sequence does not boot it a second time.
func TestFenceRebootRejoins(t *testing.T) {
	l := sharedLab(t)
	ctx := ctxFor(t, 4*time.Minute)
	const target = "n2"
	n := l.Node(target)
	old := n.Pid()
	t0 := time.Now()
	r, err := l.Node("n1").Run(ctx, "stonith_admin", "--reboot", target, "--timeout", "30")
	if err != nil {
		t.Fatalf("stonith_admin --reboot %s: %v\n%s", target, err, r.Output())
	}
	t.Logf("stonith_admin --reboot %s returned after %.2fs", target, time.Since(t0).Seconds())
	waitFenced(t, ctx, l.Node("n1"), target, "reboot", t0, 10*time.Second)
	if !n.Alive() || n.Pid() == old {
		t.Fatalf("%s after a reboot: alive %v, init pid %d (was %d)", target, n.Alive(), n.Pid(), old)
	}
	booted := n.Pid()
	if err := l.Recover(ctx, target); err != nil {
		t.Fatal(err)
	}
	if n.Pid() != booted {
		t.Errorf("Recover booted %s again (init %d, the fence daemon's %d)", target, n.Pid(), booted)
	}
	if inits := nodeInits(l.Prefix(), target); inits != 1 {
		t.Errorf("%d inits of %s run", inits, target)
	}
	for _, name := range nodeNames(l) {
		if err := l.WaitMembership(ctx, name, nodeNames(l), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	s, err := l.CrmMon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.RunningOn(lab.FenceResource); len(got) != 1 || len(s.Failures) > 0 {
		t.Errorf("after the reboot: %s on %v, failures %+v", lab.FenceResource, got, s.Failures)
	}
	t.Logf("%s rebooted by its fence device and online everywhere %.1fs after the request", target, time.Since(t0).Seconds())
}

// nodeInits counts the running inits of a lab node (by their names).
func nodeInits(prefix, node string) int {
	ents, _ := os.ReadDir("/proc")
	c := 0
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.TrimRight(string(b), "\x00") == "storhaug-lab-init:"+prefix+":"+node {
			c++
		}
	}
	return c
}

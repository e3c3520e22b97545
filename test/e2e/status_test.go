package e2e

// storhaug status after failovers: the sample configuration set up by
// storhaug setup; a planned move of n2's address (crm_resource --move) and
// its return; a crash of n3 (fenced) and its return home. After each,
// storhaug status --output json on the address's new owner shows where the
// address came from, why (stop or fencing), when it went down and came up
// within the test's own timeline (Pacemaker records to the second), and
// whether that node's ganesha is in grace as its bus says. With
// STORHAUG_STATUS_CAPTURE=DIR the test also saves what status reads at
// each stage (pacemaker/testdata/failover came from such a run).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/storhaug/storhaug/pacemaker"
	"github.com/storhaug/storhaug/setup"
	"github.com/storhaug/storhaug/test/lab"
)

// captureStatus saves what storhaug status reads on n (the CIB, crm_mon's
// XML, the fencing history) under $STORHAUG_STATUS_CAPTURE/<stage>-*.xml,
// to record real Pacemaker output as unit-test data.
func captureStatus(t *testing.T, ctx context.Context, n *lab.Node, stage string) {
	t.Helper()
	dir := os.Getenv("STORHAUG_STATUS_CAPTURE")
	if dir == "" {
		return
	}
	for name, cmd := range map[string][]string{
		"cib":     {"cibadmin", "--query"},
		"crm_mon": {"crm_mon", "--one-shot", "--inactive", "--output-as=xml"},
		"fence":   {"stonith_admin", "--history", "*", "--verbose", "--output-as=xml"},
	} {
		r, err := n.Run(ctx, cmd[0], cmd[1:]...)
		if err != nil {
			t.Logf("capture %s %s: %v\n%s", stage, name, err, r.Output())
		}
		if err := os.WriteFile(filepath.Join(dir, stage+"-"+name+".xml"), []byte(r.Stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, "times.txt"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "%s captured %s\n", stage, time.Now().UTC().Format(time.RFC3339Nano))
	f.Close()
}

// noteTime logs (and with STORHAUG_STATUS_CAPTURE records) an event of
// the test's timeline, and returns its time.
func noteTime(t *testing.T, what string) time.Time {
	now := time.Now()
	dir := os.Getenv("STORHAUG_STATUS_CAPTURE")
	t.Logf("%s at %s", what, now.UTC().Format(time.RFC3339Nano))
	if dir == "" {
		return now
	}
	f, err := os.OpenFile(filepath.Join(dir, "times.txt"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "%s %s\n", what, now.UTC().Format(time.RFC3339Nano))
	f.Close()
	return now
}

func TestStatusAfterFailover(t *testing.T) {
	l := sharedLab(t)
	storhaugBin(t)
	ctx := ctxFor(t, 15*time.Minute)
	n1 := l.Node("n1")
	nodes := []string{"n1", "n2", "n3"}
	for vip := range setupVIPs {
		vipsAbsent(t, l, vip)
	}
	installSampleConfig(t, ctx, l, n1)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		storhaugOn(ctx, n1, "teardown")
	})
	if r, err := storhaugOn(ctx, n1, "setup"); err != nil {
		t.Fatalf("storhaug setup: %v\n%s", err, r.Output())
	}
	waitSetUp(t, ctx, l, setupVIPs, nodes, 4*time.Minute)
	captureStatus(t, ctx, n1, "setup")
	status := func(n *lab.Node) {
		r, err := storhaugOn(ctx, n, "status")
		if err != nil {
			t.Fatalf("storhaug status on %s: %v\n%s", n.Name(), err, r.Output())
		}
		t.Logf("storhaug status on %s:\n%s", n.Name(), r.Stdout)
	}
	status(n1)

	// A planned move: n2's address to n1, and back.
	planned := "198.51.100.202"
	id := setup.VIPID(mustAddr(planned))
	tMove := noteTime(t, "move "+planned)
	if r, err := n1.Run(ctx, "crm_resource", "--move", "--resource", id, "--node", "n1"); err != nil {
		t.Fatalf("crm_resource --move: %v\n%s", err, r.Output())
	}
	moved := map[string]string{"198.51.100.201": "n1", planned: "n1", "198.51.100.203": "n3"}
	waitSetUp(t, ctx, l, moved, nodes, time.Minute)
	tMoved := noteTime(t, "moved "+planned)
	captureStatus(t, ctx, n1, "moved")
	status(n1)
	checkLastMove(t, ctx, n1, planned, "n2", "n1", "stop", tMove, tMoved)
	tClear := noteTime(t, "clear "+planned)
	if r, err := n1.Run(ctx, "crm_resource", "--clear", "--resource", id); err != nil {
		t.Fatalf("crm_resource --clear: %v\n%s", err, r.Output())
	}
	waitSetUp(t, ctx, l, setupVIPs, nodes, time.Minute)
	tBack := noteTime(t, "back "+planned)
	captureStatus(t, ctx, n1, "back")
	status(l.Node("n2"))
	checkLastMove(t, ctx, l.Node("n2"), planned, "n1", "n2", "stop", tClear, tBack)

	// A crash: n3 is fenced, its address moves to n1.
	crashed := "198.51.100.203"
	if err := l.CutLink("n3"); err != nil {
		t.Fatal(err)
	}
	tCrash := noteTime(t, "crash n3")
	if err := l.Crash("n3"); err != nil {
		t.Fatal(err)
	}
	err := l.WaitFor(ctx, crashed+" on n1", 90*time.Second, func() (bool, error) {
		s, err := n1.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		if got := s.RunningOn(setup.VIPID(mustAddr(crashed))); len(got) != 1 || got[0] != "n1" {
			return false, fmt.Errorf("on %v", got)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tTaken := noteTime(t, "took over "+crashed)
	captureStatus(t, ctx, n1, "crashed")
	status(n1)
	m := checkLastMove(t, ctx, n1, crashed, "n3", "n1", "fenced", tCrash, tTaken)
	if !m.AtLeast {
		t.Errorf("%s: the outage after a crash is shown as exact (%+v): the cluster does not know when n3 failed", crashed, m)
	}
	if err := l.RestoreLink("n3"); err != nil {
		t.Fatal(err)
	}
	if err := l.Recover(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	tRecover := time.Now()
	if err := l.Recover(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	waitSetUp(t, ctx, l, setupVIPs, nodes, 3*time.Minute)
	tHome := noteTime(t, "n3 back")
	captureStatus(t, ctx, n1, "recovered")
	status(l.Node("n3"))
	m = checkLastMove(t, ctx, l.Node("n3"), crashed, "n1", "n3", "stop", tRecover, tHome)
	t.Logf("%s was down %ds on its way home (n1 -> n3)", crashed, m.DownFor)
	// It left n1 only once n3's services ran: their starts on n3 had
	// ended when its stop on n1 began.
	x, err := l.QueryCIB(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := pacemaker.ParseOpHistory([]byte(x))
	if err != nil {
		t.Fatal(err)
	}
	started := map[string]bool{}
	for _, o := range ops {
		if o.Node != "n3" || o.Task != "start" || !o.Done() || o.LastFail {
			continue
		}
		if id := pacemaker.BaseID(o.Resource); id == setup.IDPrefix+"ctdb" || id == setup.IDPrefix+"ganesha" {
			started[id] = true
			// Both to the second, rounded down: the stop began no
			// earlier than the second the start ended in.
			if o.Ended().Truncate(time.Second).After(m.Down) {
				t.Errorf("%s left n1 at %s, before %s had started on n3 (ended %s): it was down while n3's services started",
					crashed, m.Down.Format(time.TimeOnly), id, o.Ended().Format("15:04:05.000"))
			}
		}
	}
	if len(started) != 2 {
		t.Errorf("n3's history shows the starts of %v, want CTDB's and ganesha's", started)
	}
}

// checkLastMove runs storhaug status --output json on n, the node that
// serves addr, and checks what it shows of addr's last move: from, to and
// cause, the outage within [begin, end] of the test's clock (Pacemaker
// records to the second), and the grace of n's ganesha as n's bus tells
// it just before and after.
func checkLastMove(t *testing.T, ctx context.Context, n *lab.Node, addr, from, to, cause string, begin, end time.Time) setup.Move {
	t.Helper()
	before, errBefore := n.GaneshaInGrace(ctx)
	r, err := storhaugOn(ctx, n, "status", "--output", "json")
	after, errAfter := n.GaneshaInGrace(ctx)
	var st setup.Status
	if err != nil || json.Unmarshal([]byte(r.Stdout), &st) != nil {
		t.Fatalf("status --output json on %s: %v\n%s", n.Name(), err, r.Output())
	}
	var v *setup.VIPStatus
	for i := range st.VIPs {
		if st.VIPs[i].Address == addr {
			v = &st.VIPs[i]
		}
	}
	if v == nil || v.LastMove == nil {
		t.Fatalf("status on %s shows no last move of %s: %s", n.Name(), addr, r.Stdout)
	}
	m := *v.LastMove
	if m.From != from || m.To != to || m.Cause != cause || v.Node != to {
		t.Errorf("status on %s: %s last move %+v on %s, want %s -> %s (%s)", n.Name(), addr, m, v.Node, from, to, cause)
	}
	// Pacemaker records to the second when an operation began (rounded
	// down), and how long it ran.
	lo, hi := begin.Truncate(time.Second), end
	if m.Down.Before(lo) || m.Up.After(hi) || m.Up.Before(m.Down) || m.DownFor != int(m.Up.Sub(m.Down).Round(time.Second)/time.Second) {
		t.Errorf("status on %s: %s down %s, up %s (%ds), want within %s..%s", n.Name(), addr,
			m.Down.Format(time.RFC3339), m.Up.Format(time.RFC3339), m.DownFor, lo.Format(time.RFC3339), hi.Format(time.RFC3339))
	}
	switch {
	case errBefore != nil || errAfter != nil:
		t.Errorf("ganesha on %s over D-Bus: %v %v", n.Name(), errBefore, errAfter)
	case before != after:
		t.Logf("%s's grace changed while status ran (%v -> %v); not compared", n.Name(), before, after)
	case v.Grace != map[bool]string{true: setup.GraceHolding, false: setup.GraceLifted}[before]:
		t.Errorf("status on %s: %s grace %q, ganesha says in grace=%v", n.Name(), addr, v.Grace, before)
	}
	return m
}

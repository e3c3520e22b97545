package e2e

// CTDB follows Pacemaker's fencing (issue 13): the lab runs ctdbd with
// CTDB's shipped tunables (dead-node detection after KeepaliveLimit 5 ×
// KeepaliveInterval 5 s), CTDB as the promotable clone with notify=true,
// as storhaug setup makes it. A node loses power (its links cut, then
// every process killed: it sends nothing, not even FINs). With fencing,
// the survivors' ctdbd mark it dead once the fencer has confirmed the
// fencing — the agent's post-stop notification ended their connections
// with it — and not by their keepalives. Without a confirmed fencing
// (the fence device fails), the agent leaves the peer alone and CTDB's
// keepalives decide.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/test/lab"
)

// ctdbLogs reads what the nodes' ctdbd logs gained since the mark.
type ctdbLogs struct {
	mark map[*lab.Node]int64
}

func ctdbLogPath(n *lab.Node) string { return filepath.Join(n.LogDir(), "ctdb", "log.ctdb") }

func markCTDBLogs(nodes []*lab.Node) *ctdbLogs {
	c := &ctdbLogs{mark: map[*lab.Node]int64{}}
	for _, n := range nodes {
		if st, err := os.Stat(ctdbLogPath(n)); err == nil {
			c.mark[n] = st.Size()
		}
	}
	return c
}

// first returns the time and text of n's first new line matching re.
// ctdbd stamps its lines "2026-12-01T21:04:05.123456+00:00".
func (c *ctdbLogs) first(n *lab.Node, re *regexp.Regexp) (time.Time, string, bool) {
	b, err := os.ReadFile(ctdbLogPath(n))
	if err != nil || int64(len(b)) < c.mark[n] {
		return time.Time{}, "", false
	}
	for _, line := range strings.Split(string(b[c.mark[n]:]), "\n") {
		if !re.MatchString(line) {
			continue
		}
		stamp, _, _ := strings.Cut(line, " ")
		ts, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			continue
		}
		return ts, line, true
	}
	return time.Time{}, "", false
}

// ctdbDisconnectedOn reports whether n's ctdb has victim disconnected.
func ctdbDisconnectedOn(ctx context.Context, n, victim *lab.Node) (bool, error) {
	r, err := n.Run(ctx, "ctdb", "-X", "status")
	if err != nil {
		return false, fmt.Errorf("%s: %v %s", n.Name(), err, r.Output())
	}
	row := fmt.Sprintf("|%d|%s|", ctdbPNN(victim), victim.Addr4())
	for _, l := range strings.Split(r.Stdout, "\n") {
		if strings.HasPrefix(l, row) {
			f := strings.Split(l, "|")
			return len(f) > 3 && f[3] == "1", nil
		}
	}
	return false, fmt.Errorf("%s: no row for pnn %d:\n%s", n.Name(), ctdbPNN(victim), r.Stdout)
}

// ctdbTunable reads one of n's ctdbd tunables.
func ctdbTunable(ctx context.Context, n *lab.Node, name string) (int, error) {
	r, err := n.Run(ctx, "ctdb", "getvar", name)
	if err != nil {
		return 0, fmt.Errorf("%s: ctdb getvar %s: %v %s", n.Name(), name, err, r.Output())
	}
	_, v, ok := strings.Cut(r.Stdout, "=")
	if !ok {
		return 0, fmt.Errorf("%s: ctdb getvar %s: %q", n.Name(), name, r.Stdout)
	}
	return strconv.Atoi(strings.TrimSpace(v))
}

// ctdbLoss is one power loss of a CTDB node under Pacemaker.
type ctdbLoss struct {
	l         *lab.Lab
	victim    *lab.Node
	survivors []*lab.Node
	crash     time.Time
	pcmk      *pcmkLogs
	ctdb      *ctdbLogs
	keepalive time.Duration // KeepaliveInterval × KeepaliveLimit
}

// ctdbPowerLoss runs the promotable CTDB clone, powers an unpromoted node
// off and waits until every survivor's ctdbd has the node disconnected.
// With fenceFails, the lab's fence device is pointed at a socket where
// nobody answers: every fencing of the node fails, and Pacemaker keeps
// trying.
func ctdbPowerLoss(t *testing.T, ctx context.Context, fenceFails bool) *ctdbLoss {
	l := sharedLab(t)
	storhaugBin(t)
	vipsAbsent(t, l, ctdbVIP)
	nodes := l.Nodes()
	res, cons := ctdbPromotableCIB()
	if err := l.ApplyCIB(ctx, "resources", res); err != nil {
		t.Fatal(err)
	}
	if err := l.ApplyCIB(ctx, "constraints", cons); err != nil {
		t.Fatal(err)
	}
	var promoted string
	err := l.WaitFor(ctx, "one ctdb promoted, CTDB healthy", 4*time.Minute, func() (bool, error) {
		p, err := promotedCTDB(ctx, l, nodes[0])
		if err != nil {
			return false, err
		}
		s, _ := l.CrmMon(ctx)
		if len(s.RunningOn("ctdb")) != len(nodes) {
			return false, fmt.Errorf("ctdb on %v", s.RunningOn("ctdb"))
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
	c := &ctdbLoss{l: l}
	for _, n := range nodes {
		if n.Name() != promoted {
			c.victim = n // the last unpromoted node
		}
	}
	for _, n := range nodes {
		if n != c.victim {
			c.survivors = append(c.survivors, n)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		if fenceFails {
			// The device works again: the pending fencing completes
			// before the node boots again.
			if err := l.ResetCIB(ctx, 2*time.Minute); err != nil {
				t.Errorf("reset CIB: %v", err)
			}
			if err := l.WaitFenced(ctx, c.victim.Name(), 2*time.Minute); err != nil {
				t.Errorf("%s not fenced once the device works: %v", c.victim.Name(), err)
			}
		}
		if err := l.RestoreLink(c.victim.Name()); err != nil {
			t.Errorf("restore %s's links: %v", c.victim.Name(), err)
		}
		if err := l.Recover(ctx, c.victim.Name()); err != nil {
			t.Errorf("recover %s: %v", c.victim.Name(), err)
		}
		if err := l.ResetCIB(ctx, 2*time.Minute); err != nil {
			t.Errorf("reset CIB: %v", err)
		}
	})
	// CTDB's shipped tunables, nothing the lab or the agent shortened.
	for _, n := range c.survivors {
		iv, err1 := ctdbTunable(ctx, n, "KeepaliveInterval")
		lim, err2 := ctdbTunable(ctx, n, "KeepaliveLimit")
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if iv != 5 || lim != 5 {
			t.Fatalf("%s: KeepaliveInterval %d, KeepaliveLimit %d: want CTDB's defaults (5, 5)", n.Name(), iv, lim)
		}
		c.keepalive = time.Duration(iv*lim) * time.Second
	}

	if fenceFails {
		if r, err := nodes[0].Run(ctx, "crm_resource", "--resource", lab.FenceResource, "--set-parameter", "socket",
			"--parameter-value", "/nonexistent/fence.sock"); err != nil {
			t.Fatalf("breaking the fence device: %v %s", err, r.Output())
		}
	}
	c.pcmk = markPcmkLogs(l)
	c.ctdb = markCTDBLogs(c.survivors)
	c.crash = time.Now()
	// Power loss: the cables first (a dead machine sends nothing, not even
	// the FINs of its killed processes' sockets), then every process.
	if err := l.CutLink(c.victim.Name()); err != nil {
		t.Fatal(err)
	}
	if err := l.Crash(c.victim.Name()); err != nil {
		t.Fatal(err)
	}
	err = l.WaitFor(ctx, c.victim.Name()+" disconnected in every survivor's ctdb", 2*time.Minute, func() (bool, error) {
		for _, n := range c.survivors {
			if ok, err := ctdbDisconnectedOn(ctx, n, c.victim); !ok {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s disconnected in every survivor's ctdb %.1fs after the power loss", c.victim.Name(), time.Since(c.crash).Seconds())
	return c
}

// dead returns when n's ctdbd marked the victim dead, and whether its
// keepalives did ("dead count reached") at or before that.
func (c *ctdbLoss) dead(t *testing.T, n *lab.Node) (at time.Time, byKeepalive bool) {
	t.Helper()
	at, line, ok := c.ctdb.first(n, regexp.MustCompile(`node `+regexp.QuoteMeta(c.victim.Addr4())+`:\d+ is dead`))
	if !ok {
		t.Fatalf("%s's ctdb log does not say %s is dead", n.Name(), c.victim.Name())
	}
	t.Logf("%s: %s", n.Name(), line)
	ka, kline, ok := c.ctdb.first(n, regexp.MustCompile(fmt.Sprintf(`dead count reached for node %d$`, ctdbPNN(c.victim))))
	if ok && !ka.After(at) {
		t.Logf("%s: %s", n.Name(), kline)
		return at, true
	}
	return at, false
}

// With fencing: every survivor's ctdbd marks the node dead after the
// fencer confirmed it off, because the agent ended its connections —
// not because its keepalives ran out.
func TestCTDBFencedPeerDropped(t *testing.T) {
	ctx := ctxFor(t, 10*time.Minute)
	c := ctdbPowerLoss(t, ctx, false)
	v := c.victim.Name()
	fenced, line, ok := c.pcmk.first(regexp.MustCompile(`Operation '(off|reboot)' targeting ` + v + ` by \S+ for \S+: OK`))
	if !ok {
		t.Fatalf("no node's pacemaker.log says the fencing of %s succeeded", v)
	}
	t.Logf("fenced: %s", line)
	lost, _, _ := c.pcmk.first(regexp.MustCompile(`Node ` + v + ` state is now lost|` + v + ` will be fenced`))
	for _, n := range c.survivors {
		at, byKeepalive := c.dead(t, n)
		if byKeepalive {
			t.Errorf("%s's ctdbd gave %s up by its own keepalives, not after the fencing", n.Name(), v)
		}
		if at.Before(fenced) {
			t.Errorf("%s's ctdbd marked %s dead at %s, before the fencing was confirmed at %s: CTDB gave up on a node that might still write",
				n.Name(), v, at.Format("15:04:05.000"), fenced.Format("15:04:05.000"))
		}
		if d := at.Sub(c.crash); d >= c.keepalive {
			t.Errorf("%s's ctdbd marked %s dead %.1fs after the power loss, not before its keepalives (%v) would have", n.Name(), v, d.Seconds(), c.keepalive)
		}
		drop := c.pcmk.grep(n.Name(), fmt.Sprintf("CTDB node %d (%s:", ctdbPNN(c.victim), c.victim.Addr4()))
		if len(drop) == 0 || !strings.Contains(strings.Join(drop, "\n"), "dropped") {
			t.Errorf("%s: the CTDB agent did not drop %s after its fencing: %q", n.Name(), v, drop)
		}
		t.Logf("%s: %s lost +%.2fs, fenced +%.2fs, dead in ctdb +%.2fs (%.0f ms after the fencing)", n.Name(), v,
			lost.Sub(c.crash).Seconds(), fenced.Sub(c.crash).Seconds(), at.Sub(c.crash).Seconds(), float64(at.Sub(fenced).Milliseconds()))
	}
}

// Without a confirmed fencing (the fence device fails; Pacemaker has
// declared the node lost and keeps trying to fence it), the agent does
// not drop the node: the survivors' ctdbd give it up by their own
// keepalives. (With stonith-enabled=false Pacemaker counts a lost node's
// instance as stopped without a stop or a notification: nothing reaches
// the agent either.)
func TestCTDBUnfencedPeerKept(t *testing.T) {
	ctx := ctxFor(t, 10*time.Minute)
	c := ctdbPowerLoss(t, ctx, true)
	v := c.victim.Name()
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.survivors {
				t.Logf("%s's pacemaker.log on ctdb:\n%s", n.Name(), strings.Join(c.pcmk.grep(n.Name(), "ctdb"), "\n"))
			}
		}
	})
	if _, line, ok := c.pcmk.first(regexp.MustCompile(`Operation '(off|reboot)' targeting ` + v + ` by \S+ for \S+: OK`)); ok {
		t.Fatalf("%s was fenced by a broken device: %s", v, line)
	}
	failed, line, ok := c.pcmk.first(regexp.MustCompile(`Operation '(off|reboot)' targeting ` + v + ` .*(failed|[Ee]rror)`))
	if !ok {
		t.Errorf("no node's pacemaker.log says a fencing of %s failed", v)
	} else {
		t.Logf("fencing failed +%.2fs: %s", failed.Sub(c.crash).Seconds(), line)
	}
	for _, n := range c.survivors {
		if drop := c.pcmk.grep(n.Name(), "dropped: "); len(drop) > 0 {
			t.Errorf("%s: the agent dropped a node without a confirmed fencing: %q", n.Name(), drop)
		}
		at, byKeepalive := c.dead(t, n)
		if !byKeepalive {
			t.Errorf("%s's ctdbd marked %s dead at +%.2fs, not by its keepalives", n.Name(), v, at.Sub(c.crash).Seconds())
		}
		t.Logf("%s: %s dead in ctdb by its keepalives +%.2fs", n.Name(), v, at.Sub(c.crash).Seconds())
	}
}

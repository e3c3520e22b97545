package scenario

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/test/timeline"
)

func f(x float64) *float64 { return &x }

func TestMedianMax(t *testing.T) {
	for _, c := range []struct {
		xs       []float64
		med, max float64
	}{
		{[]float64{3}, 3, 3},
		{[]float64{5, 1, 3}, 3, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 4},
		{[]float64{-1, -3}, -2, -1},
	} {
		if m := Median(c.xs); m != c.med {
			t.Errorf("Median(%v) = %v, want %v", c.xs, m, c.med)
		}
		if m := Max(c.xs); m != c.max {
			t.Errorf("Max(%v) = %v, want %v", c.xs, m, c.max)
		}
	}
	if !math.IsNaN(Median(nil)) || !math.IsNaN(Max(nil)) {
		t.Error("Median/Max of nothing is not NaN")
	}
	xs := []float64{3, 1, 2}
	Median(xs)
	if xs[0] != 3 {
		t.Error("Median sorted its argument")
	}
}

func outcome(fault string, detect, fence *float64, rs ...Result) *Outcome {
	return &Outcome{Stack: "storhaug", Fault: fault, DetectS: detect, FenceS: fence, Results: rs}
}

func TestAggregate(t *testing.T) {
	os := []*Outcome{
		outcome("crash", f(2.1), f(3.2),
			Result{Proto: "nfs4.2", OutageS: 4, NewOpenS: 5, Acked: 100, Locks: "kept"},
			Result{Proto: "smb3", OutageS: 7, NewOpenS: 8, Acked: 50, Locks: "kept"}),
		outcome("crash", f(2.3), f(3.0),
			Result{Proto: "nfs4.2", OutageS: 6, NewOpenS: 6.5, Acked: 120, Locks: "reported-lost"},
			Result{Proto: "smb3", OutageS: -1, NewOpenS: -1, Acked: 40, Lost: 1, Locks: "kept", Failed: true}),
		outcome("move", nil, nil,
			Result{Proto: "nfs4.2", OutageS: 500, NewOpenS: 1, Acked: 10, Locks: "silently-lost"}),
	}
	rs := Aggregate(os, 300)
	if len(rs) != 3 {
		t.Fatalf("got %d results, want 3 (crash nfs4.2, crash smb3, move nfs4.2): %+v", len(rs), rs)
	}
	c := rs[0]
	if c.Fault != "crash" || c.Proto != "nfs4.2" || c.Stack != "storhaug" || c.Acked != 220 || c.Locks != "reported-lost" || c.Failed {
		t.Errorf("crash nfs4.2: %+v", c)
	}
	if len(c.OutageS) != 2 || c.OutageS[1] != 6 || len(c.FenceS) != 2 || *c.FenceS[1] != 3.0 || *c.DetectS[0] != 2.1 {
		t.Errorf("crash nfs4.2 repetitions: %+v", c)
	}
	s := rs[1]
	if !s.Failed || s.OutageS[1] != 300 || s.NewOpenS[1] != 300 || s.Lost != 1 || s.Acked != 90 {
		t.Errorf("crash smb3: a repetition that never recovered counts at the limit, failed: %+v", s)
	}
	m := rs[2]
	if !m.Failed || m.OutageS[0] != 300 || m.Locks != "silently-lost" || m.FenceS != nil || m.DetectS != nil {
		t.Errorf("move nfs4.2: %+v", m)
	}
}

func TestJSONLineShape(t *testing.T) {
	rs := Aggregate([]*Outcome{outcome("crash", f(2.0004), nil, Result{Proto: "nfs3", OutageS: 1.23456789, NewOpenS: 2, Acked: 3, Locks: "kept"})}, 300)
	line, err := JSONLine(BenchReport{Fencing: true, Clients: "kernel", TokenS: 1, Results: rs})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(line, "\n") {
		t.Errorf("not one line: %q", line)
	}
	want := `{"fencing":true,"clients":"kernel","token_s":1,"results":[{"fault":"crash","proto":"nfs3","stack":"storhaug","outage_s":[1.235],"newopen_s":[2],"detect_s":[2],"acked":3,"lost":0,"corrupt":0,"locks":"kept"}]}`
	if line != want {
		t.Errorf("JSON\n got %s\nwant %s", line, want)
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(line), &back); err != nil {
		t.Fatal(err)
	}
	empty, _ := JSONLine(BenchReport{Fencing: true, Clients: "kernel"})
	if !strings.Contains(empty, `"results":[]`) {
		t.Errorf("no results: %s", empty)
	}
}

func TestTable(t *testing.T) {
	rs := Aggregate([]*Outcome{
		outcome("crash", f(2), f(3), Result{Proto: "nfs4.2", OutageS: 4, NewOpenS: 5, Acked: 10, Locks: "kept"}),
		outcome("crash", f(4), f(5), Result{Proto: "nfs4.2", OutageS: 6, NewOpenS: 9, Acked: 10, Locks: "kept"}),
		outcome("kill-smbd", nil, nil, Result{Proto: "smb3", Failed: true, OutageS: -1, NewOpenS: -1, Locks: "unknown"}),
	}, 300)
	tab := Table(rs)
	lines := strings.Split(strings.TrimSpace(tab), "\n")
	if len(lines) != 4 {
		t.Fatalf("table:\n%s", tab)
	}
	for _, w := range []string{"5.0/6.0", "7.0/9.0", "3.0/4.0", "4.0/5.0", "20"} {
		if !strings.Contains(lines[1], w) {
			t.Errorf("crash row %q lacks %q", lines[1], w)
		}
	}
	for _, w := range []string{"300.0/300.0", "FAILED", "unknown", " - "} {
		if !strings.Contains(lines[2], w) {
			t.Errorf("kill-smbd row %q lacks %q", lines[2], w)
		}
	}
}

func TestViolations(t *testing.T) {
	ok := []arpAnswer{{Window: 1, VIP: "v", MAC: "a"}, {Window: 1, VIP: "v", MAC: "a"}, {Window: 2, VIP: "v", MAC: "b"}, {Window: 2, VIP: "w", MAC: "a"}}
	if v := arpViolations(ok); len(v) != 0 {
		t.Errorf("a move between rounds, two VIPs on one machine: %v", v)
	}
	bad := append(ok, arpAnswer{Window: 2, VIP: "v", MAC: "c"})
	if v := arpViolations(bad); len(v) != 1 || !strings.Contains(v[0], "VIP v on two machines") {
		t.Errorf("two MACs in one round: %v", v)
	}
	leaders := []leaderSample{{Round: 1, Node: "n1", PNN: 0, Leader: 0}, {Round: 1, Node: "n2", PNN: 1, Leader: 0}, {Round: 1, Node: "n3", PNN: 2, Leader: 2},
		{Round: 2, Node: "n1", PNN: 0, Leader: 0}, {Round: 2, Node: "n3", PNN: 2, Leader: -1}}
	v := leaderViolations(leaders)
	if len(v) != 1 || !strings.Contains(v[0], "round 1") || !strings.Contains(v[0], "n1") || !strings.Contains(v[0], "n3") {
		t.Errorf("two self-declared leaders in round 1: %v", v)
	}
	if v := leaderViolations(leaders[3:]); len(v) != 0 {
		t.Errorf("one leader: %v", v)
	}
}

func TestParseFaults(t *testing.T) {
	all, err := ParseFaults("all")
	if err != nil || len(all) != len(Faults) {
		t.Errorf("all: %v %v", all, err)
	}
	if fs, err := ParseFaults("crash, move"); err != nil || len(fs) != 2 || fs[1] != "move" {
		t.Errorf("crash, move: %v %v", fs, err)
	}
	if _, err := ParseFaults("crash,reboot"); err == nil || !strings.Contains(err.Error(), `"reboot"`) {
		t.Errorf("unknown fault: %v", err)
	}
}

func TestProblems(t *testing.T) {
	o := &Outcome{Violations: []string{"VIP v on two machines"}, Results: []Result{
		{Proto: "nfs4.2", Acked: 10, Locks: "kept"},
		{Proto: "nfs4.1", Acked: 10, Locks: "reported-lost"},
		{Proto: "nfs3", Acked: 10, Locks: "silently-lost"},
		{Proto: "smb3", Acked: 10, Lost: 1, Locks: "kept"},
		{Proto: "x", Acked: 10, Corrupt: 2, Locks: "kept"},
		{Proto: "y", Failed: true, Locks: "unknown"},
		{Proto: "z", Locks: "kept"},
	}}
	got := strings.Join(o.Problems(), "\n")
	for _, w := range []string{"VIP v on two machines", "nfs3: lock silently-lost", "smb3: 1 of 10 acknowledged records lost", "x: 0 of 10 acknowledged records lost, 2 corrupt",
		"y: did not recover", "y: lock unknown", "z: nothing acknowledged"} {
		if !strings.Contains(got, w) {
			t.Errorf("problems lack %q:\n%s", w, got)
		}
	}
	for _, no := range []string{"nfs4.2", "nfs4.1"} {
		if strings.Contains(got, no) {
			t.Errorf("a kept or reported lock is no problem:\n%s", got)
		}
	}
}

// A node other than the victim lost in a survivor's view, or fenced, is a
// false failover; the victim's own view of the others (a partition) is
// not; the victim itself lost is one only where the fault leaves it up.
func TestFalseFailovers(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	ev := func(s float64, node, kind, detail string) timeline.Event {
		return timeline.Event{At: t0.Add(time.Duration(s * float64(time.Second))), Node: node, Kind: kind, Detail: detail}
	}
	tl := &timeline.Timeline{Fault: t0, Victim: "n3", Events: []timeline.Event{
		ev(0, "n3", timeline.Fault, "fault injected on n3"),
		ev(2.1, "n1", timeline.Lost, "Node n3 state is now lost"),
		ev(2.2, "n3", timeline.BystanderLost, "Node n1 state is now lost"),
		ev(2.5, "n1", timeline.Fenced, "Operation 'off' targeting n3 by n1"),
	}}
	for _, f := range []string{Crash, LinkCut, Partition, Failback, KillCTDBD} {
		if v := falseFailovers(tl, f); len(v) != 0 {
			t.Errorf("%s: %v", f, v)
		}
	}
	for _, f := range []string{Move, Standby, KillIPaddr3} {
		if v := falseFailovers(tl, f); len(v) != 2 {
			t.Errorf("%s: %v, want the victim's loss and fencing", f, v)
		}
	}
	tl.Events = append(tl.Events,
		ev(3.0, "n2", timeline.BystanderLost, "Node n1 state is now lost"),
		ev(4.0, "n2", timeline.BystanderFenced, "Operation 'reboot' targeting n1 by n2"))
	v := falseFailovers(tl, Crash)
	if len(v) != 2 || !strings.Contains(v[0], "false failover 3.0s after the crash: Node n1 state is now lost (n2's log)") {
		t.Errorf("got %q", v)
	}
}

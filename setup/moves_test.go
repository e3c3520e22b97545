package setup

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/pacemaker"
)

// failoverStatus reads storhaug status from one stage of the lab's
// recorded failovers (../pacemaker/testdata/failover: storhaug setup on 3
// nodes, then 198.51.100.202 moved n2 -> n1 at 21:05:53 and back at
// 21:05:54, n3 crashed at 21:05:54.9, was fenced and its 198.51.100.203
// started on n1, then n3 came back and took it home).
func failoverStatus(t *testing.T, stage string, now time.Time) *Status {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile("../pacemaker/testdata/failover/" + stage + "-" + name + ".xml")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fences, err := pacemaker.ParseFenceHistory(read("fence"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CIB_file", "")
	st, err := ParseStatus(mustParse(t, string(read("cib"))), read("crm_mon"), History{Fencing: fences, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func at(hms string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", "2026-12-01 "+hms)
	if err != nil {
		panic(err)
	}
	return t
}

func vipOf(t *testing.T, st *Status, addr string) VIPStatus {
	t.Helper()
	for _, v := range st.VIPs {
		if v.Address == addr {
			return v
		}
	}
	t.Fatalf("no VIP %s in %+v", addr, st.VIPs)
	return VIPStatus{}
}

// After each failover, status tells where each address came from, when,
// and for how long it was down, as the test that ran them saw it.
func TestStatusLastMoves(t *testing.T) {
	defer func(l *time.Location) { time.Local = l }(time.Local)
	time.Local = time.UTC
	type want struct {
		from, to, cause string
		down, up        string // hh:mm:ss
		downFor         int
		atLeast         bool
	}
	for _, tc := range []struct {
		stage string
		vips  map[string]*want // nil: no move, it started where it is
	}{
		// crm_resource --move at 21:05:53.45, on n1 at 21:05:53.85.
		{"moved", map[string]*want{
			"198.51.100.201": nil,
			"198.51.100.202": {"n2", "n1", "stop", "21:05:53", "21:05:53", 0, false},
			"198.51.100.203": nil,
		}},
		// --clear at 21:05:54.17, back on n2 at 21:05:54.62.
		{"back", map[string]*want{
			"198.51.100.202": {"n1", "n2", "stop", "21:05:54", "21:05:54", 0, false},
		}},
		// n3 crashed at 21:05:54.9; fenced, its address on n1 at
		// 21:05:58.5 at the latest.
		{"crashed", map[string]*want{
			"198.51.100.201": nil,
			"198.51.100.202": {"n1", "n2", "stop", "21:05:54", "21:05:54", 0, false},
			"198.51.100.203": {"n3", "n1", "fenced", "21:05:58", "21:05:58", 0, true},
		}},
		// n3 recovered at 21:06:01.8 (Pacemaker running), every address
		// home at 21:06:14.9: n3's was down while n3's services started.
		{"recovered", map[string]*want{
			"198.51.100.203": {"n1", "n3", "stop", "21:06:03", "21:06:14", 11, false},
		}},
	} {
		st := failoverStatus(t, tc.stage, at("21:06:30"))
		for addr, w := range tc.vips {
			v := vipOf(t, st, addr)
			m := v.LastMove
			if w == nil {
				if m == nil || m.Cause != "" || m.From != "" || m.To != v.Node || m.Up.After(at("21:05:40")) {
					t.Errorf("%s: %s moved: %+v, want started at setup", tc.stage, addr, m)
				}
				continue
			}
			if m == nil {
				t.Errorf("%s: %s: no last move", tc.stage, addr)
				continue
			}
			got := want{m.From, m.To, m.Cause, m.Down.UTC().Format("15:04:05"), m.Up.UTC().Format("15:04:05"), m.DownFor, m.AtLeast}
			if got != *w {
				t.Errorf("%s: %s last move %+v, want %+v", tc.stage, addr, got, *w)
			}
			if v.Grace != GraceUnknown {
				t.Errorf("%s: %s grace %q, want unknown (nobody asked ganesha)", tc.stage, addr, v.Grace)
			}
		}
	}

	// The table after the crash, and the grace of n1, which serves two.
	st := failoverStatus(t, "crashed", at("21:06:00"))
	yes := true
	st.SetGrace("n1", &yes)
	var b bytes.Buffer
	st.WriteText(&b)
	text := b.String()
	for _, line := range []string{
		"vip-198.51.100.203  198.51.100.203  n1  n3    Started  n3->n1 21:05:58 (n3 fenced)  >=0s  holding",
		"vip-198.51.100.202  198.51.100.202  n2  n2    Started  n1->n2 21:05:54              0s    unknown",
		"vip-198.51.100.201  198.51.100.201  n1  n1    Started  started 21:05:38",
		"(>=: the node failed before it was fenced",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("status lacks %q:\n%s", line, text)
		}
	}
	if v := vipOf(t, st, "198.51.100.201"); v.Grace != GraceHolding {
		t.Errorf("201 on n1 in grace: %q", v.Grace)
	}
	no := false
	st.SetGrace("n1", &no)
	if v := vipOf(t, st, "198.51.100.203"); v.Grace != GraceLifted {
		t.Errorf("203 on n1 out of grace: %q", v.Grace)
	}
	st.SetGrace("n2", nil)
	if v := vipOf(t, st, "198.51.100.202"); v.Grace != GraceUnknown {
		t.Errorf("202 on n2, not asked: %q", v.Grace)
	}
	// As JSON: the times, the outage in seconds.
	j, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		VIPs []struct {
			Address  string `json:"address"`
			Grace    string `json:"grace"`
			LastMove *struct {
				From, To, Cause string
				Down, Up        time.Time
				DownS           int  `json:"down_s"`
				AtLeast         bool `json:"down_at_least"`
			} `json:"last_move"`
		} `json:"vips"`
	}
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	for _, v := range back.VIPs {
		if v.Address == "198.51.100.203" && (v.LastMove == nil || v.LastMove.From != "n3" || v.LastMove.Cause != "fenced" ||
			!v.LastMove.Down.Equal(at("21:05:58")) || v.LastMove.DownS != 0 || !v.LastMove.AtLeast || v.Grace != "lifted") {
			t.Errorf("json: %s", j)
		}
	}
}

// What the history does not tell, and what is not the move.
func TestLastMoveEdges(t *testing.T) {
	op := func(node, task, hms string) pacemaker.Op {
		return pacemaker.Op{Node: node, Resource: "v", Task: task, RCChange: at(hms)}
	}
	fenced := func(node, hms string) pacemaker.FenceEvent {
		return pacemaker.FenceEvent{Target: node, Action: "reboot", Status: "success", Completed: at(hms)}
	}
	now := at("12:00:00")
	for _, tc := range []struct {
		name   string
		owner  string
		ops    []pacemaker.Op
		fences []pacemaker.FenceEvent
		want   string // from to cause down-for at-least, or "nil"
	}{
		{"planned", "n2", []pacemaker.Op{op("n1", "stop", "11:00:00"), op("n2", "start", "11:00:02")}, nil, "n1 n2 stop 2 false"},
		{"a fencing long before is not the cause", "n2", []pacemaker.Op{op("n2", "start", "11:00:00")}, []pacemaker.FenceEvent{fenced("n3", "10:00:00")}, "- n2 - -1 false"},
		{"a fencing after the stop is", "n2", []pacemaker.Op{op("n1", "stop", "10:59:00"), op("n2", "start", "11:00:05")}, []pacemaker.FenceEvent{fenced("n3", "11:00:01")}, "n3 n2 fenced 4 true"},
		{"a fencing before the stop is not", "n2", []pacemaker.Op{op("n1", "stop", "11:00:02"), op("n2", "start", "11:00:03")}, []pacemaker.FenceEvent{fenced("n3", "11:00:01")}, "n1 n2 stop 1 false"},
		{"a failed fencing is not", "n2", []pacemaker.Op{op("n2", "start", "11:00:03")}, []pacemaker.FenceEvent{{Target: "n3", Action: "reboot", Status: "failed", Completed: at("11:00:01")}}, "- n2 - -1 false"},
		{"lost without fencing", "n2", []pacemaker.Op{op("n3", "start", "10:00:00"), op("n2", "start", "11:00:03")}, nil, "n3 n2 lost -1 false"},
		{"a stop after the start is an older move's", "n2", []pacemaker.Op{op("n2", "start", "11:00:00"), op("n1", "stop", "11:30:00")}, nil, "- n2 - -1 false"},
		{"still down after a stop", "", []pacemaker.Op{op("n1", "stop", "11:59:30")}, nil, "n1 - stop 30 false"},
		{"still down after a fencing", "", []pacemaker.Op{op("n1", "stop", "10:00:00")}, []pacemaker.FenceEvent{fenced("n3", "11:59:50")}, "n3 - fenced 10 true"},
		{"probed, not started: no record", "n2", []pacemaker.Op{op("n2", "monitor", "11:00:00"), op("n1", "stop", "10:00:00")}, nil, "nil"},
		{"never ran", "", nil, nil, "nil"},
	} {
		m := lastMove("v", tc.owner, tc.ops, tc.fences, now)
		got := "nil"
		if m != nil {
			got = strings.Join([]string{orDash(m.From), orDash(m.To), orDash(m.Cause)}, " ") + " " + fmt.Sprint(m.DownFor, " ", m.AtLeast)
		}
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// blockingRunner answers cibadmin and crm_mon with recorded output and
// never answers the tools in hang until the caller gives up.
type blockingRunner struct {
	cib, mon, cmap []byte
	hang           map[string]bool
}

func (r blockingRunner) Run(ctx context.Context, _ []byte, name string, _ ...string) ([]byte, error) {
	if r.hang[name] {
		<-ctx.Done()
		return nil, fmt.Errorf("%s: %w", name, ctx.Err())
	}
	switch name {
	case "cibadmin":
		return r.cib, nil
	case "crm_mon":
		return r.mon, nil
	case "corosync-cmapctl":
		if r.cmap != nil {
			return r.cmap, nil
		}
	}
	return nil, fmt.Errorf("%s: not expected", name)
}

// status does not hang on a fencer that does not answer: it shows the rest
// (with a warning) once its own bound for the fencer has passed; a crm_mon
// that does not answer ends it at the command's deadline.
func TestReadStatusBounded(t *testing.T) {
	defer func(d time.Duration) { fenceHistoryTimeout = d }(fenceHistoryTimeout)
	fenceHistoryTimeout = 200 * time.Millisecond
	t.Setenv("CIB_file", "")
	read := func(name string) []byte {
		b, err := os.ReadFile("../pacemaker/testdata/failover/crashed-" + name + ".xml")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r := blockingRunner{cib: read("cib"), mon: read("crm_mon"), hang: map[string]bool{"stonith_admin": true}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	st, err := ReadStatus(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("status took %v with a fencer that does not answer", d)
	}
	if !strings.Contains(strings.Join(st.Warnings, "\n"), "no fencing history") {
		t.Errorf("no warning about the fencing history: %v", st.Warnings)
	}
	// Without the fencing history, the crash is not taken for a move.
	if m := vipOf(t, st, "198.51.100.203").LastMove; m == nil || m.Cause == "fenced" || m.To != "n1" {
		t.Errorf("203 without fencing history: %+v", m)
	}
	if st.Detection != nil || !strings.Contains(strings.Join(st.Warnings, "\n"), "failure detection unknown: corosync-cmapctl") {
		t.Errorf("no corosync, yet detection %+v (warnings %v)", st.Detection, st.Warnings)
	}
	// corosync's runtime timeouts, as status shows them.
	r.cmap, err = os.ReadFile("../pacemaker/testdata/cmap_totem.txt")
	if err != nil {
		t.Fatal(err)
	}
	r.hang["stonith_admin"] = false
	if st, err = ReadStatus(ctx, r); err != nil {
		t.Fatal(err)
	}
	if d := st.Detection; d == nil || *d != (Detection{TokenMS: 1000, ConsensusMS: 1200, LostAfterS: 2.2}) {
		t.Errorf("detection %+v", d)
	}
	var b bytes.Buffer
	st.WriteText(&b)
	if want := "Failure detection: corosync token 1000 ms + consensus 1200 ms: a failed node is lost to the cluster about 2.2 s after it stops\n"; !strings.Contains(b.String(), want) {
		t.Errorf("status text lacks %q:\n%s", want, b.String())
	}
	r.hang["corosync-cmapctl"] = true
	t0 = time.Now()
	if st, err = ReadStatus(ctx, r); err != nil || st.Detection != nil || time.Since(t0) > 10*time.Second {
		t.Errorf("corosync-cmapctl hanging: %v, detection %+v, %v", err, st.Detection, time.Since(t0))
	}
	r.hang["crm_mon"] = true
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := ReadStatus(ctx, r); err == nil {
		t.Error("status without crm_mon's answer")
	}
}

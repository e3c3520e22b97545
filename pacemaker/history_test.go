package pacemaker

import (
	"os"
	"testing"
	"time"
)

// testdata/failover/ is real Pacemaker 2.1.5 output from the lab after
// storhaug setup (3 nodes, one VIP each): the test's own clock in
// times.txt; "crashed" was taken after n3 crashed at 21:05:54.9 UTC, was
// fenced (off) and its address 198.51.100.203 started on n1.
func TestParseOpHistory(t *testing.T) {
	b, err := os.ReadFile("testdata/failover/crashed-cib.xml")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := ParseOpHistory(b)
	if err != nil {
		t.Fatal(err)
	}
	var start *Op
	nodes := map[string]bool{}
	for i, o := range ops {
		nodes[o.Node] = true
		if o.Resource == "storhaug-vip-198.51.100.203" && o.Task == "start" {
			start = &ops[i]
		}
	}
	// The fenced node's history is erased.
	if nodes["n3"] || !nodes["n1"] || !nodes["n2"] {
		t.Errorf("history of nodes %v, want n1 and n2 only", nodes)
	}
	if start == nil {
		t.Fatal("no start of n3's address in the history")
	}
	// Between the crash (21:05:54.9) and when the test saw it on n1
	// (21:05:58.5), to the second.
	crash := time.Date(2026, 12, 1, 21, 5, 54, 0, time.UTC)
	seen := time.Date(2026, 12, 1, 21, 5, 58, 0, time.UTC)
	if start.Node != "n1" || !start.Done() || start.Interval != 0 || start.LastFail ||
		start.RCChange.Before(crash) || start.RCChange.After(seen) || start.ExecTime <= 0 || start.ExecTime > 5*time.Second {
		t.Errorf("start of 198.51.100.203: %+v", *start)
	}
	var monitors int
	for _, o := range ops {
		if o.Resource == "storhaug-vip-198.51.100.203" && o.Task == "monitor" && o.Interval == 10*time.Second {
			monitors++
		}
	}
	if monitors != 1 {
		t.Errorf("%d recurring 10 s monitors of 198.51.100.203, want 1 (on n1)", monitors)
	}
	if _, err := ParseOpHistory([]byte("<cib")); err == nil {
		t.Error("broken XML accepted")
	}
}

func TestParseFenceHistory(t *testing.T) {
	b, err := os.ReadFile("testdata/failover/crashed-fence.xml")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := ParseFenceHistory(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("events %+v", evs)
	}
	e := evs[0]
	// Fenced after the crash (21:05:54.9), before the test saw the
	// address on n1 (21:05:58.5).
	if e.Target != "n3" || e.Action != "off" || e.Status != "success" || e.Delegate != "n1" ||
		e.Completed.Before(time.Date(2026, 12, 1, 21, 5, 54, 0, time.UTC)) || e.Completed.After(time.Date(2026, 12, 1, 21, 5, 58, 500e6, time.UTC)) {
		t.Errorf("event %+v", e)
	}
	// Before any fencing.
	b, err = os.ReadFile("testdata/failover/moved-fence.xml")
	if err != nil {
		t.Fatal(err)
	}
	if evs, err := ParseFenceHistory(b); err != nil || len(evs) != 0 {
		t.Errorf("no fencing yet: %+v %v", evs, err)
	}
	for _, bad := range []string{
		`<pacemaker-result><status code="102" message="Not connected"/></pacemaker-result>`,
		`<pacemaker-result><list><fence_event target="n1" completed="yesterday"/></list></pacemaker-result>`,
		`<pacemaker-result`,
	} {
		if _, err := ParseFenceHistory([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

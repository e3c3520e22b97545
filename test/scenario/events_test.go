package scenario

import (
	"regexp"
	"testing"
	"time"
)

func TestFirstMatch(t *testing.T) {
	lines := map[string][]string{
		"n1": {
			"Dec 01 21:07:30.100 n1 pacemaker-controld  [99] (peer_update_callback) info: Node n3 state is now lost | nodeid=3",
			"Dec 01 21:07:31.500 n1 pacemaker-fenced    [97] (finalize_op) notice: Operation 'off' targeting n3 by n2 for pacemaker-controld.99@n1: OK (complete)",
		},
		"n2": {
			"Dec 01 21:07:30.050 n2 pacemaker-attrd     [96] (peer) notice: Node n3 state is now lost",
			"Dec 01 21:07:30.300 n2 pacemaker-controld  [98] (peer_update_callback) info: Node n3 state is now lost | nodeid=3",
			"garbage",
		},
		"n3": {"Dec 01 21:07:29.000 n3 pacemaker-controld  [95] (x) info: Node n3 state is now lost"},
	}
	year := 2026
	got, ok := firstMatch(lines, "n3", regexp.MustCompile(`pacemaker-controld.*Node n3 state is now lost`), nil, year)
	want := time.Date(2026, 12, 1, 21, 7, 30, 100e6, time.Local)
	if !ok || !got.Equal(want) {
		t.Errorf("lost: %v %v, want %v (the controller's line on another node, not attrd's, not the victim's own)", got, ok, want)
	}
	got, ok = firstMatch(lines, "", regexp.MustCompile(`Operation '(off|reboot)' targeting n3 by \S+ for \S+: OK`), nil, year)
	if !ok || got.Second() != 31 {
		t.Errorf("fenced: %v %v", got, ok)
	}
	mon := map[string][]string{"n1": {
		"Dec 01 21:08:00.000 n1 pacemaker-controld  [99] (log) notice: Result of monitor operation for storhaug-ganesha on n3: ok",
		"Dec 01 21:08:02.000 n1 pacemaker-controld  [99] (log) notice: Result of monitor operation for storhaug-ganesha on n3: not running",
	}}
	got, ok = firstMatch(mon, "", regexp.MustCompile(`Result of monitor operation for \S+ on n3: `), regexp.MustCompile(`on n3: (ok|OK)\b`), year)
	if !ok || got.Second() != 2 {
		t.Errorf("monitor failure: %v %v, want the line that is not ok", got, ok)
	}
	if _, ok := firstMatch(mon, "", regexp.MustCompile(`nothing`), nil, year); ok {
		t.Error("a match in nothing")
	}
}

func TestFirstMatchAfter(t *testing.T) {
	lines := map[string][]string{"n2": {
		"Dec 01 21:07:30.100 n2 pacemaker-controld  [98] (te_rsc_command) notice: Initiating stop operation vip_stop_0 on n3",
		"Dec 01 21:08:30.100 n2 pacemaker-controld  [98] (te_rsc_command) notice: Initiating stop operation vip_stop_0 on n1",
	}}
	from := time.Date(2026, 12, 1, 21, 8, 0, 0, time.Local)
	got, ok := firstMatchAfter(lines, "", regexp.MustCompile(`Initiating stop operation vip_stop_0`), nil, 2026, from)
	if !ok || got.Minute() != 8 {
		t.Errorf("%v %v: want the stop after %v", got, ok, from)
	}
}

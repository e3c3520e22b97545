package scenario

import (
	"regexp"
	"testing"
	"time"
)

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

package scenario

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/test/timeline"
)

func TestParseStacks(t *testing.T) {
	for in, want := range map[string][]string{
		"":                                {"storhaug"},
		"storhaug":                        {"storhaug"},
		"ctdb, storhaug":                  {"storhaug", "ctdb"},
		"ctdb,resource-agents,storhaug":   {"storhaug", "resource-agents", "ctdb"},
		"resource-agents,resource-agents": {"resource-agents"},
	} {
		got, err := ParseStacks(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseStacks(%q) = %v, %v; want %v (ctdb last)", in, got, err, want)
		}
	}
	if _, err := ParseStacks("storhaug,pcs"); err == nil || !strings.Contains(err.Error(), "-stacks") || !strings.Contains(err.Error(), `"pcs"`) {
		t.Errorf("unknown stack: %v, want an error naming -stacks and the stack", err)
	}
}

func TestParseTunables(t *testing.T) {
	for in, want := range map[string]string{"": "", "shipped": "", "same": "same"} {
		if got, err := ParseTunables(in); err != nil || got != want {
			t.Errorf("ParseTunables(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseTunables("fast"); err == nil || !strings.Contains(err.Error(), "-tunables") {
		t.Errorf("bad -tunables: %v", err)
	}
}

// The JSON carries "tunables":"same" when asked, and no tunables key for
// the as-shipped results.
func TestTunablesKey(t *testing.T) {
	r := BenchResult{Fault: Crash, Proto: "smb3", Stack: "ctdb", OutageS: []float64{1}, NewOpenS: []float64{1}, Locks: "kept"}
	line, err := JSONLine(BenchReport{Results: []BenchResult{r}})
	if err != nil || strings.Contains(line, "tunables") {
		t.Errorf("as shipped: %s %v: want no tunables key", line, err)
	}
	r.Tunables = "same"
	line, err = JSONLine(BenchReport{Results: []BenchResult{r}})
	if err != nil || !strings.Contains(line, `"stack":"ctdb","tunables":"same"`) {
		t.Errorf("same: %s %v", line, err)
	}
}

func TestRatios(t *testing.T) {
	res := func(stack, proto string, outage, newopen []float64) BenchResult {
		return BenchResult{Fault: Crash, Proto: proto, Stack: stack, OutageS: outage, NewOpenS: newopen}
	}
	rs := []BenchResult{
		res("storhaug", "nfs4.2", []float64{3, 4, 100}, []float64{4, 5, 6}),
		res("storhaug", "smb3", []float64{2, 2.5, 3}, []float64{9, 9, 9}),
		res("resource-agents", "nfs4.2", []float64{1, 1, 1}, []float64{90, 95, 100}),
		res("resource-agents", "smb3", []float64{25, 30}, []float64{1, 1}),
		res("ctdb", "smb3", []float64{10}, []float64{1}),
		res("ctdb", "nfs3", []float64{10}, []float64{1}), // storhaug has no nfs3 here: no ratio
	}
	got := Ratios(rs, "storhaug")
	want := []Ratio{
		{Crash, "nfs4.2", "resource-agents", "newopen_s", 5, 95, 19},
		{Crash, "smb3", "resource-agents", "outage_s", 2.5, 27.5, 11},
		{Crash, "smb3", "ctdb", "outage_s", 2.5, 10, 4},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Ratios:\n got %v\nwant %v (SMB's outage, NFS's new-open outage, medians)", got, want)
	}
	zero := Ratios([]BenchResult{res("storhaug", "smb3", []float64{0}, nil), res("ctdb", "smb3", []float64{1}, nil)}, "storhaug")
	if len(zero) != 1 || !math.IsInf(zero[0].Times, 1) {
		t.Errorf("a base of 0: %v", zero)
	}
	tab := RatioTable(got, "storhaug")
	if !strings.Contains(tab, "crash        smb3    ctdb             outage_s        2.5      10.0     4.0x") {
		t.Errorf("RatioTable:\n%s", tab)
	}
	if RatioTable(nil, "storhaug") != "" {
		t.Error("RatioTable of nothing: want nothing")
	}
}

func TestDetectFence(t *testing.T) {
	at := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	tl := &timeline.Timeline{Fault: at, Victim: "n3", Events: []timeline.Event{
		{At: at, Kind: timeline.Fault},
		{At: at.Add(1500 * time.Millisecond), Kind: timeline.MonitorFailed},
		{At: at.Add(2800 * time.Millisecond), Kind: timeline.Lost},
		{At: at.Add(4 * time.Second), Kind: timeline.Fenced},
	}}
	val := func(p *float64) float64 {
		if p == nil {
			return -1
		}
		return *p
	}
	for _, c := range []struct {
		fault         string
		detect, fence float64
	}{
		{Crash, 2.8, 4}, // the controller's "lost", not a monitor that failed first
		{Partition, 2.8, 4},
		{KillSMBD, 1.5, 4},   // the monitor failure
		{KillIPaddr3, -1, 4}, // its monitor does not fail
		{Move, -1, 4},
		{Failback, -1, -1}, // its fault is a return
	} {
		d, f := detectFence(tl, c.fault)
		if math.Abs(val(d)-c.detect) > 1e-9 || math.Abs(val(f)-c.fence) > 1e-9 {
			t.Errorf("%s: detect %v fence %v, want %v %v", c.fault, val(d), val(f), c.detect, c.fence)
		}
	}
	if d, f := detectFence(&timeline.Timeline{Fault: at}, Crash); d != nil || f != nil {
		t.Errorf("no events: %v %v, want nil", d, f)
	}
	if d, f := detectFence(nil, Crash); d != nil || f != nil {
		t.Error("no timeline: want nil")
	}
}

type smbOnly struct{ Storhaug }

func (smbOnly) Protocols() []string { return []string{"smb"} }

func TestMountsFor(t *testing.T) {
	protos := func(ms []Mount) []string {
		var p []string
		for _, m := range ms {
			p = append(p, m.Proto)
		}
		return p
	}
	if got := protos(MountsFor(NewStorhaug(""), "198.51.100.203")); !slices.Equal(got, []string{"nfs4.2", "nfs4.1", "nfs3", "smb3"}) {
		t.Errorf("storhaug: %v", got)
	}
	if got := protos(MountsFor(&smbOnly{}, "198.51.100.203")); !slices.Equal(got, []string{"smb3"}) {
		t.Errorf("an SMB-only stack: %v", got)
	}
	if got := protos(mountsFor(NewStorhaug(""), "198.51.100.203", false)); !slices.Equal(got, []string{"nfs4.2", "nfs4.1", "smb3"}) {
		t.Errorf("storhaug in a lab without NFSv3: %v", got)
	}
}

package timeline

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testdata/crash holds excerpts of a real run (go test -run
// TestKernelClientCrash ./test/kclient/, logs kept with
// STORHAUG_LAB_KEEP_LOGS): n3, owner of 198.51.100.203, lost its links and
// power at 21:04:39.170 UTC; the kernel client k1 had NFSv4.2 and SMB3
// mounts through that VIP. The machine's time zone was UTC.
var crashFault = time.Date(2026, 12, 1, 21, 4, 39, 170e6, time.UTC)

func crashDirs() map[string]string {
	m := map[string]string{}
	for _, n := range []string{"n1", "n2", "n3"} {
		m[n] = filepath.Join("testdata", "crash", "nodes", n)
	}
	return m
}

func utc(t *testing.T) {
	old := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = old })
}

func at(hms string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05.999999", "2026-12-01 "+hms)
	if err != nil {
		panic(err)
	}
	return t
}

func readCrash(t *testing.T) *Timeline {
	t.Helper()
	utc(t)
	tl, err := Read(crashDirs(), filepath.Join("testdata", "crash", "guest"), []string{"nfs4.2", "smb3", "nfs3"}, crashFault, "n3")
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

// The expected times are read off the excerpts by hand (the line each one
// comes from is named).
func TestCrashEvents(t *testing.T) {
	tl := readCrash(t)
	for _, c := range []struct {
		kind string
		node string
		at   time.Time
		in   string
	}{
		// n2's controller logged it 4 ms before n1's.
		{Lost, "n2", at("21:04:41.245"), "Node n3 state is now lost"},
		// n2's fencer heard of the result 12 ms before n1's, which did it.
		{Fenced, "n2", at("21:04:41.461"), "Operation 'off' targeting n3 by n1"},
		{VIPStarted, "n1", at("21:04:41.561"), "storhaug-vip-198.51.100.203 on n1"},
		{Tickled, "n1", at("21:04:41.557"), "5 of 5 clients tickled"},
		// ganesha_trigger's line (ms), not ganesha's own (s).
		{GraceStart, "n1", at("21:04:41.785"), `grace "5:n3" accepted`},
		{SMNotify, "n1", at("21:04:41.789"), "NFSv3 clients of 198.51.100.203 notified"},
		{TokenLost, "n1", at("21:04:40"), "A processor failed"},
		{CTDBPeerDead, "n1", at("21:04:45.198710"), "node 198.51.100.13:4379 is dead"},
		{CTDBRecovering, "n1", at("21:04:45.217709"), "Recovery has started"},
		{CTDBRecovered, "n1", at("21:04:45.621607"), "Recovery has finished"},
		// Before the fault, every node lifted its start-up grace at
		// 21:04:34: not this fault's.
		{GraceLifted, "n1", at("21:05:04"), "NOT IN GRACE"},
	} {
		e, ok := tl.First(c.kind)
		if !ok {
			t.Errorf("%s: not found", c.kind)
			continue
		}
		if !e.At.Equal(c.at) || e.Node != c.node || !strings.Contains(e.Detail, c.in) {
			t.Errorf("%s: %s %s %q, want %s %s with %q", c.kind, e.At.Format("15:04:05.000000"), e.Node, e.Detail, c.at.Format("15:04:05.000000"), c.node, c.in)
		}
	}
	if _, ok := tl.First(MonitorFailed); ok {
		t.Errorf("a monitor failure in a crash without one: %+v", tl.Events)
	}
	for _, e := range tl.Events {
		if e.At.Before(crashFault.Add(-time.Second)) {
			t.Errorf("event before the fault: %+v", e)
		}
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-6 }
	if d := tl.DetectS(); !near(d, 2.075) {
		t.Errorf("DetectS = %v, want 2.075", d)
	}
	if f := tl.FenceS(); !near(f, 2.291) {
		t.Errorf("FenceS = %v, want 2.291", f)
	}
}

// The workload's log: the last acknowledgment before the crash, the first
// after it, and the stall between, per protocol (values from the excerpts:
// nfs4.2.log and smb3.log, by hand with jq).
func TestCrashSpans(t *testing.T) {
	tl := readCrash(t)
	ns := func(n int64) time.Time { return time.Unix(0, n) }
	for _, c := range []struct {
		proto             string
		stallFrom, backAt time.Time
		newOpen           time.Time
	}{
		{"nfs4.2", ns(1796159079131412281), ns(1796159081612852793), ns(1796159081655781945)},
		{"smb3", ns(1796159079147952185), ns(1796159085649969721), ns(1796159085656562745)},
	} {
		p, ok := tl.Proto(c.proto)
		if !ok {
			t.Fatalf("%s: missing", c.proto)
		}
		var stalls []Span
		for _, s := range p.Spans {
			if !s.OK && !s.To.Before(crashFault) {
				stalls = append(stalls, s)
			}
		}
		if len(stalls) != 1 {
			t.Errorf("%s: stalls after the fault %+v, want one", c.proto, stalls)
			continue
		}
		if s := stalls[0]; !s.From.Equal(c.stallFrom) {
			t.Errorf("%s: stall from %d, want %d (the last ack before the crash)", c.proto, s.From.UnixNano(), c.stallFrom.UnixNano())
		}
		if !p.Back.Equal(c.backAt) {
			t.Errorf("%s: back at %d, want %d", c.proto, p.Back.UnixNano(), c.backAt.UnixNano())
		}
		if !p.NewOpen.Equal(c.newOpen) {
			t.Errorf("%s: new open at %d, want %d", c.proto, p.NewOpen.UnixNano(), c.newOpen.UnixNano())
		}
		if !stalls[0].To.Equal(p.Back) {
			t.Errorf("%s: stall ends at %d, the I/O is back at %d", c.proto, stalls[0].To.UnixNano(), p.Back.UnixNano())
		}
		// Spans tile the run: each begins where the previous ended.
		for i := 1; i < len(p.Spans); i++ {
			if !p.Spans[i].From.Equal(p.Spans[i-1].To) || p.Spans[i].OK == p.Spans[i-1].OK {
				t.Errorf("%s: spans %d and %d: %+v %+v", c.proto, i-1, i, p.Spans[i-1], p.Spans[i])
			}
		}
	}
	if p, _ := tl.Proto("nfs3"); len(p.Spans) != 0 || !p.Back.IsZero() {
		t.Errorf("nfs3 has no log in the excerpts, got %+v", p)
	}
}

func TestBreakdownAndSVG(t *testing.T) {
	tl := readCrash(t)
	b := tl.Breakdown()
	for _, want := range []string{
		"+0.83s~ corosync: token lost",
		"+2.08s  detection: controller lost n3",
		"+2.29s  fencing: n3 fenced",
		"+2.39s  VIP started on the new owner",
		"+6.45s  CTDB recovery finished",
		"+24.83s~ NFS-Ganesha grace lifted",
		// Until each protocol's I/O was back: detection (lost - fault),
		// fencing (fenced - lost), VIP (started - fenced), CTDB
		// (recovered - VIP started, SMB), the client's reconnect (back -
		// the last of these), by hand from the events and spans above.
		"nfs4.2     2.08s    0.22s    0.10s        -        -    0.05s     +2.44s    +2.49s",
		"smb3       2.08s    0.22s    0.10s    4.06s        -    0.03s     +6.48s    +6.49s",
		"nfs3           -        -        -        -        -        -          -         -",
	} {
		if !strings.Contains(b, want) {
			t.Errorf("breakdown lacks %q:\n%s", want, b)
		}
	}
	// The steps account for the whole outage.
	for _, p := range tl.Protos {
		if p.Back.IsZero() {
			continue
		}
		sum := 0.0
		for _, d := range tl.segments(p) {
			if !math.IsNaN(d) {
				sum += d
			}
		}
		if want := p.Back.Sub(tl.Fault).Seconds(); math.Abs(sum-want) > 1e-9 {
			t.Errorf("%s: segments add up to %v, the outage is %v", p.Name, sum, want)
		}
	}
	var svg bytes.Buffer
	if err := tl.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML, one bar segment per span in the window, a line per
	// milestone.
	d := xml.NewDecoder(bytes.NewReader(svg.Bytes()))
	rects, lines := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG: %v\n%s", err, svg.String())
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "rect":
				rects++
			case "line":
				for _, a := range se.Attr {
					if a.Name.Local == "stroke-dasharray" {
						lines++
					}
				}
			}
		}
	}
	if want := len(tl.milestones()); lines != want {
		t.Errorf("SVG: %d event lines, want %d", lines, want)
	}
	if rects < 4 {
		t.Errorf("SVG: %d rects", rects)
	}
	for _, want := range []string{"node lost (detect) +2.08s (n2)", "fenced +2.29s (n2)", "CTDB recovered +6.45s (n1)", ">nfs4.2<", ">smb3<"} {
		if !strings.Contains(svg.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if os.Getenv("TIMELINE_SVG") != "" {
		os.WriteFile(os.Getenv("TIMELINE_SVG"), svg.Bytes(), 0o644)
	}
}

// testdata/kill: ganesha.nfsd killed on n3 at 21:24:23.980 (then ctdbd at
// 21:24:49.096), excerpts of the controllers' "Result of" lines of a real
// run (storhaug setup on a 3-node lab, no clients).
func TestMonitorFailure(t *testing.T) {
	utc(t)
	dirs := map[string]string{}
	for _, n := range []string{"n1", "n2", "n3"} {
		dirs[n] = filepath.Join("testdata", "kill", "nodes", n)
	}
	fault := time.Date(2026, 12, 1, 21, 24, 23, 980e6, time.UTC)
	tl, err := Read(dirs, "", nil, fault, "n3")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range tl.Events {
		if e.Kind == MonitorFailed {
			got = append(got, e.At.Format("15:04:05.000")+" "+e.Detail[:strings.Index(e.Detail, " |")])
		}
	}
	// Not the cancellations of the monitors when the resources stop.
	want := []string{
		"21:24:25.161 Result of monitor operation for storhaug-ganesha on n3: not running",
		"21:24:56.489 Result of monitor operation for storhaug-ctdb on n3: not running",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("monitor failures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := tl.DetectS(); math.Abs(d-1.181) > 1e-6 {
		t.Errorf("DetectS = %v, want 1.181 (the monitor failure)", d)
	}
	if f := tl.FenceS(); !math.IsNaN(f) {
		t.Errorf("FenceS = %v, want NaN (nothing fenced)", f)
	}
	// The VIP restarted where it was.
	if e, ok := tl.First(VIPStarted); !ok || e.Node != "n3" || !e.At.Equal(at("21:24:37.157")) {
		t.Errorf("VIP started: %+v %v, want n3 at 21:24:37.157", e, ok)
	}
	// n1's "promoted" result of the promotable CTDB clone's monitor is no
	// failure.
	tl, err = Read(dirs, "", nil, time.Date(2026, 12, 1, 21, 24, 0, 0, time.UTC), "n1")
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := tl.First(MonitorFailed); ok {
		t.Errorf("a monitor failure on n1: %+v", e)
	}
}

// A stamp without a year takes the fault's, or the year before's across
// New Year.
func TestYearless(t *testing.T) {
	utc(t)
	p := parser{fault: time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC)}
	got, ok := p.yearless("Jan 02 15:04:05.000", "Dec 31 23:59:59.500")
	if want := time.Date(2026, 12, 31, 23, 59, 59, 500e6, time.UTC); !ok || !got.Equal(want) {
		t.Errorf("across New Year: %v, want %v", got, want)
	}
	got, _ = p.yearless("Jan 02 15:04:05.000", "Jan 01 00:00:03.000")
	if want := time.Date(2027, 1, 1, 0, 0, 3, 0, time.UTC); !got.Equal(want) {
		t.Errorf("%v, want %v", got, want)
	}
}

// The second make demo run on a loaded machine (times from its output):
// ganesha_trigger put n1 in grace only at +11.21s, after CTDB had declared
// n3 dead (+6.15s); SMB was back at +8.84s, after CTDB's recovery began
// (+6.50s) and before ctdbd logged its end (+8.92s).
func TestBreakdownLoaded(t *testing.T) {
	f := crashFault
	at := func(s float64) time.Time { return f.Add(time.Duration(s * float64(time.Second))) }
	tl := &Timeline{Fault: f, Victim: "n3", Events: []Event{
		{at(0), "n3", Fault, ""},
		{at(2.50), "n1", Lost, "Node n3 state is now lost"},
		{at(4.13), "n1", Fenced, "Operation 'off' targeting n3 by n1"},
		{at(6.04), "n1", VIPStarted, "Result of start operation"},
		{at(6.15), "n1", CTDBPeerDead, "node 198.51.100.13:4379 is dead"},
		{at(6.50), "n1", CTDBRecovering, "Recovery has started"},
		{at(8.92), "n1", CTDBRecovered, "Recovery has finished"},
		{at(11.21), "n1", GraceStart, `ganesha_trigger(x)[1]: INFO: grace "5:n3" accepted by ganesha in 1ms`},
	}, Protos: []Proto{{Name: "smb3", Back: at(8.84), NewOpen: at(8.79)}, {Name: "nfs3", Back: at(6.18), NewOpen: at(6.57)}}}
	b := tl.Breakdown()
	if i, j := strings.Index(b, "CTDB: n3 dead"), strings.Index(b, "NFS-Ganesha in grace"); i < 0 || j < 0 || i > j {
		t.Errorf("steps not in time order:\n%s", b)
	}
	for _, want := range []string{
		// detect 2.50, fence 4.13-2.50, VIP 6.04-4.13, CTDB from 6.04 until
		// the I/O was back at 8.84 (the recovery had begun), no reconnect.
		"smb3       2.50s    1.63s    1.91s    2.80s        -    0.00s     +8.84s    +8.79s",
		"nfs3       2.50s    1.63s    1.91s        -        -    0.14s     +6.18s    +6.57s",
	} {
		if !strings.Contains(b, want) {
			t.Errorf("breakdown lacks %q:\n%s", want, b)
		}
	}
}

// The crash's excerpts name only the victim lost and fenced; a node that
// loses another (a false failover, or a partitioned victim seeing the
// others go) is a bystander event, logged under the node that saw it.
func TestBystanders(t *testing.T) {
	tl := readCrash(t)
	for _, e := range tl.Events {
		if e.Kind == BystanderLost || e.Kind == BystanderFenced {
			t.Errorf("bystander event in a plain crash: %+v", e)
		}
	}
	utc(t)
	dir := t.TempDir()
	write := func(node, text string) {
		p := filepath.Join(dir, node, "pacemaker", "pacemaker.log")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("n1", "Dec 01 21:04:41.249 n1 pacemaker-controld  [28] (update_peer_state_iter) \tnotice: Node n2 state is now lost | nodeid=2 previous=member source=pcmk__reap_unseen_nodes\n"+
		"Dec 01 21:04:42.473 n1 pacemaker-fenced    [24] (finalize_op) \tnotice: Operation 'reboot' targeting n2 by n1 for pacemaker-controld.29@n1: OK (complete) | id=8b9f364a\n")
	write("n3", "Dec 01 21:04:41.300 n3 pacemaker-controld  [28] (update_peer_state_iter) \tnotice: Node n1 state is now lost | nodeid=1 previous=member source=pcmk__reap_unseen_nodes\n")
	tl, err := Read(map[string]string{"n1": filepath.Join(dir, "n1"), "n3": filepath.Join(dir, "n3")}, "", nil, crashFault, "n3")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range tl.Events {
		if e.Kind != Fault {
			got = append(got, e.Kind+" "+e.Node+" "+e.At.Format("15:04:05.000"))
		}
	}
	want := []string{"bystander-lost n1 21:04:41.249", "bystander-lost n3 21:04:41.300", "bystander-fenced n1 21:04:42.473"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !math.IsNaN(tl.DetectS()) || !math.IsNaN(tl.FenceS()) {
		t.Errorf("a bystander's loss counted as the victim's: detect %v fence %v", tl.DetectS(), tl.FenceS())
	}
}

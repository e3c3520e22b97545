// Package timeline reconstructs one fault of the lab from logs: when the
// cluster saw the victim go, fenced it, started its address elsewhere,
// recovered CTDB, put NFS-Ganesha in grace and lifted it, notified NFSv3
// clients and tickled TCP clients, and, per protocol, when the kernel
// client's I/O (test/workload's log) was flowing or stalled.
//
// Sources and their clocks (every node and the user-mode-linux guests share
// the host's clock):
//
//	pacemaker/pacemaker.log  "Dec 01 21:04:41.249"            local time, ms, no year
//	corosync/corosync.log    "Dec 01 21:04:40"                local time, s, no year
//	ctdb/log.ctdb            "2026-12-01T21:04:45.217709+00:00" RFC 3339, µs, with offset
//	ganesha/ganesha.log      "01/12/2026 21:04:41"            local time, s
//	<guest>/<proto>.log      test/workload's JSON lines       Unix ns
//
// A year-less stamp takes the fault's year (the year before when that would
// put it more than half a year after the fault). Events logged with
// seconds only carry that coarseness: such a stamp can be up to 1 s early.
// The storhaug agents' own messages (IPaddr3's tickles, ganesha_trigger's
// grace and SM_NOTIFY) are read from pacemaker-execd's copy of the agent's
// output (ms, stamped when the operation's output was read, i.e. at most the
// operation's run time late).
package timeline

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/storhaug/storhaug/test/lab"
)

// Kinds of Event.
const (
	Fault         = "fault"          // the fault was injected (Collect's argument)
	TokenLost     = "token-lost"     // corosync: a processor failed (token timed out)
	Lost          = "lost"           // Pacemaker's controller: the victim's state is now lost (detect_s)
	MonitorFailed = "monitor-failed" // a recurring monitor on the victim failed (daemon kills: detect_s)
	Fenced        = "fenced"         // the fencer confirmed the victim's fencing (fence_s)
	// A node other than the victim lost (its controller's view: logged
	// by the node that saw it) or fenced: a false failover, unless the
	// victim's own log says so (a partitioned victim sees the others go).
	BystanderLost   = "bystander-lost"
	BystanderFenced = "bystander-fenced"
	VIPStarted      = "vip-started"     // a VIP's start returned ok (Pacemaker's controller)
	Tickled         = "tickled"         // IPaddr3 sent tickle ACKs to the address's clients
	GraceStart      = "grace-start"     // NFS-Ganesha entered grace (ganesha_trigger, else ganesha's log)
	GraceLifted     = "grace-lifted"    // NFS-Ganesha left grace
	SMNotify        = "sm-notify"       // ganesha_trigger notified the NFSv3 clients (SM_NOTIFY)
	CTDBPeerDead    = "ctdb-peer-dead"  // CTDB declared the victim dead (dropped after its fencing, or by keepalives)
	CTDBRecovering  = "ctdb-recovering" // CTDB's recovery started
	CTDBRecovered   = "ctdb-recovered"  // CTDB's recovery finished
)

// Event is one thing the cluster did, from one node's log.
type Event struct {
	At     time.Time
	Node   string // whose log says so
	Kind   string
	Detail string // the log line (or what it says, shortened)
}

// Span is an interval of one protocol's I/O on an already open file: OK
// while acknowledgments follow each other within StallAfter, stalled from
// the last acknowledgment to the next one after a longer gap.
type Span struct {
	From, To time.Time
	OK       bool
}

// Proto is what one protocol's client lived through.
type Proto struct {
	Name  string
	Spans []Span
	// Back is when the first I/O on an already open file begun at or after
	// the fault returned (zero: never); NewOpen the same for a new file
	// opened and locked (the workload check's outage_s and newopen_s).
	Back, NewOpen time.Time
	Errors        []time.Time // the workload's errors (any operation)
}

// StallAfter is the gap between acknowledgments that counts as a stall
// (test/workload's own threshold for one operation).
const StallAfter = time.Second

// Timeline is one fault, as the logs tell it.
type Timeline struct {
	Fault  time.Time
	Victim string
	Events []Event // sorted by time; only those at or after the fault (1 s earlier for stamps in seconds)
	Protos []Proto // in the order asked for
}

// horizon bounds what is read after the fault.
const horizon = 10 * time.Minute

// Collect reads the logs of every node of l and the workload logs
// (<proto>.log) of guest g (nil: none) and returns the timeline of the fault
// injected at fault on victim (a node name).
func Collect(l *lab.Lab, g *lab.Guest, protos []string, fault time.Time, victim string) (*Timeline, error) {
	nodes := map[string]string{}
	for _, n := range l.Nodes() {
		nodes[n.Name()] = n.LogDir()
	}
	guest := ""
	if g != nil {
		guest = g.Dir()
	}
	return Read(nodes, guest, protos, fault, victim)
}

// Read is Collect from directories: nodes maps a node's name to its
// /var/log (as the lab keeps it, or as lab.KeepLogsEnv copies it), guest is
// the directory holding the workload logs ("" or a missing log: that
// protocol has no spans).
func Read(nodes map[string]string, guest string, protos []string, fault time.Time, victim string) (*Timeline, error) {
	if fault.IsZero() {
		return nil, errors.New("timeline: no fault time")
	}
	t := &Timeline{Fault: fault, Victim: victim}
	t.Events = append(t.Events, Event{At: fault, Node: victim, Kind: Fault, Detail: "fault injected on " + victim})
	p := parser{fault: fault, victim: victim}
	names := make([]string, 0, len(nodes))
	for n := range nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		dir := nodes[n]
		for _, src := range []struct {
			rel   string
			parse func(node string, b []byte) []Event
		}{
			{"pacemaker/pacemaker.log", p.pacemaker},
			{"corosync/corosync.log", p.corosync},
			{"ctdb/log.ctdb", p.ctdb},
			{"ganesha/ganesha.log", p.ganesha},
		} {
			b, err := os.ReadFile(filepath.Join(dir, src.rel))
			if err != nil {
				if !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
				continue
			}
			t.Events = append(t.Events, src.parse(n, b)...)
		}
	}
	t.Events = preferPrecise(t.Events)
	sort.SliceStable(t.Events, func(i, j int) bool { return t.Events[i].At.Before(t.Events[j].At) })
	for _, name := range protos {
		pr := Proto{Name: name}
		if guest != "" {
			b, err := os.ReadFile(filepath.Join(guest, name+".log"))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			if err == nil {
				pr = workload(name, b, fault)
			}
		}
		t.Protos = append(t.Protos, pr)
	}
	return t, errors.Join(errs...)
}

// preferPrecise drops grace starts read from ganesha's log (seconds) when
// ganesha_trigger logged the same on the same node (milliseconds).
func preferPrecise(evs []Event) []Event {
	trig := map[string]bool{}
	for _, e := range evs {
		if e.Kind == GraceStart && strings.HasPrefix(e.Detail, "ganesha_trigger") {
			trig[e.Node] = true
		}
	}
	out := evs[:0]
	for _, e := range evs {
		if e.Kind == GraceStart && trig[e.Node] && !strings.HasPrefix(e.Detail, "ganesha_trigger") {
			continue
		}
		out = append(out, e)
	}
	return out
}

// First is the earliest event of kind (zero Event and false: none).
func (t *Timeline) First(kind string) (Event, bool) {
	for _, e := range t.Events {
		if e.Kind == kind {
			return e, true
		}
	}
	return Event{}, false
}

// firstAfter is the earliest event of kind at or after at.
func (t *Timeline) firstAfter(kind string, at time.Time) (Event, bool) {
	for _, e := range t.Events {
		if e.Kind == kind && !e.At.Before(at) {
			return e, true
		}
	}
	return Event{}, false
}

// Since is the time from the fault to the first event of kind, in seconds
// (NaN: no such event).
func (t *Timeline) Since(kind string) float64 {
	e, ok := t.First(kind)
	if !ok {
		return math.NaN()
	}
	return e.At.Sub(t.Fault).Seconds()
}

// DetectS is the bench's detect_s: seconds from the fault to Pacemaker's
// controller logging the victim lost, or to the first failed monitor on the
// victim, whichever came first (NaN: neither).
func (t *Timeline) DetectS() float64 {
	a, b := t.Since(Lost), t.Since(MonitorFailed)
	switch {
	case math.IsNaN(a):
		return b
	case math.IsNaN(b):
		return a
	}
	return math.Min(a, b)
}

// FenceS is the bench's fence_s: seconds from the fault to the fencer's
// confirmation that the victim was fenced (NaN: never fenced).
func (t *Timeline) FenceS() float64 { return t.Since(Fenced) }

// Proto returns the named protocol's record.
func (t *Timeline) Proto(name string) (Proto, bool) {
	for _, p := range t.Protos {
		if p.Name == name {
			return p, true
		}
	}
	return Proto{}, false
}

func fmtS(d float64) string {
	if math.IsNaN(d) {
		return "-"
	}
	return fmt.Sprintf("%+.2fs", d)
}

// Breakdown is where the time went, for a person: the cluster's steps
// after the fault, then per protocol its stall and what it waited for.
func (t *Timeline) Breakdown() string {
	var b strings.Builder
	rel := func(at time.Time) float64 { return at.Sub(t.Fault).Seconds() }
	// The steps in the order they happened; those not in the logs last.
	type row struct {
		e     Event
		ok    bool
		label string
	}
	var rows []row
	add := func(label string, e Event, ok bool) { rows = append(rows, row{e, ok, label}) }
	step := func(label, kind string) {
		e, ok := t.First(kind)
		add(label, e, ok)
	}
	fmt.Fprintf(&b, "cluster (seconds after the fault on %s, from the nodes' logs):\n", t.Victim)
	step("corosync: token lost", TokenLost)
	if _, ok := t.First(MonitorFailed); ok {
		step("monitor failed", MonitorFailed)
	}
	step("detection: controller lost "+t.Victim, Lost)
	step("fencing: "+t.Victim+" fenced", Fenced)
	step("VIP started on the new owner", VIPStarted)
	step("tickle ACKs sent", Tickled)
	step("NFS-Ganesha in grace", GraceStart)
	step("SM_NOTIFY to NFSv3 clients", SMNotify)
	step("CTDB: "+t.Victim+" dead", CTDBPeerDead)
	step("CTDB recovery started", CTDBRecovering)
	step("CTDB recovery finished", CTDBRecovered)
	if g, ok := t.First(GraceStart); ok {
		e, ok := t.firstAfter(GraceLifted, g.At.Truncate(time.Second))
		add("NFS-Ganesha grace lifted", e, ok)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		return rows[i].ok && (!rows[j].ok || rows[i].e.At.Before(rows[j].e.At))
	})
	for _, r := range rows {
		if r.ok {
			fmt.Fprintf(&b, "  %7s%s %-34s %s\n", fmtS(rel(r.e.At)), mark(r.e), r.label, r.e.Node+": "+short(r.e.Detail))
		} else {
			fmt.Fprintf(&b, "  %7s  %-34s (not in the logs)\n", fmtS(math.NaN()), r.label)
		}
	}
	fmt.Fprintf(&b, "  (~: the log stamps whole seconds; the event came up to 1 s later)\n")
	if len(t.Protos) == 0 {
		return b.String()
	}
	fmt.Fprintf(&b, "clients (from the workloads' logs): until the I/O on an open file was back, the time went to\n")
	fmt.Fprintf(&b, "  %-7s %8s %8s %8s %8s %8s %9s %9s %9s\n", "proto", "detect", "fence", "VIP", "CTDB", "grace", "reconnect", "I/O back", "new open")
	for _, p := range t.Protos {
		open := math.NaN()
		if !p.NewOpen.IsZero() {
			open = rel(p.NewOpen)
		}
		segs := []float64{math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()}
		back := math.NaN()
		if !p.Back.IsZero() {
			segs, back = t.segments(p), rel(p.Back)
		}
		fmt.Fprintf(&b, "  %-7s", p.Name)
		for _, d := range segs {
			if math.IsNaN(d) {
				fmt.Fprintf(&b, " %8s", "-")
			} else {
				fmt.Fprintf(&b, " %7.2fs", d)
			}
		}
		fmt.Fprintf(&b, "  %9s %9s\n", fmtS(back), fmtS(open))
	}
	return b.String()
}

// segments splits the time from the fault until p's I/O was back into the
// steps it waited for, in order: detection (the controller's lost line, or a
// failed monitor), fencing, the VIP's start, CTDB's recovery (SMB) or the
// end of grace (NFS) when the I/O came back only after it (for CTDB: after
// its recovery began), and the client's
// own reconnect (the rest). A step that did not happen, or came after the
// I/O was back, is NaN. The segments add up to the outage.
func (t *Timeline) segments(p Proto) []float64 {
	detect, ok := t.First(Lost)
	if m, okm := t.First(MonitorFailed); okm && (!ok || m.At.Before(detect.At)) {
		detect, ok = m, true
	}
	steps := []struct {
		e  Event
		ok bool
	}{{detect, ok}}
	for _, k := range []string{Fenced, VIPStarted} {
		e, ok := t.First(k)
		steps = append(steps, struct {
			e  Event
			ok bool
		}{e, ok})
	}
	// SMB waits for CTDB from its recovery's start: until the recovery
	// finished, or until the I/O was back if it came back first (smbd
	// goes on once the databases are thawed, a moment before ctdbd logs
	// the end).
	ctdb, okc := t.First(CTDBRecovered)
	if r, ok := t.First(CTDBRecovering); ok && r.At.Before(p.Back) && (!okc || ctdb.At.After(p.Back)) {
		ctdb, okc = Event{At: p.Back, Kind: CTDBRecovered}, true
	}
	var grace Event
	okg := false
	if g, ok := t.First(GraceStart); ok {
		grace, okg = t.firstAfter(GraceLifted, g.At.Truncate(time.Second))
	}
	if strings.HasPrefix(p.Name, "smb") {
		okg = false
	} else {
		okc = false
	}
	steps = append(steps, struct {
		e  Event
		ok bool
	}{ctdb, okc}, struct {
		e  Event
		ok bool
	}{grace, okg})
	out := make([]float64, 0, len(steps)+1)
	prev := t.Fault
	for _, s := range steps {
		if !s.ok || s.e.At.Before(prev) || s.e.At.After(p.Back) {
			out = append(out, math.NaN())
			continue
		}
		out = append(out, s.e.At.Sub(prev).Seconds())
		prev = s.e.At
	}
	return append(out, p.Back.Sub(prev).Seconds())
}

// Coarse says whether e's stamp is in whole seconds (corosync's and
// ganesha's logs): the event happened up to 1 s after e.At.
func Coarse(e Event) bool {
	switch e.Kind {
	case TokenLost:
		return true
	case GraceStart, GraceLifted:
		return !strings.HasPrefix(e.Detail, "ganesha_trigger")
	}
	return false
}

func mark(e Event) string {
	if Coarse(e) {
		return "~"
	}
	return " "
}

func short(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 90 {
		s = s[:87] + "..."
	}
	return s
}

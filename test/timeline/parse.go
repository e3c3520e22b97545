package timeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"time"
)

// parser turns log lines into events of one fault.
type parser struct {
	fault  time.Time
	victim string
}

// keep says whether a stamp belongs to the fault: at or after it (a stamp
// of coarseness prec may be up to prec early) and within the horizon.
func (p parser) keep(at time.Time, prec time.Duration) bool {
	return !at.Before(p.fault.Add(-prec)) && at.Before(p.fault.Add(horizon))
}

// yearless completes a stamp without a year with the fault's year (or the
// year before, for a December stamp read after a January fault).
func (p parser) yearless(layout, stamp string) (time.Time, bool) {
	t, err := time.ParseInLocation(layout, stamp, time.Local)
	if err != nil {
		return time.Time{}, false
	}
	t = t.AddDate(p.fault.Year()-t.Year(), 0, 0)
	if t.Sub(p.fault) > 183*24*time.Hour {
		t = t.AddDate(-1, 0, 0)
	}
	return t, true
}

// wanted is a cheap test before a line's regular expression: whether it
// holds one of the markers.
func wanted(line string, markers ...string) bool {
	for _, m := range markers {
		if strings.Contains(line, m) {
			return true
		}
	}
	return false
}

func lines(b []byte, fn func(string)) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fn(sc.Text())
	}
}

// pacemaker.log: "Dec 01 21:04:41.249 n1 pacemaker-controld  [28] (fn) \tnotice: message"
var pcmkLine = regexp.MustCompile(`^(\w{3} \d{2} \d{2}:\d{2}:\d{2}\.\d{3}) (\S+) (pacemaker-\w+)\s+\[\d+\] \(\w+\)\s+\w+: (.*)$`)

var (
	pcmkLost     = regexp.MustCompile(`^Node (\S+) state is now lost`)
	pcmkFenced   = regexp.MustCompile(`^Operation '(\w+)' targeting (\S+) by (\S+) for \S+: OK`)
	pcmkResult   = regexp.MustCompile(`^Result of (start|monitor) operation for (\S+) on (\S+): ([^|]*?)\s*(\|.*)?$`)
	pcmkKey      = regexp.MustCompile(`key=(\S+)_monitor_(\d+) rc=(\d+)`)
	pcmkOutput   = regexp.MustCompile(`^\S+\[\d+\] error output \[ (.*) \]$`)
	agentTickled = regexp.MustCompile(`^IPaddr\d?\(\S+\)\[\d+\]: \w+: tickle: round \d+ for \S+: \d+ of \d+ clients tickled`)
	agentGrace   = regexp.MustCompile(`^ganesha_trigger\(\S+\)\[\d+\]: \w+: grace "[^"]*" accepted by ganesha`)
	agentNotify  = regexp.MustCompile(`^ganesha_trigger\(\S+\)\[\d+\]: \w+: NFSv3 clients of \S+ notified`)
)

// vipResource says whether a resource id names a VIP: storhaug's
// storhaug-vip-<address> (not its -trigger), or any id with "vip" or
// "ipaddr" in it (anchor stacks).
func vipResource(id string) bool {
	if strings.HasSuffix(id, "-trigger") {
		return false
	}
	l := strings.ToLower(id)
	return strings.Contains(l, "vip") || strings.Contains(l, "ipaddr")
}

func (p parser) pacemaker(node string, b []byte) []Event {
	var evs []Event
	lines(b, func(line string) {
		if !wanted(line, "state is now lost", "' targeting ", "Result of ", "error output [") {
			return
		}
		m := pcmkLine.FindStringSubmatch(line)
		if m == nil {
			return
		}
		at, ok := p.yearless("Jan 02 15:04:05.000", m[1])
		if !ok || !p.keep(at, time.Millisecond) {
			return
		}
		daemon, msg := m[3], m[4]
		add := func(kind string) { evs = append(evs, Event{At: at, Node: node, Kind: kind, Detail: msg}) }
		switch daemon {
		case "pacemaker-controld":
			if l := pcmkLost.FindStringSubmatch(msg); l != nil {
				if l[1] == p.victim {
					add(Lost)
				} else {
					add(BystanderLost)
				}
			}
			r := pcmkResult.FindStringSubmatch(msg)
			if r == nil {
				return
			}
			switch {
			case r[1] == "start" && r[4] == "ok" && vipResource(r[2]):
				add(VIPStarted)
			case r[1] == "monitor" && r[3] == p.victim:
				// Recurring monitors only (probes are _monitor_0), and
				// a result that is a failure: not 0 (ok), not 8
				// (promoted), and not a cancellation.
				k := pcmkKey.FindStringSubmatch(msg)
				if k == nil || k[2] == "0" || k[3] == "0" || k[3] == "8" || r[4] == "Cancelled" {
					return
				}
				add(MonitorFailed)
			}
		case "pacemaker-fenced":
			if f := pcmkFenced.FindStringSubmatch(msg); f != nil {
				if f[2] == p.victim {
					add(Fenced)
				} else {
					add(BystanderFenced)
				}
			}
		case "pacemaker-execd":
			o := pcmkOutput.FindStringSubmatch(msg)
			if o == nil {
				return
			}
			out := o[1]
			detail := func(kind string) { evs = append(evs, Event{At: at, Node: node, Kind: kind, Detail: out}) }
			switch {
			case agentTickled.MatchString(out):
				detail(Tickled)
			case agentGrace.MatchString(out):
				detail(GraceStart)
			case agentNotify.MatchString(out):
				detail(SMNotify)
			}
		}
	})
	return evs
}

// corosync.log: "Dec 01 21:04:40 [9] n1 corosync notice  [TOTEM ] message"
var corosyncLine = regexp.MustCompile(`^(\w{3} \d{2} \d{2}:\d{2}:\d{2}) \[\d+\] \S+ corosync \w+\s+\[\w+\s*\] (.*)$`)

func (p parser) corosync(node string, b []byte) []Event {
	var evs []Event
	lines(b, func(line string) {
		if !strings.Contains(line, "A processor failed") {
			return
		}
		m := corosyncLine.FindStringSubmatch(line)
		if m == nil || !strings.HasPrefix(m[2], "A processor failed") {
			return
		}
		if at, ok := p.yearless("Jan 02 15:04:05", m[1]); ok && p.keep(at, time.Second) {
			evs = append(evs, Event{At: at, Node: node, Kind: TokenLost, Detail: m[2]})
		}
	})
	return evs
}

// log.ctdb: "2026-12-01T21:04:45.217709+00:00 n1 ctdbd[168]: message"
var ctdbLine = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}T\S+) \S+ ([\w-]+)\[\d+\]: (.*)$`)

var ctdbDead = regexp.MustCompile(`^\S+: node (\S+) is dead`)

func (p parser) ctdb(node string, b []byte) []Event {
	var evs []Event
	lines(b, func(line string) {
		if !wanted(line, "Recovery has ", " is dead") {
			return
		}
		m := ctdbLine.FindStringSubmatch(line)
		if m == nil {
			return
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil || !p.keep(at, time.Microsecond) {
			return
		}
		kind := ""
		switch msg := m[3]; {
		case m[2] == "ctdbd" && msg == "Recovery has started":
			kind = CTDBRecovering
		case m[2] == "ctdbd" && msg == "Recovery has finished":
			kind = CTDBRecovered
		case m[2] == "ctdbd" && ctdbDead.MatchString(msg):
			kind = CTDBPeerDead
		default:
			return
		}
		evs = append(evs, Event{At: at.Local(), Node: node, Kind: kind, Detail: m[3]})
	})
	return evs
}

// ganesha.log: "01/12/2026 21:04:41 : epoch 6b0f364e : n1 : ganesha.nfsd-155[reaper] fn :STATE :EVENT :message"
var ganeshaLine = regexp.MustCompile(`^(\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}) : epoch \S+ : \S+ : \S+ \S+ :\w+ :\w+ :(.*)$`)

func (p parser) ganesha(node string, b []byte) []Event {
	var evs []Event
	lines(b, func(line string) {
		if !strings.Contains(line, "IN GRACE") {
			return
		}
		m := ganeshaLine.FindStringSubmatch(line)
		if m == nil {
			return
		}
		kind := ""
		switch {
		case strings.HasPrefix(m[2], "NFS Server Now IN GRACE"):
			kind = GraceStart
		case strings.HasPrefix(m[2], "NFS Server Now NOT IN GRACE"):
			kind = GraceLifted
		default:
			return
		}
		at, err := time.ParseInLocation("02/01/2006 15:04:05", m[1], time.Local)
		if err != nil || !p.keep(at, time.Second) {
			return
		}
		evs = append(evs, Event{At: at, Node: node, Kind: kind, Detail: m[2]})
	})
	return evs
}

// wlEvent is a line of test/workload's log (its Event type).
type wlEvent struct {
	Ev    string `json:"ev"`
	File  string `json:"file"`
	Start int64  `json:"start"`
	End   int64  `json:"end"`
}

// workload reads a test/workload log: the spans of the I/O on the open
// data file, when I/O and new opens came back after the fault, the errors.
func workload(name string, b []byte, fault time.Time) Proto {
	pr := Proto{Name: name}
	var oks []wlEvent
	f := fault.UnixNano()
	back, open := int64(-1), int64(-1)
	lines(b, func(line string) {
		var e wlEvent
		if json.Unmarshal([]byte(line), &e) != nil {
			return // a line cut short by a kill
		}
		switch e.Ev {
		case "ack", "io":
			if e.Ev == "ack" && e.File != "data" {
				return // a new file's record: counted as newopen
			}
			oks = append(oks, e)
			if e.Start >= f && (back < 0 || e.End < back) {
				back = e.End
			}
		case "newopen":
			if e.Start >= f && (open < 0 || e.End < open) {
				open = e.End
			}
		case "error":
			pr.Errors = append(pr.Errors, time.Unix(0, e.End))
		}
	})
	if back >= 0 {
		pr.Back = time.Unix(0, back)
	}
	if open >= 0 {
		pr.NewOpen = time.Unix(0, open)
	}
	sort.Slice(oks, func(i, j int) bool { return oks[i].End < oks[j].End })
	for i, e := range oks {
		end := time.Unix(0, e.End)
		if i == 0 {
			pr.Spans = append(pr.Spans, Span{From: time.Unix(0, e.Start), To: end, OK: true})
			continue
		}
		last := &pr.Spans[len(pr.Spans)-1]
		if end.Sub(last.To) <= StallAfter {
			if last.OK {
				last.To = end
			} else {
				pr.Spans = append(pr.Spans, Span{From: last.To, To: end, OK: true})
			}
			continue
		}
		pr.Spans = append(pr.Spans, Span{From: last.To, To: end, OK: false})
	}
	sort.Slice(pr.Errors, func(i, j int) bool { return pr.Errors[i].Before(pr.Errors[j]) })
	return pr
}

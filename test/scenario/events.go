package scenario

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/storhaug/storhaug/test/lab"
)

// logMark is where each node's pacemaker.log ended before the fault.
type logMark struct {
	l    *lab.Lab
	mark map[string]int64
	year int
}

func pcmkLog(n *lab.Node) string { return filepath.Join(n.LogDir(), "pacemaker", "pacemaker.log") }

func markLogs(l *lab.Lab) *logMark {
	m := &logMark{l: l, mark: map[string]int64{}, year: time.Now().Year()}
	for _, n := range l.Nodes() {
		if st, err := os.Stat(pcmkLog(n)); err == nil {
			m.mark[n.Name()] = st.Size()
		}
	}
	return m
}

// lines returns, per node, what its pacemaker.log gained since the mark.
func (m *logMark) lines() map[string][]string {
	out := map[string][]string{}
	for _, n := range m.l.Nodes() {
		b, err := os.ReadFile(pcmkLog(n))
		if err != nil || int64(len(b)) < m.mark[n.Name()] {
			continue
		}
		out[n.Name()] = strings.Split(string(b[m.mark[n.Name()]:]), "\n")
	}
	return out
}

// firstMatchAfter is the earliest stamp of a line (on nodes other than
// skip) that matches re and not except, among the lines stamped at or after
// from (to the millisecond). Pacemaker's stamps are "Dec 01 18:13:41.258",
// local time.
func firstMatchAfter(lines map[string][]string, skip string, re, except *regexp.Regexp, year int, from time.Time) (time.Time, bool) {
	from = from.Truncate(time.Millisecond)
	var best time.Time
	for node, ls := range lines {
		if node == skip {
			continue
		}
		for _, line := range ls {
			if len(line) < 19 || !re.MatchString(line) || (except != nil && except.MatchString(line)) {
				continue
			}
			ts, err := time.ParseInLocation("Jan 02 15:04:05.000", line[:19], time.Local)
			if err != nil {
				continue
			}
			ts = ts.AddDate(year, 0, 0)
			if ts.Before(from) {
				continue
			}
			if best.IsZero() || ts.Before(best) {
				best = ts
			}
		}
	}
	return best, !best.IsZero()
}

// stopStarted is when the cluster began to stop resource id (its stop
// operation initiated, on any node) at or after from.
func stopStarted(m *logMark, id string, from time.Time) (time.Time, bool) {
	re := regexp.MustCompile(`Initiating stop operation ` + regexp.QuoteMeta(id) + `_stop_0`)
	return firstMatchAfter(m.lines(), "", re, nil, m.year, from)
}

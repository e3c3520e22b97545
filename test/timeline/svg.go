package timeline

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// milestones are the events drawn and listed: the first of each kind (the
// grace lift: the first after grace began), in time order.
func (t *Timeline) milestones() []Event {
	var out []Event
	for _, k := range []string{Fault, TokenLost, Lost, MonitorFailed, Fenced, VIPStarted, Tickled, GraceStart, SMNotify, CTDBPeerDead, CTDBRecovering, CTDBRecovered} {
		if e, ok := t.First(k); ok {
			out = append(out, e)
		}
	}
	if g, ok := t.First(GraceStart); ok {
		if e, ok := t.firstAfter(GraceLifted, g.At.Truncate(time.Second)); ok {
			out = append(out, e)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].At.Before(out[j-1].At); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

var labels = map[string]string{
	Fault: "fault", TokenLost: "token lost", Lost: "node lost (detect)", MonitorFailed: "monitor failed",
	Fenced: "fenced", VIPStarted: "VIP started", Tickled: "tickles", GraceStart: "grace",
	SMNotify: "SM_NOTIFY", CTDBPeerDead: "CTDB: peer dead", CTDBRecovering: "CTDB recovery",
	CTDBRecovered: "CTDB recovered", GraceLifted: "grace lifted",
}

// WriteSVG draws the timeline: per protocol a bar, green while its I/O
// flowed and red while it stalled, with the workload's errors as ticks and
// the first new open after the fault as a diamond; the cluster's events as
// vertical lines, labelled above. Time runs left to right in seconds from
// the fault. Plain SVG 1.1, no scripts, no external resources.
func (t *Timeline) WriteSVG(w io.Writer) error {
	ms := t.milestones()
	from, to := -3.0, 5.0
	rel := func(at time.Time) float64 { return at.Sub(t.Fault).Seconds() }
	for _, e := range ms {
		to = math.Max(to, rel(e.At)+2)
	}
	for _, p := range t.Protos {
		for _, at := range []time.Time{p.Back, p.NewOpen} {
			if !at.IsZero() {
				to = math.Max(to, rel(at)+2)
			}
		}
	}
	to = math.Ceil(to)
	const (
		left, right = 70.0, 30.0
		width       = 960.0
		rowH, barH  = 34.0, 18.0
		labelH      = 15.0
	)
	top := 30 + labelH*float64(len(ms))
	height := top + rowH*float64(len(t.Protos)) + 50
	x := func(s float64) float64 {
		s = math.Max(from, math.Min(to, s))
		return left + (s-from)/(to-from)*(width-left-right)
	}
	bw := bufio.NewWriter(w)
	pf := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	pf(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	pf(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	pf(`<text x="%.0f" y="18" font-size="13" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(fmt.Sprintf("fault on %s at %s: client I/O per protocol and the cluster's steps (seconds after the fault)", t.Victim, t.Fault.Format("15:04:05.000"))))
	// Axis and grid.
	axisY := top + rowH*float64(len(t.Protos)) + 8
	step := 1.0
	if to-from > 30 {
		step = 5
	}
	if to-from > 120 {
		step = 30
	}
	for s := math.Ceil(from/step) * step; s <= to; s += step {
		pf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e4e4e4"/>`+"\n", x(s), top-4, x(s), axisY)
		pf(`<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%+g</text>`+"\n", x(s), axisY+14, s)
	}
	pf(`<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">seconds after the fault</text>`+"\n", (left+width-right)/2, axisY+30)
	// Protocol bars.
	for i, p := range t.Protos {
		y := top + rowH*float64(i) + (rowH-barH)/2
		pf(`<text x="%.1f" y="%.1f" text-anchor="end" font-weight="bold">%s</text>`+"\n", left-8, y+barH-5, html.EscapeString(p.Name))
		if len(p.Spans) == 0 {
			pf(`<text x="%.1f" y="%.1f" fill="#888">no workload log</text>`+"\n", left+4, y+barH-5)
			continue
		}
		for _, s := range p.Spans {
			a, b := rel(s.From), rel(s.To)
			if b < from || a > to {
				continue
			}
			color, title := "#3a9d3a", "I/O flowing"
			if !s.OK {
				color, title = "#d43c3c", fmt.Sprintf("stalled %.2fs", s.To.Sub(s.From).Seconds())
			}
			pf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s, %+.2fs to %+.2fs</title></rect>`+"\n",
				x(a), y, math.Max(x(b)-x(a), 0.5), barH, color, html.EscapeString(p.Name), title, a, b)
		}
		for _, at := range p.Errors {
			if s := rel(at); s >= from && s <= to {
				pf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black" stroke-width="1"><title>error at %+.2fs</title></line>`+"\n", x(s), y+barH, x(s), y+barH+4, s)
			}
		}
		if !p.NewOpen.IsZero() {
			cx, cy := x(rel(p.NewOpen)), y+barH/2
			pf(`<path d="M%.1f %.1f l5 5 l-5 5 l-5 -5 z" fill="white" stroke="black"><title>%s: first new open + lock after the fault at %+.2fs</title></path>`+"\n", cx, cy-5, html.EscapeString(p.Name), rel(p.NewOpen))
		}
	}
	// Cluster events: a line through the bars, its label on a row of its own.
	for i, e := range ms {
		s := rel(e.At)
		if s < from || s > to {
			continue
		}
		ly := 30 + labelH*float64(i) + 10
		color := "#1f4e9c"
		if e.Kind == Fault {
			color = "black"
		}
		pf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="3,2"/>`+"\n", x(s), ly+3, x(s), axisY, color)
		anchor, dx := "start", 3.0
		if x(s) > width*0.7 {
			anchor, dx = "end", -3
		}
		pf(`<text x="%.1f" y="%.1f" text-anchor="%s" fill="%s">%s</text>`+"\n", x(s)+dx, ly, anchor, color,
			html.EscapeString(fmt.Sprintf("%s %+.2fs%s (%s)", labels[e.Kind], s, strings.TrimSpace(mark(e)), e.Node)))
	}
	// Legend.
	ly := height - 12
	pf(`<rect x="%.1f" y="%.1f" width="12" height="10" fill="#3a9d3a"/><text x="%.1f" y="%.1f">I/O on an open file flowing</text>`+"\n", left, ly-9, left+16, ly)
	pf(`<rect x="%.1f" y="%.1f" width="12" height="10" fill="#d43c3c"/><text x="%.1f" y="%.1f">stalled (no acknowledgment for more than %s)</text>`+"\n", left+190, ly-9, left+206, ly, StallAfter)
	pf(`<path d="M%.1f %.1f l5 5 l-5 5 l-5 -5 z" fill="white" stroke="black"/><text x="%.1f" y="%.1f">first new open + lock</text>`+"\n", left+480, ly-10, left+490, ly)
	pf("</svg>\n")
	return bw.Flush()
}

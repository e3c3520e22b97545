package setup

import (
	"time"

	"github.com/storhaug/storhaug/pacemaker"
)

// Move is an address's last move as Pacemaker recorded it: the stop on the
// node it left (a planned move) or that node's fencing (a failure), and the
// start on the node that serves it now. Pacemaker records when each began,
// to the second, and how long it ran.
type Move struct {
	From string `json:"from,omitempty"` // the node it left, "" when it only started
	To   string `json:"to,omitempty"`   // the node it started on, "" while it is down
	// Cause of the outage: "stop" (stopped on From), "fenced" (From
	// failed and was fenced), "lost" (From was lost and not fenced: no
	// record of when), "" (no outage: the address started where none
	// ran).
	Cause string    `json:"cause,omitempty"`
	Down  time.Time `json:"down,omitzero"` // when it went down: the stop began, or the fencing ended
	Up    time.Time `json:"up,omitzero"`   // when its start on To ended
	// DownFor is Up - Down (while it is down: until the status was
	// read), in whole seconds; -1 when Down is unknown.
	DownFor int `json:"down_s"`
	// AtLeast: the outage began earlier than Down, when From failed
	// (the cluster records the fencing, not the failure).
	AtLeast bool `json:"down_at_least,omitempty"`
}

// fenceWindow: a fencing this long before an address's start is not what
// moved it.
const fenceWindow = 2 * time.Minute

// lastMove finds the last move of resource id, which runs on owner (""
// when it runs nowhere), from the nodes' operation history and the
// fencer's history; nil when the history does not tell (the start was
// probed rather than recorded, e.g. after a cleanup).
func lastMove(id, owner string, ops []pacemaker.Op, fences []pacemaker.FenceEvent, now time.Time) *Move {
	var start *pacemaker.Op
	var stop *pacemaker.Op  // the latest stop elsewhere before the start
	var stale *pacemaker.Op // a start on a node that no longer runs it
	for i := range ops {
		o := &ops[i]
		if o.Resource != id || o.Interval != 0 || o.LastFail || !o.Done() {
			continue
		}
		switch {
		case o.Task == "start" && o.Node == owner:
			start = o
		case o.Task == "stop" && o.Node != owner:
			if stop == nil || o.RCChange.After(stop.RCChange) {
				stop = o
			}
		case o.Task == "start":
			stale = o
		}
	}
	if owner != "" && start == nil {
		return nil
	}
	var up time.Time
	if start != nil {
		up = start.Ended()
		if stop != nil && stop.RCChange.After(start.RCChange) {
			stop = nil // an older move's
		}
	}
	// The latest fencing before the start (before now, while it is
	// down), after the stop, of a node other than the owner.
	var fence *pacemaker.FenceEvent
	limit := now
	if start != nil {
		limit = up
	}
	for i := range fences {
		f := &fences[i]
		if f.Status != "success" || f.Target == owner || f.Action == "on" || f.Completed.IsZero() || f.Completed.After(limit) {
			continue
		}
		if start != nil && up.Sub(f.Completed) > fenceWindow {
			continue
		}
		if stop != nil && f.Completed.Before(stop.RCChange) {
			continue
		}
		if fence == nil || f.Completed.After(fence.Completed) {
			fence = f
		}
	}
	m := &Move{To: owner, Up: up, DownFor: -1}
	switch {
	case fence != nil:
		m.From, m.Cause, m.Down, m.AtLeast = fence.Target, "fenced", fence.Completed, true
	case stop != nil:
		m.From, m.Cause, m.Down = stop.Node, "stop", stop.RCChange
	case stale != nil && (start == nil || !stale.RCChange.After(start.RCChange)):
		m.From, m.Cause = stale.Node, "lost"
	case start == nil:
		return nil // never ran, or no record of it
	}
	if !m.Down.IsZero() {
		end := up
		if start == nil {
			end = now
		}
		m.DownFor = int(end.Sub(m.Down).Round(time.Second) / time.Second)
	}
	return m
}

package pacemaker

import (
	"context"
	"encoding/xml"
	"fmt"
	"time"
)

// FenceEvent is one entry of the fencer's history, as `stonith_admin
// --history NODE --verbose --output-as=xml` prints it (<fence_event>).
type FenceEvent struct {
	Action   string // off, reboot, on
	Target   string
	Status   string // success, failed or pending
	Delegate string // the node that carried it out
	Origin   string // the node that asked for it
	// Completed is when a fencing that succeeded or failed ended (the
	// fencer prints it to the second); zero while pending.
	Completed time.Time
}

// Fenced reports whether e is a fencing that took target's power away:
// off or reboot, succeeded.
func (e FenceEvent) Fenced() bool {
	return e.Status == "success" && (e.Action == "off" || e.Action == "reboot")
}

// FenceHistory asks this node's fencer for the fencing history of target.
// --verbose: without it the fencer reduces the history, and a later
// fencing of the same node may not show.
func FenceHistory(ctx context.Context, r Runner, target string) ([]FenceEvent, error) {
	out, err := r.Run(ctx, nil, "stonith_admin", "--history", target, "--verbose", "--output-as=xml")
	if err != nil {
		return nil, fmt.Errorf("stonith_admin --history %s: %w", target, err)
	}
	return ParseFenceHistory(out)
}

// ParseFenceHistory reads stonith_admin's XML history.
func ParseFenceHistory(data []byte) ([]FenceEvent, error) {
	var doc struct {
		Events []struct {
			Action    string `xml:"action,attr"`
			Target    string `xml:"target,attr"`
			Status    string `xml:"status,attr"`
			Delegate  string `xml:"delegate,attr"`
			Origin    string `xml:"origin,attr"`
			Completed string `xml:"completed,attr"`
		} `xml:"list>fence_event"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("fence history: %w", err)
	}
	out := make([]FenceEvent, 0, len(doc.Events))
	for _, e := range doc.Events {
		ev := FenceEvent{Action: e.Action, Target: e.Target, Status: e.Status, Delegate: e.Delegate, Origin: e.Origin}
		if e.Completed != "" {
			t, err := parseFenceTime(e.Completed)
			if err != nil {
				return nil, err
			}
			ev.Completed = t
		}
		out = append(out, ev)
	}
	return out, nil
}

// parseFenceTime reads the fencer's time: "2026-12-01 21:04:05Z" in UTC,
// with an offset ("+01:00") in another zone.
func parseFenceTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("fence history: completion time %q in an unknown format", s)
}

// FencedSince returns the latest fencing of target (off or reboot,
// succeeded) that completed after since. The fencer keeps whole seconds:
// a fencing stamped with since's own second may have completed before it,
// and counts only when since is a whole second.
func FencedSince(events []FenceEvent, target string, since time.Time) (FenceEvent, bool) {
	var best FenceEvent
	ok := false
	from := since.Truncate(time.Second)
	if from.Before(since) {
		from = from.Add(time.Second)
	}
	for _, e := range events {
		if e.Target != target || !e.Fenced() || e.Completed.Before(from) {
			continue
		}
		if !ok || e.Completed.After(best.Completed) {
			best, ok = e, true
		}
	}
	return best, ok
}

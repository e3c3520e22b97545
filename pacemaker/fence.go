package pacemaker

import "time"

// Fenced reports whether e is a fencing that took its target's power
// away: off or reboot, succeeded.
func (e FenceEvent) Fenced() bool {
	return e.Status == "success" && (e.Action == "off" || e.Action == "reboot")
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

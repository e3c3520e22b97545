package tickle

import (
	"context"
	"net/netip"
	"time"
)

// Keeper keeps one VIP's connection list current while the address is up
// on this node, and sends the later tickle rounds of a takeover. It
// records every Refresh and rewrites the shared file only when the list
// changed, so an idle VIP costs one filtered netlink dump a second.
type Keeper struct {
	VIP      netip.Addr
	Dir      string // the shared tickle directory
	Schedule Schedule
	Refresh  time.Duration
	Log      Logger

	// Record returns the connections on VIP now when they changed since
	// the last call, or when force is set; changed says which.
	Record func(force bool) (conns []Conn, changed bool, err error)
	Tickle func([]Conn) (int, error)        // sends one round
	Now    func() time.Time                 // time.Now when nil
	Wrote  func(conns []Conn, at time.Time) // called after each write (tests, measurements)

	local local
	// grace is how long a keeper started before the takeover waits for
	// its stash before it first writes the shared file, so that it cannot
	// replace the old owner's list before the takeover has read it; 0 for
	// defaultGrace (tests shorten it).
	grace time.Duration
}

const defaultGrace = 3 * time.Second

type round struct {
	at    time.Time
	k     int
	conns []Conn
}

// Run works until ctx ends.
func (k *Keeper) Run(ctx context.Context) {
	log := orNop(k.Log)
	now := k.Now
	if now == nil {
		now = time.Now
	}
	refresh := k.Refresh
	if refresh <= 0 {
		refresh = time.Second
	}
	grace := k.grace
	if grace <= 0 {
		grace = defaultGrace
	}
	start := now()
	stashed := false
	written := false
	var pending []round
	lastErr := ""
	timer := time.NewTimer(0)
	defer timer.Stop()
	nextRecord := start
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		t := now()
		// The takeover's list, for the later rounds.
		if conns, first, ok, err := k.local.takeStash(log); ok {
			stashed = true
			if err != nil {
				log.Warnf("tickle: reading the takeover's list: %v", err)
			}
			pending = pending[:0]
			for i := 1; i < k.Schedule.Rounds && len(conns) > 0; i++ {
				pending = append(pending, round{at: first.Add(k.Schedule.At(i)), k: i + 1, conns: conns})
			}
		}
		// Rounds due: of several overdue, only the last is worth sending
		// (the client answers one per 500 ms).
		due := -1
		for i := range pending {
			if !pending[i].at.After(t) {
				due = i
			}
		}
		if due >= 0 {
			r := pending[due]
			pending = pending[due+1:]
			n, err := k.Tickle(r.conns)
			if err != nil {
				log.Warnf("tickle: round %d for %s: %d of %d sent: %v", r.k, k.VIP, n, len(r.conns), err)
			} else {
				log.Infof("tickle: round %d for %s: %d clients tickled", r.k, k.VIP, n)
			}
		}
		if !t.Before(nextRecord) {
			nextRecord = t.Add(refresh)
			if stashed || t.Sub(start) >= grace {
				conns, wrote, err := k.record(!written)
				if err != nil {
					written = false // write again at the next look
					if msg := err.Error(); msg != lastErr {
						log.Warnf("tickle: recording connections on %s: %v", k.VIP, err)
						lastErr = msg
					}
				} else {
					if lastErr != "" {
						log.Infof("tickle: recording connections on %s works again", k.VIP)
					}
					lastErr = ""
					if wrote {
						written = true
						if k.Wrote != nil {
							k.Wrote(conns, now())
						}
					}
				}
			}
		}
		next := nextRecord
		if len(pending) > 0 && pending[0].at.Before(next) {
			next = pending[0].at
		}
		timer.Reset(max(next.Sub(now()), time.Millisecond))
	}
}

// record records under the node lock and writes the shared file when the
// list changed (or force). It writes nothing once stop has released the
// address here.
func (k *Keeper) record(force bool) ([]Conn, bool, error) {
	unlock, err := k.local.lock()
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	if k.local.released() {
		return nil, false, nil
	}
	conns, changed, err := k.Record(force)
	if err != nil {
		return nil, false, err
	}
	if !changed && !force {
		return nil, false, nil
	}
	if err := WriteFile(k.Dir, k.VIP, conns); err != nil {
		return nil, false, err
	}
	return conns, true, nil
}

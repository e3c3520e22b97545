package tickle

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Config is one VIP's tickle setup, as the agent's parameters give it.
type Config struct {
	VIP      netip.Addr
	Netns    string // the network namespace the address is in ("" for ours)
	Dir      string // the shared directory of connection lists
	StateDir string // node-local state (HA_RSCTMP)
	Ports    Ports
	Source   Source
	Schedule Schedule
	Refresh  time.Duration // how often the keeper records
	Log      Logger
	// Removed tells Release that the address is already off the node, so
	// that no client it resets can reconnect here in between: the sockets
	// are destroyed without the exact-RST fallback, which needs the
	// address (Release returns ErrDestroyUnsupported where the kernel
	// cannot destroy them).
	Removed bool
	// exactRST makes Release reset sockets with exact RSTs even where the
	// kernel could destroy them (for tests).
	exactRST bool
}

// A Prepared takeover has read the VIP's list and opened the sockets to
// tickle from, in the background, while the address is still being added
// and announced: on shared storage the read may take a while, and it
// need not wait for the address.
type Prepared struct {
	cfg   Config
	done  chan struct{}
	conns []Conn
	s     *Sender
	err   error // of the read
	serr  error // of the sockets
}

// PrepareTakeover is the start side: it starts reading the list the old
// owner left for the VIP and opening the sockets. Send (or Close) must
// follow, once the address is up and announced. A missing list is not an
// error (there is nothing to tickle).
func PrepareTakeover(cfg Config) *Prepared {
	p := &Prepared{cfg: cfg, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		log := orNop(cfg.Log)
		conns, err := ReadFile(cfg.Dir, cfg.VIP, log)
		if IsNotExist(err) {
			log.Infof("tickle: no connection list for %s in %s: no clients to tickle", cfg.VIP, cfg.Dir)
			conns, err = nil, nil
		}
		p.conns, p.err = cfg.Ports.Filter(cfg.VIP, conns), err
		if len(p.conns) > 0 {
			p.s, p.serr = OpenSender(cfg.Netns)
		}
	}()
	return p
}

// Send waits for the list, sends the first round of tickles and leaves the
// list for the keeper's later rounds.
func (p *Prepared) Send() (sent int, err error) {
	<-p.done
	cfg, log := p.cfg, orNop(p.cfg.Log)
	l := newLocal(cfg.StateDir, cfg.VIP, cfg.Netns)
	if unlock, err := l.lock(); err == nil {
		l.setReleased(false)
		unlock()
	}
	err = p.err
	if err != nil {
		log.Warnf("tickle: %v", err)
	}
	first := time.Now()
	if len(p.conns) > 0 {
		if p.serr != nil {
			return 0, p.serr
		}
		var serr error
		sent, serr = p.s.Tickle(p.conns)
		p.s.Close()
		if serr != nil {
			err = errors.Join(err, serr)
		}
		log.Infof("tickle: round 1 for %s: %d of %d clients tickled", cfg.VIP, sent, len(p.conns))
	}
	if serr := l.stash(p.conns, first); serr != nil {
		err = errors.Join(err, fmt.Errorf("leaving the list for the later rounds: %w", serr))
	}
	return sent, err
}

// Close releases the sockets of a takeover that will not be sent (instead
// of Send). It may be called before the preparation is over: the sockets
// are closed when it is.
func (p *Prepared) Close() {
	go func() {
		<-p.done
		if p.s != nil {
			p.s.Close()
		}
	}()
}

// Keep is the keeper: until ctx ends it keeps the VIP's list in the shared
// directory current and sends the later rounds of a takeover.
func Keep(ctx context.Context, cfg Config) error {
	rec, err := OpenRecorder(cfg.Netns, cfg.VIP, cfg.Ports, cfg.Source, cfg.Log)
	if err != nil {
		return err
	}
	defer rec.Close()
	var sender *Sender
	defer func() {
		if sender != nil {
			sender.Close()
		}
	}()
	k := &Keeper{
		VIP: cfg.VIP, Dir: cfg.Dir, Schedule: cfg.Schedule, Refresh: cfg.Refresh, Log: cfg.Log,
		Record: func(force bool) ([]Conn, bool, error) {
			if force {
				rec.polled = false
			}
			return rec.Poll()
		},
		Tickle: func(conns []Conn) (int, error) {
			if sender == nil {
				s, err := OpenSender(cfg.Netns)
				if err != nil {
					return 0, err
				}
				sender = s
			}
			return sender.Tickle(conns)
		},
		local: newLocal(cfg.StateDir, cfg.VIP, cfg.Netns),
	}
	k.Run(ctx)
	return nil
}

// Release is the stop side: it records the final list into the shared
// directory (when one is set), keeps the keeper from overwriting it, and
// resets the local sockets on the VIP so that local services drop them:
// with sock_diag's SOCK_DESTROY, or, where the kernel refuses that (the
// first refusal says so) and the address is still on the node
// (cfg.Removed false), by tickling each local socket and answering with an
// exact RST, within ctx and at most releaseResetBudget after Release
// began. With the address still on the node the clients get an RST, and
// one that redials at once reaches this node's services again; after the
// address is removed they hear nothing from here, and the new owner's
// tickles reset them.
func Release(ctx context.Context, cfg Config) (recorded, destroyed int, err error) {
	begin := time.Now()
	rec, err := OpenRecorder(cfg.Netns, cfg.VIP, cfg.Ports, cfg.Source, cfg.Log)
	if err != nil {
		return 0, 0, err
	}
	defer rec.Close()
	l := newLocal(cfg.StateDir, cfg.VIP, cfg.Netns)
	unlock, err := l.lock()
	if err != nil {
		return 0, 0, err
	}
	var errs []error
	if cfg.Dir != "" {
		conns, rerr := rec.Record()
		if rerr != nil {
			errs = append(errs, rerr)
		} else if werr := WriteFile(cfg.Dir, cfg.VIP, conns); werr != nil {
			errs = append(errs, werr)
		} else {
			recorded = len(conns)
		}
	}
	if serr := l.setReleased(true); serr != nil {
		errs = append(errs, serr)
	}
	unlock()
	var derr error
	if !cfg.exactRST {
		destroyed, derr = rec.Destroy()
	}
	if cfg.exactRST || (errors.Is(derr, ErrDestroyUnsupported) && !cfg.Removed) {
		why := "forced (test)"
		if derr != nil {
			why = derr.Error()
		}
		ctx, cancel := context.WithDeadline(ctx, begin.Add(releaseResetBudget))
		start := time.Now()
		n, rerr := resetLocal(ctx, cfg.Netns, rec)
		cancel()
		destroyed += n
		if rerr != nil {
			derr = fmt.Errorf("%s; resetting the local sockets on %s with exact RSTs instead: %d reset, %w", why, cfg.VIP, n, rerr)
		} else {
			derr = nil
			log := orNop(cfg.Log)
			log.Infof("tickle: %s; %d local sockets on %s reset with exact RSTs instead, in %v",
				why, n, cfg.VIP, time.Since(start).Round(time.Millisecond))
		}
	}
	if derr != nil {
		errs = append(errs, derr)
	}
	return recorded, destroyed, errors.Join(errs...)
}

// releaseResetBudget bounds Release when it resets sockets with exact RSTs
// (the agent gives Release 5 s in all).
const releaseResetBudget = 4 * time.Second

// List records the connections on the VIP now (for the admin's "storhaug
// tickle list" on the owning node).
func List(cfg Config) ([]Conn, error) {
	rec, err := OpenRecorder(cfg.Netns, cfg.VIP, cfg.Ports, cfg.Source, cfg.Log)
	if err != nil {
		return nil, err
	}
	defer rec.Close()
	return rec.Record()
}

package agents

// The CTDB agent's monitor and the leader role of a promotable clone:
// promote and demote, the promotion score, and the leader-watch helper
// that follows ctdbd's leader broadcasts so that a monitor need not ask.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/storhaug/storhaug/ctdb"
	"github.com/storhaug/storhaug/internal/atomicfile"
	"github.com/storhaug/storhaug/internal/proc"
	"github.com/storhaug/storhaug/ocf"
	"github.com/storhaug/storhaug/pacemaker"
)

// afterStart finishes a start in promotable mode: the leader role off
// here, the leader watch running and this node's promotion score set.
func (c *ctdbRes) afterStart(s *ctdb.State, n ctdb.Node) error {
	s.PNN = n.PNN
	if s.Started.IsZero() {
		s.Started = time.Now()
	}
	c.publishPNN(n.PNN)
	if !c.promotable {
		return c.save(s)
	}
	if _, err := c.naming(s); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	if err := c.tool.SetLeaderRole(c.r.Context(), false); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot take the leader role from this unpromoted instance: %w", err)
	}
	c.ensureWatch(s)
	if err := c.setScore(n.PNN); err != nil {
		c.r.Log.Warnf("promotion score: %w", err)
	}
	return c.save(s)
}

// setScore makes this node a candidate for promotion: lower pnns first,
// so that the choice is the same on every node.
func (c *ctdbRes) setScore(pnn int) error {
	ctx, cancel := context.WithTimeout(c.r.Context(), crmTimeout)
	defer cancel()
	return pacemaker.SetPromotionScore(ctx, c.sys.pacemaker, c.r.Instance, c.r.NodeName(), max(1000-pnn, 1))
}

func (c *ctdbRes) clearScore() error {
	ctx, cancel := context.WithTimeout(c.r.Context(), crmTimeout)
	defer cancel()
	return pacemaker.ClearPromotionScore(ctx, c.sys.pacemaker, c.r.Instance, c.r.NodeName())
}

// crmTimeout bounds a crm_attribute call, whatever the action's timeout.
const crmTimeout = 10 * time.Second

// watchArgs is the command line of this resource's leader watch: its
// identity in /proc.
func (c *ctdbRes) watchArgs() []string {
	return []string{"CTDB", "leader-watch", c.r.Instance}
}

// watchRuns reports whether the leader watch recorded in s runs.
func (c *ctdbRes) watchRuns(s *ctdb.State) bool {
	return s.WatchPID > 0 && c.sys.helperRuns(s.WatchPID, c.watchArgs())
}

func (c *ctdbRes) ensureWatch(s *ctdb.State) {
	if c.watchRuns(s) {
		return
	}
	if s.Naming == "recmaster" {
		// Before 4.16 nobody broadcasts the leader, and "ctdb recmaster"
		// is a plain control: cheap, no watch needed.
		return
	}
	// In a session of its own, so that it outlives the action.
	pid, err := c.sys.spawnHelper(proc.Helper{Args: c.watchArgs(), Env: os.Environ()})
	if err != nil {
		c.r.Log.Warnf("cannot start the leader watch: %w", err)
		return
	}
	s.WatchPID = pid
}

func (c *ctdbRes) stopWatch(s *ctdb.State) {
	if c.watchRuns(s) {
		if err := c.sys.stopHelper(c.r.Context(), s.WatchPID, c.watchArgs()); err != nil {
			c.r.Log.Warnf("the leader watch: %v", err)
		}
	}
	s.WatchPID = 0
	if err := os.Remove(c.leaderFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.r.Log.Warnf("%v", err)
	}
}

// watchedLeader reads the leader as the watch last saw it.
func (c *ctdbRes) watchedLeader(s *ctdb.State) (int, bool) {
	if !c.watchRuns(s) {
		return 0, false
	}
	b, err := os.ReadFile(c.leaderFile)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	return n, true
}

// leader returns the cluster's leader: from the watch when it runs (no
// call at all), else by asking ctdb (which waits for a broadcast, up to a
// second).
func (c *ctdbRes) leader(s *ctdb.State) (int, error) {
	if l, ok := c.watchedLeader(s); ok {
		return l, nil
	}
	if _, err := c.naming(s); err != nil {
		return 0, err
	}
	return c.tool.Leader(c.r.Context())
}

func (c *ctdbRes) monitor() error {
	r := c.r
	if err := c.absentBinaries(); err != nil {
		if r.IsProbe() {
			return ocf.Exit(ocf.NotRunning)
		}
		return ocf.Errorf(ocf.ErrInstalled, "%w", err)
	}
	n, err := c.nodeStatus(r.Context())
	if errors.Is(err, ctdb.ErrNotRunning) {
		return ocf.Exit(ocf.NotRunning)
	}
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot get this node's status from ctdb: %w", err)
	}
	if !c.promotable {
		return c.verdict(n, false, nil)
	}
	s, _ := c.load()
	if !c.watchRuns(s) && !r.IsProbe() {
		if s.Naming == "" {
			if _, err := c.naming(s); err != nil { // from the tool cache, normally
				r.Log.Debugf("%v", err)
			}
		}
		c.ensureWatch(s)
		s.PNN = n.PNN
		if err := c.save(s); err != nil {
			r.Log.Warnf("%v", err)
		}
	}
	l, err := c.leader(s)
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot tell the CTDB leader: %w", err)
	}
	if l == ctdb.UnknownPNN && n.Unhealthy && !n.Banned && !n.Stopped {
		r.Log.Debugf("pnn %d is %s: no leader yet, waiting for Pacemaker to promote one", n.PNN, n.State())
		return nil
	}
	return c.verdict(n, l == n.PNN, s)
}

// startGrace is how long after ctdbd's start a node that has not yet been
// healthy counts as starting even when its monitor event failed. CTDB
// runs the monitor event right after the startup event, which starts
// smbd; smbd listens only once it has forked and read its configuration,
// so on a loaded node the first monitor after a start often finds its
// ports closed, and the node is UNHEALTHY until the next one (CTDB's
// MonitorInterval, 15 s). In a promotable clone the startup event runs
// only after the promotion.
const startGrace = 90 * time.Second

// verdict is the monitor's answer for the node's status n; s is the
// agent's state when the caller has read it (nil: read on demand).
func (c *ctdbRes) verdict(n ctdb.Node, leader bool, s *ctdb.State) error {
	if s == nil {
		s, _ = c.load()
	}
	if !n.Healthy() {
		code := ocf.ErrGeneric
		if leader {
			code = ocf.FailedPromoted
		}
		reason := ""
		if n.Unhealthy && !n.Banned && !n.Stopped && !n.Disconnected && !n.Unknown {
			// Only an unhealthy node costs a second call: why is it?
			ss, err := c.tool.ScriptStatus(c.r.Context())
			switch {
			case err != nil:
				reason = fmt.Sprintf(" (event scripts: %v)", err)
			case ss.NeverRun || len(ss.Failed) == 0:
				// Starting: ctdb marks a node unhealthy until its first
				// monitor event has passed.
				c.r.Log.Infof("CTDB node %d is %s until its first monitor event passes (starting)", n.PNN, n.State())
				if leader {
					return ocf.Exit(ocf.RunningPromoted)
				}
				return nil
			default:
				reason = ": " + strings.Join(ss.Failed, "; ")
				if since := time.Since(s.Started); !s.Started.IsZero() && s.Healthy.Before(s.Started) && since < startGrace {
					c.r.Log.Infof("CTDB node %d is %s%s, %v after ctdbd started and not yet healthy: starting (a failure %v after the start)",
						n.PNN, n.State(), reason, since.Round(time.Second), startGrace)
					if leader {
						return ocf.Exit(ocf.RunningPromoted)
					}
					return nil
				}
			}
		}
		return ocf.Errorf(code, "CTDB node %d is %s%s", n.PNN, n.State(), reason)
	}
	if !s.Started.IsZero() && s.Healthy.Before(s.Started) {
		s.Healthy = time.Now()
		if err := c.save(s); err != nil {
			c.r.Log.Warnf("%v", err)
		}
	}
	if n.Disabled {
		c.r.Log.Infof("CTDB node %d is DISABLED by the admin (it serves its databases, hosts no public addresses)", n.PNN)
	}
	if leader {
		return ocf.Exit(ocf.RunningPromoted)
	}
	return nil
}

func (c *ctdbRes) promote() error {
	r := c.r
	if !c.promotable {
		r.Log.Infof("not a promotable clone: CTDB elects its leader itself; nothing to promote")
		return nil
	}
	s, _ := c.load()
	n, err := c.nodeStatus(r.Context())
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot promote: %w", err)
	}
	if _, err := c.naming(s); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	if err := c.tool.SetLeaderRole(r.Context(), true); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot give this node the leader role: %w", err)
	}
	c.ensureWatch(s)
	s.PNN = n.PNN
	if err := c.save(s); err != nil {
		r.Log.Warnf("%v", err)
	}
	p, err := c.tool.AwaitPromotion(r.Context(), n.PNN, func(context.Context) (int, error) { return c.leader(s) })
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	round := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	if p.Unhealthy != nil {
		r.Log.Warnf("CTDB node %d is the leader (after %v) but not yet healthy at the end of the promote timeout (%v)", n.PNN, round(p.Elected), p.Unhealthy)
		return nil
	}
	r.Log.Infof("CTDB node %d is the leader %v after the role was given, healthy after %v", n.PNN, round(p.Elected), round(p.Healthy))
	return nil
}

func (c *ctdbRes) demote() error {
	r := c.r
	if !c.promotable {
		return nil
	}
	s, _ := c.load()
	if _, err := c.nodeStatus(r.Context()); errors.Is(err, ctdb.ErrNotRunning) {
		return nil
	}
	if _, err := c.naming(s); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	if err := c.tool.SetLeaderRole(r.Context(), false); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot take the leader role away: %w", err)
	}
	// ctdbd gives the role up at once and stops announcing itself; until
	// the watch notices the silence, it would still name this node.
	if c.watchRuns(s) {
		if err := atomicfile.Write(c.leaderFile, []byte(strconv.Itoa(ctdb.UnknownPNN)+"\n"), 0o644); err != nil {
			r.Log.Warnf("the leader watch's file: %v", err)
		}
	}
	if err := c.save(s); err != nil {
		r.Log.Warnf("%v", err)
	}
	return nil
}

// leaderWatch is the helper: it follows the leader broadcasts of the
// local ctdbd and keeps the last one in the leader file, until ctdbd goes
// or it is told to end.
func (c *ctdbRes) leaderWatch() error {
	r := c.r
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	defer os.Remove(c.leaderFile)
	// Until the first broadcast, nobody is known to lead.
	if err := atomicfile.Write(c.leaderFile, []byte(strconv.Itoa(ctdb.UnknownPNN)+"\n"), 0o644); err != nil {
		return fmt.Errorf("leader watch: %w", err)
	}
	err := ctdb.WatchLeader(ctx, c.socketPath(), 6*time.Second, func(l int) {
		// Written when it differs from the file (which demote may have
		// changed), so about never: one small read a second.
		want := strconv.Itoa(l) + "\n"
		if b, err := os.ReadFile(c.leaderFile); err != nil || string(b) != want {
			if err := atomicfile.Write(c.leaderFile, []byte(want), 0o644); err != nil {
				r.Log.Warnf("leader watch: %v", err)
			}
		}
	})
	if err != nil {
		r.Log.Infof("leader watch ends: %w", err)
	}
	return nil
}

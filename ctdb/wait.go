package ctdb

import (
	"context"
	"fmt"
	"time"
)

// WaitReady polls this node's state (status) until it is ready: healthy
// (or disabled) for a plain clone; for a promotable one, connected to the
// cluster, since nobody can lead (and nodes stay unhealthy) until one
// instance is promoted, unless a leader exists (the node joins a running
// cluster): then it waits for health too. leader asks who leads, briefly.
// It gives up when ctdbd pid exits or ctx ends.
func (d *Daemon) WaitReady(ctx context.Context, pid int, promotable bool, status func(context.Context) (Node, error), leader func(context.Context) (int, error)) (Node, error) {
	last := "no answer yet"
	for {
		n, err := status(ctx)
		switch {
		case err == nil && n.Healthy():
			return n, nil
		case err == nil && promotable && !n.Banned && !n.Stopped && !n.Disconnected:
			if l, lerr := leader(ctx); lerr == nil && l == UnknownPNN {
				return n, nil
			}
			last = n.State() + " (a leader exists: waiting for health)"
		case err == nil:
			last = n.State()
		default:
			last = err.Error()
		}
		if !d.Alive(pid) {
			return Node{}, fmt.Errorf("ctdbd (pid %d) exited during its start (last state: %s)", pid, last)
		}
		select {
		case <-ctx.Done():
			return Node{}, fmt.Errorf("ctdbd did not become healthy within the start timeout (this node: %s)", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Promotion is how a promotion went: the time until the node was elected
// leader, and until every node present was healthy after the recovery
// that follows (Unhealthy says why not, when ctx ended first).
type Promotion struct {
	Elected, Healthy time.Duration
	Unhealthy        error
}

// AwaitPromotion waits, once node pnn was given the leader role, until
// leader names it, then until every node present is healthy (what
// services ordered after the promotion need). Not being elected within
// ctx is an error; not being healthy is reported in the Promotion.
func (t *Tool) AwaitPromotion(ctx context.Context, pnn int, leader func(context.Context) (int, error)) (Promotion, error) {
	t0 := time.Now()
	for {
		l, err := leader(ctx)
		if err == nil && l == pnn {
			p := Promotion{Elected: time.Since(t0)}
			for {
				me, err := t.HealthyCluster(ctx)
				if err == nil && !me.Healthy() {
					err = fmt.Errorf("CTDB node %d is %s", me.PNN, me.State())
				}
				if err == nil {
					p.Healthy = time.Since(t0)
					return p, nil
				}
				select {
				case <-ctx.Done():
					p.Unhealthy = err
					return p, nil
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
		select {
		case <-ctx.Done():
			return Promotion{}, fmt.Errorf("CTDB node %d has the leader role but was not elected within the promote timeout (leader: %d, %v)", pnn, l, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// HealthyCluster returns this node's row when every node present in the
// cluster (not disconnected, banned or stopped) is healthy, else an error
// naming one that is not.
func (t *Tool) HealthyCluster(ctx context.Context) (Node, error) {
	nodes, err := t.Nodes(ctx)
	if err != nil {
		return Node{}, err
	}
	var me Node
	for _, n := range nodes {
		if n.This {
			me = n
		}
		if n.Disconnected || n.Banned || n.Stopped {
			continue
		}
		if !n.Healthy() {
			return Node{}, fmt.Errorf("CTDB node %d is %s", n.PNN, n.State())
		}
	}
	return me, nil
}

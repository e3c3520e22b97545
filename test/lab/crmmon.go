package lab

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/storhaug/storhaug/pacemaker"
)

// Pacemaker's view of the cluster, as package pacemaker models crm_mon's
// XML (the one model, shared with storhaug status).
type (
	ClusterState = pacemaker.ClusterState
	NodeState    = pacemaker.NodeState
	Resource     = pacemaker.Resource
	Failure      = pacemaker.Failure
	FailCount    = pacemaker.FailCount
)

// ParseCrmMon parses the output of `crm_mon --output-as=xml`.
func ParseCrmMon(data []byte) (*ClusterState, error) { return pacemaker.ParseCrmMon(data) }

// CrmMon returns the node's view of the cluster.
func (n *Node) CrmMon(ctx context.Context) (*ClusterState, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	r, err := n.Run(ctx, "crm_mon", pacemaker.CrmMonArgs...)
	if err != nil && r.Stdout == "" {
		return nil, err
	}
	s, perr := ParseCrmMon([]byte(r.Stdout))
	if perr != nil {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", n.name, perr)
	}
	s.From = n.name
	return s, nil
}

// CrmMon returns the cluster's state as seen by the first node (n1, n2,
// ...) that runs and answers. In a partition, ask a node: Node.CrmMon.
func (l *Lab) CrmMon(ctx context.Context) (*ClusterState, error) {
	var lastErr error
	for _, n := range l.nodes {
		if !n.Alive() || !n.running("pacemaker-based") {
			continue
		}
		s, err := n.CrmMon(ctx)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("lab: no node runs Pacemaker")
	}
	return nil, lastErr
}

// WaitFor polls cond (every 200 ms) until it returns true, ctx ends or
// timeout passes; the error then names desc and cond's last error.
func (l *Lab) WaitFor(ctx context.Context, desc string, timeout time.Duration, cond func() (bool, error)) error {
	return WaitFor(ctx, desc, timeout, cond)
}

// WaitFor is Lab.WaitFor without a lab.
func WaitFor(ctx context.Context, desc string, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := cond()
		if ok && err == nil {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("timed out after %s waiting for %s: last error: %v", timeout, desc, lastErr)
			}
			return fmt.Errorf("timed out after %s waiting for %s", timeout, desc)
		case <-t.C:
		}
	}
}

// WaitClusterReady waits until every running node with Pacemaker sees the
// same DC and sees all of those nodes online.
func (l *Lab) WaitClusterReady(ctx context.Context, timeout time.Duration) error {
	return l.WaitFor(ctx, "Pacemaker: a DC and every running node online", timeout, func() (bool, error) {
		var up []string
		for _, n := range l.nodes {
			if n.Alive() && n.running("pacemakerd") {
				up = append(up, n.name)
			}
		}
		if len(up) == 0 {
			return false, fmt.Errorf("no node runs pacemakerd")
		}
		dc := ""
		for _, name := range up {
			s, err := l.Node(name).CrmMon(ctx)
			if err != nil {
				return false, err
			}
			if s.DC == "" {
				return false, fmt.Errorf("%s: no DC yet", name)
			}
			if dc != "" && s.DC != dc {
				return false, fmt.Errorf("%s sees DC %s, another node %s", name, s.DC, dc)
			}
			dc = s.DC
			for _, o := range up {
				if !s.IsOnline(o) {
					return false, fmt.Errorf("%s sees %s offline", name, o)
				}
			}
		}
		return true, nil
	})
}

// WaitMembership waits until node "from" sees exactly the nodes in online
// as online (and the others offline), with a DC.
func (l *Lab) WaitMembership(ctx context.Context, from string, online []string, timeout time.Duration) error {
	n := l.Node(from)
	if n == nil {
		return fmt.Errorf("lab: no node %q", from)
	}
	want := append([]string(nil), online...)
	sort.Strings(want)
	return l.WaitFor(ctx, fmt.Sprintf("%s to see online %v", from, want), timeout, func() (bool, error) {
		s, err := n.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		got := s.Online()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return false, fmt.Errorf("%s sees online %v", from, got)
		}
		if s.DC == "" {
			return false, fmt.Errorf("%s sees no DC", from)
		}
		return true, nil
	})
}

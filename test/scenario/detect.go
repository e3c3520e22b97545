package scenario

import (
	"fmt"
	"math"
	"slices"

	"github.com/storhaug/storhaug/test/lab"
	"github.com/storhaug/storhaug/test/timeline"
)

// detectFence reads the bench's detect_s and fence_s from a fault's
// timeline: for a node fault (crash, link cut, partition) detection is
// Pacemaker's controller logging the victim lost; for a daemon kill, the
// first failed recurring monitor on the victim; fencing is the fencer's
// confirmation. nil: no such event (moves, standby, IPaddr3's helper, whose
// monitor does not fail; no fencing), and for failback, whose fault is a
// return.
func detectFence(t *timeline.Timeline, fault string) (detect, fence *float64) {
	if t == nil || fault == Failback {
		return nil, nil
	}
	seconds := func(s float64) *float64 {
		if math.IsNaN(s) {
			return nil
		}
		return &s
	}
	switch fault {
	case Crash, LinkCut, Partition:
		detect = seconds(t.Since(timeline.Lost))
	case KillCTDBD, KillSMBD, KillGanesha:
		detect = seconds(t.Since(timeline.MonitorFailed))
	}
	return detect, seconds(t.FenceS())
}

// Protocoler is a Stack that serves only some protocols ("smb", "nfs"); a
// Stack that is not one serves both.
type Protocoler interface {
	Protocols() []string
}

// MountsFor are the Mounts through vip of the protocols s serves.
func MountsFor(s Stack, vip string) []Mount { return mountsFor(s, vip, true) }

// LabMounts is MountsFor in lab l: no NFSv3 mount where its ganesha serves
// NFSv4 only.
func LabMounts(l *lab.Lab, s Stack, vip string) []Mount { return mountsFor(s, vip, l.Options().NFSv3) }

func mountsFor(s Stack, vip string, nfs3 bool) []Mount {
	ms := Mounts(vip)
	if !nfs3 {
		ms = slices.DeleteFunc(ms, func(m Mount) bool { return m.Proto == "nfs3" })
	}
	p, ok := s.(Protocoler)
	if !ok {
		return ms
	}
	serves := p.Protocols()
	return slices.DeleteFunc(ms, func(m Mount) bool {
		if m.FSType == "cifs" {
			return !slices.Contains(serves, "smb")
		}
		return !slices.Contains(serves, "nfs")
	})
}

// falseFailovers are the nodes the cluster gave up on without cause, from a
// fault's timeline: any node other than the victim fenced, or declared lost
// by a node other than the victim (a partitioned victim sees the others
// go, and cannot fence them without quorum); and for a fault that leaves
// the node running and reachable (move, standby, IPaddr3's helper), the
// victim lost or fenced as well.
func falseFailovers(t *timeline.Timeline, fault string) []string {
	if t == nil {
		return nil
	}
	var out []string
	for _, e := range t.Events {
		bad := false
		switch e.Kind {
		case timeline.BystanderFenced:
			bad = true
		case timeline.BystanderLost:
			bad = e.Node != t.Victim
		case timeline.Lost, timeline.Fenced:
			bad = fault == Move || fault == Standby || fault == KillIPaddr3
		}
		if bad {
			out = append(out, fmt.Sprintf("false failover %.1fs after the %s: %s (%s's log)", e.At.Sub(t.Fault).Seconds(), fault, e.Detail, e.Node))
		}
	}
	return out
}

package pacemaker

import (
	"context"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Op is one entry of a node's operation history in the CIB's status
// section (an lrm_rsc_op). Pacemaker keeps, per node and resource, the last
// one-shot operation (start, stop, probe), the last failure and each
// recurring monitor; the history of a fenced node is erased.
type Op struct {
	Node     string
	Resource string        // the lrm_resource's id ("vip1", "ctdb:0")
	Task     string        // start, stop, monitor, promote, ...
	Interval time.Duration // 0 for one-shot operations
	RC       int           // the agent's exit code
	OpStatus int           // 0: done (the executor's status; 1 pending, 2 cancelled, 4 timed out, ...)
	CallID   int           // the executor's call number on Node (orders Node's operations)
	LastFail bool          // the "_last_failure_" entry, not the last operation
	// RCChange is last-rc-change, to the second. For a one-shot
	// operation it is when the operation began (a 3 s CTDB start and the
	// starts ordered after it show so in the lab); Ended adds ExecTime.
	RCChange  time.Time
	ExecTime  time.Duration // exec-time: how long the agent ran
	QueueTime time.Duration // queue-time
}

// Done reports whether the operation ran to completion with exit code 0.
func (o Op) Done() bool { return o.OpStatus == 0 && o.RC == 0 }

// Ended is when the operation ended: its start (to the second) plus how
// long it ran; not later than it really ended.
func (o Op) Ended() time.Time { return o.RCChange.Add(o.ExecTime) }

// The part of a CIB's status section that holds the operation history.
type xmlStatus struct {
	Nodes []struct {
		ID        string `xml:"id,attr"`
		Uname     string `xml:"uname,attr"`
		Resources []struct {
			ID  string `xml:"id,attr"`
			Ops []struct {
				ID        string `xml:"id,attr"`
				Operation string `xml:"operation,attr"`
				OnNode    string `xml:"on_node,attr"`
				CallID    string `xml:"call-id,attr"`
				RC        string `xml:"rc-code,attr"`
				OpStatus  string `xml:"op-status,attr"`
				Interval  string `xml:"interval,attr"`
				RCChange  string `xml:"last-rc-change,attr"`
				ExecTime  string `xml:"exec-time,attr"`
				QueueTime string `xml:"queue-time,attr"`
			} `xml:"lrm_rsc_op"`
		} `xml:"lrm>lrm_resources>lrm_resource"`
	} `xml:"status>node_state"`
}

// ParseOpHistory reads the operation history from a whole CIB (cibadmin
// --query). Entries Pacemaker has not completed (call-id -1: pending) are
// left out.
func ParseOpHistory(cibXML []byte) ([]Op, error) {
	var doc xmlStatus
	if err := xml.Unmarshal(cibXML, &doc); err != nil {
		return nil, fmt.Errorf("CIB status section: %w", err)
	}
	var out []Op
	for _, n := range doc.Nodes {
		for _, r := range n.Resources {
			for _, x := range r.Ops {
				call, err := strconv.Atoi(x.CallID)
				if err != nil || call < 0 {
					continue
				}
				o := Op{Node: n.Uname, Resource: r.ID, Task: x.Operation, CallID: call,
					LastFail: strings.Contains(x.ID, "_last_failure_")}
				if o.Node == "" {
					o.Node = x.OnNode
				}
				o.RC, _ = strconv.Atoi(x.RC)
				o.OpStatus, _ = strconv.Atoi(x.OpStatus)
				o.Interval = millis(x.Interval)
				o.ExecTime = millis(x.ExecTime)
				o.QueueTime = millis(x.QueueTime)
				if s, err := strconv.ParseInt(x.RCChange, 10, 64); err == nil && s > 0 {
					o.RCChange = time.Unix(s, 0)
				}
				out = append(out, o)
			}
		}
	}
	return out, nil
}

// millis reads a count of milliseconds ("61", or "10000ms" in crm_mon's
// output); 0 when it is not one.
func millis(s string) time.Duration {
	n, err := strconv.ParseInt(strings.TrimSuffix(s, "ms"), 10, 64)
	if err != nil {
		return 0
	}
	return time.Duration(n) * time.Millisecond
}

// FenceEvent is one entry of the fencer's history.
type FenceEvent struct {
	Target, Action string // "off", "reboot", "on"
	Status         string // "success", "failed", "pending"
	Delegate       string // the node that fenced
	Origin         string // the node that asked
	Completed      time.Time
}

// FenceHistoryArgs are the arguments of stonith_admin that
// ParseFenceHistory reads the output of: every target, every event
// (without --verbose, only the latest per target and status), as XML.
var FenceHistoryArgs = []string{"--history", "*", "--verbose", "--output-as=xml"}

// FenceHistory asks the fencer for its history of every node.
func FenceHistory(ctx context.Context, r Runner) ([]FenceEvent, error) {
	out, err := r.Run(ctx, nil, "stonith_admin", FenceHistoryArgs...)
	if err != nil {
		return nil, fmt.Errorf("stonith_admin --history: %w", err)
	}
	return ParseFenceHistory(out)
}

// ParseFenceHistory parses stonith_admin's XML history. Pacemaker prints
// the completion time to the second, in UTC ("2026-12-01 21:05:58Z").
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
		Status struct {
			Code    string `xml:"code,attr"`
			Message string `xml:"message,attr"`
		} `xml:"status"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("stonith_admin xml: %w", err)
	}
	if doc.Status.Code != "" && doc.Status.Code != "0" {
		return nil, fmt.Errorf("stonith_admin: status %s: %s", doc.Status.Code, doc.Status.Message)
	}
	var out []FenceEvent
	for _, e := range doc.Events {
		ev := FenceEvent{Target: e.Target, Action: e.Action, Status: e.Status, Delegate: e.Delegate, Origin: e.Origin}
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

func parseFenceTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05 Z07:00", "2006-01-02 15:04:05 -07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("stonith_admin: completed=%q: unknown time format", s)
}

// LocalNode is the name of the node this runs on (crm_node --name).
func LocalNode(ctx context.Context, r Runner) (string, error) {
	out, err := r.Run(ctx, nil, "crm_node", "--name")
	if err != nil {
		return "", fmt.Errorf("crm_node --name: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

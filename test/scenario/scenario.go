// Package scenario runs one fault against a storage cluster of the lab
// (package test/lab) while a kernel client guest works on it, and judges
// what the clients saw.
//
// Run mounts NFSv4.2, NFSv4.1, NFSv3 and SMB 3.1.1 through the victim's
// VIP in the lab's first kernel client, runs test/workload on each mount,
// injects the fault at a recorded instant, waits until every workload makes
// progress again, heals the fault (restores links, recovers the fenced node,
// clears a move, brings a node back online), waits until the cluster has
// settled with every resource started and every VIP at home, then mounts
// afresh, probes the workloads' locks with a conflicting lock and runs
// `workload check` on each. Throughout, it samples ARP from a client
// namespace (no VIP may be answered for by two machines) and asks every live
// node's CTDB for its leader (never two). The cluster under test is a Stack:
// Storhaug is the first; a stack that serves only SMB (Protocoler) gets only
// the SMB mount, and a VIP is found where the nodes' kernels have it, so a
// stack whose VIPs are not Pacemaker resources (CTDB's own) runs too.
// detect_s and fence_s come from the fault's timeline (test/timeline).
package scenario

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/storhaug/storhaug/test/lab"
	"github.com/storhaug/storhaug/test/timeline"
)

// Stack is a way of running the cluster's services and addresses: it sets
// the lab's cluster up and names the VIPs it manages.
type Stack interface {
	Name() string
	Setup(ctx context.Context, l *lab.Lab) error
	VIPs() map[string]string // VIP -> home node
}

// The faults, by the names the bench and the tests use.
const (
	Crash       = "crash"        // link down + every process killed; fenced; back by Recover
	LinkCut     = "linkcut"      // the node loses every network
	Partition   = "partition"    // the node loses the cluster network only
	KillCTDBD   = "kill-ctdbd"   // kill -9 of ctdbd on the VIP's owner
	KillSMBD    = "kill-smbd"    // kill -9 of smbd on the VIP's owner
	KillGanesha = "kill-ganesha" // kill -9 of ganesha.nfsd on the VIP's owner
	KillIPaddr3 = "kill-ipaddr3" // kill -9 of IPaddr3's helper (keeper) for the VIP
	Move        = "move"         // crm resource move of the VIP, then clear
	Standby     = "standby"      // crm node standby of the owner, then online
	Failback    = "failback"     // the home node returns after a crash
)

// Faults lists every fault, in the bench's order.
var Faults = []string{Crash, LinkCut, Partition, KillCTDBD, KillSMBD, KillGanesha, KillIPaddr3, Move, Standby, Failback}

// ParseFaults reads a comma-separated list of fault names; "" or "all" is
// every fault.
func ParseFaults(s string) ([]string, error) {
	if s == "" || s == "all" {
		return slices.Clone(Faults), nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(Faults, f) {
			return nil, fmt.Errorf("unknown fault %q (known: %s)", f, strings.Join(Faults, ","))
		}
		out = append(out, f)
	}
	return out, nil
}

// Options tune a Run. Zero values take the defaults.
type Options struct {
	Victim       string        // the node whose VIP the clients use (default n3)
	RecoverLimit time.Duration // how long the clients may take to recover (default 3 min)
	SettleLimit  time.Duration // how long the cluster may take to settle (default 4 min)
	Workload     string        // the workload binary's path in the guest (default GuestLabDir/workload)
	Logf         func(format string, args ...any)
}

func (o *Options) normalize() {
	if o.Victim == "" {
		o.Victim = "n3"
	}
	if o.RecoverLimit == 0 {
		o.RecoverLimit = 3 * time.Minute
	}
	if o.SettleLimit == 0 {
		o.SettleLimit = 4 * time.Minute
	}
	if o.Workload == "" {
		o.Workload = lab.GuestLabDir + "/workload"
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// Result is what one protocol's client saw.
type Result struct {
	Proto    string  `json:"proto"`
	OutageS  float64 `json:"outage_s"`  // fault -> first I/O on an open file; -1: never
	NewOpenS float64 `json:"newopen_s"` // fault -> first new open + lock; -1: never
	Acked    int     `json:"acked"`
	Lost     int     `json:"lost"`
	Corrupt  int     `json:"corrupt"`
	Locks    string  `json:"locks"` // kept, reported-lost, silently-lost, unknown
	// LocksHealed is the lock once the fault was healed (the node back,
	// the move cleared) and the cluster settled; for failback, whose fault
	// is that return, it is Locks.
	LocksHealed string   `json:"locks_healed,omitempty"`
	Errors      int      `json:"errors"`
	Stalls      int      `json:"stalls"`
	Failed      bool     `json:"failed,omitempty"` // did not recover within the limit, or could not be checked
	Problems    []string `json:"problems,omitempty"`
}

// Outcome is one fault's run.
type Outcome struct {
	Stack, Fault  string
	Victim, VIP   string
	Heir          string    // where the VIP ran after the fault ("" if it stayed)
	At            time.Time // the fault's instant (failback: the home node's return)
	Results       []Result
	DetectS       *float64           // fault -> the controller's line that the peer is lost / the monitor failed
	FenceS        *float64           // fault -> the fencer's confirmation; nil without fencing
	Violations    []string           // invariants broken while it ran (VIP on two nodes, two CTDB leaders)
	ARPWindows    int                // ARP sampling rounds made
	LeaderSamples int                // CTDB leader poll rounds made
	Timeline      *timeline.Timeline // the fault as the logs tell it (nil: could not be read)
}

// Problems lists every way the run broke the invariants: the monitors'
// violations, and per protocol a failure to recover, lost or corrupt
// records, a lock lost silently.
func (o *Outcome) Problems() []string {
	p := slices.Clone(o.Violations)
	for _, r := range o.Results {
		if r.Failed {
			p = append(p, fmt.Sprintf("%s: did not recover or could not be checked: %v", r.Proto, r.Problems))
		}
		if r.Lost != 0 || r.Corrupt != 0 {
			p = append(p, fmt.Sprintf("%s: %d of %d acknowledged records lost, %d corrupt: %v", r.Proto, r.Lost, r.Acked, r.Corrupt, r.Problems))
		}
		if !r.Failed && r.Acked == 0 {
			p = append(p, fmt.Sprintf("%s: nothing acknowledged", r.Proto))
		}
		if r.Locks != "kept" && r.Locks != "reported-lost" {
			p = append(p, fmt.Sprintf("%s: lock %s", r.Proto, r.Locks))
		}
	}
	return p
}

// Run runs fault against the stack in l (already set up by stack.Setup),
// with l's first kernel client, and returns what happened. An error is a
// run that could not be made (no mount, a cluster that never settled); the
// invariants the run broke are in Outcome.Problems.
func Run(ctx context.Context, l *lab.Lab, stack Stack, fault string, opts Options) (*Outcome, error) {
	opts.normalize()
	if !slices.Contains(Faults, fault) {
		return nil, fmt.Errorf("scenario: unknown fault %q (want one of %v)", fault, Faults)
	}
	if len(l.Guests()) == 0 || len(l.Clients()) == 0 {
		return nil, fmt.Errorf("scenario: the lab needs a kernel client and a client namespace")
	}
	r := &run{l: l, stack: stack, fault: fault, opts: opts, g: l.Guest(1)}
	return r.run(ctx)
}

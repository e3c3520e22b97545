package kclient

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/internal/atomicfile"
	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/test/lab"
	"github.com/storhaug/storhaug/test/scenario"
	"github.com/storhaug/storhaug/test/stacks"
	"github.com/storhaug/storhaug/test/timeline"
)

// The failover bench's parameters (make failover-bench FAULTS=... R=...).
var (
	benchFaults = flag.String("faults", "all", "failover bench: comma-separated faults, or all")
	benchR      = flag.Int("r", 3, "failover bench: repetitions of each fault")
	benchLimit  = flag.Duration("limit", 3*time.Minute, "failover bench: a repetition not recovered by then counts at the limit, failed")
	benchOut    = flag.String("bench-out", "", "failover bench: also write the table and the JSON line to this file")
	benchStacks = flag.String("stacks", "storhaug", "failover bench: comma-separated stacks ("+strings.Join(scenario.Stacks, ",")+")")
	benchTun    = flag.String("tunables", "", "failover bench: same = every stack with storhaug's stack's CTDB tunables and ganesha lease and grace; empty = each as shipped")
	benchSVG    = flag.String("timeline-svg", "", "failover bench: write the timeline of storhaug's first crash here (SVG)")
	benchNFS    = flag.String("nfs", "", "failover bench: v4 = ganesha serves NFSv4 only (NLM off) and the client mounts no NFSv3; empty = NFSv3 and NFSv4")
)

// ctdbTunables are the CTDB tunables "-tunables same" gives every stack:
// those storhaug's stack runs with (read from the running ctdbd).
var ctdbTunables = []string{"KeepaliveInterval", "KeepaliveLimit", "RerecoveryTimeout"}

// BenchmarkFailover is make failover-bench: each fault of -faults, -r
// times, under the kernel client (all four protocols at once), then a
// table per fault and protocol and, as the last line, the JSON report.
// Run it with -benchtime 1x: one pass is the whole bench.
func BenchmarkFailover(b *testing.B) {
	faults, err := scenario.ParseFaults(*benchFaults)
	if err != nil {
		b.Fatal(err)
	}
	names, err := scenario.ParseStacks(*benchStacks)
	if err != nil {
		b.Fatal(err)
	}
	tunables, err := scenario.ParseTunables(*benchTun)
	if err != nil {
		b.Fatal(err)
	}
	if *benchR < 1 {
		b.Fatalf("-r %d: want at least 1", *benchR)
	}
	if *benchNFS != "" && *benchNFS != "v4" {
		b.Fatalf("-nfs %q: want v4 or nothing", *benchNFS)
	}
	if slices.Contains(names, "ctdb") {
		need.Tool(b, "ethtool", "ethtool") // CTDB's 10.interface
	}
	l := kernelLab(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(names)*len(faults)**benchR)*15*time.Minute+time.Duration(len(names))*10*time.Minute)
	defer cancel()
	token, err := tokenSeconds(l)
	if err != nil {
		b.Fatal(err)
	}
	st, err := l.CrmMon(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// The lab comes up with storhaug set up; "same" tunables are the ones
	// its CTDB runs with.
	opts := stacks.Options{}
	if tunables == "same" {
		if opts.CTDBTunables, err = runningTunables(ctx, l.Node("n1")); err != nil {
			b.Fatal(err)
		}
		// and ganesha's lease and grace (storhaug's stack runs with the
		// lab's, the NFS anchor with ganesha's defaults otherwise).
		opts.LabGrace = true
		logf("failover bench: every stack with CTDB tunables %v and the lab's ganesha lease and grace", opts.CTDBTunables)
	}
	var outcomes []*scenario.Outcome
	var prev scenario.Stack = stack
	for _, name := range names {
		cur := stackNamed(name, opts)
		if cur != prev {
			logf("failover bench: %s out, %s in", prev.Name(), cur.Name())
			t0 := time.Now()
			if err := switchStack(ctx, l, prev, cur); err != nil {
				b.Fatalf("%s: %v", cur.Name(), err)
			}
			logf("failover bench: %s set up in %.1fs; VIPs %v", cur.Name(), time.Since(t0).Seconds(), cur.VIPs())
			prev = cur
		}
		outcomes = append(outcomes, benchStack(ctx, b, l, cur, faults)...)
	}
	rs := scenario.Aggregate(outcomes, benchLimit.Seconds())
	for i := range rs {
		rs[i].Tunables = tunables
	}
	line, err := scenario.JSONLine(scenario.BenchReport{Fencing: st.StonithEnabled, Clients: "kernel", TokenS: token, NFS: *benchNFS, Results: rs})
	if err != nil {
		b.Fatal(err)
	}
	text := scenario.Table(rs)
	if tunables != "" {
		text += "(CTDB tunables and ganesha's lease and grace: " + tunables + " for every stack)\n"
	}
	if !l.Options().NFSv3 {
		text += "(ganesha serves NFSv4 only: NLM off, so grace ends once the clients have reclaimed; no NFSv3 mount)\n"
	}
	text += scenario.RatioTable(scenario.Ratios(rs, stack.Name()), stack.Name())
	if tl := representative(outcomes); tl != nil {
		text += "timeline of " + stack.Name() + "'s first crash:\n" + tl.Breakdown()
		if *benchSVG != "" {
			var svg bytes.Buffer
			if err := tl.WriteSVG(&svg); err != nil {
				b.Error(err)
			} else if err := os.MkdirAll(filepath.Dir(*benchSVG), 0o755); err != nil {
				b.Error(err)
			} else if err := atomicfile.Write(*benchSVG, svg.Bytes(), 0o644); err != nil {
				b.Error(err)
			} else {
				text += "(written to " + *benchSVG + ")\n"
			}
		}
	}
	text += line + "\n"
	fmt.Print(text)
	if *benchOut != "" {
		if err := os.WriteFile(*benchOut, []byte(text), 0o644); err != nil {
			b.Error(err)
		}
	}
}

// benchStack runs every fault -r times against st, set up in l.
func benchStack(ctx context.Context, b *testing.B, l *lab.Lab, st scenario.Stack, faults []string) []*scenario.Outcome {
	var outcomes []*scenario.Outcome
	for _, f := range faults {
		for rep := 1; rep <= *benchR; rep++ {
			logf("failover bench: %s: %s, repetition %d of %d", st.Name(), f, rep, *benchR)
			o, err := scenario.Run(ctx, l, st, f, scenario.Options{Logf: logf, RecoverLimit: *benchLimit})
			if err != nil {
				b.Errorf("%s: %s #%d: %v", st.Name(), f, rep, err)
				o = &scenario.Outcome{Stack: st.Name(), Fault: f}
				for _, m := range scenario.LabMounts(l, st, "") {
					o.Results = append(o.Results, scenario.Result{Proto: m.Proto, OutageS: -1, NewOpenS: -1, Locks: "unknown", Failed: true})
				}
				// The next repetition needs a whole cluster again.
				if err := l.Repair(ctx); err != nil {
					b.Fatalf("repair after %s: %v", f, err)
				}
				if err := scenario.Settle(ctx, l, st, 4*time.Minute); err != nil {
					b.Fatalf("after %s: %v", f, err)
				}
			}
			// A lost write, a VIP on two nodes or a silent lock loss is a
			// bug in storhaug; in an anchor stack it is what that stack
			// does, and the table reports it.
			for _, p := range o.Problems() {
				if st.Name() == "storhaug" {
					b.Errorf("%s: %s #%d: %s", st.Name(), f, rep, p)
				} else {
					logf("failover bench: %s: %s #%d: %s (the anchor's result: reported, not a failure)", st.Name(), f, rep, p)
				}
			}
			outcomes = append(outcomes, o)
		}
	}
	return outcomes
}

// stackNamed is the bench's stack of that name (storhaug: the one the lab
// came up with).
func stackNamed(name string, o stacks.Options) scenario.Stack {
	switch name {
	case "resource-agents":
		return stacks.ResourceAgents(o)
	case "ctdb":
		return stacks.CTDB(o)
	}
	return stack
}

// switchStack takes prev out of the lab (storhaug: storhaug teardown;
// every stack: the CIB back to the lab's, nothing but the fence device,
// and /etc/ctdb, /etc/samba, /etc/ganesha back to the lab's) and sets cur
// up. The CTDB-native stack runs last (scenario.ParseStacks): it leaves
// ctdbd enabled outside Pacemaker.
func switchStack(ctx context.Context, l *lab.Lab, prev, cur scenario.Stack) error {
	if prev.Name() == "ctdb" {
		return fmt.Errorf("the ctdb stack cannot be followed by another")
	}
	if prev == stack {
		if r, err := l.Node("n1").Run(ctx, "/usr/sbin/storhaug", "teardown"); err != nil {
			return fmt.Errorf("storhaug teardown: %v\n%s", err, r.Output())
		}
	}
	if err := l.ResetCIB(ctx, 3*time.Minute); err != nil {
		return fmt.Errorf("reset the CIB: %w", err)
	}
	if err := dropLeftBlocks(ctx, l, prev); err != nil {
		return err
	}
	// Every daemon a stack ran stopped with its resources: the next
	// stack starts from the lab's prepared services (RestoreConfigs
	// leaves a node whose daemon still runs as it is).
	for _, n := range l.Nodes() {
		for _, d := range []string{"ctdbd", "smbd", "ganesha.nfsd"} {
			if n.Running(d) {
				return fmt.Errorf("%s still runs on %s after %s's resources stopped", d, n.Name(), prev.Name())
			}
		}
	}
	if _, err := l.RestoreConfigs(); err != nil {
		return err
	}
	return cur.Setup(ctx, l)
}

// dropLeftBlocks removes, and logs, the DROP rules for the VIPs that a
// stack's stopped resources left in a node's INPUT chain (resource-agents'
// portblock: its block instance's stop does not always remove the rule the
// unblock instance's stop put back), so that the next stack's clients are
// not dropped by them.
func dropLeftBlocks(ctx context.Context, l *lab.Lab, prev scenario.Stack) error {
	for _, n := range l.Nodes() {
		r, err := n.Run(ctx, "iptables-nft", "-S", "INPUT")
		if err != nil {
			return fmt.Errorf("%s: iptables -S INPUT: %v %s", n.Name(), err, r.Output())
		}
		for _, line := range strings.Split(r.Stdout, "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || f[0] != "-A" || !strings.Contains(line, "-j DROP") || !strings.Contains(line, "-d 198.51.100.") {
				continue
			}
			logf("failover bench: %s left on %s: %s; removed", prev.Name(), n.Name(), line)
			f[0] = "-D"
			if r, err := n.Run(ctx, "iptables-nft", f...); err != nil {
				return fmt.Errorf("%s: iptables %s: %v %s", n.Name(), strings.Join(f, " "), err, r.Output())
			}
		}
	}
	return nil
}

// representative is the timeline of the storhaug stack's first crash.
func representative(outcomes []*scenario.Outcome) *timeline.Timeline {
	for _, o := range outcomes {
		if o.Stack == stack.Name() && o.Fault == scenario.Crash && o.Timeline != nil {
			return o.Timeline
		}
	}
	return nil
}

// runningTunables are n's ctdbd's values of ctdbTunables.
func runningTunables(ctx context.Context, n *lab.Node) (map[string]int, error) {
	out := map[string]int{}
	for _, name := range ctdbTunables {
		r, err := n.Run(ctx, "ctdb", "getvar", name)
		if err != nil {
			return nil, fmt.Errorf("ctdb getvar %s: %v %s", name, err, r.Output())
		}
		// "KeepaliveInterval          = 5"
		f := strings.Fields(r.Stdout)
		if len(f) != 3 || f[0] != name {
			return nil, fmt.Errorf("ctdb getvar %s: %q", name, r.Stdout)
		}
		v, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("ctdb getvar %s: %q", name, r.Stdout)
		}
		out[name] = v
	}
	return out, nil
}

// tokenSeconds is corosync's token timeout in the lab's corosync.conf.
func tokenSeconds(l *lab.Lab) (float64, error) {
	b, err := l.Node("n1").ReadFile("/etc/corosync/corosync.conf")
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`(?m)^\s*token:\s*(\d+)\s*$`).FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("corosync.conf: no token")
	}
	ms, err := strconv.Atoi(string(m[1]))
	return float64(ms) / 1000, err
}

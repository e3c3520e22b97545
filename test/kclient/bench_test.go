package kclient

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/storhaug/storhaug/test/lab"
	"github.com/storhaug/storhaug/test/scenario"
)

// The failover bench's parameters (make failover-bench FAULTS=... R=...).
var (
	benchFaults = flag.String("faults", "all", "failover bench: comma-separated faults, or all")
	benchR      = flag.Int("r", 3, "failover bench: repetitions of each fault")
	benchLimit  = flag.Duration("limit", 3*time.Minute, "failover bench: a repetition not recovered by then counts at the limit, failed")
	benchOut    = flag.String("bench-out", "", "failover bench: also write the table and the JSON line to this file")
)

// BenchmarkFailover is make failover-bench: each fault of -faults, -r
// times, under the kernel client (all four protocols at once), then a
// table per fault and protocol and, as the last line, the JSON report.
// Run it with -benchtime 1x: one pass is the whole bench.
func BenchmarkFailover(b *testing.B) {
	faults, err := scenario.ParseFaults(*benchFaults)
	if err != nil {
		b.Fatal(err)
	}
	if *benchR < 1 {
		b.Fatalf("-r %d: want at least 1", *benchR)
	}
	l := kernelLab(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(faults)**benchR)*15*time.Minute)
	defer cancel()
	token, err := tokenSeconds(l)
	if err != nil {
		b.Fatal(err)
	}
	st, err := l.CrmMon(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var outcomes []*scenario.Outcome
	for _, f := range faults {
		for rep := 1; rep <= *benchR; rep++ {
			logf("failover bench: %s, repetition %d of %d", f, rep, *benchR)
			o, err := scenario.Run(ctx, l, stack, f, scenario.Options{Logf: logf, RecoverLimit: *benchLimit})
			if err != nil {
				b.Errorf("%s #%d: %v", f, rep, err)
				o = &scenario.Outcome{Stack: stack.Name(), Fault: f}
				for _, m := range scenario.Mounts("") {
					o.Results = append(o.Results, scenario.Result{Proto: m.Proto, OutageS: -1, NewOpenS: -1, Locks: "unknown", Failed: true})
				}
				// The next repetition needs a whole cluster again.
				if err := l.Repair(ctx); err != nil {
					b.Fatalf("repair after %s: %v", f, err)
				}
				if err := scenario.Settle(ctx, l, stack, 4*time.Minute); err != nil {
					b.Fatalf("after %s: %v", f, err)
				}
			}
			for _, p := range o.Problems() {
				b.Errorf("%s #%d: %s", f, rep, p)
			}
			outcomes = append(outcomes, o)
		}
	}
	rs := scenario.Aggregate(outcomes, benchLimit.Seconds())
	line, err := scenario.JSONLine(scenario.BenchReport{Fencing: st.StonithEnabled, Clients: "kernel", TokenS: token, Results: rs})
	if err != nil {
		b.Fatal(err)
	}
	text := scenario.Table(rs) + line + "\n"
	fmt.Print(text)
	if *benchOut != "" {
		if err := os.WriteFile(*benchOut, []byte(text), 0o644); err != nil {
			b.Error(err)
		}
	}
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

// Package bench holds storhaug's benchmarks (make bench): wall-clock costs
// of agent actions, measured as Pacemaker pays them (one process per
// action), side by side with the agents they replace.
package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/internal/nstest"
	"github.com/storhaug/storhaug/internal/ocftest"
)

const ipaddr2Path = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2"

// BenchmarkIPaddr runs ocf:heartbeat:IPaddr2 and ocf:storhaug:IPaddr3 side
// by side in one namespace on the same address, b.N rounds (one op is one
// round of every measured action; make bench runs 40), interleaved: first start, the monitor
// right after it and stop; then the steady state, both agents holding the
// address, where their recurring monitors run beside a floor (a bare Go
// program that makes one netlink address dump). It prints the median and
// spread (p10-p90) of each, the ratios, and whether IPaddr3 meets its
// targets: the recurring monitor >= 10x faster than IPaddr2's and within
// 1.5x of the floor; start >= 5x faster.
func BenchmarkIPaddr(b *testing.B) {
	nstest.Skip(b)
	need.File(b, ipaddr2Path, "resource-agents")
	b.StopTimer() // until the agents are installed and warm
	rounds := b.N
	bin := ocftest.Binary(b)
	dir := b.TempDir()
	floor := filepath.Join(dir, "floor")
	if out, err := exec.Command("go", "build", "-o", floor, "./floor").CombinedOutput(); err != nil {
		b.Fatalf("building the floor program: %v\n%s", err, out)
	}
	ipaddr3 := filepath.Join(dir, "IPaddr3")
	if err := os.Symlink(bin, ipaddr3); err != nil {
		b.Fatal(err)
	}
	net := nstest.New(b)
	h := net.AddHost("198.51.100.1/24")
	state := filepath.Join(dir, "state")
	os.MkdirAll(state, 0o755)
	env := []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT=/usr/lib/ocf", "OCF_FUNCTIONS_DIR=/usr/lib/ocf/lib/heartbeat",
		"HA_RSCTMP=" + state, "HA_LOGFACILITY=none", "OCF_RESOURCE_INSTANCE=benchvip",
		"OCF_RA_VERSION_MAJOR=1", "OCF_RA_VERSION_MINOR=1", "OCF_RESKEY_CRM_meta_timeout=20000",
		"OCF_RESKEY_ip=198.51.100.10", "OCF_RESKEY_cidr_netmask=24", "OCF_RESKEY_nic=eth0",
	}
	agents := []struct{ name, path string }{{"IPaddr2", ipaddr2Path}, {"IPaddr3", ipaddr3}}
	actions := []struct {
		name string
		env  []string
	}{
		{"start", nil},
		{"monitor", []string{"OCF_RESKEY_CRM_meta_interval=10000"}},
		{"stop", nil},
	}
	// run runs one process inside the namespace (forked from a thread that
	// is in it: no nsenter in the measured time) and returns its wall time.
	var cpu time.Duration // of the last run: user + system time of the process and its children
	run := func(path string, args []string, extra []string) (time.Duration, int, string) {
		var d time.Duration
		code := 0
		var out bytes.Buffer
		err := h.Do(func() error {
			cmd := exec.Command(path, args...)
			cmd.Env = append(slices.Clip(env), extra...)
			cmd.Stdout, cmd.Stderr = &out, &out
			t0 := time.Now()
			err := cmd.Run()
			d = time.Since(t0)
			if cmd.ProcessState != nil {
				cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code, err = ee.ExitCode(), nil
			}
			return err
		})
		if err != nil {
			b.Fatalf("%s %v: %v", path, args, err)
		}
		return d, code, out.String()
	}
	times := map[string][]time.Duration{}
	cpus := map[string][]time.Duration{}
	b.Cleanup(func() {
		for _, a := range agents {
			run(a.path, []string{"stop"}, nil)
		}
	})
	// Warm the page cache and check that both work.
	for _, a := range agents {
		for _, act := range actions {
			if _, code, out := run(a.path, []string{act.name}, act.env); code != 0 {
				b.Fatalf("%s %s: exit %d\n%s", a.name, act.name, code, out)
			}
		}
	}
	b.ResetTimer()
	b.StartTimer()
	// Cycles: start, the monitor Pacemaker runs right after it (while
	// the agents' background announcers start up beside it), stop.
	for i := 0; i < rounds; i++ {
		order := agents
		if i%2 == 1 {
			order = []struct{ name, path string }{agents[1], agents[0]}
		}
		for _, a := range order {
			for _, act := range actions {
				d, code, out := run(a.path, []string{act.name}, act.env)
				if code != 0 {
					b.Fatalf("%s %s (round %d): exit %d\n%s", a.name, act.name, i, code, out)
				}
				key := a.name + " " + act.name
				if act.name == "monitor" {
					key += " after start"
				}
				times[key] = append(times[key], d)
				cpus[key] = append(cpus[key], cpu)
			}
		}
	}
	// Steady state: the recurring monitor, every few seconds for as long
	// as the address is up. Both agents hold the address (the second
	// start finds it there); once their announcements are over, their
	// monitors and the floor run interleaved.
	for _, a := range agents {
		if _, code, out := run(a.path, []string{"start"}, []string{"OCF_RESKEY_arp_count=1"}); code != 0 {
			b.Fatalf("%s start: exit %d\n%s", a.name, code, out)
		}
	}
	time.Sleep(500 * time.Millisecond)
	steady := []struct{ key, path string }{{"IPaddr2 monitor", agents[0].path}, {"IPaddr3 monitor", agents[1].path}, {"floor", floor}}
	for i := 0; i < rounds; i++ {
		for j := range steady {
			m := steady[(i+j)%len(steady)]
			args, extra := []string{"monitor"}, actions[1].env
			if m.key == "floor" {
				args, extra = nil, nil
			}
			d, code, out := run(m.path, args, extra)
			if code != 0 {
				b.Fatalf("%s (round %d): exit %d\n%s", m.key, i, code, out)
			}
			times[m.key] = append(times[m.key], d)
			cpus[m.key] = append(cpus[m.key], cpu)
		}
	}
	for _, a := range agents {
		run(a.path, []string{"stop"}, nil)
	}
	b.StopTimer()

	med := map[string]time.Duration{}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\nIPaddr2 vs IPaddr3, %d rounds, one namespace, %s, GOMAXPROCS %d\n", rounds, "198.51.100.10/24 on eth0", runtime.GOMAXPROCS(0))
	fmt.Fprintf(tw, "action\tmedian ms\tp10 ms\tp90 ms\tmin ms\tCPU median ms\t\n")
	keys := []string{}
	for _, a := range agents {
		keys = append(keys, a.name+" start", a.name+" monitor after start", a.name+" stop", a.name+" monitor")
	}
	keys = append(keys, "floor")
	for _, k := range keys {
		s := slices.Clone(times[k])
		slices.Sort(s)
		med[k] = pct(s, 50)
		c := slices.Clone(cpus[k])
		slices.Sort(c)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", k, ms(pct(s, 50)), ms(pct(s, 10)), ms(pct(s, 90)), ms(s[0]), ms(pct(c, 50)))
		b.ReportMetric(float64(med[k].Microseconds())/1000, strings.ReplaceAll(k, " ", "-")+"-ms")
	}
	fmt.Fprintf(tw, "\nratio\tvalue\ttarget\tmet\t\n")
	ratio := func(name string, x, y time.Duration, target float64, atLeast bool) {
		r := float64(x) / float64(y)
		met := r >= target
		cmp := ">="
		if !atLeast {
			met, cmp = r <= target, "<="
		}
		fmt.Fprintf(tw, "%s\t%.1fx\t%s %.1fx\t%v\t\n", name, r, cmp, target, met)
		b.ReportMetric(r, strings.ReplaceAll(name, " ", "-")+"-x")
	}
	ratio("IPaddr2/IPaddr3 start", med["IPaddr2 start"], med["IPaddr3 start"], 5, true)
	ratio("IPaddr2/IPaddr3 monitor", med["IPaddr2 monitor"], med["IPaddr3 monitor"], 10, true)
	ratio("IPaddr2/IPaddr3 stop", med["IPaddr2 stop"], med["IPaddr3 stop"], 1, true)
	ratio("IPaddr2/IPaddr3 monitor after start", med["IPaddr2 monitor after start"], med["IPaddr3 monitor after start"], 10, true)
	ratio("IPaddr3 monitor/floor", med["IPaddr3 monitor"], med["floor"], 1.5, false)
	tw.Flush()
}

// pct is the p-th percentile of sorted s (nearest rank).
func pct(s []time.Duration, p int) time.Duration {
	i := (p*len(s) + 99) / 100
	i = max(1, min(i, len(s)))
	return s[i-1]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64)
}

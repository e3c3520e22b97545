package bench

// The CTDB benchmark: ocf:storhaug:CTDB and resource-agents'
// ocf:heartbeat:CTDB side by side on the same lab node and the same
// ctdbd (a 2-node CTDB cluster with the cluster lock on the lab's shared
// storage, no Pacemaker), with the floor: the cheapest single ctdb call
// that tells this node's health, "ctdb -X nodestatus".

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/internal/ocftest"
	"github.com/storhaug/storhaug/test/lab"
)

const ctdbShellAgent = "/usr/lib/ocf/resource.d/heartbeat/CTDB"

func ctdbMedian(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ctdbPct(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100]
}

// BenchmarkCTDB measures, interleaved, against lab node n1's ctdbd: the
// monitor of the shell agent, of storhaug's agent as a plain clone and as
// a promotable clone (leadership from the leader watch), the floor (ctdb
// -X nodestatus), "ctdb leader" and a bare process start (/bin/true), N
// rounds each (STORHAUG_BENCH_N, default 30); then start and stop of each
// agent on n2 (STORHAUG_BENCH_STARTS rounds, default 3) with storhaug's
// breakdown of where its start time goes. Targets: monitor at least 50x
// cheaper than the shell agent's and within 1.5x of the floor.
func BenchmarkCTDB(b *testing.B) {
	need.Root(b, "the lab")
	need.File(b, ctdbShellAgent, "resource-agents")
	rounds := 30
	if n, err := strconv.Atoi(os.Getenv("STORHAUG_BENCH_N")); err == nil && n > 0 {
		rounds = n
	}
	starts := 3
	if n, err := strconv.Atoi(os.Getenv("STORHAUG_BENCH_STARTS")); err == nil && n > 0 {
		starts = n
	}
	bin := ocftest.Binary(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	prefix := "ctdbb" + strconv.Itoa(os.Getpid()%10000)
	l, err := lab.Up(ctx, lab.Options{Prefix: prefix, Nodes: 2, Clients: 1, Storhaug: bin,
		Pacemaker: lab.Off, CTDB: lab.Prepared, Guard: true, Logf: b.Logf})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Down()
	lock := l.ClusterLock()
	base := []string{"OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=ctdb", "HA_LOGFACILITY=none",
		"OCF_RESKEY_ctdb_recovery_lock=" + lock, "OCF_RESKEY_CRM_meta_timeout=90000"}
	ours := "/usr/lib/ocf/resource.d/storhaug/CTDB"
	run := func(n *lab.Node, extra []string, name string, args ...string) (time.Duration, lab.Result) {
		t0 := time.Now()
		r, _ := n.Exec(ctx, append(append([]string(nil), base...), extra...), name, args...)
		return time.Since(t0), r
	}
	n1, n2 := l.Node("n1"), l.Node("n2")
	for _, n := range []*lab.Node{n1, n2} {
		if d, r := run(n, nil, ours, "start"); r.Code != 0 {
			b.Fatalf("start on %s: %d %s", n.Name(), r.Code, r.Output())
		} else {
			b.Logf("start on %s: %v", n.Name(), d.Round(time.Millisecond))
		}
	}
	if err := l.WaitCTDBHealthy(ctx, 2*time.Minute); err != nil {
		b.Fatal(err)
	}
	// Monitors are measured from the host, talking to n1's ctdbd through
	// its socket as the host sees it (CTDB_SOCKET, which the ctdb tool, both
	// agents and storhaug's leader watch honour): no nsenter in the
	// measured time.
	sock, err := n1.Path("/run/ctdb/ctdbd.socket")
	if err != nil {
		b.Fatal(err)
	}
	state := b.TempDir()
	hostEnv := append(os.Environ(), "CTDB_SOCKET="+sock, "OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=ctdb",
		"HA_LOGFACILITY=none", "HA_RSCTMP="+state, "OCF_RESKEY_ctdb_recovery_lock="+lock,
		"OCF_RESKEY_ctdb_socket="+sock, "OCF_RESKEY_CRM_meta_timeout=20000", "OCF_RESKEY_CRM_meta_interval=10000")
	// lastCPU is the CPU time (user + system) of the last host command and
	// of the children it waited for: a cost that depends less on the load
	// of the machine than wall time.
	var lastCPU time.Duration
	host := func(extra []string, name string, args ...string) (time.Duration, lab.Result) {
		cmd := exec.Command(name, args...)
		cmd.Env = append(append([]string(nil), hostEnv...), extra...)
		var so, se strings.Builder
		cmd.Stdout, cmd.Stderr = &so, &se
		t0 := time.Now()
		err := cmd.Run()
		d := time.Since(t0)
		if cmd.ProcessState != nil {
			lastCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		return d, lab.Result{Stdout: so.String(), Stderr: se.String(), Code: code}
	}
	prom := []string{"OCF_RESKEY_CRM_meta_promotable=true"}
	type row struct {
		name string
		run  func() (time.Duration, lab.Result)
		want []int
		ds   []time.Duration
		cpu  []time.Duration
	}
	rows := []*row{
		{name: "/bin/true (process start)", run: func() (time.Duration, lab.Result) { return host(nil, "/bin/true") }, want: []int{0}},
		{name: "floor: ctdb -X nodestatus", run: func() (time.Duration, lab.Result) { return host(nil, "ctdb", "-X", "nodestatus") }, want: []int{0}},
		{name: "heartbeat:CTDB monitor", run: func() (time.Duration, lab.Result) { return host(nil, ctdbShellAgent, "monitor") }, want: []int{0}},
		{name: "storhaug:CTDB monitor (clone)", run: func() (time.Duration, lab.Result) { return host(nil, bin, "agent", "CTDB", "monitor") }, want: []int{0}},
		{name: "storhaug:CTDB monitor (promotable)", run: func() (time.Duration, lab.Result) { return host(prom, bin, "agent", "CTDB", "monitor") }, want: []int{0, 8}},
		{name: "ctdb leader (a leadership check by the tool)", run: func() (time.Duration, lab.Result) { return host(nil, "ctdb", "leader") }, want: []int{0}},
	}
	// The promotable monitor starts its leader watch on its first call:
	// outside the measurement; it is ended at the end.
	rows[4].run()
	defer func() {
		var st struct {
			WatchPID int `json:"watch_pid"`
		}
		if b, err := os.ReadFile(filepath.Join(state, "storhaug-CTDB-ctdb.json")); err == nil && json.Unmarshal(b, &st) == nil && st.WatchPID > 0 {
			if c, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.WatchPID)); err == nil && strings.Contains(string(c), "leader-watch") {
				syscall.Kill(st.WatchPID, syscall.SIGTERM)
			}
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	for i := 0; i < rounds; i++ {
		for _, r := range rows {
			d, res := r.run()
			ok := false
			for _, w := range r.want {
				ok = ok || res.Code == w
			}
			if !ok {
				b.Fatalf("%s: exit %d\n%s", r.name, res.Code, res.Output())
			}
			r.ds = append(r.ds, d)
			r.cpu = append(r.cpu, lastCPU)
		}
	}
	// Start and stop on n2, each agent in turn, same ctdbd binary and config.
	var shellStart, shellStop, ourStart, ourStop []time.Duration
	var breakdown []string
	for i := 0; i < starts; i++ {
		if d, r := run(n2, nil, ours, "stop"); r.Code != 0 {
			b.Fatalf("storhaug stop: %d %s", r.Code, r.Output())
		} else {
			ourStop = append(ourStop, d)
		}
		d, r := run(n2, nil, ctdbShellAgent, "start")
		if r.Code != 0 {
			b.Fatalf("heartbeat start: %d %s", r.Code, r.Output())
		}
		shellStart = append(shellStart, d)
		if err := l.WaitCTDBHealthy(ctx, 2*time.Minute); err != nil {
			b.Fatal(err)
		}
		d, r = run(n2, nil, ctdbShellAgent, "stop")
		if r.Code != 0 {
			b.Fatalf("heartbeat stop: %d %s", r.Code, r.Output())
		}
		shellStop = append(shellStop, d)
		d, r = run(n2, nil, ours, "start")
		if r.Code != 0 {
			b.Fatalf("storhaug start: %d %s", r.Code, r.Output())
		}
		ourStart = append(ourStart, d)
		for _, line := range strings.Split(r.Stderr, "\n") {
			if strings.Contains(line, "ctdbd started") {
				breakdown = append(breakdown, line)
			}
		}
		if err := l.WaitCTDBHealthy(ctx, 2*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	run(n2, nil, ours, "stop")
	run(n1, nil, ours, "stop")

	var out strings.Builder
	w := tabwriter.NewWriter(&out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(w, "CTDB 4.17, 2-node lab, n1's ctdbd from the host (%d rounds, interleaved)\twall median\tp10\tp90\tCPU median\n", rounds)
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%v\t%v\t%v\t%v\n", r.name, ctdbMedian(r.ds).Round(10*time.Microsecond),
			ctdbPct(r.ds, 10).Round(10*time.Microsecond), ctdbPct(r.ds, 90).Round(10*time.Microsecond),
			ctdbMedian(r.cpu).Round(10*time.Microsecond))
	}
	w.Flush()
	shell, floor := ctdbMedian(rows[2].ds), ctdbMedian(rows[1].ds)
	for _, i := range []int{3, 4} {
		m := ctdbMedian(rows[i].ds)
		fmt.Fprintf(&out, "%s: wall %.1fx cheaper than heartbeat:CTDB (target >= 50x: %v), %.2fx the floor (target <= 1.5x: %v)\n",
			rows[i].name, float64(shell)/float64(m), float64(shell)/float64(m) >= 50, float64(m)/float64(floor), float64(m)/float64(floor) <= 1.5)
		c, cs, cf := ctdbMedian(rows[i].cpu), ctdbMedian(rows[2].cpu), ctdbMedian(rows[1].cpu)
		fmt.Fprintf(&out, "%s: CPU %.1fx less than heartbeat:CTDB, %.2fx the floor's\n", rows[i].name, float64(cs)/float64(c), float64(c)/float64(cf))
	}
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&out, "machine load average during the run: %s", l)
	}
	fmt.Fprintf(&out, "start on n2 (until the node is healthy), median of %d: heartbeat:CTDB %v, storhaug:CTDB %v\n",
		starts, ctdbMedian(shellStart).Round(time.Millisecond), ctdbMedian(ourStart).Round(time.Millisecond))
	fmt.Fprintf(&out, "stop on n2, median of %d: heartbeat:CTDB %v, storhaug:CTDB %v\n",
		starts, ctdbMedian(shellStop).Round(time.Millisecond), ctdbMedian(ourStop).Round(time.Millisecond))
	for _, l := range breakdown {
		fmt.Fprintf(&out, "storhaug start breakdown: %s\n", strings.TrimSpace(l))
	}
	b.Log("\n" + out.String())
	fmt.Print(out.String())
}

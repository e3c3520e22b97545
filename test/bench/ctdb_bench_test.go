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
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/internal/ocftest"
	"github.com/storhaug/storhaug/internal/proc"
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

// ctdbShared is the lab the CTDB benchmarks share: brought up by the first
// of them, with storhaug's agent running ctdbd on both nodes, and torn down
// by TestMain (ctdbLabDown) when every benchmark is done.
var ctdbShared struct {
	once   sync.Once
	err    error
	l      *lab.Lab
	bin    string
	lock   string
	cancel context.CancelFunc
	ctx    context.Context
}

// ctdbOurs is storhaug's CTDB agent as the lab nodes see it.
const ctdbOurs = "/usr/lib/ocf/resource.d/storhaug/CTDB"

// ctdbBase is the environment of every agent run in the nodes.
func ctdbBase() []string {
	return []string{"OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=ctdb", "HA_LOGFACILITY=none",
		"OCF_RESKEY_ctdb_recovery_lock=" + ctdbShared.lock, "OCF_RESKEY_CRM_meta_timeout=90000"}
}

// ctdbRun runs a command in lab node n and returns its wall time.
func ctdbRun(n *lab.Node, extra []string, name string, args ...string) (time.Duration, lab.Result) {
	t0 := time.Now()
	r, _ := n.Exec(ctdbShared.ctx, append(ctdbBase(), extra...), name, args...)
	return time.Since(t0), r
}

// ctdbLab returns the shared lab, bringing it up on first use.
func ctdbLab(b *testing.B) *lab.Lab {
	b.Helper()
	need.Root(b, "the lab")
	need.File(b, ctdbShellAgent, "resource-agents")
	ctdbShared.once.Do(func() {
		ctdbShared.bin = ocftest.Binary(b)
		ctdbShared.ctx, ctdbShared.cancel = context.WithTimeout(context.Background(), 60*time.Minute)
		prefix := "ctdbb" + strconv.Itoa(os.Getpid()%10000)
		// The lab outlives this benchmark: it logs to stderr, not to b.
		logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "lab: "+format+"\n", args...) }
		l, err := lab.Up(ctdbShared.ctx, lab.Options{Prefix: prefix, Nodes: 2, Clients: 1, Storhaug: ctdbShared.bin,
			Pacemaker: lab.Off, CTDB: lab.Prepared, Guard: true, Logf: logf})
		if err != nil {
			ctdbShared.err = err
			return
		}
		ctdbShared.l = l
		ctdbShared.lock = l.ClusterLock()
		for _, n := range []*lab.Node{l.Node("n1"), l.Node("n2")} {
			if d, r := ctdbRun(n, nil, ctdbOurs, "start"); r.Code != 0 {
				ctdbShared.err = fmt.Errorf("start on %s: %d %s", n.Name(), r.Code, r.Output())
				return
			} else {
				logf("start on %s: %v", n.Name(), d.Round(time.Millisecond))
			}
		}
		ctdbShared.err = l.WaitCTDBHealthy(ctdbShared.ctx, 2*time.Minute)
	})
	if ctdbShared.err != nil {
		b.Fatal(ctdbShared.err)
	}
	return ctdbShared.l
}

// ctdbLabDown stops ctdbd and tears the shared lab down, if it is up.
func ctdbLabDown() {
	if ctdbShared.l == nil {
		return
	}
	for _, n := range []string{"n2", "n1"} {
		ctdbRun(ctdbShared.l.Node(n), nil, ctdbOurs, "stop")
	}
	ctdbShared.l.Down()
	ctdbShared.cancel()
}

// BenchmarkCTDB measures, interleaved, against lab node n1's ctdbd: the
// monitor of the shell agent, of storhaug's agent as a plain clone and as
// a promotable clone (leadership from the leader watch), the floor (ctdb
// -X nodestatus), "ctdb leader" and a bare process start (/bin/true). One
// op is one round of all of them (make bench runs 30). Targets: monitor at
// least 50x cheaper than the shell agent's and within 1.5x of the floor.
func BenchmarkCTDB(b *testing.B) {
	l := ctdbLab(b)
	bin, lock := ctdbShared.bin, ctdbShared.lock
	n1 := l.Node("n1")
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
			if args, err := proc.Cmdline(st.WatchPID); err == nil && slices.Contains(args, "leader-watch") {
				syscall.Kill(st.WatchPID, syscall.SIGTERM)
			}
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	rounds := b.N
	b.ResetTimer()
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
	b.StopTimer()
	var out strings.Builder
	w := tabwriter.NewWriter(&out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(w, "CTDB 4.17, 2-node lab, n1's ctdbd from the host (%d rounds, interleaved)\twall median\tp10\tp90\tCPU median\n", rounds)
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%v\t%v\t%v\t%v\n", r.name, ctdbMedian(r.ds).Round(10*time.Microsecond),
			ctdbPct(r.ds, 10).Round(10*time.Microsecond), ctdbPct(r.ds, 90).Round(10*time.Microsecond),
			ctdbMedian(r.cpu).Round(10*time.Microsecond))
	}
	w.Flush()
	for _, r := range rows {
		b.ReportMetric(float64(ctdbMedian(r.ds).Microseconds())/1000, strings.NewReplacer(" ", "-", "(", "", ")", "", ":", "").Replace(r.name)+"-ms")
	}
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
	b.Log("\n" + out.String())
	fmt.Print(out.String())
}

// BenchmarkCTDBStartStop: on lab node n2, each agent in turn with the same
// ctdbd binary and configuration, stop and start until the node is
// healthy; one op is one such cycle of both (make bench runs 3). It prints
// where storhaug's start spends its time.
func BenchmarkCTDBStartStop(b *testing.B) {
	l := ctdbLab(b)
	n2 := l.Node("n2")
	starts := b.N
	b.ResetTimer()
	// Start and stop on n2, each agent in turn, same ctdbd binary and config.
	var shellStart, shellStop, ourStart, ourStop []time.Duration
	var breakdown []string
	for i := 0; i < starts; i++ { // each ends with storhaug's ctdbd running and healthy
		if d, r := ctdbRun(n2, nil, ctdbOurs, "stop"); r.Code != 0 {
			b.Fatalf("storhaug stop: %d %s", r.Code, r.Output())
		} else {
			ourStop = append(ourStop, d)
		}
		d, r := ctdbRun(n2, nil, ctdbShellAgent, "start")
		if r.Code != 0 {
			b.Fatalf("heartbeat start: %d %s", r.Code, r.Output())
		}
		shellStart = append(shellStart, d)
		if err := l.WaitCTDBHealthy(ctdbShared.ctx, 2*time.Minute); err != nil {
			b.Fatal(err)
		}
		d, r = ctdbRun(n2, nil, ctdbShellAgent, "stop")
		if r.Code != 0 {
			b.Fatalf("heartbeat stop: %d %s", r.Code, r.Output())
		}
		shellStop = append(shellStop, d)
		d, r = ctdbRun(n2, nil, ctdbOurs, "start")
		if r.Code != 0 {
			b.Fatalf("storhaug start: %d %s", r.Code, r.Output())
		}
		ourStart = append(ourStart, d)
		for _, line := range strings.Split(r.Stderr, "\n") {
			if strings.Contains(line, "ctdbd started") {
				breakdown = append(breakdown, line)
			}
		}
		if err := l.WaitCTDBHealthy(ctdbShared.ctx, 2*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var out strings.Builder
	fmt.Fprintf(&out, "start on n2 (until the node is healthy), median of %d: heartbeat:CTDB %v, storhaug:CTDB %v\n",
		starts, ctdbMedian(shellStart).Round(time.Millisecond), ctdbMedian(ourStart).Round(time.Millisecond))
	fmt.Fprintf(&out, "stop on n2, median of %d: heartbeat:CTDB %v, storhaug:CTDB %v\n",
		starts, ctdbMedian(shellStop).Round(time.Millisecond), ctdbMedian(ourStop).Round(time.Millisecond))
	b.ReportMetric(float64(ctdbMedian(shellStart).Milliseconds()), "heartbeat-start-ms")
	b.ReportMetric(float64(ctdbMedian(ourStart).Milliseconds()), "storhaug-start-ms")
	b.ReportMetric(float64(ctdbMedian(shellStop).Milliseconds()), "heartbeat-stop-ms")
	b.ReportMetric(float64(ctdbMedian(ourStop).Milliseconds()), "storhaug-stop-ms")
	for _, l := range breakdown {
		fmt.Fprintf(&out, "storhaug start breakdown: %s\n", strings.TrimSpace(l))
	}
	b.Log("\n" + out.String())
	fmt.Print(out.String())
}

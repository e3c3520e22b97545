package stacks

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/internal/ocftest"
	"github.com/storhaug/storhaug/test/lab"
)

// The stacks' tests each bring up a lab of their own (prefix
// $STORHAUG_LAB_PREFIX): the kernel-client lab of test/kclient, configured
// into the stack instead of storhaug's setup.

var bins struct {
	once               sync.Once
	dir                string
	storhaug, workload string
	err                error
}

func build(t *testing.T) (storhaug, workload string) {
	bins.once.Do(func() {
		bins.dir, bins.err = os.MkdirTemp("", "storhaug-stacks-")
		if bins.err != nil {
			return
		}
		bins.storhaug = filepath.Join(bins.dir, "storhaug")
		bins.workload = filepath.Join(bins.dir, "workload")
		if bins.err = goBuild(bins.storhaug, "github.com/storhaug/storhaug", ocftest.BuildTags); bins.err != nil {
			return
		}
		bins.err = goBuild(bins.workload, "github.com/storhaug/storhaug/test/workload")
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.storhaug, bins.workload
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

func goBuild(out, pkg string, tags ...string) error {
	gobin := "go"
	if _, err := exec.LookPath(gobin); err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	args := []string{"build"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command(gobin, append(args, "-o", out, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// stackLab brings up the kernel-client lab and configures it into st. The
// lab goes down when the test ends; anything it leaves fails the test.
func stackLab(t *testing.T, ctx context.Context, st Stack) *lab.Lab {
	t.Helper()
	need.Root(t, "the lab")
	need.File(t, "/usr/bin/linux.uml", "user-mode-linux")
	need.Tool(t, "mount.cifs", "cifs-utils")
	need.Tool(t, "mount.nfs", "nfs-common")
	need.Tool(t, "ethtool", "ethtool")
	storhaug, workload := build(t)
	l, err := lab.Up(ctx, lab.Options{
		Prefix: lab.DefaultPrefix(), Nodes: 3, Clients: 1, KernelClients: 1, Storhaug: storhaug,
		Pacemaker: lab.Started, DBus: lab.Started,
		CTDB: lab.Prepared, Samba: lab.Prepared, Ganesha: lab.Prepared,
		Guard: true, Logf: logf,
	})
	t.Cleanup(func() {
		if l == nil {
			return
		}
		if t.Failed() {
			var b strings.Builder
			l.DumpLogs(&b, 40)
			for _, g := range l.Guests() {
				fmt.Fprintf(&b, "----- guest %s console -----\n%s\n", g.Name(), g.Console(60))
			}
			t.Logf("lab logs:\n%s", b.String())
		}
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if left := l.Leftovers(); len(left) > 0 {
			t.Errorf("lab left behind: %s", strings.Join(left, ", "))
		}
	})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	for _, g := range l.Guests() {
		b, err := os.ReadFile(workload)
		if err == nil {
			err = os.WriteFile(filepath.Join(g.Dir(), "workload"), b, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	if err := st.Setup(ctx, l); err != nil {
		t.Fatalf("%s: setup: %v", st.Name(), err)
	}
	t.Logf("%s set up in %.1fs; VIPs %v", st.Name(), time.Since(t0).Seconds(), st.VIPs())
	return l
}

// mountSpec is how the kernel client mounts one protocol through a VIP
// (the options test/kclient uses: hard mounts, NFS over TCP with a short
// retransmit timeout).
type mountSpec struct {
	proto, fstype, source, opts, fresh string
}

func mounts(vip string, protocols []string) []mountSpec {
	nfs := vip + ":" + lab.ExportPseudo
	smb := "//" + vip + "/" + lab.ShareName
	var ms []mountSpec
	for _, p := range protocols {
		switch p {
		case "nfs":
			ms = append(ms,
				mountSpec{"nfs4.2", "nfs", nfs, "vers=4.2,hard,timeo=10", "vers=4.2,hard,timeo=10,nosharecache"},
				mountSpec{"nfs3", "nfs", nfs, "vers=3,hard,timeo=10,proto=tcp,mountproto=tcp", "vers=3,hard,timeo=10,proto=tcp,mountproto=tcp,nosharecache"})
		case "smb":
			ms = append(ms, mountSpec{"smb3", "cifs", smb, "vers=3.1.1,guest,hard", "vers=3.1.1,guest,hard,nosharesock"})
		}
	}
	return ms
}

func mount(ctx context.Context, g *lab.Guest, fstype, source, opts, dir string) error {
	r, err := g.Sh(ctx, fmt.Sprintf("mkdir -p %s && mount -t %s -o %s %s %s", dir, fstype, opts, source, dir))
	if err != nil {
		return fmt.Errorf("mount -t %s -o %s %s %s: %v %s", fstype, opts, source, dir, err, r.Output())
	}
	return nil
}

// report is the part of test/workload's check output the test reads.
type report struct {
	Proto    string   `json:"proto"`
	Acked    int      `json:"acked"`
	Lost     int      `json:"lost"`
	Corrupt  int      `json:"corrupt"`
	OutageS  float64  `json:"outage_s"`
	NewOpenS float64  `json:"newopen_s"`
	Locks    string   `json:"locks"`
	Problems []string `json:"problems"`
}

// progress counts a workload's acknowledgments and new opens begun at or
// after since (Unix ns), from its log in the guest's lab directory.
func progress(g *lab.Guest, proto string, since int64) (acks, opens int) {
	b, _ := os.ReadFile(filepath.Join(g.Dir(), proto+".log"))
	for _, line := range strings.Split(string(b), "\n") {
		var e struct {
			Ev    string `json:"ev"`
			Start int64  `json:"start"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Start < since {
			continue
		}
		switch e.Ev {
		case "ack":
			acks++
		case "newopen":
			opens++
		}
	}
	return
}

// crash runs the workload on every protocol st serves (or those given) through the VIP
// that victim holds, crashes victim (link cut, every process killed),
// waits until the VIP is on another node and every workload writes and
// opens again, checks every acknowledged record through fresh mounts, and
// returns the reports.
func crash(t *testing.T, ctx context.Context, l *lab.Lab, st Stack, victim string, protocols ...string) []report {
	g := l.Guest(1)
	vip := ""
	for a, n := range st.VIPs() {
		if n == victim {
			vip = a
		}
	}
	if vip == "" {
		t.Fatalf("%s: no VIP on %s: %v", st.Name(), victim, st.VIPs())
	}
	if protocols == nil {
		protocols = st.Protocols()
	}
	ms := mounts(vip, protocols)
	stamp := time.Now().Format("150405")
	wdir := func(base string, m mountSpec) string {
		return fmt.Sprintf("%s/%s/st-%s-%s-%s", base, m.proto, st.Name(), m.proto, stamp)
	}
	for _, m := range ms {
		if err := mount(ctx, g, m.fstype, m.source, m.opts, "/tmp/m/"+m.proto); err != nil {
			t.Fatal(err)
		}
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	type ended struct {
		r   lab.Result
		err error
	}
	results := map[string]chan ended{}
	for _, m := range ms {
		ch := make(chan ended, 1)
		results[m.proto] = ch
		go func() {
			r, err := g.Run(wctx, lab.GuestLabDir+"/workload", "run", "-dir", wdir("/tmp/m", m),
				"-log", lab.GuestLabDir+"/"+m.proto+".log", "-stop", "/tmp/stop")
			ch <- ended{r, err}
		}()
	}
	for _, m := range ms {
		err := l.WaitFor(ctx, m.proto+" workload running", time.Minute, func() (bool, error) {
			if acks, opens := progress(g, m.proto, 0); acks < 20 || opens < 2 {
				return false, fmt.Errorf("%d acks, %d new opens", acks, opens)
			}
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The stack knows the client's connections to the VIP (what its
	// tickles after a move are made from).
	err := l.WaitFor(ctx, "the client's connections recorded", time.Minute, func() (bool, error) {
		return st.Tracked(ctx, l, vip, g.Addr4())
	})
	if err != nil {
		t.Fatal(err)
	}

	fault := time.Now()
	if err := l.CutLink(victim); err != nil {
		t.Fatal(err)
	}
	if err := l.Crash(victim); err != nil {
		t.Fatal(err)
	}
	heir := ""
	err = l.WaitFor(ctx, vip+" on a survivor", 3*time.Minute, func() (bool, error) {
		h, err := Holders(l, vip)
		if err != nil {
			return false, err
		}
		if heir = h[vip]; heir == "" || heir == victim {
			return false, fmt.Errorf("%s on %q", vip, heir)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s on %s %.1fs after the crash of %s", st.Name(), vip, heir, time.Since(fault).Seconds(), victim)

	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.WaitFor(ctx, m.proto+" recovered", 4*time.Minute, func() (bool, error) {
				if acks, opens := progress(g, m.proto, fault.UnixNano()); acks == 0 || opens == 0 {
					return false, fmt.Errorf("%d acks, %d new opens since the crash", acks, opens)
				}
				return true, nil
			})
			if err != nil {
				t.Errorf("%s: %v", m.proto, err)
			}
		}()
	}
	wg.Wait()

	probes := map[string]string{}
	for _, m := range ms {
		if err := mount(ctx, g, m.fstype, m.source, m.fresh, "/tmp/f/"+m.proto); err != nil {
			t.Errorf("fresh %v", err)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		r, err := g.Run(pctx, lab.GuestLabDir+"/workload", "probelock", "-file", wdir("/tmp/f", m)+"/lock")
		cancel()
		if err != nil {
			t.Errorf("%s: lock probe: %v %s", m.proto, err, r.Output())
			continue
		}
		probes[m.proto] = strings.TrimSpace(r.Stdout)
	}
	if r, err := g.Run(ctx, "touch", "/tmp/stop"); err != nil {
		t.Fatalf("stop the workloads: %v %s", err, r.Output())
	}
	for _, m := range ms {
		select {
		case e := <-results[m.proto]:
			if e.err != nil {
				t.Errorf("%s workload: %v %s", m.proto, e.err, e.r.Output())
			}
		case <-time.After(2 * time.Minute):
			t.Errorf("%s workload did not stop within 2 minutes", m.proto)
		}
	}
	var reps []report
	for _, m := range ms {
		if _, ok := probes[m.proto]; !ok {
			continue
		}
		// Bounded: a read through a fresh mount that never returns is
		// this protocol's failure, not the end of the test.
		cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		r, err := g.Run(cctx, lab.GuestLabDir+"/workload", "check", "-dir", wdir("/tmp/f", m),
			"-log", lab.GuestLabDir+"/"+m.proto+".log", "-proto", m.proto,
			"-fault", fmt.Sprint(fault.UnixNano()), "-probe", probes[m.proto])
		cancel()
		if err != nil {
			t.Errorf("%s: check: %v %s", m.proto, err, r.Output())
			continue
		}
		var rep report
		if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
			t.Errorf("%s: check output %q: %v", m.proto, r.Stdout, err)
			continue
		}
		t.Logf("%s %s: %s", st.Name(), m.proto, strings.TrimSpace(r.Stdout))
		if rep.Acked == 0 || rep.Lost != 0 || rep.Corrupt != 0 {
			t.Errorf("%s: %d acknowledged, %d lost, %d corrupt: %v", m.proto, rep.Acked, rep.Lost, rep.Corrupt, rep.Problems)
		}
		if rep.OutageS < 0 || rep.NewOpenS < 0 {
			t.Errorf("%s: never recovered (outage_s %v, newopen_s %v)", m.proto, rep.OutageS, rep.NewOpenS)
		}
		reps = append(reps, rep)
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-16s %-7s %6s %5s %8s %9s %10s %s\n", "stack", "proto", "acked", "lost", "corrupt", "outage_s", "newopen_s", "locks")
	for _, r := range reps {
		fmt.Fprintf(&table, "%-16s %-7s %6d %5d %8d %9.1f %10.1f %s\n", st.Name(), r.Proto, r.Acked, r.Lost, r.Corrupt, r.OutageS, r.NewOpenS, r.Locks)
	}
	t.Logf("crash of %s (holder of %s) under a kernel client:\n%s", victim, vip, table.String())
	return reps
}

// heal plugs victim's cables back in, recovers it (the lab boots it and starts what its services say,
// ctdbd too for the CTDB stack) and waits until the stack is at rest again,
// serving through every VIP.
func heal(t *testing.T, ctx context.Context, l *lab.Lab, st Stack, victim string) {
	t.Helper()
	t0 := time.Now()
	if err := l.RestoreLink(victim); err != nil {
		t.Fatal(err)
	}
	if err := l.Recover(ctx, victim); err != nil {
		t.Fatal(err)
	}
	ports := []int{lab.SMBPort}
	if slices.Contains(st.Protocols(), "nfs") {
		ports = append(ports, lab.GaneshaPort)
	}
	rest := st.(interface{ atRest(map[string]string) error }).atRest
	where, err := waitServed(ctx, l, ports, rest, 4*time.Minute)
	if err != nil {
		t.Fatalf("%s after %s came back: %v", st.Name(), victim, err)
	}
	t.Logf("%s: %s back, VIPs at rest %v, %.1fs after Recover began", st.Name(), victim, where, time.Since(t0).Seconds())
	if got := st.VIPs(); !maps.Equal(got, where) {
		t.Errorf("%s: VIPs() %v, the nodes hold %v", st.Name(), got, where)
	}
}

// shipped are CTDB's tunables as ctdb-tunables(7) documents their
// defaults (the lab's own ctdb.tunables shortens them).
var shipped = map[string]int{"KeepaliveInterval": 5, "KeepaliveLimit": 5, "RerecoveryTimeout": 10}

// labTunables are the lab's: the same for every stack in the "tunables
// same" runs.
var labTunables = map[string]int{"KeepaliveInterval": 2, "KeepaliveLimit": 3, "RerecoveryTimeout": 2}

// checkTunables: every running ctdbd has the tunables want.
func checkTunables(t *testing.T, ctx context.Context, l *lab.Lab, want map[string]int) {
	t.Helper()
	for _, n := range l.Nodes() {
		for name, v := range want {
			out, err := run(ctx, n, "ctdb", "getvar", name)
			if err != nil {
				t.Fatal(err)
			}
			// "KeepaliveInterval          = 5"
			if f := strings.Fields(out); len(f) != 3 || f[0] != name || f[2] != fmt.Sprint(v) {
				t.Errorf("%s: %q, want %s = %d", n.Name(), strings.TrimSpace(out), name, v)
			}
		}
	}
}

// TestResourceAgentsCrash: the resource-agents stack as shipped (CTDB's
// tunables, ganesha's grace) serves SMB3, NFSv4.2 and NFSv3 through n3's
// VIP; n3 crashes; the VIP comes back on a survivor and every client's I/O
// and new opens resume, nothing acknowledged lost.
func TestResourceAgentsCrash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	st := ResourceAgents(Options{})
	l := stackLab(t, ctx, st)
	checkTunables(t, ctx, l, shipped)
	crash(t, ctx, l, st, "n3")
	heal(t, ctx, l, st, "n3")
}

// TestResourceAgentsCrashTunablesSame: the same with the lab's CTDB
// tunables, SMB only (NFS waits out ganesha's grace whatever CTDB does).
func TestResourceAgentsCrashTunablesSame(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	st := ResourceAgents(Options{CTDBTunables: labTunables})
	l := stackLab(t, ctx, st)
	checkTunables(t, ctx, l, labTunables)
	crash(t, ctx, l, st, "n3", "smb")
	heal(t, ctx, l, st, "n3")
}

// TestCTDBCrash: the CTDB-native stack as shipped serves SMB3 through the
// VIP CTDB gave n3; n3 crashes; CTDB moves the address and the client's
// I/O resumes.
func TestCTDBCrash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	st := CTDB(Options{})
	l := stackLab(t, ctx, st)
	checkTunables(t, ctx, l, shipped)
	crash(t, ctx, l, st, "n3")
	heal(t, ctx, l, st, "n3")
}

// TestCTDBCrashTunablesSame: the same with the lab's CTDB tunables.
func TestCTDBCrashTunablesSame(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	st := CTDB(Options{CTDBTunables: labTunables})
	l := stackLab(t, ctx, st)
	checkTunables(t, ctx, l, labTunables)
	crash(t, ctx, l, st, "n3")
	heal(t, ctx, l, st, "n3")
}

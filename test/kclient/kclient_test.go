package kclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storhaug/storhaug/setup"
	"github.com/storhaug/storhaug/test/lab"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// mountSpec is how a kernel client mounts one protocol through a VIP.
type mountSpec struct {
	proto  string // nfs4.2, nfs4.1, nfs3, smb3
	fstype string
	source string
	opts   string // the application's mount
	fresh  string // a second, independent mount for the checks
}

// mounts are the four mounts through vip, with the options an admin uses
// for HA: hard (never an error to the application for a server that is
// away), NFS over TCP with a short retransmit timeout; SMB 3.1.1 with
// hard. The fresh mounts share no cache (NFS) or connection (SMB) with the
// application's.
func mounts(vip string) []mountSpec {
	nfs := vip + ":" + lab.ExportPseudo
	smb := "//" + vip + "/" + lab.ShareName
	return []mountSpec{
		{"nfs4.2", "nfs", nfs, "vers=4.2,hard,timeo=10", "vers=4.2,hard,timeo=10,nosharecache"},
		{"nfs4.1", "nfs", nfs, "vers=4.1,hard,timeo=10", "vers=4.1,hard,timeo=10,nosharecache"},
		{"nfs3", "nfs", nfs, "vers=3,hard,timeo=10,proto=tcp,mountproto=tcp", "vers=3,hard,timeo=10,proto=tcp,mountproto=tcp,nosharecache"},
		{"smb3", "cifs", smb, "vers=3.1.1,guest,hard", "vers=3.1.1,guest,hard,nosharesock"},
	}
}

// mount mounts m on dir in the guest (a tmpfs of the guest) and returns how
// long mount(8) took.
func mount(ctx context.Context, g *lab.Guest, fstype, source, opts, dir string) (time.Duration, error) {
	if r, err := g.Run(ctx, "mkdir", "-p", dir); err != nil {
		return 0, fmt.Errorf("mkdir %s: %v %s", dir, err, r.Output())
	}
	t0 := time.Now()
	try := func() error {
		r, err := g.Run(ctx, "mount", "-t", fstype, "-o", opts, source, dir)
		if err != nil {
			return fmt.Errorf("mount -t %s -o %s %s %s: %v %s", fstype, opts, source, dir, err, r.Output())
		}
		return nil
	}
	if fstype != "cifs" {
		err := try()
		return time.Since(t0), err
	}
	// smbd is started by CTDB once CTDB is healthy, which may come after
	// the resources run: a refused connection is retried for a while.
	var hard error
	err := lab.WaitFor(ctx, "smbd to accept "+source, 90*time.Second, func() (bool, error) {
		err := try()
		if err != nil && !strings.Contains(err.Error(), "could not connect") {
			hard = err
			return true, nil
		}
		return err == nil, err
	})
	if hard != nil {
		return 0, hard
	}
	return time.Since(t0), err
}

// hostDir is where a protocol's files land on the shared storage.
func hostDir(l *lab.Lab, proto string) string {
	if proto == "smb3" {
		return l.ShareDir()
	}
	return l.ExportDir()
}

// TestKernelClientMounts: the guest is a client of its own (hostname, NFSv4
// identity), and mounts every protocol through a VIP: a write lands on the
// shared storage, a lock is granted (NFSv3: through the guest's statd and
// ganesha's NLM), the mount goes away cleanly.
func TestKernelClientMounts(t *testing.T) {
	l := kernelLab(t)
	g := l.Guest(1)
	ctx := ctxFor(t, 5*time.Minute)
	t.Logf("guest %s booted in %.1fs; storhaug set up in %.1fs", g.Name(), g.BootTime().Seconds(), fixture.setupAt.Seconds())

	r, err := g.Run(ctx, "hostname")
	if err != nil || strings.TrimSpace(r.Stdout) != g.Hostname() {
		t.Errorf("hostname: %q %v, want %s", r.Stdout, err, g.Hostname())
	}
	r, err = g.Run(ctx, "cat", "/sys/module/nfs/parameters/nfs4_unique_id")
	if id := strings.TrimSpace(r.Stdout); err != nil || !strings.Contains(id, g.Hostname()) {
		t.Errorf("nfs4_unique_id %q %v: want one naming %s", id, err, g.Hostname())
	}
	// The guest's root is the host's, read-only: it cannot write there.
	if r, err := g.Sh(ctx, "echo x > /var/tmp/storhaug-guest-write-test"); err == nil {
		os.Remove("/var/tmp/storhaug-guest-write-test")
		t.Errorf("the guest wrote to the host's /var/tmp: %s", r.Output())
	}

	// A running guest is something the lab would leave behind if Down
	// did not kill it: Leftovers names it.
	found := false
	for _, x := range lab.Leftovers(l.Prefix()) {
		found = found || strings.HasPrefix(x, fmt.Sprintf("process %d (storhaug-lab-guest:", g.Pid()))
	}
	if !found {
		t.Errorf("Leftovers does not report the running guest (pid %d): %v", g.Pid(), lab.Leftovers(l.Prefix()))
	}

	vip := "198.51.100.201"
	stamp := time.Now().Format("150405.000")
	for _, m := range mounts(vip) {
		dir := "/tmp/mounts/" + m.proto
		d, err := mount(ctx, g, m.fstype, m.source, m.opts, dir)
		if err != nil {
			t.Errorf("%s: %v", m.proto, err)
			continue
		}
		name := fmt.Sprintf("kc-mount-%s-%s", m.proto, stamp)
		content := fmt.Sprintf("%s-from-%s", m.proto, g.Hostname())
		// flock(1) on NFS and CIFS takes a POSIX byte-range lock on the server.
		script := fmt.Sprintf("set -e; printf '%%s' '%s' > %s/%s; sync; flock -n -E 9 %s/%s true", content, dir, name, dir, name)
		if r, err := g.Sh(ctx, script); err != nil {
			t.Errorf("%s: write and lock: %v %s", m.proto, err, r.Output())
		}
		host := filepath.Join(hostDir(l, m.proto), name)
		if b, err := os.ReadFile(host); err != nil || string(b) != content {
			t.Errorf("%s: %s on the shared storage: %q %v, want %q", m.proto, host, b, err, content)
		}
		os.Remove(host)
		if r, err := g.Run(ctx, "umount", dir); err != nil {
			t.Errorf("%s: umount: %v %s", m.proto, err, r.Output())
		}
		t.Logf("%s: mount -o %s %s in %.2fs", m.proto, m.opts, m.source, d.Seconds())
	}

	// Power off and boot again.
	t0 := time.Now()
	if err := g.PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
	if g.Alive() || g.Pid() != 0 {
		t.Fatalf("guest still alive after power-off (pid %d)", g.Pid())
	}
	t.Logf("powered off in %.1fs", time.Since(t0).Seconds())
	if err := g.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("booted again in %.1fs", g.BootTime().Seconds())
}

// report is test/workload's check output.
type report struct {
	Proto    string   `json:"proto"`
	Acked    int      `json:"acked"`
	Lost     int      `json:"lost"`
	Corrupt  int      `json:"corrupt"`
	OutageS  float64  `json:"outage_s"`
	NewOpenS float64  `json:"newopen_s"`
	Locks    string   `json:"locks"`
	Errors   int      `json:"errors"`
	Stalls   int      `json:"stalls"`
	MaxOpS   float64  `json:"max_op_s"`
	Problems []string `json:"problems"`
}

// logEvent is the part of a workload log line the test reads.
type logEvent struct {
	Ev    string `json:"ev"`
	Start int64  `json:"start"`
}

// progress counts a workload's acknowledgments and new opens begun at or
// after since (Unix ns), from its log in the guest's lab directory.
func progress(g *lab.Guest, proto string, since int64) (acks, opens int) {
	b, _ := os.ReadFile(filepath.Join(g.Dir(), proto+".log"))
	for _, line := range strings.Split(string(b), "\n") {
		var e logEvent
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

// TestKernelClientCrash: the guest mounts NFSv4.2, v4.1, v3 and SMB 3.1.1
// through n3's VIP and runs the workload on each; n3 loses power (link
// down, every process killed); the VIP moves to n1. Every workload must go
// on, every acknowledged record must read back intact through a fresh
// mount, and the lock each workload held must still be held, or the
// workload must have been told it lost it.
func TestKernelClientCrash(t *testing.T) {
	l := kernelLab(t)
	g := l.Guest(1)
	ctx := ctxFor(t, 12*time.Minute)
	const vip, victim, heir = "198.51.100.203", "n3", "n1"
	if err := waitVIPs(ctx, l, homes, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	ms := mounts(vip)
	stamp := time.Now().Format("150405")
	wdir := func(base string, m mountSpec) string {
		return fmt.Sprintf("%s/%s/kc-%s-%s", base, m.proto, m.proto, stamp)
	}
	for _, m := range ms {
		d, err := mount(ctx, g, m.fstype, m.source, m.opts, "/tmp/m/"+m.proto)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s mounted through %s in %.2fs", m.proto, vip, d.Seconds())
	}

	// The workloads, one per mount, until /tmp/stop appears in the guest.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	type ended struct {
		r   lab.Result
		err error
	}
	results := make(map[string]chan ended)
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
			acks, opens := progress(g, m.proto, 0)
			if acks >= 20 && opens >= 2 {
				return true, nil
			}
			return false, fmt.Errorf("%d acks, %d new opens", acks, opens)
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// Power-off of the VIP's owner: the link first (a dead machine sends
	// nothing, not even the FINs of its killed processes' sockets).
	fault := time.Now()
	if err := l.CutLink(victim); err != nil {
		t.Fatal(err)
	}
	if err := l.Crash(victim); err != nil {
		t.Fatal(err)
	}
	err := l.WaitFor(ctx, vip+" on "+heir, 2*time.Minute, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		if got := s.RunningOn(setup.VIPID(mustAddr(vip))); len(got) != 1 || got[0] != heir {
			return false, fmt.Errorf("on %v", got)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s started on %s %.1fs after the crash", vip, heir, time.Since(fault).Seconds())

	// Every workload must make progress again: a record and a new open +
	// lock begun after the crash.
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.WaitFor(ctx, m.proto+" recovered", 3*time.Minute, func() (bool, error) {
				acks, opens := progress(g, m.proto, fault.UnixNano())
				if acks > 0 && opens > 0 {
					return true, nil
				}
				return false, fmt.Errorf("%d acks, %d new opens since the crash", acks, opens)
			})
			if err != nil {
				t.Errorf("%s: %v", m.proto, err)
			}
		}()
	}
	wg.Wait()

	// Fresh mounts; while the workloads still hold their locks, a
	// conflicting lock from another process through a fresh mount.
	probes := map[string]string{}
	for _, m := range ms {
		if _, err := mount(ctx, g, m.fstype, m.source, m.fresh, "/tmp/f/"+m.proto); err != nil {
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

	var table strings.Builder
	fmt.Fprintf(&table, "%-7s %6s %5s %8s %9s %10s %-14s %6s %6s\n", "proto", "acked", "lost", "corrupt", "outage_s", "newopen_s", "locks", "errors", "stalls")
	for _, m := range ms {
		if _, ok := probes[m.proto]; !ok {
			continue
		}
		r, err := g.Run(ctx, lab.GuestLabDir+"/workload", "check", "-dir", wdir("/tmp/f", m),
			"-log", lab.GuestLabDir+"/"+m.proto+".log", "-proto", m.proto,
			"-fault", fmt.Sprint(fault.UnixNano()), "-probe", probes[m.proto])
		if err != nil {
			t.Errorf("%s: check: %v %s", m.proto, err, r.Output())
			continue
		}
		var rep report
		if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
			t.Errorf("%s: check output %q: %v", m.proto, r.Stdout, err)
			continue
		}
		fmt.Fprintf(&table, "%-7s %6d %5d %8d %9.1f %10.1f %-14s %6d %6d\n", rep.Proto, rep.Acked, rep.Lost, rep.Corrupt,
			rep.OutageS, rep.NewOpenS, rep.Locks, rep.Errors, rep.Stalls)
		t.Logf("%s: %s", m.proto, strings.TrimSpace(r.Stdout))
		if rep.Acked == 0 || rep.Lost != 0 || rep.Corrupt != 0 {
			t.Errorf("%s: %d acknowledged, %d lost, %d corrupt: %v", m.proto, rep.Acked, rep.Lost, rep.Corrupt, rep.Problems)
		}
		if rep.Locks != "kept" && rep.Locks != "reported-lost" {
			t.Errorf("%s: lock %s (probe through a fresh mount: %s)", m.proto, rep.Locks, probes[m.proto])
		}
		if rep.OutageS < 0 || rep.NewOpenS < 0 {
			t.Errorf("%s: never recovered (outage_s %v, newopen_s %v)", m.proto, rep.OutageS, rep.NewOpenS)
		}
	}
	t.Logf("crash of %s (owner of %s) under kernel clients:\n%s", victim, vip, table.String())
}

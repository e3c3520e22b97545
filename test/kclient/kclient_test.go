package kclient

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/test/lab"
	"github.com/storhaug/storhaug/test/scenario"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
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
	for _, m := range scenario.Mounts(vip) {
		dir := "/tmp/mounts/" + m.Proto
		d, err := scenario.MountIn(ctx, g, m.FSType, m.Source, m.Opts, dir)
		if err != nil {
			t.Errorf("%s: %v", m.Proto, err)
			continue
		}
		name := fmt.Sprintf("kc-mount-%s-%s", m.Proto, stamp)
		content := fmt.Sprintf("%s-from-%s", m.Proto, g.Hostname())
		// flock(1) on NFS and CIFS takes a POSIX byte-range lock on the server.
		script := fmt.Sprintf("set -e; printf '%%s' '%s' > %s/%s; sync; flock -n -E 9 %s/%s true", content, dir, name, dir, name)
		if r, err := g.Sh(ctx, script); err != nil {
			t.Errorf("%s: write and lock: %v %s", m.Proto, err, r.Output())
		}
		// A bulk write and read back: the server's replies reach the
		// guest whole (a dropped frame shows as the server's
		// retransmissions and in the guest's console).
		out0, re0 := tcpCounters(t, ctx, l.Node("n1"))
		bulk := fmt.Sprintf("set -e; dd if=/dev/urandom of=%s/%s.bulk bs=64k count=64 conv=fsync 2>/dev/null; echo 3 > /proc/sys/vm/drop_caches; "+
			"dd if=%s/%s.bulk of=/dev/null bs=64k 2>/dev/null; rm %s/%s.bulk", dir, name, dir, name, dir, name)
		if r, err := g.Sh(ctx, bulk); err != nil {
			t.Errorf("%s: bulk write and read: %v %s", m.Proto, err, r.Output())
		}
		out1, re1 := tcpCounters(t, ctx, l.Node("n1"))
		if sent, re := out1-out0, re1-re0; sent <= 0 || re*100 > sent {
			t.Errorf("%s: n1 retransmitted %d of %d TCP segments for 4 MiB written and read back (at most 1%% on a lossless bridge)", m.Proto, re, sent)
		} else {
			t.Logf("%s: 4 MiB written and read back: n1 retransmitted %d of %d TCP segments", m.Proto, re, sent)
		}
		host := filepath.Join(hostDir(l, m.Proto), name)
		if b, err := os.ReadFile(host); err != nil || string(b) != content {
			t.Errorf("%s: %s on the shared storage: %q %v, want %q", m.Proto, host, b, err, content)
		}
		os.Remove(host)
		if r, err := g.Run(ctx, "umount", dir); err != nil {
			t.Errorf("%s: umount: %v %s", m.Proto, err, r.Output())
		}
		t.Logf("%s: mount -o %s %s in %.2fs", m.Proto, m.Opts, m.Source, d.Seconds())
	}

	if c := g.Console(2000); strings.Contains(c, "GSO frames and GRO disabled") {
		t.Errorf("the guest dropped frames larger than its receive buffers (console: \"Incoming GSO frames and GRO disabled on the interface\")")
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

// TestKernelClientCrash: the guest mounts NFSv4.2, v4.1, v3 and SMB 3.1.1
// through n3's VIP and runs the workload on each; n3 loses power (link
// down, every process killed); the VIP moves. Every workload must go on,
// every acknowledged record must read back intact through a fresh mount,
// and the lock each workload held must still be held, or the workload must
// have been told it lost it; no VIP on two nodes, never two CTDB leaders;
// n3, fenced, comes back and the cluster settles with every resource
// started (scenario.Run).
func TestKernelClientCrash(t *testing.T) { runFault(t, scenario.Crash) }

// TestKernelClientFault runs every other fault of package scenario the
// same way, one subtest each (make test runs linkcut, partition and
// kill-ipaddr3; make failover-test the others).
func TestKernelClientFault(t *testing.T) {
	for _, f := range scenario.Faults {
		if f == scenario.Crash {
			continue
		}
		t.Run(f, func(t *testing.T) { runFault(t, f) })
	}
}

// runFault runs one fault under the kernel client and fails the test for
// every invariant it broke.
func runFault(t *testing.T, fault string) *scenario.Outcome {
	l := kernelLab(t)
	ctx := ctxFor(t, 15*time.Minute)
	o, err := scenario.Run(ctx, l, stack, fault, scenario.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s of %s (owner of %s; VIP then on %q) at %s; detect %s, fence %s; %d ARP rounds, %d CTDB leader rounds:\n%s",
		fault, o.Victim, o.VIP, o.Heir, o.At.Format("15:04:05.000"), secs(o.DetectS), secs(o.FenceS), o.ARPWindows, o.LeaderSamples,
		scenario.Table(scenario.Aggregate([]*scenario.Outcome{o}, 300)))
	for _, r := range o.Results {
		if r.LocksHealed != r.Locks {
			t.Logf("%s: lock %s after the %s, %s once healed and settled", r.Proto, r.Locks, fault, r.LocksHealed)
		}
	}
	for _, p := range o.Problems() {
		t.Error(p)
	}
	return o
}

func secs(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("+%.2fs", *p)
}

// tcpCounters reads a node's TCP OutSegs and RetransSegs (its namespace's
// /proc/net/snmp).
func tcpCounters(t *testing.T, ctx context.Context, n *lab.Node) (out, retrans int64) {
	t.Helper()
	r, err := n.Run(ctx, "cat", "/proc/net/snmp")
	if err != nil {
		t.Fatalf("%s: /proc/net/snmp: %v", n.Name(), err)
	}
	var names []string
	for _, line := range strings.Split(r.Stdout, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i := 1; i < len(f) && i < len(names); i++ {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			switch names[i] {
			case "OutSegs":
				out = v
			case "RetransSegs":
				retrans = v
			}
		}
		return out, retrans
	}
	t.Fatalf("%s: no Tcp counters in /proc/net/snmp", n.Name())
	return 0, 0
}

package bench

// What keeping a VIP's connection list current costs: IPaddr3's helper
// process with 10,000 established connections on the address (CPU per
// second, idle and while connections come and go), and how stale the shared
// list can get (from a client's connect until the list holds it).

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/internal/nstest"
	"github.com/storhaug/storhaug/internal/ocftest"
	"github.com/storhaug/storhaug/internal/proc"
	"github.com/storhaug/storhaug/tickle"
)

// TestTkHelperServe is not a test: the keeper benchmark runs the test binary
// as a TCP server in a node's namespace (the clients' and the server's
// sockets would not fit one process's file limit), with TK_SERVE set.
func TestTkHelperServe(t *testing.T) {
	addr := os.Getenv("TK_SERVE")
	if addr == "" {
		t.Skip("helper process for BenchmarkTickleKeeper")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	var held []net.Conn
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		held = append(held, c)
	}
}

// tkCPU returns a process's user+system CPU time.
func tkCPU(pid int) time.Duration {
	u, s := tkCPUSplit(pid)
	return u + s
}

// tkCPUSplit returns a process's user and system CPU time.
func tkCPUSplit(pid int) (user, sys time.Duration) {
	st, err := proc.ReadStat(pid)
	if err != nil {
		return 0, 0
	}
	return time.Duration(st.UTime) * time.Second / 100, time.Duration(st.STime) * time.Second / 100 // USER_HZ
}

func BenchmarkTickleKeeper(b *testing.B) {
	nstest.Skip(b)
	n := 10000
	if s := os.Getenv("STORHAUG_TICKLE_KEEPER_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	bin := ocftest.Binary(b)
	b.Cleanup(func() { os.RemoveAll(filepath.Dir(bin)) })
	agent := filepath.Join(b.TempDir(), "IPaddr3")
	os.Symlink(bin, agent)
	for _, tracking := range []bool{false, true} {
		name := "untracked"
		if tracking {
			name = "conntrack"
		}
		b.Run(name, func(b *testing.B) { tkKeeper(b, agent, n, tracking) })
	}
}

// tkKeeper measures one helper process with n connections, in a namespace
// where conntrack tracks nothing (sock_diag alone sees them) or, with
// tracking, where a netfilter rule makes conntrack track them too
// (tickle_source=auto reads both).
func tkKeeper(b *testing.B, agent string, n int, tracking bool) {
	for range b.N {
		b.StopTimer()
		nt := nstest.New(b)
		a := &tkNode{h: nt.AddHost("198.51.100.1/24"), rsctmp: b.TempDir()}
		c := nt.AddHost("198.51.100.3/24", "198.51.100.4/24", "198.51.100.5/24")
		dir := filepath.Join(b.TempDir(), "tickle")
		vip := netip.MustParseAddr("198.51.100.10")
		env := []string{"OCF_RESOURCE_INSTANCE=tkkeep", "OCF_RESKEY_ip=" + vip.String(), "OCF_RESKEY_cidr_netmask=24",
			"OCF_RESKEY_nic=eth0", "OCF_RESKEY_tickle_dir=" + dir, "OCF_RESKEY_arp_count=1"}
		if tracking {
			a.h.Run(b, "nft", "add table inet tk; add chain inet tk in { type filter hook input priority 0; }; add rule inet tk in ct state established,related accept")
		}
		a.agent(b, agent, "start", env...)
		b.Cleanup(func() { a.agent(b, agent, "stop", env...) })

		srv := a.h.Command(os.Args[0], "-test.run=^TestTkHelperServe$")
		srv.Env = append(os.Environ(), "TK_SERVE=198.51.100.10:4445")
		out, _ := srv.StdoutPipe()
		if err := srv.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
		if line, _ := bufio.NewReader(out).ReadString('\n'); strings.TrimSpace(line) != "ready" {
			b.Fatalf("server: %q", line)
		}
		conns := make([]net.Conn, 0, n)
		b.Cleanup(func() {
			for _, c := range conns {
				c.Close()
			}
		})
		err := c.Do(func() error {
			for i := range n {
				// Three source addresses: 28,000 ephemeral ports each.
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(198, 51, 100, byte(3+i%3))}}
				cn, err := d.Dial("tcp", "198.51.100.10:4445")
				if err != nil {
					return fmt.Errorf("connection %d: %w", i, err)
				}
				conns = append(conns, cn)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		// Wait for the list to hold all of them.
		waitN := func(want int, within time.Duration) time.Duration {
			start := time.Now()
			for {
				got, err := tickle.ReadFile(dir, vip, nil)
				if err == nil && len(got) == want {
					return time.Since(start)
				}
				if time.Since(start) > within {
					b.Fatalf("the list holds %d of %d connections after %v (%v)", len(got), want, within, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		waitN(n, 15*time.Second)
		pid := tkKeeperPid(b, a.rsctmp)

		// Idle: n connections, none coming or going.
		b.StartTimer()
		u0, s0 := tkCPUSplit(pid)
		t0 := time.Now()
		time.Sleep(10 * time.Second)
		u1, s1 := tkCPUSplit(pid)
		el := float64(time.Since(t0))
		idle := float64(u1-u0+s1-s0) / el
		b.StopTimer()
		b.Logf("idle: %.1f ms/s user, %.1f ms/s system", float64(u1-u0)/el*1000, float64(s1-s0)/el*1000)

		// Staleness: one new connection at a time, at random phases of the
		// helper's second, until the list holds it.
		var stale []time.Duration
		cpu0 := tkCPU(pid)
		t0 = time.Now()
		for i := range 10 {
			time.Sleep(time.Duration(137*i%1000) * time.Millisecond)
			var cn net.Conn
			if err := c.Do(func() (err error) { cn, err = net.Dial("tcp", "198.51.100.10:4445"); return }); err != nil {
				b.Fatal(err)
			}
			conns = append(conns, cn)
			stale = append(stale, waitN(n+i+1, 5*time.Second))
		}
		churn := float64(tkCPU(pid)-cpu0) / float64(time.Since(t0))
		slices.Sort(stale)
		b.ReportMetric(idle*1000, "ms-cpu/s-idle")
		b.ReportMetric(churn*1000, "ms-cpu/s-churn")
		b.ReportMetric(float64(stale[len(stale)/2].Milliseconds()), "ms-stale-median")
		b.ReportMetric(float64(stale[len(stale)-1].Milliseconds()), "ms-stale-max")
		b.Logf("%d connections on %s: helper CPU %.1f ms/s idle, %.1f ms/s with a new connection every ~1.5 s; "+
			"a new connection is in the shared list after %v (median), %v (max)",
			n, vip, idle*1000, churn*1000, stale[len(stale)/2].Round(time.Millisecond), stale[len(stale)-1].Round(time.Millisecond))
	}
}

func tkKeeperPid(b *testing.B, rsctmp string) int {
	pids, _ := filepath.Glob(filepath.Join(rsctmp, "storhaug-IPaddr3-*.pid"))
	for _, p := range pids {
		bs, _ := os.ReadFile(p)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(bs))); err == nil && pid > 1 {
			return pid
		}
	}
	b.Fatal("no IPaddr3 helper process")
	return 0
}

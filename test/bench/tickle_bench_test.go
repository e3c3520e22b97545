package bench

// The tickle benchmark: how many TCP clients of a moved address reset, and
// how soon, with IPaddr2 alone, IPaddr2 + portblock (tickle_dir) and IPaddr3
// with tickles; K = 1, 100, 1000 clients; IPv4 and IPv6. Besides the K
// clients connected before the old owner's last monitor, K/10 (at least 1)
// "late" clients connect after it: what a list written only by the monitor
// misses.
//
// Each run: nodes A and B and a client host C on a bridge, in namespaces.
// The address (and portblock) start on A, a TCP service runs on it, the
// clients connect, A's monitor runs, the late clients connect, 1.5 s pass,
// A crashes (its helper processes are killed and its link cut), the address
// (and portblock) start on B. The time is from the beginning of B's start of
// the address until the last client reset; a client that is not reset
// within 3 s after B's starts returned counts as not reset.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/internal/nstest"
	"github.com/storhaug/storhaug/internal/ocftest"
	"github.com/storhaug/storhaug/tickle"
)

const (
	tkHeartbeat = "/usr/lib/ocf/resource.d/heartbeat"
	tkPort      = 4445
)

type tkMode string

const (
	tkIPaddr2   tkMode = "IPaddr2"
	tkPortblock tkMode = "IPaddr2+portblock"
	tkIPaddr3   tkMode = "IPaddr3"
)

type tkResult struct {
	mode            tkMode
	family          string
	k, late         int
	reset, lateRset int
	last            time.Duration // from the start of B's address start to the last reset
	lastTickle      time.Duration // from the start of the action that tickles (portblock's or IPaddr3's start)
	startTook       time.Duration // B's start of the address (and portblock)
}

var tkResults struct {
	sync.Mutex
	r []tkResult
}

func BenchmarkTickle(b *testing.B) {
	nstest.Skip(b)
	for _, p := range []string{tkHeartbeat + "/IPaddr2", tkHeartbeat + "/portblock", "/usr/libexec/heartbeat/tickle_tcp"} {
		need.File(b, p, "resource-agents")
	}
	need.Tool(b, "iptables", "iptables") // portblock's
	bin := ocftest.Binary(b)
	agentDir := b.TempDir()
	if err := os.Symlink(bin, filepath.Join(agentDir, "IPaddr3")); err != nil {
		b.Fatal(err)
	}
	ks := []int{1, 100, 1000}
	if s := os.Getenv("STORHAUG_TICKLE_BENCH_K"); s != "" {
		ks = nil
		for _, f := range strings.Split(s, ",") {
			if k, err := strconv.Atoi(f); err == nil {
				ks = append(ks, k)
			}
		}
	}
	for _, mode := range []tkMode{tkIPaddr2, tkPortblock, tkIPaddr3} {
		for _, fam := range []string{"IPv4", "IPv6"} {
			for _, k := range ks {
				b.Run(fmt.Sprintf("%s/%s/K=%d", mode, fam, k), func(b *testing.B) {
					for range b.N {
						r := tkRun(b, filepath.Join(agentDir, "IPaddr3"), mode, fam, k)
						b.ReportMetric(float64(r.reset), "reset")
						b.ReportMetric(float64(r.lateRset), "late-reset")
						b.ReportMetric(float64(r.last.Microseconds())/1000, "ms-last-reset")
						b.ReportMetric(float64(r.lastTickle.Microseconds())/1000, "ms-last-reset-tickling")
						tkResults.Lock()
						tkResults.r = append(tkResults.r, r)
						tkResults.Unlock()
					}
				})
			}
		}
	}
	tkReport(b)
}

func tkReport(b *testing.B) {
	tkResults.Lock()
	defer tkResults.Unlock()
	var s strings.Builder
	fmt.Fprintf(&s, "\n%-18s %-5s %5s %14s %14s %18s %18s %12s\n", "mode", "fam", "K", "reset", "late reset",
		"last reset/start", "/tickling start", "B starts")
	for _, r := range tkResults.r {
		last, lastT := "-", "-"
		if r.reset+r.lateRset > 0 {
			last = r.last.Round(100 * time.Microsecond).String()
			lastT = r.lastTickle.Round(100 * time.Microsecond).String()
		}
		fmt.Fprintf(&s, "%-18s %-5s %5d %7d/%-6d %7d/%-6d %18s %18s %12s\n", r.mode, r.family, r.k,
			r.reset, r.k, r.lateRset, r.late, last, lastT, r.startTook.Round(time.Millisecond))
	}
	// On standard output: a parent benchmark's own log is not shown.
	fmt.Println(s.String())
}

type tkNode struct {
	h      *nstest.Host
	rsctmp string
}

func (n *tkNode) agent(b *testing.B, path, action string, env ...string) string {
	b.Helper()
	cmd := exec.Command("nsenter", "--net="+n.h.Path(), "--", path, action)
	if filepath.Base(path) == "IPaddr3" {
		cmd = exec.Command(path, action)
		env = append(env, "OCF_RESKEY_network_namespace="+n.h.Name)
	}
	cmd.Env = append(os.Environ(), "OCF_ROOT=/usr/lib/ocf", "HA_RSCTMP="+n.rsctmp, "HA_LOGFACILITY=none",
		"OCF_RESKEY_CRM_meta_timeout=20000")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if action == "monitor" || action == "stop" {
			b.Logf("%s %s: %v\n%s", filepath.Base(path), action, err, out)
			return string(out)
		}
		b.Fatalf("%s %s: %v\n%s", filepath.Base(path), action, err, out)
	}
	return string(out)
}

type tkClient struct {
	conn net.Conn
	err  chan error
	at   time.Time
}

func tkConnect(b *testing.B, h *nstest.Host, addr string, k int) []*tkClient {
	b.Helper()
	cs := make([]*tkClient, 0, k)
	err := h.Do(func() error {
		for range k {
			// No keepalive probes (Go's default is 15 s): only a tickle may
			// reset a client here.
			c, err := (&net.Dialer{KeepAlive: -1}).Dial("tcp", addr)
			if err != nil {
				return err
			}
			cs = append(cs, &tkClient{conn: c, err: make(chan error, 1)})
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range cs {
		b.Cleanup(func() { c.conn.Close() })
		go func() {
			_, err := c.conn.Read(make([]byte, 1))
			c.at = time.Now()
			c.err <- err
		}()
	}
	return cs
}

// tkCount waits until deadline and returns how many clients were reset and
// when the last was.
func tkCount(cs []*tkClient, deadline time.Time) (n int, last time.Time) {
	for _, c := range cs {
		var err error
		select {
		case err = <-c.err:
		default:
			select {
			case err = <-c.err:
			case <-time.After(time.Until(deadline)):
				continue
			}
		}
		if errors.Is(err, syscall.ECONNRESET) {
			n++
			if c.at.After(last) {
				last = c.at
			}
		}
	}
	return n, last
}

func tkRun(b *testing.B, ipaddr3 string, mode tkMode, fam string, k int) tkResult {
	b.StopTimer()
	r := tkResult{mode: mode, family: fam, k: k, late: max(1, k/10)}
	net_ := nstest.New(b)
	a := &tkNode{h: net_.AddHost("198.51.100.1/24", "2001:db8::1/64"), rsctmp: b.TempDir()}
	bn := &tkNode{h: net_.AddHost("198.51.100.2/24", "2001:db8::2/64"), rsctmp: b.TempDir()}
	c := net_.AddHost("198.51.100.3/24", "2001:db8::3/64")
	dir := filepath.Join(b.TempDir(), "tickle")
	os.MkdirAll(dir, 0o700)
	vip, prefix := "198.51.100.10", "24"
	if fam == "IPv6" {
		vip, prefix = "2001:db8::10", "64"
	}
	addr := net.JoinHostPort(vip, strconv.Itoa(tkPort))
	ipEnv := []string{"OCF_RESOURCE_INSTANCE=tkvip", "OCF_RESKEY_ip=" + vip, "OCF_RESKEY_cidr_netmask=" + prefix,
		"OCF_RESKEY_nic=eth0", "OCF_RESKEY_nodad=true"}
	pbEnv := []string{"OCF_RESOURCE_INSTANCE=tkpb", "OCF_RESKEY_ip=" + vip, "OCF_RESKEY_action=unblock",
		"OCF_RESKEY_protocol=tcp", "OCF_RESKEY_portno=" + strconv.Itoa(tkPort), "OCF_RESKEY_tickle_dir=" + dir}
	ipAgent := tkHeartbeat + "/IPaddr2"
	if mode == tkIPaddr3 {
		ipAgent = ipaddr3
		ipEnv = append(ipEnv, "OCF_RESKEY_tickle_dir="+dir)
	}
	for _, n := range []*tkNode{a, bn} {
		b.Cleanup(func() {
			if mode == tkPortblock {
				n.agent(b, tkHeartbeat+"/portblock", "stop", pbEnv...)
			}
			n.agent(b, ipAgent, "stop", ipEnv...)
		})
	}
	// A: the address, portblock, the service, the clients.
	a.agent(b, ipAgent, "start", append(ipEnv, "OCF_RESKEY_arp_count=1")...)
	if mode == tkPortblock {
		a.agent(b, tkHeartbeat+"/portblock", "start", pbEnv...)
	}
	var ln net.Listener
	if err := a.h.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		b.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	if mode == tkIPaddr3 { // the helper records once its announcements are out
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := tickle.ReadFile(dir, netip.MustParseAddr(vip), nil); err == nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("IPaddr3 on A recorded nothing")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	early := tkConnect(b, c, addr, k)
	a.agent(b, ipAgent, "monitor", ipEnv...)
	if mode == tkPortblock {
		a.agent(b, tkHeartbeat+"/portblock", "monitor", pbEnv...)
	}
	late := tkConnect(b, c, addr, r.late)
	time.Sleep(1500 * time.Millisecond)

	// A crashes: its helper processes die, its link goes down.
	if pids, _ := filepath.Glob(filepath.Join(a.rsctmp, "storhaug-IPaddr3-*.pid")); len(pids) > 0 {
		for _, p := range pids {
			bs, _ := os.ReadFile(p)
			if pid, err := strconv.Atoi(strings.TrimSpace(string(bs))); err == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	err := a.h.Do(func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.LinkSetDown(l)
	})
	if err != nil {
		b.Fatal(err)
	}

	// B takes over.
	b.StartTimer()
	start := time.Now()
	tickling := start
	startLog := bn.agent(b, ipAgent, "start", ipEnv...)
	if mode == tkPortblock {
		tickling = time.Now()
		bn.agent(b, tkHeartbeat+"/portblock", "start", pbEnv...)
	}
	r.startTook = time.Since(start)
	b.StopTimer()
	if mode == tkIPaddr3 { // the agent's own account of where its time went
		for _, line := range strings.Split(startLog, "\n") {
			if strings.Contains(line, "after the agent began") {
				b.Logf("B's start took %v; %s", r.startTook.Round(100*time.Microsecond), line[strings.Index(line, "INFO:")+6:])
			}
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	var l1, l2 time.Time
	r.reset, l1 = tkCount(early, deadline)
	r.lateRset, l2 = tkCount(late, deadline)
	last := l1
	if l2.After(last) {
		last = l2
	}
	if !last.IsZero() {
		r.last, r.lastTickle = last.Sub(start), last.Sub(tickling)
	}
	return r
}

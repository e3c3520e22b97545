package main

// lab demo: what `make demo` shows. A 3-node lab comes up; storhaug setup
// wires SMB (Samba through CTDB) and NFS (NFS-Ganesha) into Pacemaker from
// the shipped sample configuration; storhaug status shows the cluster; a
// node is crashed while a client reads over SMB and NFS through that node's
// VIP, and the timeline is printed: detection, fencing, VIP moved, clients
// reset and reconnected, grace started. Then teardown, and the lab goes down.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/storhaug/storhaug/ganesha"
	"github.com/storhaug/storhaug/test/lab"
)

func init() {
	register("demo", "bring up a 3-node lab, storhaug setup, crash a node under SMB and NFS clients, tear down (--prefix P --storhaug BIN --config FILE)", cmdDemo)
}

// The sample's VIPs and their home nodes (examples/storhaug.conf).
var demoHomes = map[string]string{"198.51.100.201": "n1", "198.51.100.202": "n2", "198.51.100.203": "n3"}

const (
	demoVictim = "n3"
	demoVIP    = "198.51.100.203" // n3's VIP
	demoHeir   = "n1"             // next in its failover rotation
)

func vipID(addr string) string { return "storhaug-vip-" + addr }

func section(format string, args ...any) {
	fmt.Printf("\n==> %s\n", fmt.Sprintf(format, args...))
}

func cmdDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	prefix := fs.String("prefix", "shdemo", "lab prefix")
	bin := fs.String("storhaug", "bin/storhaug", "the storhaug binary (make build)")
	conf := fs.String("config", "examples/storhaug.conf", "the sample configuration")
	keep := fs.Bool("keep", false, "leave the lab running at the end (make lab-down --prefix P removes it)")
	fs.Parse(args)
	if os.Geteuid() != 0 {
		return errors.New("demo: the lab needs root (network namespaces, mounts)")
	}
	if _, err := os.Stat(*bin); err != nil {
		return fmt.Errorf("demo: %v (run make build first)", err)
	}
	sample, err := os.ReadFile(*conf)
	if err != nil {
		return fmt.Errorf("demo: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	start := time.Now()

	section("bringing up the lab: 3 nodes (corosync + Pacemaker), 1 client, in namespaces")
	l, err := lab.Up(ctx, lab.Options{
		Prefix: *prefix, Nodes: 3, Clients: 1, Storhaug: *bin,
		Pacemaker: lab.Started, DBus: lab.Started,
		CTDB: lab.Prepared, Samba: lab.Prepared, Ganesha: lab.Prepared,
		Guard: true,
	})
	if err != nil {
		return err
	}
	if !*keep {
		defer func() {
			section("lab down")
			if err := l.Down(); err != nil {
				fmt.Println("lab down:", err)
			} else if left := l.Leftovers(); len(left) > 0 {
				fmt.Println("left behind:", strings.Join(left, ", "))
			} else {
				fmt.Printf("nothing left behind; the demo took %.0fs\n", time.Since(start).Seconds())
			}
		}()
	}
	fmt.Printf("lab %s up (%s)\n", l.Prefix(), l.TimingsString())
	for _, n := range l.Nodes() {
		fmt.Printf("  %s  %s\n", n.Name(), n.Addr4())
	}
	fmt.Printf("  client %s  %s\n", l.Client(1).Name(), l.Client(1).Addr4())
	fmt.Printf("  fencing on: stonith-enabled=true, device %s (stonith:%s, the lab's power switch)\n", lab.FenceResource, lab.FenceAgent)
	return runDemo(ctx, l, sample)
}

func runDemo(ctx context.Context, l *lab.Lab, sample []byte) error {
	n1 := l.Node("n1")
	storhaug := func(args ...string) (lab.Result, error) {
		r, err := n1.Run(ctx, "/usr/sbin/storhaug", args...)
		if err != nil {
			return r, fmt.Errorf("storhaug %s: %v\n%s", strings.Join(args, " "), err, r.Output())
		}
		return r, nil
	}

	section("the configuration: %s as /etc/sysconfig/storhaug.conf on n1, plus a drop-in for the lab", "examples/storhaug.conf")
	if _, err := n1.Sh(ctx, "mkdir -p /etc/sysconfig/storhaug.d"); err != nil {
		return err
	}
	if err := n1.WriteFile("/etc/sysconfig/storhaug.conf", sample, 0o644); err != nil {
		return err
	}
	dropIn := fmt.Sprintf("HA_NAME=%q\nHA_MNT_DIR=%q\nHA_NFS_MNT_DIR=\".\"\nHA_SMB_MNT_DIR=\"ctdb\"\nHA_VIP_TICKLE_DIR=%q\nHA_VIP_NIC=\"eth0\"\nHA_GANESHA_PARAMS=\"logfile=/var/log/ganesha/ganesha.log\"\n",
		l.Prefix(), l.SharedDir(), filepath.Join(l.SharedDir(), "tickle"))
	if err := n1.WriteFile("/etc/sysconfig/storhaug.d/50-lab.conf", []byte(dropIn), 0o644); err != nil {
		return err
	}
	for _, line := range strings.Split(string(sample), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			fmt.Println("  " + t)
		}
	}
	fmt.Println("  storhaug.d/50-lab.conf:")
	for _, line := range strings.Split(strings.TrimSpace(dropIn), "\n") {
		fmt.Println("    " + line)
	}

	section("storhaug setup (on n1)")
	t0 := time.Now()
	r, err := storhaug("setup")
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	fmt.Println(lines[0])
	fmt.Printf("  (%d objects; storhaug setup --dry-run prints them as XML and as pcs commands)\n", len(lines)-1)
	if err := waitAllUp(ctx, l, demoHomes, 4*time.Minute); err != nil {
		return err
	}
	fmt.Printf("every resource running %.1fs after setup\n", time.Since(t0).Seconds())
	r, err = storhaug("setup")
	if err != nil {
		return err
	}
	fmt.Printf("storhaug setup again: %s", r.Stdout)

	section("storhaug status")
	if r, err = storhaug("status"); err != nil {
		return err
	}
	fmt.Print(r.Stdout)

	// Files the client reads.
	stamp := time.Now().Format("150405")
	smbFile, nfsFile := "demo-"+stamp+".txt", "demo-"+stamp+".txt"
	content := "storhaug demo " + stamp + "\n"
	os.WriteFile(filepath.Join(l.ShareDir(), smbFile), []byte(content), 0o644)
	os.WriteFile(filepath.Join(l.ExportDir(), nfsFile), []byte(content), 0o644)
	defer os.Remove(filepath.Join(l.ShareDir(), smbFile))
	defer os.Remove(filepath.Join(l.ExportDir(), nfsFile))
	c := l.Client(1)
	smbRead := func(ctx context.Context) error {
		r, err := c.Run(ctx, "smbclient", "//"+demoVIP+"/"+lab.ShareName, "-N", "-c", "get "+smbFile+" -")
		if err != nil || !strings.Contains(r.Stdout, content) {
			return fmt.Errorf("%v %s", err, r.Output())
		}
		return nil
	}
	nfsRead := func(ctx context.Context) error {
		r, err := c.Run(ctx, "nfs-cat", fmt.Sprintf("nfs://%s/export/%s?version=4", demoVIP, nfsFile))
		if err != nil || r.Stdout != content {
			return fmt.Errorf("%v %s", err, r.Output())
		}
		return nil
	}

	section("client %s reads over SMB and NFS through %s (on %s)", c.Name(), demoVIP, demoVictim)
	for _, p := range []struct {
		name string
		read func(context.Context) error
	}{{"SMB", smbRead}, {"NFS", nfsRead}} {
		if err := l.WaitFor(ctx, p.name+" read via "+demoVIP, time.Minute, func() (bool, error) {
			err := p.read(ctx)
			return err == nil, err
		}); err != nil {
			return err
		}
		fmt.Printf("  %s read of %s: ok\n", p.name, smbFile)
	}
	// Open connections, as clients hold them: they must be reset when the
	// VIP moves, so that the clients reconnect at once.
	var conns []*heldConn
	for _, port := range []int{445, 2049} {
		hc, err := holdConn(c, demoVIP, port)
		if err != nil {
			return err
		}
		defer hc.conn.Close()
		conns = append(conns, hc)
		fmt.Printf("  open TCP connection %s -> %s\n", hc.conn.LocalAddr(), hc.conn.RemoteAddr())
	}
	time.Sleep(2 * time.Second) // let IPaddr3 record them (tickle_refresh 1 s)

	section("powering %s off (its link cut, every process of the node killed) while the client keeps reading", demoVictim)
	var tl timeline
	crash := time.Now()
	// The link first: a machine that loses power sends nothing more, not
	// even the FINs and RSTs a kernel sends for the sockets of killed
	// processes.
	if err := l.CutLink(demoVictim); err != nil {
		return err
	}
	if err := l.Crash(demoVictim); err != nil {
		return err
	}
	tl.add(crash, "crash: "+demoVictim+" powered off")
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer wcancel()
	var wg sync.WaitGroup
	watch := func(name string, fn func() (time.Time, error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at, err := fn()
			if err != nil {
				tl.add(time.Now(), name+": NOT SEEN: "+err.Error())
				return
			}
			tl.add(at, name)
		}()
	}
	poll := func(fn func() bool) (time.Time, error) {
		for {
			if fn() {
				return time.Now(), nil
			}
			select {
			case <-wctx.Done():
				return time.Time{}, wctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	watch("Pacemaker: "+demoVictim+" seen down", func() (time.Time, error) {
		return poll(func() bool {
			s, err := n1.CrmMon(wctx)
			return err == nil && !s.IsOnline(demoVictim)
		})
	})
	watch("fencer: "+demoVictim+" fenced (powered off by "+lab.FenceAgent+")", func() (time.Time, error) {
		at, err := poll(func() bool {
			r, err := n1.Run(wctx, "stonith_admin", "--history", demoVictim)
			return err == nil && strings.Contains(r.Stdout, "successful")
		})
		if err != nil {
			return at, err
		}
		// The fencer's own time (to the ms), not when the poll saw it.
		if t, ok := fencedAt(l, demoVictim, crash); ok {
			return t, nil
		}
		return at, nil
	})
	watch("Pacemaker: VIP "+demoVIP+" started on "+demoHeir, func() (time.Time, error) {
		return poll(func() bool {
			s, err := n1.CrmMon(wctx)
			if err != nil {
				return false
			}
			on := s.RunningOn(vipID(demoVIP))
			return len(on) == 1 && on[0] == demoHeir
		})
	})
	watch("VIP "+demoVIP+" configured on "+demoHeir+"'s eth0", func() (time.Time, error) {
		return poll(func() bool {
			found := false
			n1.Do(func() error {
				addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
				for _, a := range addrs {
					if a.IP.String() == demoVIP {
						found = true
					}
				}
				return err
			})
			return found
		})
	})
	watch("NFS-Ganesha on "+demoHeir+" in grace", func() (time.Time, error) {
		return poll(func() bool { in, err := nodeGrace(wctx, n1); return err == nil && in })
	})
	for _, hc := range conns {
		hc := hc
		watch(fmt.Sprintf("client's open connection to port %d reset (tickle ACK from %s)", hc.port, demoHeir), func() (time.Time, error) {
			select {
			case <-hc.done:
				if !errors.Is(hc.err, syscall.ECONNRESET) {
					return time.Time{}, fmt.Errorf("ended by %v, not by a reset", hc.err)
				}
				return hc.at, nil
			case <-wctx.Done():
				return time.Time{}, errors.New("no reset (the client would hang until TCP gives up)")
			}
		})
	}
	for _, p := range []struct {
		name string
		read func(context.Context) error
	}{{"SMB", smbRead}, {"NFS", nfsRead}} {
		p := p
		watch(p.name+" client reads through "+demoVIP+" again", func() (time.Time, error) {
			return poll(func() bool {
				rctx, cancel := context.WithTimeout(wctx, 5*time.Second)
				defer cancel()
				return p.read(rctx) == nil
			})
		})
	}
	wg.Wait()

	section("what happened (times after the crash)")
	tl.print(crash)

	section("%s comes back: its VIP returns home (DETERMINISTIC_FAILOVER)", demoVictim)
	t1 := time.Now()
	var failed error
	if err := l.RestoreLink(demoVictim); err != nil {
		return err
	}
	if err := l.Recover(ctx, demoVictim); err != nil {
		return err
	}
	if err := waitAllUp(ctx, l, demoHomes, 3*time.Minute); err != nil {
		failed = fmt.Errorf("after %s came back: %v", demoVictim, err)
		fmt.Println("PROBLEM:", failed)
	} else {
		fmt.Printf("%s rebooted and every VIP at home again after %.1fs\n", demoVictim, time.Since(t1).Seconds())
	}
	if r, err = storhaug("status"); err != nil {
		return err
	}
	fmt.Print(r.Stdout)

	section("storhaug teardown")
	if r, err = storhaug("teardown"); err != nil {
		return err
	}
	lines = strings.Split(strings.TrimSpace(r.Stdout), "\n")
	for _, line := range lines {
		if !strings.HasPrefix(line, "  ") {
			fmt.Println(line)
		}
	}
	return failed
}

// waitAllUp waits until every storhaug resource runs and each VIP is on
// the node given.
func waitAllUp(ctx context.Context, l *lab.Lab, vips map[string]string, timeout time.Duration) error {
	return l.WaitFor(ctx, "storhaug resources up", timeout, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		for addr, node := range vips {
			for _, id := range []string{vipID(addr), vipID(addr) + "-trigger"} {
				if got := s.RunningOn(id); len(got) != 1 || got[0] != node {
					return false, fmt.Errorf("%s on %v, want %s", id, got, node)
				}
			}
		}
		for _, id := range []string{"storhaug-ctdb", "storhaug-ganesha"} {
			if got := s.RunningOn(id); len(got) != 3 {
				return false, fmt.Errorf("%s on %v", id, got)
			}
		}
		if p := s.WithRole("storhaug-ctdb", "Promoted"); len(p) != 1 {
			return false, fmt.Errorf("CTDB promoted on %v", p)
		}
		return true, nil
	})
}

// nodeGrace asks the node's ganesha, over the node's system bus, whether
// it is in grace.
func nodeGrace(ctx context.Context, n *lab.Node) (bool, error) {
	p, err := n.Path("/run/dbus/system_bus_socket")
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	b, err := ganesha.Connect(ctx, "unix:path="+p)
	if err != nil {
		return false, err
	}
	defer b.Close()
	return b.GetGrace(ctx)
}

// heldConn is an open TCP connection from the client that waits for the
// server's side to end.
type heldConn struct {
	conn net.Conn
	port int
	done chan struct{}
	at   time.Time
	err  error
}

func holdConn(c *lab.Client, addr string, port int) (*heldConn, error) {
	hc := &heldConn{port: port, done: make(chan struct{})}
	err := c.Do(func() error {
		var err error
		hc.conn, err = net.DialTimeout("tcp", net.JoinHostPort(addr, fmt.Sprint(port)), 5*time.Second)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s:%d from %s: %v", addr, port, c.Name(), err)
	}
	if port == 445 {
		// Speak first, as an SMB client does: smbd drops connections
		// that never negotiate.
		if err := lab.SMBNegotiate(hc.conn); err != nil {
			hc.conn.Close()
			return nil, fmt.Errorf("SMB negotiate with %s: %v", addr, err)
		}
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := hc.conn.Read(buf); err != nil {
				hc.at, hc.err = time.Now(), err
				close(hc.done)
				return
			}
		}
	}()
	return hc, nil
}

type event struct {
	at   time.Time
	what string
}

type timeline struct {
	mu     sync.Mutex
	events []event
}

func (t *timeline) add(at time.Time, what string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, event{at, what})
}

func (t *timeline) print(zero time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sort.SliceStable(t.events, func(i, j int) bool { return t.events[i].at.Before(t.events[j].at) })
	for _, e := range t.events {
		fmt.Printf("  %+8.2fs  %s\n", e.at.Sub(zero).Seconds(), e.what)
	}
}

// fencedAt is when a fencer logged the successful fencing of victim (after
// since), from the pacemaker logs of the nodes ("Dec 01 18:13:41.258 ...
// Operation 'off' targeting n3 by n1 ...: OK").
func fencedAt(l *lab.Lab, victim string, since time.Time) (time.Time, bool) {
	var best time.Time
	for _, n := range l.Nodes() {
		b, err := os.ReadFile(filepath.Join(n.LogDir(), "pacemaker", "pacemaker.log"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if len(line) < 19 || !strings.Contains(line, "targeting "+victim+" by ") || !strings.Contains(line, ": OK") {
				continue
			}
			t, err := time.ParseInLocation("Jan 02 15:04:05.000", line[:19], time.Local)
			if err != nil {
				continue
			}
			t = t.AddDate(since.Year(), 0, 0)
			if !t.Before(since) && (best.IsZero() || t.Before(best)) {
				best = t
			}
		}
	}
	return best, !best.IsZero()
}
